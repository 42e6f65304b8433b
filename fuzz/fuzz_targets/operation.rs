//! A request's operation text and variables through preparation, validation, the bounds, the
//! cost estimate and planning, against the demo supergraph and the benchmark federation's,
//! without calling any subgraph. Input: the operation text, then optionally a NUL byte and
//! the variables as JSON; both supergraphs get every input. Oracle: no panic,
//! hang or runaway allocation; an answer or errors.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::supergraph::Supergraph;

fn gateway(path: &str) -> Gateway {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sdl = std::fs::read_to_string(root.join(path)).expect("the supergraph is checked in");
    let mut settings = Settings::default();
    settings.authorization.policies = Some(root.join("policies"));
    Gateway::new(Supergraph::parse(&sdl).expect("it loads"), settings).expect("it starts")
}

fn gateways() -> &'static [Gateway; 2] {
    static GATEWAYS: OnceLock<[Gateway; 2]> = OnceLock::new();
    GATEWAYS.get_or_init(|| {
        [
            gateway("schema/supergraph.graphql"),
            gateway("bench/federation/supergraph.graphql"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let (query, variables) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let variables = serde_json::from_slice(variables).unwrap_or_default();
    for gateway in gateways() {
        let _ = gateway.explain_with(query, None, &variables);
    }
});
