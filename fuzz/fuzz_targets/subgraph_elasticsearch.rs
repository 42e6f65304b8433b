//! The search subgraph's request handling up to its search bodies (see `polygraph_fuzz`):
//! text, filters, facets, highlights and entity keys into Elasticsearch's query DSL.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polygraph_fuzz::{Harness, NOWHERE, config, introspection};
use polygraph_subgraph_elasticsearch::{Config, Subgraph};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        Harness::new("elasticsearch", || async {
            let config = Config::from_file(&config("elasticsearch"))?;
            let url = format!("http://{NOWHERE}");
            let subgraph = Subgraph::from_introspection(&config, &introspection("elasticsearch"), &url)?;
            Ok((subgraph.served(), subgraph.sdl()))
        })
    })
}

fuzz_target!(|data: &[u8]| harness().run(data));
