//! The Redis subgraph's request handling up to its commands (see `polygraph_fuzz`): entity
//! ids, feature vectors and feature writes into `HMGET` pipelines and `MULTI` blocks.
#![no_main]

use polygraph_fuzz::{NOWHERE, config};
use polygraph_subgraph_redis::{Config, Subgraph};

polygraph_fuzz::subgraph_target!("redis", || async {
    let config = Config::from_file(&config("redis"))?;
    let subgraph = Subgraph::with_url(&config, &format!("redis://{NOWHERE}"))?;
    Ok((subgraph.served(), subgraph.sdl()))
});
