//! The PostgreSQL subgraph's request handling up to its one statement (see
//! `polygraph_fuzz`): filters, ordering, limits, cursors, aggregates, entity keys, writes and
//! a row rule on orders, translated into SQL with bound parameters.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polygraph_fuzz::{Harness, config, introspection};
use polygraph_subgraph_postgres::{Config, Subgraph};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        Harness::new("postgres", || async {
            let mut config = Config::from_file(&config("postgres"))?;
            if let Some(orders) = config.tables.get_mut("orders") {
                orders.rule = Some("user_id = claims.sub".into());
            }
            // A socket that does not exist: every statement fails to connect at once.
            let url = "postgres://fuzz@localhost/polygraph?host=/nonexistent/polygraph-fuzz";
            let subgraph =
                Subgraph::from_introspection(&config, &introspection("postgres"), url)?;
            Ok((subgraph.served(), subgraph.sdl()))
        })
    })
}

fuzz_target!(|data: &[u8]| harness().run(data));
