//! Differential testing: generated operations (fields, arguments, variables, aliases,
//! fragments, `@skip`/`@include`) go to the gateway over the four benchmark subgraphs and to
//! the same graph written as one monolith, and the answers must be the same: the data with
//! its field order, and the paths of any errors. The seed is printed with any difference;
//! `POLYGRAPH_DIFFERENTIAL_SEED` replays a run, `POLYGRAPH_DIFFERENTIAL_OPERATIONS` makes it
//! longer.

mod common;

use apollo_compiler::ExecutableDocument;
use common::federation::{post, start, supergraph_sdl};
use polygraph_gateway::supergraph::Supergraph;
use polygraph_testkit::federation::monolith::Monolith;
use polygraph_testkit::operations::{Operation, Seeded, Shape, generate};
use serde_json::{Value, json};

/// Operations per run, unless `POLYGRAPH_DIFFERENTIAL_OPERATIONS` says more.
const OPERATIONS: u64 = 600;

fn operations() -> u64 {
    std::env::var("POLYGRAPH_DIFFERENTIAL_OPERATIONS")
        .ok()
        .and_then(|count| count.parse().ok())
        .map_or(OPERATIONS, |count: u64| count.max(OPERATIONS))
}

fn seed() -> u64 {
    std::env::var("POLYGRAPH_DIFFERENTIAL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("the clock is past 1970")
                .as_secs()
        })
}

/// The paths of an answer's errors, sorted.
fn error_paths(answer: &Value) -> Vec<String> {
    let mut paths: Vec<String> = answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|error| error["path"].to_string())
        .collect();
    paths.sort();
    paths
}

struct Difference {
    seed: u64,
    operation: Operation,
    ours: Value,
    theirs: Value,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {}\n{}\nvariables {}\ngateway  {}\nmonolith {}",
            self.seed,
            self.operation.query,
            Value::Object(self.operation.variables.clone()),
            self.ours,
            self.theirs
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_operations_answer_as_the_monolith_does() {
    let graph = start(|_| {}).await;
    let monolith = Monolith::default();
    let api = Supergraph::parse(&supergraph_sdl())
        .expect("the supergraph loads")
        .api_schema;
    let first = seed();
    let count = operations();
    let (mut differences, mut errors, mut fragments) = (Vec::new(), 0, 0);
    for seed in first..first + count {
        let operation = generate(&api, &mut Seeded(seed), Shape::default());
        if let Err(invalid) =
            ExecutableDocument::parse_and_validate(&api, &operation.query, "generated.graphql")
        {
            panic!(
                "seed {seed}: the generator wrote an invalid operation:\n{}\n{}",
                operation.query, invalid.errors
            );
        }
        let variables = Value::Object(operation.variables.clone());
        let (status, _, ours) = post(
            &graph.url,
            &json!({ "query": operation.query, "variables": variables }),
        )
        .await;
        assert_eq!(status, 200, "seed {seed}: {ours}");
        let theirs = monolith.execute(&operation.query, &operation.variables);
        // As text, so that field order counts: JSON maps compare equal in any order.
        let text = |answer: &Value| serde_json::to_string(&answer["data"]).expect("serializes");
        let same = text(&ours) == text(&theirs) && error_paths(&ours) == error_paths(&theirs);
        errors += usize::from(ours.get("errors").is_some());
        fragments += usize::from(operation.query.contains("..."));
        if !same {
            differences.push(Difference {
                seed,
                operation,
                ours,
                theirs,
            });
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {count} operations answered differently (seeds {first}..); the first:\n{}",
        differences.len(),
        differences[0]
    );
    // The generator reaches what it claims to: fragments in a good share of operations, and
    // errors (the feed's gone product) in some, so that their paths are compared too.
    assert!(errors > 0, "no operation met an error");
    assert!(fragments as u64 > count / 4, "{fragments} used fragments");
    eprintln!("{count} operations from seed {first}: the same answers ({errors} with errors)");
}
