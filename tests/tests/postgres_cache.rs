//! `@cacheControl` on the PostgreSQL subgraph, over HTTP against the demo database: the hints
//! the config gives reach the SDL, and each answer's `Cache-Control` header is the least
//! `maxAge` of what it selects, private where a row rule applies, `no-store` for unhinted
//! types, mutations and errors — on the regular path and on the prepared `_entities` path.

mod common;

use common::{HttpSubgraph, endpoints, repo_root};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_postgres::{Config, Subgraph};
use serde_json::json;

fn hint(max_age: u32) -> CacheHint {
    CacheHint {
        max_age: Some(max_age),
        ..CacheHint::default()
    }
}

/// Products for 300 s, users for 60 s (emails 10 s), orders for 30 s under a row rule, order
/// items without a hint.
async fn serve() -> HttpSubgraph {
    let mut config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    config.tables["products"].cache = Some(hint(300));
    config.tables["users"].cache = Some(hint(60));
    config.tables["users"].columns.insert(
        "email".into(),
        polygraph_subgraph_postgres::config::Directives {
            cache: Some(hint(10)),
            ..Default::default()
        },
    );
    config.tables["orders"].cache = Some(hint(30));
    config.tables["orders"].rule = Some("user_id = claims.sub".into());
    config.tables["order_items"].cache = None;
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let subgraph = Subgraph::with_pool(&config, pool).await.unwrap();
    let sdl = subgraph.sdl();
    assert!(
        sdl.contains("@cacheControl(maxAge: 30, scope: PRIVATE)"),
        "{sdl}"
    );
    HttpSubgraph::with_trust(subgraph.served(), common::trusting("postgres")).await
}

fn token() -> String {
    common::gateway_token("postgres", &json!({ "sub": "3" }))
}

async fn cache_control(served: &HttpSubgraph, query: &str, claims: Option<&str>) -> String {
    let (status, cache, body) = served.exchange(&json!({ "query": query }), claims).await;
    assert_eq!(status, 200, "{body}");
    cache.unwrap_or_else(|| panic!("no Cache-Control header for {query}: {body}"))
}

#[tokio::test]
async fn answers_carry_the_policy_of_what_they_select() {
    let served = serve().await;
    let token = token();
    let cases = [
        (
            "{ products(limit: 2) { id name } }",
            None,
            "max-age=300, public",
        ),
        (
            "{ products(limit: 2) { id } users(limit: 2) { name } }",
            None,
            "max-age=60, public",
        ),
        (
            "{ users(limit: 2) { name email } }",
            None,
            "max-age=10, public",
        ),
        (
            "{ products_aggregate { count } }",
            None,
            "max-age=300, public",
        ),
        (
            "{ users_connection(first: 2) { edges { node { id } } pageInfo { hasNextPage } } }",
            None,
            "max-age=60, public",
        ),
        (
            "{ orders(limit: 2) { id } }",
            Some(token.as_str()),
            "max-age=30, private",
        ),
        (
            "{ users(limit: 2) { orders { id } } }",
            Some(token.as_str()),
            "max-age=30, private",
        ),
        ("{ order_items(limit: 2) { quantity } }", None, "no-store"),
        (
            "{ products(limit: 2) { id } order_items(limit: 1) { quantity } }",
            None,
            "no-store",
        ),
        ("{ __schema { queryType { name } } }", None, "no-store"),
    ];
    for (query, claims, expected) in cases {
        assert_eq!(
            cache_control(&served, query, claims).await,
            expected,
            "{query}"
        );
    }
}

#[tokio::test]
async fn errors_and_mutations_are_not_stored() {
    let served = serve().await;
    // The row rule needs claims: an error, so nothing may be kept.
    let (_, cache, body) = served
        .exchange(&json!({ "query": "{ orders(limit: 1) { id } }" }), None)
        .await;
    assert!(body.get("errors").is_some(), "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    let (_, cache, body) = served
        .exchange(
            &json!({ "query": "{ products(where: { id: { _eq: \"x\" } }) { id } }" }),
            None,
        )
        .await;
    assert!(body.get("errors").is_some(), "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    let (_, cache, body) = served
        .exchange(
            &json!({ "query": "mutation { delete_products(where: { id: { _eq: \"-1\" } }) { affected_rows } }" }),
            Some(&token()),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
}

#[tokio::test]
async fn entities_take_the_hints_of_their_types_at_first_sight_and_on_repeat() {
    let served = serve().await;
    let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { name } ... on User { name } } }";
    let products = json!({ "query": query, "variables": { "r": [
        { "__typename": "Product", "id": "1" }, { "__typename": "Product", "id": "2" }
    ] } });
    let mixed = json!({ "query": query, "variables": { "r": [
        { "__typename": "Product", "id": "1" }, { "__typename": "User", "id": "2" }
    ] } });
    let before = served.validations();
    for _ in 0..2 {
        let (_, cache, body) = served.exchange(&products, None).await;
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(cache.as_deref(), Some("max-age=300, public"));
        let (_, cache, _) = served.exchange(&mixed, None).await;
        assert_eq!(cache.as_deref(), Some("max-age=60, public"));
    }
    assert_eq!(
        served.validations(),
        before + 1,
        "the second round answers from the kept document"
    );
    // The demo extends MongoDB's Review with the author's orders; under the orders' row rule
    // they depend on who asks.
    let reviews = json!({ "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Review { author_orders(limit: 1) { id } } } }",
                          "variables": { "r": [{ "__typename": "Review", "review_id": "1", "user_id": "3" }] } });
    let token = token();
    let (_, cache, body) = served.exchange(&reviews, Some(token.as_str())).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(cache.as_deref(), Some("max-age=30, private"));
    // A key that does not exist is an error: not stored.
    let missing = json!({ "query": query, "variables": { "r": [{ "__typename": "Product", "id": "999999" }] } });
    let (_, cache, body) = served.exchange(&missing, None).await;
    assert!(body.get("errors").is_some(), "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
}
