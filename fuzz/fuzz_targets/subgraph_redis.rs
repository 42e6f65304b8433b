//! The Redis subgraph's request handling up to its commands (see `polygraph_fuzz`): entity
//! ids, feature vectors and feature writes into `HMGET` pipelines and `MULTI` blocks.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polygraph_fuzz::{Harness, NOWHERE, config};
use polygraph_subgraph_redis::{Config, Subgraph};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        Harness::new("redis", || async {
            let config = Config::from_file(&config("redis"))?;
            let subgraph = Subgraph::with_url(&config, &format!("redis://{NOWHERE}"))?;
            Ok((subgraph.served(), subgraph.sdl()))
        })
    })
}

fuzz_target!(|data: &[u8]| harness().run(data));
