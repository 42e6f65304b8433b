//! The gateway's own costs, each beside its floor in the same run:
//! - planning the deep benchmark query cold (lower, plan) and from the plan cache, against
//!   apollo-compiler parsing and validating it (what any gateway pays first);
//! - a whole request through the gateway over the four benchmark subgraphs on loopback, against
//!   the plan's biggest subgraph fetch sent directly with the same HTTP client.
//!
//! Prints `ratio` lines: gateway time over floor time.

/// mimalloc, as the `polygraph` binary uses: planning and execution are measured
/// with the allocator the served process has.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apollo_compiler::ExecutableDocument;
use apollo_compiler::response::JsonMap;
use criterion::{Criterion, criterion_group, criterion_main};
use polygraph_bench::federation::{NAMES, subgraph};
use polygraph_gateway::gateway::{Gateway, Options, Request, Settings};
use polygraph_gateway::supergraph::Supergraph;

const QUERY: &str = include_str!("../load/query.graphql");
const SUPERGRAPH: &str = include_str!("../federation/supergraph.graphql");

fn time<F: FnMut()>(iterations: u32, mut work: F) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        work();
    }
    started.elapsed() / iterations
}

fn planning(c: &mut Criterion) {
    let supergraph = Supergraph::parse(SUPERGRAPH).unwrap();
    let api = supergraph.api_schema.clone();
    let mut group = c.benchmark_group("plan_deep_query");
    group.bench_function("parse_and_validate (floor)", |b| {
        b.iter(|| ExecutableDocument::parse_and_validate(&api, QUERY, "q.graphql").unwrap());
    });
    let document = ExecutableDocument::parse_and_validate(&api, QUERY, "q.graphql").unwrap();
    let operation = document.operations.get(None).unwrap().clone();
    group.bench_function("lower_and_plan (cold)", |b| {
        b.iter(|| {
            let normalized = polygraph_gateway::operation::normalize(
                &supergraph.schema,
                &document,
                &operation,
                &JsonMap::new(),
            );
            polygraph_gateway::plan::plan(&supergraph, &normalized).unwrap()
        });
    });
    let gateway =
        Gateway::new(Supergraph::parse(SUPERGRAPH).unwrap(), Settings::default()).unwrap();
    gateway.explain(QUERY, None).unwrap();
    group.bench_function("cached", |b| {
        b.iter(|| gateway.explain(QUERY, None).unwrap());
    });
    group.finish();

    let floor = time(200, || {
        ExecutableDocument::parse_and_validate(&api, QUERY, "q.graphql").unwrap();
    });
    let cold = time(200, || {
        let normalized = polygraph_gateway::operation::normalize(
            &supergraph.schema,
            &document,
            &operation,
            &JsonMap::new(),
        );
        polygraph_gateway::plan::plan(&supergraph, &normalized).unwrap();
    });
    println!(
        "ratio plan_deep_query/cold over parse_and_validate: {:.2}",
        cold.as_secs_f64() / floor.as_secs_f64()
    );
}

fn execution(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (gateway, fetches) = runtime.block_on(async {
        let mut settings = Settings::default();
        for name in NAMES {
            let address = subgraph(name)
                .unwrap()
                .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .unwrap();
            settings
                .subgraph_urls
                .insert(name.to_owned(), format!("http://{address}/graphql"));
        }
        let urls = settings.subgraph_urls.clone();
        let gateway =
            Arc::new(Gateway::new(Supergraph::parse(SUPERGRAPH).unwrap(), settings).unwrap());
        // The floor: the plan's biggest fetch (every user's nested reviews) sent directly.
        let reviews = urls["reviews"].clone();
        (gateway, reviews)
    });
    let client = reqwest::Client::new();
    let representations: Vec<serde_json::Value> = (1..=10)
        .map(|i| serde_json::json!({ "__typename": "User", "id": i.to_string() }))
        .collect();
    let direct_body = serde_json::json!({
        "query": "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { reviews { id body product { upc reviews { id body author { id username reviews { id body product { upc __typename } } __typename } } __typename } } } } }",
        "variables": { "representations": representations }
    });
    let mut group = c.benchmark_group("execute_deep_query");
    group.bench_function("gateway", |b| {
        b.to_async(&runtime).iter(|| {
            let gateway = gateway.clone();
            async move {
                let request = Request {
                    query: Some(QUERY.to_owned()),
                    ..Request::default()
                };
                let response = gateway.execute(request, Options::default()).await;
                assert!(response.errors.is_empty());
                response
            }
        });
    });
    group.bench_function("biggest fetch direct (floor)", |b| {
        b.to_async(&runtime).iter(|| {
            let client = client.clone();
            let body = direct_body.clone();
            let url = fetches.clone();
            async move {
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
            }
        });
    });
    group.finish();
}

criterion_group!(benches, planning, execution);
criterion_main!(benches);
