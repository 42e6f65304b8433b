//! What the subgraph benchmarks share: configs, running a request both ways, and the
//! interleaved comparison with a raw client.

/// mimalloc, as the `polygraph` binary uses: the subgraphs' and the raw clients' times are
/// measured with the allocator the served process has.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::future::Future;
use std::time::{Duration, Instant};

use async_graphql::Variables;
use criterion::Criterion;
use serde_json::Value;

pub fn config(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../config/{name}.yaml"))
}

/// A request through the subgraph's one path, as the HTTP layer answers it: the document
/// looked up by its text (validated the first time), the variables checked, the engine run and
/// the body written.
#[allow(dead_code)] // each benchmark compiles this module; not every one uses every helper
pub async fn served(
    served: &polygraph_subgraph_core::server::Served,
    query: &str,
    variables: &Variables,
) -> polygraph_subgraph_core::server::Reply {
    served.execute(query, None, variables, None).await
}

/// What a benchmarked side returns: compared as JSON once, before the timing (which does not
/// pay for the conversion).
pub trait Comparable {
    fn into_value(self) -> Value;
}

impl Comparable for Value {
    fn into_value(self) -> Value {
        self
    }
}

/// A response body, as a raw client that writes one returns it.
impl Comparable for String {
    fn into_value(self) -> Value {
        serde_json::from_str(&self).expect("a JSON body")
    }
}

impl Comparable for polygraph_subgraph_core::server::Reply {
    fn into_value(self) -> Value {
        self.json()
    }
}

/// Benchmarks both sides under criterion, then runs them alternately and prints the ratio of
/// their mean times (both sides see the same machine load).
pub fn compare<A, B, FA, FB, O, P>(
    criterion: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    ours: A,
    theirs: B,
) where
    A: Fn() -> FA,
    B: Fn() -> FB,
    FA: Future<Output = O>,
    FB: Future<Output = P>,
    O: Comparable,
    P: Comparable,
{
    assert_eq!(
        runtime.block_on(ours()).into_value(),
        runtime.block_on(theirs()).into_value(),
        "{name}: the subgraph and the raw client must return the same data"
    );
    let mut group = criterion.benchmark_group(name);
    group.bench_function("subgraph", |b| b.to_async(runtime).iter(&ours));
    group.bench_function("raw_client", |b| b.to_async(runtime).iter(&theirs));
    group.finish();
    let iterations = 300;
    let (mut ours_time, mut theirs_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..iterations {
        let started = Instant::now();
        runtime.block_on(ours());
        ours_time += started.elapsed();
        let started = Instant::now();
        runtime.block_on(theirs());
        theirs_time += started.elapsed();
    }
    println!(
        "ratio {name}: subgraph {:?} / raw client {:?} = {:.2}",
        ours_time / iterations,
        theirs_time / iterations,
        ours_time.as_secs_f64() / theirs_time.as_secs_f64()
    );
}

/// Prints how much slower a query text seen for the first time is than a repeat: the same
/// request, alternately with a text the subgraph has not kept (a new comment at its end, so it
/// is parsed and validated again) and with the kept one.
#[allow(dead_code)] // each benchmark compiles this module; not every one uses every helper
pub fn first_sight(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    subgraph: &polygraph_subgraph_core::server::Served,
    query: &str,
    variables: &Variables,
) {
    let iterations = 300;
    let (mut first, mut repeat) = (Duration::ZERO, Duration::ZERO);
    runtime.block_on(served(subgraph, query, variables));
    for iteration in 0..iterations {
        let fresh = format!("{query}\n# first sight {iteration}");
        let started = Instant::now();
        let reply = runtime.block_on(served(subgraph, &fresh, variables));
        first += started.elapsed();
        assert!(!reply.errors, "{name}: {}", reply.body);
        let started = Instant::now();
        runtime.block_on(served(subgraph, query, variables));
        repeat += started.elapsed();
    }
    println!(
        "ratio {name}_first_sight: first sight {:?} / repeat {:?} = {:.2}",
        first / iterations,
        repeat / iterations,
        first.as_secs_f64() / repeat.as_secs_f64()
    );
}
