//! The PostgreSQL subgraph against sqlx for the same reads, in one run: `_entities` for 100
//! users, and a filtered, sorted page of orders. Needs the demo database (`scripts/dev up`,
//! `polygraph demo load`). Prints `ratio` lines: subgraph time over raw client time, the
//! subgraph answering through its one path as its HTTP layer does (the document looked up by
//! its text, the variables checked, the engine run, the body written), and sqlx's side also
//! ending with the response body.

mod common;

use std::time::Duration;

use async_graphql::Variables;
use criterion::{Criterion, criterion_group, criterion_main};
use polygraph_subgraph_postgres::translate::{self, Access, Output};
use polygraph_subgraph_postgres::{Config, Subgraph, execute};
use serde_json::{Value, json};

use common::{compare, config, first_sight, served};

const ENTITIES: &str =
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id name email } } }";
const ORDERS: &str = r#"{ orders(where: { status: { _eq: "paid" }, total: { _gt: 100 } }, order_by: [{ total: DESC }, { id: ASC }], limit: 50) { id total created_at } }"#;

fn setup(runtime: &tokio::runtime::Runtime) -> (Subgraph, sqlx::PgPool) {
    runtime.block_on(async {
        let url = polygraph_demo::Endpoints::from_env().postgres;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("the demo database: run scripts/dev up and polygraph demo load");
        let config = Config::from_file(&config("postgres")).unwrap();
        (
            Subgraph::with_pool(&config, pool.clone()).await.unwrap(),
            pool,
        )
    })
}

async fn sqlx_entities(pool: &sqlx::PgPool, ids: &[i64]) -> Value {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, name, email FROM users WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(pool)
            .await
            .unwrap();
    let by_id: std::collections::HashMap<i64, (String, String)> = rows
        .into_iter()
        .map(|(id, name, email)| (id, (name, email)))
        .collect();
    let entities: Vec<Value> = ids
        .iter()
        .map(|id| {
            by_id.get(id).map_or(
                Value::Null,
                |(name, email)| json!({ "id": id.to_string(), "name": name, "email": email }),
            )
        })
        .collect();
    json!({ "data": { "_entities": entities } })
}

async fn sqlx_orders(pool: &sqlx::PgPool) -> Value {
    let rows: Vec<(i64, f64, String)> = sqlx::query_as(
        "SELECT id, total::float8, to_json(created_at) #>> '{}' FROM orders WHERE status = $1 AND total > $2 ORDER BY total DESC, id LIMIT 50",
    )
    .bind("paid")
    .bind(100.0_f64)
    .fetch_all(pool)
    .await
    .unwrap();
    let orders: Vec<Value> = rows
        .into_iter()
        .map(|(id, total, created_at)| json!({ "id": id.to_string(), "total": total, "created_at": created_at }))
        .collect();
    json!({ "data": { "orders": orders } })
}

fn benches(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (subgraph, pool) = setup(&runtime);
    let ids: Vec<i64> = (1..=100).collect();
    let representations: Value = ids
        .iter()
        .map(|id| json!({ "__typename": "User", "id": id.to_string() }))
        .collect();

    // Where the time goes: the subgraph's own statement, run alone.
    let (table, users) = subgraph.model.table_by_type("User").unwrap();
    let fields: Vec<Output> = ["id", "name", "email"]
        .iter()
        .map(|name| Output::Column {
            key: (*name).into(),
            column: users.column(name).unwrap().0,
        })
        .collect();
    let keys: Vec<Vec<String>> = ids.iter().map(|id| vec![id.to_string()]).collect();
    let statement = translate::entities(
        &subgraph.model,
        &Access::unrestricted(),
        table,
        &[0],
        &keys,
        &fields,
    )
    .unwrap();
    criterion.bench_function("entities_100_users_statement_only", |b| {
        b.to_async(&runtime)
            .iter(|| execute::keyed_documents(&subgraph.executor, &statement));
    });

    let served_subgraph = subgraph.served();
    let variables = Variables::from_json(json!({ "r": representations }));
    let no_variables = Variables::default();
    compare(
        criterion,
        &runtime,
        "entities_100_users",
        || served(&served_subgraph, ENTITIES, &variables),
        || async { sqlx_entities(&pool, &ids).await.to_string() },
    );
    compare(
        criterion,
        &runtime,
        "orders_filtered_page_50",
        || served(&served_subgraph, ORDERS, &no_variables),
        || async { sqlx_orders(&pool).await.to_string() },
    );
    first_sight(
        &runtime,
        "entities_100_users",
        &served_subgraph,
        ENTITIES,
        &variables,
    );
    first_sight(
        &runtime,
        "orders_filtered_page_50",
        &served_subgraph,
        ORDERS,
        &no_variables,
    );
}

criterion_group! {
    name = postgres;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(50);
    targets = benches
}
criterion_main!(postgres);
