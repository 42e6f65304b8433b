//! The ClickHouse subgraph's request handling up to its statements (see `polygraph_fuzz`):
//! time ranges, granularities, entity keys and training rows into SQL with bound parameters.
#![no_main]

use polygraph_fuzz::{NOWHERE, config, introspection};
use polygraph_subgraph_clickhouse::{Config, Subgraph};

polygraph_fuzz::subgraph_target!("clickhouse", || async {
    let config = Config::from_file(&config("clickhouse"))?;
    let url = format!("http://{NOWHERE}");
    let subgraph = Subgraph::from_introspection(&config, &introspection("clickhouse"), &url)?;
    Ok((subgraph.served(), subgraph.sdl()))
});
