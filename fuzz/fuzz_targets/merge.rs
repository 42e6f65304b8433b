//! Subgraph replies merged into the data (`gateway/src/data.rs`) and the client's response
//! written from it (`gateway/src/response.rs`) for operations over the benchmark federation:
//! aliases, fragments, nested lists, non-null fields whose nulls propagate. Input: up to four
//! replies separated by NUL bytes, each merged at the root as a root fetch's would be. Oracles:
//! no panic, hang or runaway allocation, and what is written is JSON.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use polygraph_gateway::data::Data;
use polygraph_gateway::json::Doc;
use polygraph_gateway::operation::{Normalized, normalize};
use polygraph_gateway::supergraph::Supergraph;

const OPERATIONS: [&str; 4] = [
    "{ users { id name reviews { id body product { upc name inStock shippingEstimate } } } }",
    "{ me { ...U a: username } topProducts(first: 3) { upc price reviews { author { ...U } } } } fragment U on User { id name }",
    "query { user(id: \"1\") { __typename id birthday } t: topProducts { __typename upc } }",
    "{ topProducts { reviews { product { reviews { author { reviews { id } } } } } } }",
];

fn prepared() -> &'static (Supergraph, Vec<Normalized>) {
    static PREPARED: OnceLock<(Supergraph, Vec<Normalized>)> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let sdl = std::fs::read_to_string(root.join("bench/federation/supergraph.graphql"))
            .expect("the supergraph is checked in");
        let supergraph = Supergraph::parse(&sdl).expect("it loads");
        let operations = OPERATIONS
            .iter()
            .map(|query| {
                let prepared = polygraph_gateway::prepare::prepare(&supergraph.api_schema, query)
                    .expect("the operations are valid");
                let operation = prepared.operation(None).expect("one operation");
                normalize(
                    &supergraph.schema,
                    &prepared.document,
                    operation,
                    &apollo_compiler::response::JsonMap::new(),
                )
            })
            .collect();
        (supergraph, operations)
    })
}

fuzz_target!(|data: &[u8]| {
    let replies: Vec<Doc> = data
        .split(|&b| b == 0)
        .take(4)
        .filter_map(|reply| Doc::parse(Bytes::copy_from_slice(reply)).ok())
        .collect();
    let mut merged = Data::empty_object();
    for reply in &replies {
        let root = reply.root();
        if let Some(answer) = root.get("data").filter(|data| data.is_object()) {
            merged.merge(answer);
        }
    }
    let (supergraph, operations) = prepared();
    for operation in operations {
        let mut errors = Vec::new();
        let mut out = Vec::new();
        polygraph_gateway::response::write(supergraph, operation, merged.value(), &mut errors, &mut out);
        if let Err(error) = serde_json::from_slice::<serde_json::Value>(&out) {
            panic!("the response is not JSON ({error}): {}", String::from_utf8_lossy(&out));
        }
    }
});
