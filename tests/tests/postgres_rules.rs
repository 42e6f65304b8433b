//! Row rules of the PostgreSQL subgraph from verified claims, over HTTP against the demo
//! database: `orders: user_id = claims.sub` holds for root fields, relationships, aggregates and
//! `_entities`; forged, expired and malformed claims headers are rejected with 401.

mod common;

use std::time::Duration;

use common::{endpoints, repo_root};
use polygraph_subgraph_postgres::{Config, Subgraph};
use serde_json::{Value, json};

struct Served {
    address: std::net::SocketAddr,
    pool: sqlx::PgPool,
    client: reqwest::Client,
}

/// The demo config with the orders rule.
fn ruled_config() -> Config {
    let mut config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    config.tables["orders"].rule = Some("user_id = claims.sub".into());
    // Without the demo's policies (the gateway checks those), so upserts are offered and the
    // rule is what holds them in.
    config.tables["orders"].writes = polygraph_subgraph_core::guard::WriteGuards::default();
    config
}

/// The subgraph on `pool`, served over HTTP with the shared key.
async fn serve_on(pool: sqlx::PgPool) -> Served {
    let subgraph = Subgraph::with_pool(&ruled_config(), pool.clone())
        .await
        .unwrap();
    let app = polygraph_subgraph_core::server::app(
        polygraph_subgraph_core::server::share(subgraph.served()),
        common::trusting("postgres"),
    );
    Served {
        address: common::serve(app).await,
        pool,
        client: reqwest::Client::new(),
    }
}

async fn serve() -> Served {
    serve_on(sqlx::PgPool::connect(&endpoints().postgres).await.unwrap()).await
}

impl Served {
    async fn post(&self, query: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("http://{}/graphql", self.address))
            .json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.header(polygraph_subgraph_core::claims::HEADER, token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn token_for(sub: &str) -> String {
    common::gateway_token("postgres", &json!({ "sub": sub }))
}

#[tokio::test]
async fn rules_filter_every_path_to_the_table() {
    let served = serve().await;
    let token = token_for("3");
    let own: Vec<(i64,)> = sqlx::query_as("SELECT id FROM orders WHERE user_id = 3 ORDER BY id")
        .fetch_all(&served.pool)
        .await
        .unwrap();
    let own: Vec<Value> = own
        .into_iter()
        .map(|(id,)| json!({ "id": id.to_string() }))
        .collect();
    assert!(!own.is_empty(), "user 3 has orders in the demo data");

    // Root list and aggregate.
    let (status, body) = served
        .post("{ orders { id } orders_aggregate { count } }", Some(&token))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["orders"], Value::Array(own.clone()));
    assert_eq!(body["data"]["orders_aggregate"]["count"], json!(own.len()));

    // Through a relationship: every user's orders are only user 3's.
    let (_, body) = served
        .post("{ users(limit: 10) { id orders { id } } }", Some(&token))
        .await;
    for user in body["data"]["users"].as_array().unwrap() {
        let expected = if user["id"] == json!("3") {
            Value::Array(own.clone())
        } else {
            json!([])
        };
        assert_eq!(user["orders"], expected, "orders of user {}", user["id"]);
    }

    // Through a filter on a relationship: users who have orders, as far as this request sees.
    let (_, body) = served
        .post("{ users(where: { orders: {} }) { id } }", Some(&token))
        .await;
    assert_eq!(body["data"]["users"], json!([{ "id": "3" }]));

    // Through _entities: another user's order is not there.
    let other: (i64,) = sqlx::query_as("SELECT id FROM orders WHERE user_id <> 3 LIMIT 1")
        .fetch_one(&served.pool)
        .await
        .unwrap();
    let query = format!(
        r#"{{ _entities(representations: [{{ __typename: "Order", id: "{}" }}, {{ __typename: "Order", id: {} }}]) {{ ... on Order {{ id }} }} }}"#,
        own[0]["id"].as_str().unwrap(),
        other.0
    );
    let (_, body) = served.post(&query, Some(&token)).await;
    assert_eq!(body["data"]["_entities"][0], own[0]);
    assert_eq!(body["data"]["_entities"][1], Value::Null);
}

#[tokio::test]
async fn ruled_tables_need_claims_and_others_do_not() {
    let served = serve().await;
    let (status, body) = served.post("{ orders { id } }", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED"),
        "{body}"
    );
    assert!(
        body["data"].is_null() || body["data"]["orders"].is_null(),
        "{body}"
    );

    let (status, body) = served.post("{ users(limit: 2) { id } }", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["users"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn forged_replayed_and_malformed_claims_are_rejected() {
    let served = serve().await;
    let forged = polygraph_subgraph_core::claims::Signer::generate().sign(
        "postgres",
        json!({ "sub": "3" }).as_object().unwrap(),
        Duration::from_mins(1),
    );
    // Signed by the gateway's key, but for another subgraph: replayed here, it fails.
    let for_another = common::gateway_token("mongodb", &json!({ "sub": "3" }));

    let unsigned = {
        // alg: none, with the claims a forger would like.
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        let payload = "eyJzdWIiOiIzIiwiaXNzIjoicG9seWdyYXBoLWdhdGV3YXkiLCJleHAiOjk5OTk5OTk5OTl9";
        format!("{header}.{payload}.")
    };
    for token in [
        forged.as_str(),
        for_another.as_str(),
        unsigned.as_str(),
        "garbage",
    ] {
        let (status, body) = served.post("{ orders { id } }", Some(token)).await;
        assert_eq!(status, 401, "{token}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            json!("UNAUTHENTICATED")
        );
        assert!(body.get("data").is_none(), "no data for a rejected request");
    }
}

#[tokio::test]
async fn writes_stay_within_the_rule() {
    let scratch = common::scratch::ScratchDatabase::create().await;
    let pool = sqlx::PgPool::connect(&scratch.url).await.unwrap();
    for setup in [
        "INSERT INTO users VALUES (3, 'a', 'a@x', 'DE', now()), (7, 'b', 'b@x', 'FR', now())",
        "INSERT INTO orders VALUES (1, 3, 'paid', 10, now()), (2, 7, 'paid', 20, now())",
    ] {
        sqlx::query(setup).execute(&pool).await.unwrap();
    }
    let served = serve_on(pool.clone()).await;
    let token = token_for("3");
    let orders = || async {
        sqlx::query_as::<_, (i64, i64, String)>(
            "SELECT id, user_id, status FROM orders ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };

    // Inserting for someone else is refused, and nothing is written.
    let (_, body) = served
        .post(r#"mutation { insert_orders_one(object: { id: "5", user_id: "7", status: "paid", total: 1, created_at: "2025-01-01T00:00:00Z" }) { id } }"#, Some(&token))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN"),
        "{body}"
    );
    // For oneself it works.
    let (_, body) = served
        .post(r#"mutation { insert_orders_one(object: { id: "6", user_id: "3", status: "paid", total: 1, created_at: "2025-01-01T00:00:00Z" }) { id } }"#, Some(&token))
        .await;
    assert_eq!(
        body["data"]["insert_orders_one"],
        json!({ "id": "6" }),
        "{body}"
    );
    // An upsert colliding with another user's order does not touch it.
    let (_, body) = served
        .post(r#"mutation { insert_orders(objects: [{ id: "2", user_id: "3", status: "stolen", total: 1, created_at: "2025-01-01T00:00:00Z" }], on_conflict: { update_columns: [status] }) { affected_rows } }"#, Some(&token))
        .await;
    assert_eq!(
        body["data"]["insert_orders"]["affected_rows"],
        json!(0),
        "{body}"
    );
    // Updates reach only one's own rows, and cannot hand them to someone else.
    let (_, body) = served
        .post(r#"mutation { update_orders(where: {}, _set: { status: "shipped" }) { affected_rows } }"#, Some(&token))
        .await;
    assert_eq!(
        body["data"]["update_orders"]["affected_rows"],
        json!(2),
        "{body}"
    );
    let (_, body) = served
        .post(
            r#"mutation { update_orders_by_pk(id: "1", _set: { user_id: "7" }) { id } }"#,
            Some(&token),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN"),
        "{body}"
    );
    assert_eq!(
        orders().await,
        vec![
            (1, 3, "shipped".into()),
            (2, 7, "paid".into()),
            (6, 3, "shipped".into())
        ]
    );
    // Deletes likewise.
    let (_, body) = served
        .post(
            "mutation { delete_orders(where: {}) { affected_rows } }",
            Some(&token),
        )
        .await;
    assert_eq!(
        body["data"]["delete_orders"]["affected_rows"],
        json!(2),
        "{body}"
    );
    assert_eq!(orders().await, vec![(2, 7, "paid".into())]);

    pool.close().await;
    scratch.drop().await;
}

#[tokio::test]
async fn rules_hold_through_object_relationships() {
    let mut config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    config.tables["users"].rule = Some("id = claims.sub".into());
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let subgraph = Subgraph::with_pool(&config, pool.clone()).await.unwrap();
    assert!(
        subgraph.sdl().contains("user: User\n"),
        "a ruled target makes the relationship nullable"
    );
    let app = polygraph_subgraph_core::server::app(
        polygraph_subgraph_core::server::share(subgraph.served()),
        common::trusting("postgres"),
    );
    let served = Served {
        address: common::serve(app).await,
        pool,
        client: reqwest::Client::new(),
    };

    // Without claims, reaching users through orders is refused, not answered.
    let (_, body) = served
        .post("{ orders(limit: 5) { id user { email } } }", None)
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED"),
        "{body}"
    );
    assert!(
        !body.to_string().contains("@example.com"),
        "no user leaks: {body}"
    );

    // With claims, only the claimed user shows through the relationship.
    let token = token_for("3");
    let (_, body) = served
        .post(
            r#"{ orders(where: { user_id: { _in: ["3", "5"] } }) { user_id user { id } } }"#,
            Some(&token),
        )
        .await;
    let orders = body["data"]["orders"].as_array().unwrap();
    assert!(
        orders.iter().any(|order| order["user_id"] == json!("3")),
        "{body}"
    );
    for order in orders {
        let expected = if order["user_id"] == json!("3") {
            json!({ "id": "3" })
        } else {
            Value::Null
        };
        assert_eq!(order["user"], expected, "{order}");
    }
}
