//! The Redis, ClickHouse and Neo4j subgraphs against their raw clients for the same reads, in
//! one run: 100 users' online features (one `HMGET` pipeline) and 100 products' monthly sales
//! (one grouped statement), both through the engine as the server answers a query (and the
//! features again with a text never seen before, so validated first), and 100 users' follows (one `UNWIND` statement). Needs the demo data
//! (`scripts/dev up`, `polygraph demo load`). Prints `ratio` lines: subgraph time over raw
//! client time, from interleaved runs.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Variables;
use common::{compare, config, first_sight, served};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const FEATURES: &str = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { onlineFeatures { click_rate_7d orders_30d segment } } } }";
const SALES: &str = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { sales(from: \"2025-01-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\", granularity: MONTH) { start revenue } } } }";
const FOLLOWS: &str =
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { follows { id } } } }";

async fn raw_features(connection: &redis::aio::MultiplexedConnection, ids: &[u64]) -> Value {
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HMGET").arg(format!("features:user:{id}")).arg(&[
            "click_rate_7d",
            "orders_30d",
            "segment",
        ]);
    }
    let rows: Vec<(Option<String>, Option<String>, Option<String>)> =
        pipe.query_async(&mut connection.clone()).await.unwrap();
    let entities: Vec<Value> = rows
        .into_iter()
        .map(|(rate, orders, segment)| {
            json!({ "onlineFeatures": {
                "click_rate_7d": rate.and_then(|r| r.parse::<f64>().ok()),
                "orders_30d": orders.and_then(|o| o.parse::<i64>().ok()),
                "segment": segment,
            } })
        })
        .collect();
    json!({ "data": { "_entities": entities } })
}

async fn raw_sales(client: &clickhouse::Client, ids: &[u64]) -> Value {
    let bytes = client
        .query("SELECT toString(product_id) AS k, toUInt32(toDateTime(toStartOfMonth(event_time))) AS t, toFloat64(sum(amount)) AS revenue FROM order_events WHERE product_id IN (SELECT arrayJoin(CAST(? AS Array(UInt64)))) AND event_time >= toDateTime('2025-01-01 00:00:00', 'UTC') AND event_time < toDateTime('2026-01-01 00:00:00', 'UTC') GROUP BY k, t ORDER BY k, t")
        .bind(ids)
        .fetch_bytes("JSONEachRow")
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut by_product: HashMap<String, Vec<Value>> = HashMap::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let row: Value = serde_json::from_slice(line).unwrap();
        let start = chrono::DateTime::from_timestamp(row["t"].as_i64().unwrap(), 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        by_product
            .entry(row["k"].as_str().unwrap().to_owned())
            .or_default()
            .push(json!({ "start": start, "revenue": row["revenue"] }));
    }
    let entities: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "sales": by_product.remove(&id.to_string()).unwrap_or_default() }))
        .collect();
    json!({ "data": { "_entities": entities } })
}

async fn raw_follows(driver: &Arc<neo4j::driver::Driver>, ids: &[u64]) -> Value {
    let driver = driver.clone();
    let keys: Vec<neo4j::ValueSend> = ids
        .iter()
        .map(|id| neo4j::ValueSend::Integer(*id as i64))
        .collect();
    let records = tokio::task::spawn_blocking(move || {
        driver
            .execute_query("UNWIND $keys AS key MATCH (n:User {id: key}) MATCH (n)-[:FOLLOWS]->(m:User) WITH key, m, count(*) AS score ORDER BY score DESC, m.id ASC WITH key, collect(m.id) AS items RETURN key, items[..$limit] AS items")
            .with_parameters(&HashMap::from([
                ("keys".to_owned(), neo4j::ValueSend::List(keys)),
                ("limit".to_owned(), neo4j::ValueSend::Integer(100)),
            ]))
            .run()
            .unwrap()
            .records
    })
    .await
    .unwrap();
    let mut by_user: HashMap<i64, Vec<Value>> = HashMap::new();
    for record in records {
        if let (Some(neo4j::ValueReceive::Integer(key)), Some(neo4j::ValueReceive::List(items))) =
            (record.value("key"), record.value("items"))
        {
            let items = items
                .iter()
                .filter_map(|item| match item {
                    neo4j::ValueReceive::Integer(id) => Some(json!({ "id": id.to_string() })),
                    _ => None,
                })
                .collect();
            by_user.insert(*key, items);
        }
    }
    let entities: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "follows": by_user.remove(&(*id as i64)).unwrap_or_default() }))
        .collect();
    json!({ "data": { "_entities": entities } })
}

fn benches(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let endpoints = polygraph_demo::Endpoints::from_env();
    let (features, sales, follows, connection, client) = runtime.block_on(async {
        let features = polygraph_subgraph_redis::Subgraph::start(
            &polygraph_subgraph_redis::Config::from_file(&config("redis")).unwrap(),
        )
        .await
        .expect("the demo data: run scripts/dev up and polygraph demo load");
        let sales = polygraph_subgraph_clickhouse::Subgraph::start(
            &polygraph_subgraph_clickhouse::Config::from_file(&config("clickhouse")).unwrap(),
        )
        .await
        .unwrap();
        let follows = polygraph_subgraph_neo4j::Subgraph::start(
            &polygraph_subgraph_neo4j::Config::from_file(&config("neo4j")).unwrap(),
        )
        .await
        .unwrap();
        let connection = redis::Client::open(endpoints.redis.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let client = clickhouse::Client::default()
            .with_url(&endpoints.clickhouse)
            .with_database(&endpoints.clickhouse_database)
            .with_validation(false);
        (features, sales, follows, connection, client)
    });
    let driver = Arc::new(polygraph_demo::load::neo4j_driver(&endpoints).unwrap());
    let ids: Vec<u64> = (1..=100).collect();
    let representations = |typename: &str| json!({ "r": ids.iter().map(|id| json!({ "__typename": typename, "id": id.to_string() })).collect::<Vec<_>>() });
    let users = representations("User");
    let products = representations("Product");
    let user_variables = Variables::from_json(users.clone());
    let product_variables = Variables::from_json(products.clone());
    let features = features.served();
    compare(
        criterion,
        &runtime,
        "redis_features_100_users",
        || served(&features, FEATURES, &user_variables),
        || raw_features(&connection, &ids),
    );
    first_sight(
        &runtime,
        "redis_features_100_users",
        &features,
        FEATURES,
        &user_variables,
    );
    let sales = sales.served();
    compare(
        criterion,
        &runtime,
        "clickhouse_monthly_sales_100_products",
        || served(&sales, SALES, &product_variables),
        || raw_sales(&client, &ids),
    );
    first_sight(
        &runtime,
        "clickhouse_monthly_sales_100_products",
        &sales,
        SALES,
        &product_variables,
    );
    let follows = follows.served();
    let follow_variables = Variables::from_json(users.clone());
    compare(
        criterion,
        &runtime,
        "neo4j_follows_100_users",
        || served(&follows, FOLLOWS, &follow_variables),
        || raw_follows(&driver, &ids),
    );
    first_sight(
        &runtime,
        "neo4j_follows_100_users",
        &follows,
        FOLLOWS,
        &follow_variables,
    );
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(group);
