//! Cursor pagination (`*_connection`): walking every page returns every row exactly once, in
//! the requested order, including orders on nullable columns in either direction.

mod common;

use common::scratch::ScratchDatabase;
use common::{endpoints, repo_root};
use polygraph_subgraph_postgres::{Config, Subgraph};
use serde_json::{Value, json};

async fn subgraph_on(url: &str) -> (Subgraph, sqlx::PgPool) {
    let config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    (
        Subgraph::with_pool(&config, pool.clone()).await.unwrap(),
        pool,
    )
}

/// Follows `after` cursors until `hasNextPage` is false; returns the ids in page order.
async fn walk(subgraph: &Subgraph, field: &str, order_by: &str, first: u32) -> Vec<String> {
    let query = format!(
        "query($after: String) {{ {field}(order_by: {order_by}, first: {first}, after: $after) {{
             edges {{ cursor node {{ id }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    let mut ids = Vec::new();
    let mut after = Value::Null;
    for _ in 0..10_000 {
        let response =
            common::answer(&subgraph.served(), &query, None, json!({ "after": after })).await;
        assert!(response.get("errors").is_none(), "{response}");
        let data = response["data"].clone();
        let connection = &data[field];
        let edges = connection["edges"].as_array().unwrap();
        assert!(edges.len() <= first as usize);
        ids.extend(
            edges
                .iter()
                .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned()),
        );
        if connection["pageInfo"]["hasNextPage"] == json!(false) {
            return ids;
        }
        assert_eq!(
            connection["pageInfo"]["endCursor"],
            edges.last().unwrap()["cursor"]
        );
        after = connection["pageInfo"]["endCursor"].clone();
    }
    panic!("pagination did not end");
}

async fn ids(pool: &sqlx::PgPool, sql: &str) -> Vec<String> {
    sqlx::query_as::<_, (i64,)>(sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id,)| id.to_string())
        .collect()
}

#[tokio::test]
async fn pages_cover_every_row_once_in_order() {
    let (subgraph, pool) = subgraph_on(&endpoints().postgres).await;
    let walked = walk(&subgraph, "orders_connection", "[{ total: DESC }]", 7).await;
    assert_eq!(
        walked,
        ids(&pool, "SELECT id FROM orders ORDER BY total DESC, id").await
    );
    let walked = walk(
        &subgraph,
        "users_connection",
        "[{ country: ASC }, { name: DESC }]",
        13,
    )
    .await;
    assert_eq!(
        walked,
        ids(
            &pool,
            "SELECT id FROM users ORDER BY country ASC, name DESC, id"
        )
        .await
    );
}

#[tokio::test]
async fn nulls_sort_where_postgresql_puts_them() {
    let scratch = ScratchDatabase::create().await;
    let (subgraph, pool) = subgraph_on(&scratch.url).await;
    sqlx::query(
        "INSERT INTO products (id, name, category, brand, price, description, created_at)
         SELECT n, 'p' || n, 'c', 'b', n, CASE WHEN n % 3 = 0 THEN NULL ELSE 'd' || (n % 4) END, now()
           FROM generate_series(1, 20) AS n",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (order_by, sql_order) in [
        ("[{ description: ASC }]", "description ASC, id"),
        ("[{ description: DESC }]", "description DESC, id"),
        (
            "[{ description: ASC_NULLS_FIRST }]",
            "description ASC NULLS FIRST, id",
        ),
        (
            "[{ description: DESC_NULLS_LAST }]",
            "description DESC NULLS LAST, id",
        ),
    ] {
        let walked = walk(&subgraph, "products_connection", order_by, 3).await;
        let expected = ids(
            &pool,
            &format!("SELECT id FROM products ORDER BY {sql_order}"),
        )
        .await;
        assert_eq!(walked, expected, "{order_by}");
    }
    let response = common::answer(
        &subgraph.served(),
        r#"{ products_connection(after: "bm90IGEgY3Vyc29y") { edges { cursor } } }"#,
        None,
        Value::Null,
    )
    .await;
    assert_eq!(response["errors"][0]["message"], "invalid cursor");
    assert_eq!(
        response["errors"][0]["path"],
        json!(["products_connection"])
    );
    pool.close().await;
    drop(subgraph);
    scratch.drop().await;
}
