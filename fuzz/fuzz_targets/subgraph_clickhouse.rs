//! The ClickHouse subgraph's request handling up to its statements (see `polygraph_fuzz`):
//! time ranges, granularities, entity keys and training rows into SQL with bound parameters.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polygraph_fuzz::{Harness, NOWHERE, config, introspection};
use polygraph_subgraph_clickhouse::{Config, Subgraph};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        Harness::new("clickhouse", || async {
            let config = Config::from_file(&config("clickhouse"))?;
            let url = format!("http://{NOWHERE}");
            let subgraph = Subgraph::from_introspection(&config, &introspection("clickhouse"), &url)?;
            Ok((subgraph.served(), subgraph.sdl()))
        })
    })
}

fuzz_target!(|data: &[u8]| harness().run(data));
