//! Valid operations made from the fuzzer's bytes (`polygraph_testkit::operations`: every
//! byte is a choice of field, argument, alias, fragment, directive or variable), through
//! validation, the bounds, the cost estimate and planning, against the demo supergraph and the
//! benchmark federation's. Plain bytes rarely get past the parser; these always do, so the
//! planner sees deep, odd and fragment-heavy shapes. Oracles: no panic, hang or runaway
//! allocation, and a valid operation is never refused as invalid.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::supergraph::Supergraph;
use polygraph_testkit::operations::{FromBytes, Shape, generate};

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
    let shape = Shape {
        depth: 6,
        width: 5,
        fields: 60,
        twins: true,
        ..Shape::default()
    };
    for gateway in gateways() {
        let operation = generate(
            &gateway.supergraph.api_schema,
            &mut FromBytes(data),
            shape,
        );
        let variables: apollo_compiler::response::JsonMap =
            serde_json::from_value(serde_json::Value::Object(operation.variables))
                .expect("a JSON object is a JSON map");
        if let Err(errors) = gateway.explain_with(&operation.query, None, &variables) {
            for error in &errors {
                let code = error.extensions.get("code").and_then(|code| code.as_str());
                assert!(
                    !matches!(code, Some("GRAPHQL_VALIDATION_FAILED" | "GRAPHQL_PARSE_FAILED")),
                    "a valid operation was refused:\n{}\n{errors:?}",
                    operation.query
                );
            }
        }
    }
});
