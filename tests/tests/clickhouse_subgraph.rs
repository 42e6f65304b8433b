//! The analytics subgraph against the real ClickHouse (18.16 here): series for many entities in
//! one statement, point-in-time training rows that never leak later values, and hostile input.

mod common;

use async_graphql::Variables;
use common::{SERVERS_HINT, endpoints, repo_root};
use polygraph_subgraph_clickhouse::{Config, Subgraph};
use serde_json::{Value, json};

async fn demo() -> Subgraph {
    let config = Config::from_file(&repo_root().join("config/clickhouse.yaml")).unwrap();
    Subgraph::start(&config).await.unwrap_or_else(|error| {
        panic!("starting the ClickHouse subgraph: {error:#}; {SERVERS_HINT}")
    })
}

async fn run(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    subgraph
        .served()
        .execute(query, None, &Variables::from_json(variables), None)
        .await
        .json()
}

async fn data(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    let response = run(subgraph, query, variables).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"].clone()
}

fn client(database: &str) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(endpoints().clickhouse)
        .with_database(database)
        .with_validation(false)
}

#[tokio::test]
async fn series_for_a_thousand_entities_are_one_statement() {
    let subgraph = demo().await;
    let representations: Vec<Value> = (1..=1000)
        .map(|id| json!({ "__typename": "Product", "id": id.to_string() }))
        .collect();
    let before = subgraph.statements();
    let data = data(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id sales(from: \"2025-01-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\", granularity: MONTH) { start orders units revenue } } } }",
        json!({ "r": representations }),
    )
    .await;
    assert_eq!(subgraph.statements() - before, 1);
    let entities = data["_entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1000);
    // Product 1's monthly units add up to what ClickHouse counts directly.
    let units: i64 = entities[0]["sales"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| point["units"].as_f64().unwrap() as i64)
        .sum();
    let direct: u64 = client(&endpoints().clickhouse_database)
        .query("SELECT sum(quantity) FROM order_events WHERE product_id = 1 AND event_time >= toDateTime('2025-01-01 00:00:00', 'UTC') AND event_time < toDateTime('2026-01-01 00:00:00', 'UTC')")
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(units as u64, direct);
    let starts: Vec<&str> = entities[0]["sales"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["start"].as_str().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|pair| pair[0] < pair[1]),
        "{starts:?}"
    );
    assert!(
        starts.iter().all(|start| start.ends_with("-01T00:00:00Z")),
        "{starts:?}"
    );
    // Ids with no events have an empty series.
    assert_eq!(entities[999]["sales"], json!([]));
}

#[tokio::test]
async fn training_rows_are_point_in_time_correct() {
    let database = format!("polygraph_scratch_{}", std::process::id());
    let admin = client("default");
    admin
        .query("DROP DATABASE IF EXISTS ?")
        .bind(clickhouse::sql::Identifier(&database))
        .execute()
        .await
        .unwrap();
    admin
        .query("CREATE DATABASE ?")
        .bind(clickhouse::sql::Identifier(&database))
        .execute()
        .await
        .unwrap();
    let scratch = client(&database);
    scratch
        .query("CREATE TABLE feature_history (entity String, entity_id UInt64, feature String, value Float64, event_time DateTime) ENGINE = MergeTree ORDER BY (entity, entity_id, feature, event_time)")
        .execute()
        .await
        .unwrap();
    scratch
        .query("INSERT INTO feature_history VALUES ('user', 1, 'score', 1, toDateTime('2025-01-01 00:00:00', 'UTC')), ('user', 1, 'score', 2, toDateTime('2025-02-01 00:00:00', 'UTC')), ('user', 1, 'score', 3, toDateTime('2025-03-01 00:00:00', 'UTC')), ('user', 2, 'score', 9, toDateTime('2025-02-10 00:00:00', 'UTC')), ('product', 1, 'score', 100, toDateTime('2025-01-01 00:00:00', 'UTC'))")
        .execute()
        .await
        .unwrap();
    let yaml = format!(
        "url: {}\ndatabase: {database}\ntraining: {{ table: feature_history, entity_column: entity, entities: {{ User: user, Product: product }}, id: entity_id, feature: feature, value: value, time: event_time }}",
        endpoints().clickhouse
    );
    let subgraph = Subgraph::start(&Config::from_yaml(&yaml).unwrap())
        .await
        .unwrap();
    let rows = |as_of: &'static str| {
        let subgraph = &subgraph;
        async move {
            let before = subgraph.statements();
            let data = data(
                subgraph,
                "query($at: DateTime!) { trainingRows(entity: User, ids: [\"1\", \"2\", \"3\"], features: [\"score\", \"absent\"], asOf: $at) { id values observedAt } }",
                json!({ "at": as_of }),
            )
            .await;
            assert_eq!(subgraph.statements() - before, 1);
            data["trainingRows"].clone()
        }
    };
    let mid_february = rows("2025-02-15T00:00:00Z").await;
    assert_eq!(
        mid_february[0],
        json!({ "id": "1", "values": [2, null], "observedAt": ["2025-02-01T00:00:00Z", null] })
    );
    assert_eq!(mid_february[1]["values"], json!([9, null]));
    assert_eq!(mid_february[2]["values"], json!([null, null]));
    // A value recorded exactly at asOf counts; the product's 100 is another entity's.
    let march = rows("2025-03-01T00:00:00Z").await;
    assert_eq!(march[0]["values"], json!([3, null]));
    let early = rows("2025-01-31T23:59:59Z").await;
    assert_eq!(early[0]["values"], json!([1, null]));
    assert_eq!(
        early[1]["values"],
        json!([null, null]),
        "a later value leaked"
    );
    let before_everything = rows("2024-12-31T00:00:00Z").await;
    assert_eq!(before_everything[0]["values"], json!([null, null]));

    // SQL in arguments is data: no match, or a clean error for a non-numeric id.
    let hostile = data(
        &subgraph,
        "{ trainingRows(entity: User, ids: [\"1\"], features: [\"score' OR 1=1 --\", \"score') UNION ALL SELECT 1 --\"], asOf: \"2026-01-01T00:00:00Z\") { values } }",
        json!({}),
    )
    .await;
    assert_eq!(hostile["trainingRows"][0]["values"], json!([null, null]));
    let bad_id = run(&subgraph, "{ trainingRows(entity: User, ids: [\"1 OR 1=1\"], features: [\"score\"], asOf: \"2026-01-01T00:00:00Z\") { values } }", json!({})).await;
    assert_eq!(
        bad_id["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{bad_id}"
    );
    let bad_time = run(&subgraph, "{ trainingRows(entity: User, ids: [\"1\"], features: [\"score\"], asOf: \"now()\") { values } }", json!({})).await;
    assert_eq!(
        bad_time["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{bad_time}"
    );
    admin
        .query("DROP DATABASE ?")
        .bind(clickhouse::sql::Identifier(&database))
        .execute()
        .await
        .unwrap();
}

/// The corpus in `tests/corpus/clickhouse/`, over HTTP: every answer, first sight and repeat,
/// equals its golden answer, in the same statements.
#[tokio::test]
async fn the_corpus_answers_as_recorded() {
    let subgraph = demo().await;
    let server = common::HttpSubgraph::start(subgraph.served()).await;
    common::corpus::check(&server, "clickhouse", subgraph.recorder()).await;
}
