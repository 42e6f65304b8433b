//! The PostgreSQL subgraph against the real demo database: every filter operator, relationships
//! three levels deep in one statement, aggregates, pagination, batched `_entities`, and hostile
//! input. Expectations are computed with plain SQL through sqlx, independently of the subgraph.

// The filter table reads better with every GraphQL literal written the same way.
#![allow(clippy::needless_raw_string_hashes)]

mod common;

use std::path::Path;

use common::{SERVERS_HINT, endpoints, repo_root};
use polygraph_subgraph_postgres::{Config, Subgraph};
use serde_json::{Value, json};

async fn subgraph() -> Subgraph {
    let config = Config::from_file(&repo_root().join(Path::new("config/postgres.yaml"))).unwrap();
    let pool = sqlx::PgPool::connect(&endpoints().postgres)
        .await
        .unwrap_or_else(|error| panic!("connecting to PostgreSQL: {error}; {SERVERS_HINT}"));
    Subgraph::with_pool(&config, pool).await.unwrap()
}

/// Runs a query through the subgraph's one path; the whole response.
async fn run(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    common::answer(&subgraph.served(), query, None, variables).await
}

/// Runs a query; returns `data` and asserts there were no errors.
async fn data(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    let response = run(subgraph, query, variables).await;
    assert!(response.get("errors").is_none(), "{query}: {response}");
    response["data"].clone()
}

/// Runs a query; returns the error messages and codes.
async fn errors(subgraph: &Subgraph, query: &str) -> Vec<(String, Option<String>)> {
    let response = run(subgraph, query, Value::Null).await;
    response["errors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|error| {
            let code = error["extensions"]["code"]
                .as_str()
                .map(|code| format!("{code:?}"));
            (
                error["message"].as_str().unwrap_or_default().to_owned(),
                code,
            )
        })
        .collect()
}

async fn ids_from_sql(pool: &sqlx::PgPool, sql: &str) -> Vec<String> {
    let rows: Vec<(i64,)> = sqlx::query_as(sql).fetch_all(pool).await.unwrap();
    rows.into_iter().map(|(id,)| id.to_string()).collect()
}

fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_filter_operator_matches_plain_sql() {
    let subgraph = subgraph().await;
    let pool = &subgraph.pool;
    let cases: &[(&str, &str)] = &[
        (r#"{ id: { _eq: "7" } }"#, "id = 7"),
        (r#"{ id: { _neq: "7" } }"#, "id <> 7"),
        (r#"{ price: { _gt: 250 } }"#, "price > 250"),
        (r#"{ price: { _gte: 250 } }"#, "price >= 250"),
        (r#"{ price: { _lt: 50.5 } }"#, "price < 50.5"),
        (r#"{ price: { _lte: 50.5 } }"#, "price <= 50.5"),
        (r#"{ category: { _in: ["books", "toys"] } }"#, "category IN ('books', 'toys')"),
        (r#"{ category: { _nin: ["books", "toys"] } }"#, "category NOT IN ('books', 'toys')"),
        (r#"{ description: { _is_null: false } }"#, "description IS NOT NULL"),
        (r#"{ description: { _is_null: true } }"#, "description IS NULL"),
        (r#"{ name: { _like: "%Lamp%" } }"#, "name LIKE '%Lamp%'"),
        (r#"{ name: { _ilike: "%lamp%" } }"#, "name ILIKE '%lamp%'"),
        (r#"{ in_stock: { _eq: false } }"#, "NOT in_stock"),
        (
            r#"{ _or: [{ category: { _eq: "books" } }, { _and: [{ price: { _gt: 400 } }, { _not: { brand: { _eq: "Acme" } } }] }] }"#,
            "category = 'books' OR (price > 400 AND NOT brand = 'Acme')",
        ),
        (
            r#"{ order_items: { quantity: { _gte: 4 } } }"#,
            "EXISTS (SELECT 1 FROM order_items i WHERE i.product_id = products.id AND i.quantity >= 4)",
        ),
        (
            r#"{ order_items: { order: { user: { country: { _eq: "DE" } } } } }"#,
            "EXISTS (SELECT 1 FROM order_items i JOIN orders o ON o.id = i.order_id JOIN users u ON u.id = o.user_id
                      WHERE i.product_id = products.id AND u.country = 'DE')",
        ),
    ];
    for (filter, condition) in cases {
        let query = format!("{{ products(where: {filter}, limit: 1000) {{ id }} }}");
        let response = data(&subgraph, &query, json!({})).await;
        let expected = ids_from_sql(
            pool,
            &format!("SELECT id FROM products WHERE {condition} ORDER BY id"),
        )
        .await;
        assert!(
            !expected.is_empty() || filter.contains("_is_null: true"),
            "{filter} selects nothing; a weak case"
        );
        assert_eq!(ids(&response["products"]), expected, "filter {filter}");
    }
}

#[tokio::test]
async fn three_levels_of_relationships_are_one_statement() {
    let subgraph = subgraph().await;
    let before = subgraph.executor.statements();
    let response = data(
        &subgraph,
        "{ users(limit: 20, order_by: [{ id: ASC }]) {
             id
             orders(order_by: [{ created_at: DESC }]) {
               id
               order_items { line quantity product { id name } }
             }
           } }",
        json!({}),
    )
    .await;
    assert_eq!(
        subgraph.executor.statements() - before,
        1,
        "one statement for the whole tree"
    );

    // Every level agrees with plain SQL.
    let rows: Vec<(i64, i64, i32, i64, String)> = sqlx::query_as(
        "SELECT o.user_id, o.id, i.line, p.id, p.name FROM orders o
           JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
          WHERE o.user_id <= 20 ORDER BY o.user_id, o.created_at DESC, i.line",
    )
    .fetch_all(&subgraph.pool)
    .await
    .unwrap();
    let mut flattened = Vec::new();
    for user in response["users"].as_array().unwrap() {
        for order in user["orders"].as_array().unwrap() {
            for item in order["order_items"].as_array().unwrap() {
                flattened.push((
                    user["id"].as_str().unwrap().parse::<i64>().unwrap(),
                    order["id"].as_str().unwrap().parse::<i64>().unwrap(),
                    item["line"].as_i64().unwrap() as i32,
                    item["product"]["id"]
                        .as_str()
                        .unwrap()
                        .parse::<i64>()
                        .unwrap(),
                    item["product"]["name"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    assert_eq!(flattened, rows);
}

#[tokio::test]
async fn aggregates_match_plain_sql() {
    let subgraph = subgraph().await;
    let response = data(
        &subgraph,
        r#"{ orders_aggregate(where: { status: { _eq: "paid" } }) {
               count sum { total } avg { total } min { total created_at } max { total }
             }
             users_by_pk(id: "3") { orders_aggregate { count } } }"#,
        json!({}),
    )
    .await;
    let (count, sum, avg, min, max): (i64, f64, f64, f64, f64) = sqlx::query_as(
        "SELECT count(*), sum(total)::float8, avg(total)::float8, min(total)::float8, max(total)::float8
           FROM orders WHERE status = 'paid'",
    )
    .fetch_one(&subgraph.pool)
    .await
    .unwrap();
    let aggregate = &response["orders_aggregate"];
    assert_eq!(aggregate["count"].as_i64().unwrap(), count);
    assert!((aggregate["sum"]["total"].as_f64().unwrap() - sum).abs() < 1e-6);
    assert!((aggregate["avg"]["total"].as_f64().unwrap() - avg).abs() < 1e-6);
    assert!((aggregate["min"]["total"].as_f64().unwrap() - min).abs() < 1e-9);
    assert!((aggregate["max"]["total"].as_f64().unwrap() - max).abs() < 1e-9);
    let (user_orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders WHERE user_id = 3")
        .fetch_one(&subgraph.pool)
        .await
        .unwrap();
    assert_eq!(
        response["users_by_pk"]["orders_aggregate"]["count"]
            .as_i64()
            .unwrap(),
        user_orders
    );
}

/// Found by the generated operations over the demo: an aggregate that selects only
/// `__typename` folded no rows, so it was one row per order and PostgreSQL refused it.
#[tokio::test]
async fn an_aggregate_of_only_typename_is_one_object() {
    let subgraph = subgraph().await;
    let response = data(
        &subgraph,
        r#"{ orders_aggregate { __typename }
             none: orders_aggregate(where: { status: { _eq: "nope" } }) { t: __typename }
             orders(limit: 2) { order_items_aggregate(limit: 9) { __typename } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        response,
        json!({
            "orders_aggregate": { "__typename": "OrderAggregate" },
            "none": { "t": "OrderAggregate" },
            "orders": [
                { "order_items_aggregate": { "__typename": "OrderItemAggregate" } },
                { "order_items_aggregate": { "__typename": "OrderItemAggregate" } }
            ]
        })
    );
}

#[tokio::test]
async fn pages_do_not_overlap_and_follow_the_order() {
    let subgraph = subgraph().await;
    let page = |offset: u64| {
        format!(
            "{{ orders(order_by: [{{ total: DESC }}, {{ id: ASC }}], limit: 10, offset: {offset}) {{ id }} }}"
        )
    };
    let first = ids(&data(&subgraph, &page(0), json!({})).await["orders"]);
    let second = ids(&data(&subgraph, &page(10), json!({})).await["orders"]);
    let expected = ids_from_sql(
        &subgraph.pool,
        "SELECT id FROM orders ORDER BY total DESC, id ASC LIMIT 20",
    )
    .await;
    assert_eq!([first, second].concat(), expected);
}

#[tokio::test]
async fn entities_for_a_thousand_keys_are_one_statement_in_order() {
    let subgraph = subgraph().await;
    // 1,000 representations: every user (some twice, as numbers and as strings), then unknown ids.
    let users: i64 = sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM users")
        .fetch_one(&subgraph.pool)
        .await
        .unwrap()
        .0;
    let mut representations = Vec::new();
    let mut expected_ids = Vec::new();
    for n in 0..1000_i64 {
        let id = n % (users + 5) + 1;
        let representation = if n % 2 == 0 {
            json!({ "__typename": "User", "id": id.to_string() })
        } else {
            json!({ "__typename": "User", "id": id })
        };
        representations.push(representation);
        expected_ids.push(id);
    }
    let before = subgraph.executor.statements();
    let response = run(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id email } } }",
        json!({ "r": representations }),
    )
    .await;
    assert_eq!(
        subgraph.executor.statements() - before,
        1,
        "one statement for one entity type"
    );
    let entities = response["data"]["_entities"].as_array().unwrap().clone();
    assert_eq!(entities.len(), 1000);
    let emails: std::collections::HashMap<String, String> =
        sqlx::query_as::<_, (i64, String)>("SELECT id, email FROM users")
            .fetch_all(&subgraph.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, email)| (id.to_string(), email))
            .collect();
    for (entity, id) in entities.iter().zip(&expected_ids) {
        match emails.get(&id.to_string()) {
            Some(email) => {
                assert_eq!(entity["id"], json!(id.to_string()));
                assert_eq!(entity["email"], json!(email));
            }
            None => assert!(entity.is_null(), "unknown id {id} resolves to null"),
        }
    }
    assert!(
        response["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|error| error["message"].as_str().unwrap().contains("not found")),
        "unknown keys come with an error: {response}"
    );
}

#[tokio::test]
async fn hostile_input_changes_nothing() {
    let subgraph = subgraph().await;
    let users_before = ids_from_sql(&subgraph.pool, "SELECT id FROM users ORDER BY id").await;

    // Quotes, statement separators and comments inside values are just values.
    for hostile in [
        "'; DROP TABLE users; --",
        "x' OR '1'='1",
        "\\'; DELETE FROM orders; /*",
        "%' UNION SELECT email FROM users --",
    ] {
        let response = data(
            &subgraph,
            "query($v: String!) { users(where: { _or: [{ name: { _eq: $v } }, { email: { _ilike: $v } }] }) { id } }",
            json!({ "v": hostile }),
        )
        .await;
        assert_eq!(response["users"], json!([]), "{hostile}");
    }
    // A value that is not an integer where one is expected is a clean error, not SQL.
    let errors_seen = errors(
        &subgraph,
        r#"{ users(where: { id: { _eq: "1 OR 1=1" } }) { id } }"#,
    )
    .await;
    assert_eq!(errors_seen.len(), 1);
    assert_eq!(errors_seen[0].1.as_deref(), Some("\"BAD_USER_INPUT\""));
    // Identifiers in order_by are schema names, checked by validation.
    let errors_seen = errors(
        &subgraph,
        r#"{ users(order_by: [{ id: ASC, _drop: DESC }]) { id } }"#,
    )
    .await;
    assert!(!errors_seen.is_empty());
    let errors_seen = errors(
        &subgraph,
        r#"{ users(order_by: [{ id: "ASC; DROP TABLE users" }]) { id } }"#,
    )
    .await;
    assert!(!errors_seen.is_empty());
    // Limits are bounded.
    let errors_seen = errors(&subgraph, "{ users(limit: 100000000) { id } }").await;
    assert!(errors_seen[0].0.contains("at most"), "{errors_seen:?}");

    assert_eq!(
        ids_from_sql(&subgraph.pool, "SELECT id FROM users ORDER BY id").await,
        users_before
    );
}

#[tokio::test]
async fn the_sdl_is_federation_v2_with_keys_on_entities() {
    let subgraph = subgraph().await;
    let sdl = subgraph.sdl();
    assert!(
        sdl.contains("@link(\n\turl: \"https://specs.apollo.dev/federation/v2"),
        "{sdl}"
    );
    for entity in ["User", "Product", "Order"] {
        let line = sdl
            .lines()
            .find(|line| line.starts_with(&format!("type {entity} ")))
            .unwrap_or_default();
        assert!(
            line.contains("@key(fields: \"id\")"),
            "{entity} lacks @key:\n{sdl}"
        );
    }
    assert!(
        sdl.contains("type OrderItem @cacheControl(maxAge: 30) {"),
        "order items are not an entity"
    );
    let response = data(&subgraph, "{ _service { sdl } }", json!({})).await;
    assert!(
        response["_service"]["sdl"]
            .as_str()
            .unwrap()
            .contains("@key")
    );
}

#[test]
fn deployment_configs_match_the_demo_config() {
    let read = |path: &str| Config::from_file(&repo_root().join(path)).unwrap();
    let demo = read("config/postgres.yaml");
    let kubernetes = read("k8s/base/config/postgres.yaml");
    assert_eq!(kubernetes.schema, demo.schema);
    assert_eq!(kubernetes.max_limit, demo.max_limit);
    let tables = |config: &Config| -> Vec<(String, Option<String>, bool)> {
        config
            .tables
            .iter()
            .map(|(name, table)| (name.clone(), table.type_name.clone(), table.entity))
            .collect()
    };
    assert_eq!(tables(&kubernetes), tables(&demo));
    let compose = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains("./config/postgres.yaml:/etc/polygraph/postgres.yaml"),
        "compose mounts the demo config"
    );
}

#[tokio::test]
async fn serves_graphql_over_http() {
    let subgraph = subgraph().await;
    let app = polygraph_subgraph_core::server::app(
        polygraph_subgraph_core::server::share(subgraph.served()),
        common::trusting("postgres"),
    );
    let address = common::serve(app).await;

    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    let response: Value = client
        .post(format!("http://{address}/graphql"))
        .json(&json!({ "query": "query($id: ID!) { users_by_pk(id: $id) { id name } }", "variables": { "id": "7" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (name,): (String,) = sqlx::query_as("SELECT name FROM users WHERE id = 7")
        .fetch_one(&subgraph.pool)
        .await
        .unwrap();
    assert_eq!(
        response,
        json!({ "data": { "users_by_pk": { "id": "7", "name": name } } })
    );

    // Malformed JSON is a client error, not a crash; the server keeps serving.
    let malformed = client
        .post(format!("http://{address}/graphql"))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert!(
        malformed.status().is_client_error(),
        "{}",
        malformed.status()
    );
    let again = client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .unwrap();
    assert!(again.status().is_success());
}

#[tokio::test]
async fn operations_fragments_defaults_and_directives_shape_the_answer() {
    let subgraph = subgraph().await;
    let document = r#"
        query Other { users(limit: 1) { id } }
        query Chosen($limit: Int = 2, $withOrders: Boolean = false, $country: String!) {
          first: users(limit: $limit, where: { country: { _eq: $country } }) { ...UserBits }
          count: users_aggregate(where: { country: { _eq: $country } }) { count __typename }
        }
        fragment UserBits on User {
          id
          label: name
          __typename
          orders @include(if: $withOrders) { id }
        }"#;
    let response = common::answer(
        &subgraph.served(),
        document,
        Some("Chosen"),
        json!({ "country": "DE" }),
    )
    .await;
    assert!(response.get("errors").is_none(), "{response}");
    let data = response["data"].clone();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM users WHERE country = 'DE' ORDER BY id LIMIT 2")
            .fetch_all(&subgraph.pool)
            .await
            .unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM users WHERE country = 'DE'")
        .fetch_one(&subgraph.pool)
        .await
        .unwrap();
    let first: Vec<Value> = rows
        .into_iter()
        .map(|(id, name)| json!({ "id": id.to_string(), "label": name, "__typename": "User" }))
        .collect();
    assert_eq!(
        data,
        json!({ "first": first, "count": { "count": count, "__typename": "UserAggregate" } })
    );
}

#[tokio::test]
async fn entities_answer_the_same_at_first_sight_and_on_repeat() {
    let subgraph = subgraph().await;
    let server =
        common::HttpSubgraph::with_trust(subgraph.served(), common::trusting("postgres")).await;
    let query = "query Fetch($r: [_Any!]!) { found: _entities(representations: $r) {
                   __typename ... on User { id name orders(limit: 2) { id } } ... on Product { id price } } }";
    let all_found = json!({ "query": query, "operationName": "Fetch", "variables": { "r": [
        { "__typename": "User", "id": "3" }, { "__typename": "Product", "id": 5 }, { "__typename": "User", "id": 4 }
    ] } });
    let (regular, prepared) = server.first_then_repeat(&all_found).await;
    assert_eq!(prepared, regular);
    assert_eq!(regular["data"]["found"][1]["id"], "5", "{regular}");
    assert!(
        regular["data"]["found"][1]["price"].is_number(),
        "{regular}"
    );
    let validated = server.validations();

    // A missing entity is null, with one error at its index.
    let missing = json!({ "query": query, "operationName": "Fetch", "variables": { "r": [
        { "__typename": "User", "id": "3" }, { "__typename": "User", "id": "999999" }
    ] } });
    let answer = server.post(&missing).await;
    assert_eq!(server.validations(), validated);
    assert_eq!(answer["data"]["found"][0], regular["data"]["found"][0]);
    assert!(answer["data"]["found"][1].is_null(), "{answer}");
    assert_eq!(answer["errors"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["errors"][0]["path"], json!(["found", 1]), "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        json!("NOT_FOUND"),
        "{answer}"
    );

    // Variables that do not fit their types are rejected, the kept document or not.
    let bad = json!({ "query": query, "operationName": "Fetch", "variables": { "r": [1, 2] } });
    let answer = server.post(&bad).await;
    assert_eq!(server.validations(), validated);
    assert!(answer["data"].is_null(), "{answer}");
    assert!(answer.get("errors").is_some(), "{answer}");

    // A missing entity in a query text seen for the first time is also answered right.
    let fresh = json!({ "query": "query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Order { id } } }",
                        "variables": { "r": [{ "__typename": "Order", "id": "424242" }] } });
    let answer = server.post(&fresh).await;
    assert_eq!(answer["data"], json!({ "_entities": [null] }), "{answer}");
    assert_eq!(
        answer["errors"][0]["path"],
        json!(["_entities", 0]),
        "{answer}"
    );
}

#[tokio::test]
async fn entities_with_composite_keys() {
    let mut config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    config.tables["order_items"].entity = true;
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let subgraph = Subgraph::with_pool(&config, pool.clone()).await.unwrap();
    assert!(
        subgraph
            .sdl()
            .contains("type OrderItem @cacheControl(maxAge: 30) @key(fields: \"order_id line\")"),
        "{}",
        subgraph.sdl()
    );
    let (order_id, line, quantity): (i64, i32, i32) =
        sqlx::query_as("SELECT order_id, line, quantity FROM order_items ORDER BY order_id DESC, line DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let representations = json!([
        { "__typename": "OrderItem", "order_id": order_id.to_string(), "line": line },
        { "__typename": "OrderItem", "order_id": order_id.to_string(), "line": 99 },
        { "__typename": "OrderItem", "order_id": order_id, "line": line },
    ]);
    let response = common::answer(
        &subgraph.served(),
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on OrderItem { line quantity } } }",
        None,
        json!({ "r": representations }),
    )
    .await;
    let data = response["data"].clone();
    assert_eq!(
        data["_entities"][0],
        json!({ "line": line, "quantity": quantity })
    );
    assert!(data["_entities"][1].is_null());
    assert_eq!(
        data["_entities"][2],
        json!({ "line": line, "quantity": quantity })
    );
}

#[tokio::test]
async fn root_field_errors_carry_a_code_a_location_and_a_path() {
    let subgraph = subgraph().await;
    // A nullable root field that fails is null, and the others answer.
    let response = run(
        &subgraph,
        "{ fine: users(limit: 1) { id }\n  broken: users_by_pk(id: \"not a number\") { id } }",
        Value::Null,
    )
    .await;
    let errors = response["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{response}");
    assert_eq!(errors[0]["path"], json!(["broken"]));
    assert_eq!(errors[0]["locations"], json!([{ "line": 2, "column": 3 }]));
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(response["data"]["broken"].is_null(), "{response}");
    assert_eq!(
        response["data"]["fine"].as_array().unwrap().len(),
        1,
        "the other field still answers: {response}"
    );
    // A non-null one takes `data` with it, as GraphQL's null propagation says.
    let response = run(
        &subgraph,
        "{ fine: users(limit: 1) { id } broken: users(where: { id: { _eq: \"x\" } }) { id } }",
        Value::Null,
    )
    .await;
    assert!(response["data"].is_null(), "{response}");
    assert_eq!(
        response["errors"][0]["path"],
        json!(["broken"]),
        "{response}"
    );
}

#[tokio::test]
async fn hostile_shapes_are_refused_and_introspection_still_works() {
    use std::fmt::Write as _;

    let subgraph = subgraph().await;
    // Fragments that double at every level: 2^30 fields if expanded.
    let mut document = String::from("{ users { ...F0 } }\n");
    for level in 0..30 {
        let (relationship, on) = if level % 2 == 0 {
            ("orders", "User")
        } else {
            ("user", "Order")
        };
        let next = if level == 29 {
            "id".to_owned()
        } else {
            format!("...F{}", level + 1)
        };
        let _ = writeln!(
            document,
            "fragment F{level} on {on} {{ a: {relationship} {{ {next} }} b: {relationship} {{ {next} }} }}"
        );
    }
    let response = run(&subgraph, &document, Value::Null).await;
    assert!(response.get("errors").is_some(), "refused");
    assert!(response["data"].is_null());

    // Deep but honest: the introspection clients send still passes.
    let introspection = "{ __schema { queryType { name } types { name kind fields(includeDeprecated: true) {
        name args { name type { ...T } } type { ...T } } } } }
        fragment T on __Type { name kind ofType { name kind ofType { name kind ofType { name kind
        ofType { name kind ofType { name kind ofType { name kind ofType { name kind } } } } } } } }";
    let response = run(&subgraph, introspection, Value::Null).await;
    assert!(response.get("errors").is_none(), "{response}");
}

#[tokio::test]
async fn statements_are_cut_off_by_the_configured_timeout() {
    let mut config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    config.url = Some(endpoints().postgres);
    config.statement_timeout_ms = 1_500;
    let subgraph = Subgraph::start(&config).await.unwrap();
    let (timeout,): (String,) = sqlx::query_as("SHOW statement_timeout")
        .fetch_one(&subgraph.pool)
        .await
        .unwrap();
    assert_eq!(timeout, "1500ms");
    let slow = sqlx::query("SELECT pg_sleep(5)")
        .execute(&subgraph.pool)
        .await;
    assert!(slow.is_err(), "a statement past the timeout is cancelled");
}

#[tokio::test]
async fn root_fields_answer_the_same_at_first_sight_and_on_repeat() {
    let subgraph = subgraph().await;
    let server =
        common::HttpSubgraph::with_trust(subgraph.served(), common::trusting("postgres")).await;
    let cases = [
        json!({ "query": r#"{ top: orders(where: { status: { _eq: "paid" } }, order_by: [{ total: DESC }], limit: 3) {
                  __typename total id user { name } order_items(limit: 2) { line quantity } } }"# }),
        json!({ "query": "query($id: ID!) { users_by_pk(id: $id) { email name id } }", "variables": { "id": "3" } }),
        json!({ "query": "query($id: ID!) { users_by_pk(id: $id) { name } }", "variables": { "id": 4 } }),
        json!({ "query": "query($id: ID!) { missing: users_by_pk(id: $id) { id } }", "variables": { "id": "999999" } }),
        json!({ "query": "query($n: Int = 2) { products(limit: $n) { name price } }" }),
        json!({ "query": "{ orders_aggregate(where: { total: { _gt: 100 } }) { count max { total } } }" }),
        // The name the statement gives each document's row is a response key like any other.
        json!({ "query": "{ users(limit: 2, order_by: [{ id: ASC }]) { _doc: id orders(limit: 1) { _doc: total } } }" }),
    ];
    for case in &cases {
        let (regular, prepared) = server.first_then_repeat(case).await;
        // The same answer, keys in the same (selection) order.
        assert_eq!(regular.to_string(), prepared.to_string(), "{case}");
    }
    // Variables that do not fit their types are rejected.
    let bad = json!({ "query": "query($n: Int = 2) { products(limit: $n) { name price } }", "variables": { "n": "two" } });
    let answer = server.post(&bad).await;
    assert!(answer.get("errors").is_some(), "{answer}");
    // Connections (their cursors) and list-typed variables take the same path.
    for body in [
        json!({ "query": "{ users_connection(first: 2) { edges { cursor node { id } } } }" }),
        json!({ "query": "query($ids: [ID!]) { users(where: { id: { _in: $ids } }) { id } }", "variables": { "ids": ["1", "2"] } }),
    ] {
        for _ in 0..2 {
            let answer = server.post(&body).await;
            assert!(answer.get("errors").is_none(), "{answer}");
        }
    }
}

/// `Review` (MongoDB's) extended here: `_entities` answers each extension field for every
/// representation with one statement, on both paths; a representation without the field an
/// extension matches on is the request's error.
#[tokio::test]
async fn extension_fields_of_another_subgraphs_entity() {
    let subgraph = subgraph().await;
    let server =
        common::HttpSubgraph::with_trust(subgraph.served(), common::trusting("postgres")).await;
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Review {
                   review_id user_id
                   first: author_orders(order_by: [{ id: ASC }], limit: 1) { id user_id }
                   product_sales { count }
                 } } }";
    let body = json!({ "query": query, "variables": { "r": [
        { "__typename": "Review", "review_id": "1", "user_id": "3", "product_id": "5" },
        { "__typename": "Review", "review_id": "2", "user_id": 3, "product_id": "999999" },
        { "__typename": "Review", "review_id": "3", "user_id": null, "product_id": "5" },
    ] } });
    let statements = subgraph.executor.statements();
    let regular = server.post(&body).await;
    let prepared = server.post(&body).await;
    assert_eq!(regular.to_string(), prepared.to_string());
    assert_eq!(
        subgraph.executor.statements() - statements,
        4,
        "two extension fields, one statement each, for each of two answers (the first has an \
         error, and still runs each statement once)"
    );
    let (first,): (i64,) = sqlx::query_as("SELECT min(id) FROM orders WHERE user_id = 3")
        .fetch_one(&subgraph.pool)
        .await
        .unwrap();
    let (sold,): (i64,) = sqlx::query_as("SELECT count(*) FROM order_items WHERE product_id = 5")
        .fetch_one(&subgraph.pool)
        .await
        .unwrap();
    assert_eq!(
        regular["data"]["_entities"],
        json!([
            { "__typename": "Review", "review_id": "1", "user_id": "3",
              "first": [{ "id": first.to_string(), "user_id": "3" }], "product_sales": { "count": sold } },
            { "__typename": "Review", "review_id": "2", "user_id": "3",
              "first": [{ "id": first.to_string(), "user_id": "3" }], "product_sales": { "count": 0 } },
            null,
        ])
    );
    // Entity 2 echoes a `user_id: ID!` it was given as null: it is null, with an error; the
    // rest of the batch stands. (A gateway selects no external field here; the extension
    // field alone matches nothing for it.)
    assert_eq!(
        regular["errors"][0]["path"],
        json!(["_entities", 2]),
        "{regular}"
    );
    let only_orders = json!({ "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Review { author_orders { id } } } }",
        "variables": { "r": [{ "__typename": "Review", "review_id": "3", "user_id": null }] } });
    let answer = server.post(&only_orders).await;
    assert_eq!(
        answer,
        json!({ "data": { "_entities": [{ "author_orders": [] }] } })
    );
    let missing = json!({ "query": query, "variables": { "r": [
        { "__typename": "Review", "review_id": "1", "product_id": "5" },
    ] } });
    let answer = server.post(&missing).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("user_id"),
        "{answer}"
    );
}

/// The corpus in `tests/corpus/postgres/`, over HTTP: every answer, first sight and repeat,
/// equals its golden answer, in the same statements.
#[tokio::test]
async fn the_corpus_answers_as_recorded() {
    let subgraph = subgraph().await;
    let server = common::HttpSubgraph::start(subgraph.served()).await;
    common::corpus::check(&server, "postgres", subgraph.executor.recorder()).await;
}

/// A body that is no GraphQL request (found by the `subgraph_postgres` fuzz target: variables
/// that are not an object) is answered with a JSON error and a fitting status, not with the
/// request parser's text, which names Rust types.
#[tokio::test]
async fn bodies_that_are_no_graphql_request_get_json_errors() {
    use polygraph_subgraph_core::server;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let subgraph = subgraph().await;
    let trust = server::Trust {
        max_body_bytes: 4096,
        ..server::Trust::default()
    };
    let address = common::serve(server::app(server::share(subgraph.served()), trust)).await;
    let url = format!("http://{address}/graphql");
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let huge = json!({ "query": format!("{{ users {{ id }} }} # {}", "x".repeat(8192)) });
    for (body, status, code) in [
        (
            r#"{"query": "{ users { id } }", "variables": 7}"#.to_owned(),
            400,
            "BAD_REQUEST",
        ),
        (r#"{"query": 7}"#.to_owned(), 400, "BAD_REQUEST"),
        ("[1]".to_owned(), 400, "BAD_REQUEST"),
        ("{".to_owned(), 400, "BAD_REQUEST"),
        (huge.to_string(), 413, "PAYLOAD_TOO_LARGE"),
    ] {
        let answer = post(body.clone()).await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{body:.80}");
        let text = answer.text().await.unwrap();
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{body:.80}: no JSON ({error}): {text}"));
        assert_eq!(
            json["errors"][0]["extensions"]["code"], code,
            "{body:.80}: {json}"
        );
        assert!(!text.contains("enum"), "{body:.80}: {text}");
    }
    // A GET's query string is held to the same limit.
    let long = format!("{url}?query={}", "%20".repeat(4096));
    let answer = client.get(&long).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 413);
    let json: Value = answer.json().await.unwrap();
    assert_eq!(json["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");
    // Chunked, so no length is declared: the limit holds as the body streams in.
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = huge.to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"PAYLOAD_TOO_LARGE""#), "{answer}");
}

/// `@skip`/`@include` on `__typename` with a variable (found by the `subgraph_postgres` fuzz
/// target): async-graphql's validator skips `__typename`, calling the variable unused; the
/// subgraph validates with the condition lifted onto a fragment, so the operation runs, and
/// checks the types of variables in conditions itself (async-graphql checks none).
#[tokio::test]
async fn conditions_on_typename_take_variables() {
    let subgraph = subgraph().await;
    let query = "query($a: Boolean!) { users(limit: 1) { t: __typename @skip(if: $a) id } }";
    let skipped = data(&subgraph, query, json!({ "a": true })).await;
    assert!(skipped["users"][0].get("t").is_none(), "{skipped}");
    let kept = data(&subgraph, query, json!({ "a": false })).await;
    assert_eq!(kept["users"][0]["t"], "User", "{kept}");
    for mistyped in [
        "query($a: String) { users(limit: 1) { __typename @include(if: $a) } }",
        "query($a: String) { users(limit: 1) { id @include(if: $a) } }",
    ] {
        let refused = run(&subgraph, mistyped, json!({ "a": "x" })).await;
        assert!(refused["data"].is_null(), "{refused}");
        assert!(
            refused["errors"][0]["message"]
                .as_str()
                .is_some_and(|message| message.contains("\"$a\" of type \"String\"")),
            "{refused}"
        );
    }
}
