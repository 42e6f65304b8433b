//! PostgreSQL subgraph mutations against a scratch database: insert, upsert, update and delete,
//! each returning the affected rows, and a failing batch that leaves nothing behind.

mod common;

use common::repo_root;
use common::scratch::ScratchDatabase;
use polygraph_subgraph_postgres::{Config, Subgraph};
use serde_json::{Value, json};

async fn run(subgraph: &Subgraph, query: &str, variables: Value) -> (Value, Vec<String>) {
    let response = common::answer(&subgraph.served(), query, None, variables).await;
    let errors = response["errors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|error| error["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    (response["data"].clone(), errors)
}

async fn names(pool: &sqlx::PgPool) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT id, name FROM users ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn insert_upsert_update_delete_and_rollback() {
    let scratch = ScratchDatabase::create().await;
    let config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    let pool = sqlx::PgPool::connect(&scratch.url).await.unwrap();
    let subgraph = Subgraph::with_pool(&config, pool.clone()).await.unwrap();
    let user = |id: i64, name: &str| json!({ "id": id.to_string(), "name": name, "email": format!("{name}@example.com"), "country": "NO", "created_at": "2025-01-01T00:00:00Z" });

    // Insert many, returning them.
    let (data, errors) = run(
        &subgraph,
        "mutation($users: [UserInsertInput!]!) { insert_users(objects: $users) { affected_rows returning { id name } } }",
        json!({ "users": [user(1, "ada"), user(2, "grace")] }),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        data,
        json!({ "insert_users": { "affected_rows": 2, "returning": [{ "id": "1", "name": "ada" }, { "id": "2", "name": "grace" }] } })
    );
    assert_eq!(
        names(&pool).await,
        vec![(1, "ada".into()), (2, "grace".into())]
    );

    // A batch whose second row breaks a constraint inserts nothing.
    let (_, errors) = run(
        &subgraph,
        "mutation($users: [UserInsertInput!]!) { insert_users(objects: $users) { affected_rows } }",
        json!({ "users": [user(3, "linus"), user(1, "duplicate")] }),
    )
    .await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(names(&pool).await.len(), 2, "the failed batch rolled back");

    // Upsert: the colliding row updates its name, the new one is inserted.
    let (data, errors) = run(
        &subgraph,
        "mutation($users: [UserInsertInput!]!) {
           insert_users(objects: $users, on_conflict: { update_columns: [name] }) { affected_rows }
         }",
        json!({ "users": [{ "id": "1", "name": "ada lovelace", "email": "ada@example.com", "country": "GB", "created_at": "2025-01-01T00:00:00Z" }, user(3, "linus")] }),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(data["insert_users"]["affected_rows"], json!(2));
    assert_eq!(
        names(&pool).await,
        vec![
            (1, "ada lovelace".into()),
            (2, "grace".into()),
            (3, "linus".into())
        ]
    );

    // Update by filter and by key.
    let (data, errors) = run(
        &subgraph,
        r#"mutation { update_users(where: { id: { _gte: "2" } }, _set: { country: "SE" }) { affected_rows returning { id country } }
                      update_users_by_pk(id: "1", _set: { name: "Ada" }) { name country } }"#,
        json!({}),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(data["update_users"]["affected_rows"], json!(2));
    assert_eq!(
        data["update_users_by_pk"],
        json!({ "name": "Ada", "country": "NO" })
    );
    let countries: Vec<(String,)> = sqlx::query_as("SELECT country FROM users ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        countries,
        vec![("NO".into(),), ("SE".into(),), ("SE".into(),)]
    );

    // Relationships resolve in returned rows.
    let (data, errors) = run(
        &subgraph,
        r#"mutation { insert_orders_one(object: { id: "10", user_id: "2", status: "paid", total: 12.5, created_at: "2025-02-01T00:00:00Z" }) { id user { name } } }"#,
        json!({}),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        data,
        json!({ "insert_orders_one": { "id": "10", "user": { "name": "grace" } } })
    );

    // Delete by key and by filter; a missing key returns null.
    let (data, errors) = run(
        &subgraph,
        r#"mutation { delete_orders_by_pk(id: "10") { id } missing: delete_users_by_pk(id: "999") { id }
                      delete_users(where: { country: { _eq: "SE" } }) { affected_rows } }"#,
        json!({}),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        data,
        json!({ "delete_orders_by_pk": { "id": "10" }, "missing": null, "delete_users": { "affected_rows": 2 } })
    );
    assert_eq!(names(&pool).await, vec![(1, "Ada".into())]);

    pool.close().await;
    drop(subgraph);
    scratch.drop().await;
}

#[tokio::test]
async fn each_table_gets_only_the_mutations_its_config_allows() {
    use polygraph_subgraph_core::config::Mutations;

    let scratch = ScratchDatabase::create().await;
    let mut config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    config.tables["products"].mutations = Mutations {
        insert: false,
        update: true,
        delete: false,
    };
    // Inserts without updates: no upsert either, which would update.
    config.tables["users"].mutations = Mutations {
        insert: true,
        update: false,
        delete: true,
    };
    config.tables["order_items"].mutations = Mutations {
        insert: false,
        update: false,
        delete: false,
    };
    let pool = sqlx::PgPool::connect(&scratch.url).await.unwrap();
    let subgraph = Subgraph::with_pool(&config, pool.clone()).await.unwrap();
    let sdl = subgraph.schema.sdl();
    for present in [
        "update_products(",
        "update_products_by_pk(",
        "insert_users(objects: [UserInsertInput!]!): UserMutationResponse!",
        "insert_users_one(object: UserInsertInput!): User",
        "delete_users(",
    ] {
        assert!(sdl.contains(present), "{present} missing");
    }
    assert!(!sdl.contains("update_users"), "users get no updates");
    for absent in [
        "insert_products",
        "delete_products",
        "insert_order_items",
        "update_order_items",
        "delete_order_items",
    ] {
        assert!(!sdl.contains(absent), "{absent} generated");
    }
    let (_, errors) = run(
        &subgraph,
        "mutation { delete_products(where: {}) { affected_rows } }",
        json!({}),
    )
    .await;
    assert!(
        errors.iter().any(|error| error.contains("delete_products")),
        "{errors:?}"
    );
    pool.close().await;
    scratch.drop().await;
}
