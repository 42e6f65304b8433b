//! The Neo4j subgraph's request handling up to its Cypher (see `polygraph_fuzz`): entity
//! keys and relationship arguments into parameterized `UNWIND` statements.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polygraph_fuzz::{Harness, NOWHERE, config, introspection};
use polygraph_subgraph_neo4j::{Config, Subgraph};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        Harness::new("neo4j", || async {
            let config = Config::from_file(&config("neo4j"))?;
            let url = format!("bolt://{NOWHERE}");
            let subgraph = Subgraph::from_introspection(&config, &introspection("neo4j"), &url)?;
            Ok((subgraph.served(), subgraph.sdl()))
        })
    })
}

fuzz_target!(|data: &[u8]| harness().run(data));
