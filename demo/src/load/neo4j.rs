//! Neo4j: users and products as nodes, `FOLLOWS`, `BOUGHT` and `BOUGHT_TOGETHER` edges, written
//! with `UNWIND $rows` batches. The `neo4j` driver blocks, so the whole load runs on a blocking
//! thread.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use neo4j::ValueSend;
use neo4j::address::Address;
use neo4j::driver::auth::AuthToken;
use neo4j::driver::{ConnectionConfig, Driver, DriverConfig};

use super::{DATA_VERSION, LoadOptions, Outcome, Progress};
use crate::endpoints::Endpoints;
use crate::spec::DemoSpec;

const BATCH: usize = 5_000;

/// Constraints (each also an index) the demo graph relies on.
pub const SCHEMA: &[&str] = &[
    "CREATE CONSTRAINT user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE",
    "CREATE CONSTRAINT product_id IF NOT EXISTS FOR (p:Product) REQUIRE p.id IS UNIQUE",
];

/// A driver for `endpoints`' Bolt server.
pub fn driver(endpoints: &Endpoints) -> anyhow::Result<Driver> {
    let (host, port) = endpoints.neo4j_host_port().map_err(anyhow::Error::msg)?;
    let auth = AuthToken::new_basic_auth(&endpoints.neo4j_user, &endpoints.neo4j_password);
    Ok(Driver::new(
        ConnectionConfig::new(Address::from((host.as_str(), port))),
        DriverConfig::new().with_auth(Arc::new(auth)),
    ))
}

pub(super) async fn load(
    spec: DemoSpec,
    endpoints: &Endpoints,
    options: LoadOptions,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let driver = driver(endpoints)?;
    let address = polygraph_service::config::redacted_url(&endpoints.neo4j);
    let bar = progress.bar.clone();
    tokio::task::spawn_blocking(move || load_blocking(spec, &driver, options, &bar))
        .await?
        .with_context(|| format!("talking to {address}"))
}

fn run(
    driver: &Driver,
    query: &str,
    parameters: &HashMap<String, ValueSend>,
) -> anyhow::Result<Vec<neo4j::driver::Record>> {
    let result = driver
        .execute_query(query)
        .with_parameters(parameters)
        .run()
        .with_context(|| format!("running {query}"))?;
    Ok(result.records)
}

fn load_blocking(
    spec: DemoSpec,
    driver: &Driver,
    options: LoadOptions,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Outcome> {
    let none = HashMap::new();
    for statement in SCHEMA {
        run(driver, statement, &none)?;
    }
    let counts = spec.counts();
    let purchases = spec.purchases();
    let co_purchases = spec.co_purchases();
    bar.set_length(
        counts.users
            + counts.products
            + counts.follows
            + purchases.len() as u64
            + co_purchases.len() as u64,
    );

    let wanted = [
        ("seed", spec.seed as i64),
        ("scale", spec.scale as i64),
        ("version", DATA_VERSION),
    ];
    let marker = run(
        driver,
        "MATCH (m:PolygraphDemoLoaded) RETURN m.seed AS seed, m.scale AS scale, m.version AS version",
        &none,
    )?;
    let matches = marker.len() == 1
        && wanted.iter().all(|(key, value)| {
            marker[0].value(key) == Some(&neo4j::ValueReceive::Integer(*value))
        });
    if matches && !options.force {
        return Ok(Outcome::AlreadyLoaded);
    }
    run(driver, "MATCH (m:PolygraphDemoLoaded) DELETE m", &none)?;
    run(driver, "MATCH (n:User) DETACH DELETE n", &none)?;
    run(driver, "MATCH (n:Product) DETACH DELETE n", &none)?;

    write_graph(driver, spec, bar, &purchases, &co_purchases)?;
    let marker = map(wanted.map(|(key, value)| (key, ValueSend::Integer(value))));
    run(
        driver,
        "CREATE (m:PolygraphDemoLoaded) SET m = $marker",
        &HashMap::from([("marker".to_owned(), marker)]),
    )?;
    Ok(Outcome::Loaded)
}

/// Writes nodes first, then the edges between them.
fn write_graph(
    driver: &Driver,
    spec: DemoSpec,
    bar: &indicatif::ProgressBar,
    purchases: &[(u64, u64, u64)],
    co_purchases: &[(u64, u64, u64)],
) -> anyhow::Result<()> {
    bar.set_message("users");
    write_batches(
        driver,
        bar,
        "UNWIND $rows AS r CREATE (u:User) SET u = r",
        (1..=spec.users()).map(|id| {
            let user = spec.user(id);
            map([
                ("id", int(id)),
                ("name", ValueSend::String(user.name)),
                ("country", ValueSend::String(user.country.to_owned())),
            ])
        }),
    )?;
    bar.set_message("products");
    write_batches(
        driver,
        bar,
        "UNWIND $rows AS r CREATE (p:Product) SET p = r",
        (1..=spec.products()).map(|id| {
            let product = spec.product(id);
            map([
                ("id", int(id)),
                ("name", ValueSend::String(product.name)),
                ("category", ValueSend::String(product.category.to_owned())),
            ])
        }),
    )?;
    bar.set_message("follows");
    write_batches(
        driver,
        bar,
        "UNWIND $rows AS r MATCH (a:User {id: r.from}), (b:User {id: r.to}) CREATE (a)-[:FOLLOWS]->(b)",
        (1..=spec.users()).flat_map(|id| {
            spec.followees(id)
                .into_iter()
                .map(move |other| map([("from", int(id)), ("to", int(other))]))
        }),
    )?;
    bar.set_message("purchases");
    write_batches(
        driver,
        bar,
        "UNWIND $rows AS r MATCH (u:User {id: r.user}), (p:Product {id: r.product}) CREATE (u)-[:BOUGHT {times: r.times}]->(p)",
        purchases.iter().map(|&(user, product, times)| {
            map([
                ("user", int(user)),
                ("product", int(product)),
                ("times", int(times)),
            ])
        }),
    )?;
    bar.set_message("co-purchases");
    write_batches(
        driver,
        bar,
        "UNWIND $rows AS r MATCH (a:Product {id: r.a}), (b:Product {id: r.b}) CREATE (a)-[:BOUGHT_TOGETHER {orders: r.orders}]->(b)",
        co_purchases
            .iter()
            .map(|&(a, b, orders)| map([("a", int(a)), ("b", int(b)), ("orders", int(orders))])),
    )?;
    Ok(())
}

fn int(value: u64) -> ValueSend {
    ValueSend::Integer(value as i64)
}

fn map<const N: usize>(entries: [(&str, ValueSend); N]) -> ValueSend {
    ValueSend::Map(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// Sends `rows` as `$rows` in batches of [`BATCH`].
fn write_batches(
    driver: &Driver,
    bar: &indicatif::ProgressBar,
    query: &str,
    rows: impl Iterator<Item = ValueSend>,
) -> anyhow::Result<()> {
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let batch: Vec<ValueSend> = rows.by_ref().take(BATCH).collect();
        let written = batch.len() as u64;
        run(
            driver,
            query,
            &HashMap::from([("rows".to_owned(), ValueSend::List(batch))]),
        )?;
        bar.inc(written);
    }
    Ok(())
}
