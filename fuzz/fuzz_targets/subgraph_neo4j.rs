//! The Neo4j subgraph's request handling up to its Cypher (see `polygraph_fuzz`): entity
//! keys and relationship arguments into parameterized `UNWIND` statements.
#![no_main]

use polygraph_fuzz::{NOWHERE, config, introspection};
use polygraph_subgraph_neo4j::{Config, Subgraph};

polygraph_fuzz::subgraph_target!("neo4j", || async {
    let config = Config::from_file(&config("neo4j"))?;
    let url = format!("bolt://{NOWHERE}");
    let subgraph = Subgraph::from_introspection(&config, &introspection("neo4j"), &url)?;
    Ok((subgraph.served(), subgraph.sdl()))
});
