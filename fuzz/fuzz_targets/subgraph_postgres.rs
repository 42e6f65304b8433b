//! The PostgreSQL subgraph's request handling up to its one statement (see
//! `polygraph_fuzz`): filters, ordering, limits, cursors, aggregates, entity keys, writes and
//! a row rule on orders, translated into SQL with bound parameters.
#![no_main]

use polygraph_fuzz::{config, introspection};
use polygraph_subgraph_postgres::{Config, Subgraph};

polygraph_fuzz::subgraph_target!("postgres", || async {
    let mut config = Config::from_file(&config("postgres"))?;
    if let Some(orders) = config.tables.get_mut("orders") {
        orders.rule = Some("user_id = claims.sub".into());
    }
    // A socket that does not exist: every statement fails to connect at once.
    let url = "postgres://fuzz@localhost/polygraph?host=/nonexistent/polygraph-fuzz";
    let subgraph = Subgraph::from_introspection(&config, &introspection("postgres"), url)?;
    Ok((subgraph.served(), subgraph.sdl()))
});
