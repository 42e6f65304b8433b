//! The search subgraph's request handling up to its search bodies (see `polygraph_fuzz`):
//! text, filters, facets, highlights and entity keys into Elasticsearch's query DSL.
#![no_main]

use polygraph_fuzz::{NOWHERE, config, introspection};
use polygraph_subgraph_elasticsearch::{Config, Subgraph};

polygraph_fuzz::subgraph_target!("elasticsearch", || async {
    let config = Config::from_file(&config("elasticsearch"))?;
    let url = format!("http://{NOWHERE}");
    let subgraph = Subgraph::from_introspection(&config, &introspection("elasticsearch"), &url)?;
    Ok((subgraph.served(), subgraph.sdl()))
});
