//! The PostgreSQL subgraph against sqlx for the same reads, in one run: `_entities` for 100
//! users, and a filtered, sorted page of orders. Needs the demo database (`scripts/dev up`,
//! `polygraph demo load`). Prints `ratio` lines: subgraph time over raw client time, the
//! subgraph answering as its HTTP layer does for a query text it has validated before (the
//! prepared path), both sides ending with the response body as the server sends it.

/// mimalloc, as the `polygraph` binary uses: the subgraphs' and the raw clients' times are
/// measured with the allocator the served process has.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use async_graphql::{Request, Variables};
use criterion::{Criterion, criterion_group, criterion_main};
use polygraph_subgraph_postgres::translate::{self, Access, Output};
use polygraph_subgraph_postgres::{Config, Subgraph, execute};
use serde_json::{Value, json};

const ENTITIES: &str =
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id name email } } }";
const ORDERS: &str = r#"{ orders(where: { status: { _eq: "paid" }, total: { _gt: 100 } }, order_by: [{ total: DESC }], limit: 50) { id total created_at } }"#;

fn setup(runtime: &tokio::runtime::Runtime) -> (Subgraph, sqlx::PgPool) {
    runtime.block_on(async {
        let url = polygraph_demo::Endpoints::from_env().postgres;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("the demo database: run scripts/dev up and polygraph demo load");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/postgres.yaml");
        let config = Config::from_file(&root).unwrap();
        (
            Subgraph::with_pool(&config, pool.clone()).await.unwrap(),
            pool,
        )
    })
}

async fn subgraph_entities(subgraph: &Subgraph, representations: &Value) -> Value {
    let response = subgraph
        .schema
        .execute(
            Request::new(ENTITIES).variables(Variables::from_json(json!({ "r": representations }))),
        )
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    serde_json::to_value(&response).unwrap()
}

/// The request as the HTTP layer answers a query text it has validated before: parse, then
/// the prepared path, to the response body.
async fn prepared_entities(subgraph: &Subgraph, variables: &Variables) -> String {
    let document = async_graphql::parser::parse_query(ENTITIES).unwrap();
    subgraph
        .prepared
        .answer(&document, None, variables, None)
        .await
        .unwrap()
        .into_body()
}

/// The same read through sqlx, to the response body.
async fn sqlx_entities_body(pool: &sqlx::PgPool, ids: &[i64]) -> String {
    sqlx_entities(pool, ids).await.to_string()
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

async fn subgraph_orders(subgraph: &Subgraph) -> Value {
    let response = subgraph.schema.execute(Request::new(ORDERS)).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    serde_json::to_value(&response).unwrap()
}

/// The orders query as the HTTP layer answers a text it has validated before, to the body.
async fn prepared_orders(subgraph: &Subgraph) -> String {
    let document = async_graphql::parser::parse_query(ORDERS).unwrap();
    subgraph
        .prepared
        .answer(&document, None, &Variables::default(), None)
        .await
        .unwrap()
        .into_body()
}

async fn sqlx_orders(pool: &sqlx::PgPool) -> Value {
    let rows: Vec<(i64, f64, String)> = sqlx::query_as(
        "SELECT id, total::float8, created_at::text FROM orders WHERE status = $1 AND total > $2 ORDER BY total DESC, id LIMIT 50",
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

async fn sqlx_orders_body(pool: &sqlx::PgPool) -> String {
    sqlx_orders(pool).await.to_string()
}

/// The filtered page of orders under criterion: the regular path, the prepared path, sqlx.
fn bench_orders(
    criterion: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    subgraph: &Subgraph,
    pool: &sqlx::PgPool,
) {
    let mut group = criterion.benchmark_group("orders_filtered_page_50");
    let regular = runtime.block_on(subgraph_orders(subgraph));
    let prepared: Value =
        serde_json::from_str(&runtime.block_on(prepared_orders(subgraph))).unwrap();
    assert_eq!(prepared, regular);
    group.bench_function("subgraph", |b| {
        b.to_async(runtime).iter(|| subgraph_orders(subgraph));
    });
    group.bench_function("subgraph_prepared", |b| {
        b.to_async(runtime).iter(|| prepared_orders(subgraph));
    });
    group.bench_function("sqlx", |b| {
        b.to_async(runtime).iter(|| sqlx_orders_body(pool));
    });
    group.finish();
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

    // Both sides answer the same thing.
    let ours = runtime.block_on(subgraph_entities(&subgraph, &representations));
    let theirs = runtime.block_on(sqlx_entities(&pool, &ids));
    assert_eq!(
        ours, theirs,
        "the subgraph and the baseline must return the same data"
    );

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

    let mut group = criterion.benchmark_group("entities_100_users");
    group.bench_function("statement_only", |b| {
        b.to_async(&runtime)
            .iter(|| execute::keyed_documents(&subgraph.executor, &statement));
    });
    group.bench_function("subgraph", |b| {
        b.to_async(&runtime)
            .iter(|| subgraph_entities(&subgraph, &representations));
    });
    let variables = Variables::from_json(json!({ "r": representations }));
    let prepared: Value =
        serde_json::from_str(&runtime.block_on(prepared_entities(&subgraph, &variables))).unwrap();
    assert_eq!(prepared, theirs);
    group.bench_function("subgraph_prepared", |b| {
        b.to_async(&runtime)
            .iter(|| prepared_entities(&subgraph, &variables));
    });
    group.bench_function("sqlx", |b| {
        b.to_async(&runtime)
            .iter(|| sqlx_entities_body(&pool, &ids));
    });
    group.finish();

    bench_orders(criterion, &runtime, &subgraph, &pool);

    // Ratios from interleaved runs, so both sides see the same machine load.
    for (name, iterations) in [
        ("entities_100_users", 2000),
        ("orders_filtered_page_50", 2000),
    ] {
        let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..iterations {
            let started = Instant::now();
            if name.starts_with("entities") {
                runtime.block_on(prepared_entities(&subgraph, &variables));
            } else {
                runtime.block_on(prepared_orders(&subgraph));
            }
            ours += started.elapsed();
            let started = Instant::now();
            if name.starts_with("entities") {
                runtime.block_on(sqlx_entities_body(&pool, &ids));
            } else {
                runtime.block_on(sqlx_orders_body(&pool));
            }
            theirs += started.elapsed();
        }
        println!(
            "ratio {name}: subgraph {:?} / sqlx {:?} = {:.2}",
            ours / iterations,
            theirs / iterations,
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
}

criterion_group! {
    name = postgres;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(50);
    targets = benches
}
criterion_main!(postgres);
