//! The MongoDB subgraph's request handling up to its commands (see `polygraph_fuzz`):
//! filters into query documents, cursors, entity keys, writes and a row rule on reviews.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polygraph_fuzz::{Harness, NOWHERE, config, introspection};
use polygraph_subgraph_mongodb::{Config, Subgraph};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        Harness::new("mongodb", || async {
            let mut config = Config::from_file(&config("mongodb"))?;
            if let Some(reviews) = config.collections.get_mut("reviews") {
                reviews.rule = Some("user_id = claims.sub".into());
            }
            let url = format!(
                "mongodb://{NOWHERE}/?directConnection=true&serverSelectionTimeoutMS=1&connectTimeoutMS=1"
            );
            let subgraph =
                Subgraph::from_introspection(&config, &introspection("mongodb"), &url).await?;
            Ok((subgraph.served(), subgraph.sdl()))
        })
    })
}

fuzz_target!(|data: &[u8]| harness().run(data));
