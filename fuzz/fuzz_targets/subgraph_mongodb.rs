//! The MongoDB subgraph's request handling up to its commands (see `polygraph_fuzz`):
//! filters into query documents, cursors, entity keys, writes and a row rule on reviews.
#![no_main]

use polygraph_fuzz::{NOWHERE, config, introspection};
use polygraph_subgraph_mongodb::{Config, Subgraph};

polygraph_fuzz::subgraph_target!("mongodb", || async {
    let mut config = Config::from_file(&config("mongodb"))?;
    if let Some(reviews) = config.collections.get_mut("reviews") {
        reviews.rule = Some("user_id = claims.sub".into());
    }
    let url = format!(
        "mongodb://{NOWHERE}/?directConnection=true&serverSelectionTimeoutMS=1&connectTimeoutMS=1"
    );
    let subgraph = Subgraph::from_introspection(&config, &introspection("mongodb"), &url).await?;
    Ok((subgraph.served(), subgraph.sdl()))
});
