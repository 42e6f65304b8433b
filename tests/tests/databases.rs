//! Each database holds the demo data the generator wrote, read back with the Rust client the
//! database's subgraph uses: counts match the scale and sample records match the generator.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{SERVERS_HINT, endpoints, expected_spec};
use futures::TryStreamExt as _;
use polygraph_demo::load::DATA_VERSION;

#[tokio::test]
async fn postgres_holds_the_demo_shop() {
    let spec = expected_spec();
    let counts = spec.counts();
    let pool = sqlx::PgPool::connect(&endpoints().postgres)
        .await
        .unwrap_or_else(|error| panic!("connecting to PostgreSQL: {error}; {SERVERS_HINT}"));

    let marker: (i64, i64, i32) =
        sqlx::query_as("SELECT seed, scale, version FROM polygraph_demo.loaded")
            .fetch_one(&pool)
            .await
            .expect("the loader's marker");
    assert_eq!(
        marker,
        (spec.seed as i64, spec.scale as i64, DATA_VERSION as i32)
    );

    for (table, expected) in [
        ("users", counts.users),
        ("products", counts.products),
        ("orders", counts.orders),
        ("order_items", counts.order_items),
    ] {
        let (count,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(count as u64, expected, "rows in {table}");
    }

    let user = spec.user(7);
    let (name, email, country): (String, String, String) =
        sqlx::query_as("SELECT name, email, country FROM users WHERE id = $1")
            .bind(7_i64)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (name.as_str(), email.as_str(), country.as_str()),
        (user.name.as_str(), user.email.as_str(), user.country)
    );

    // The order's total is the sum of its lines, and every line names a real product.
    let order = spec.order(5);
    let (user_id, total, lines): (i64, String, i64) = sqlx::query_as(
        "SELECT o.user_id, o.total::text, count(i.*)
           FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
          WHERE o.id = $1 GROUP BY o.user_id, o.total",
    )
    .bind(5_i64)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(user_id as u64, order.user_id);
    assert_eq!(
        total,
        format!(
            "{}.{:02}",
            order.total_cents() / 100,
            order.total_cents() % 100
        )
    );
    assert_eq!(lines as usize, order.items.len());
}

#[tokio::test]
async fn mongodb_holds_the_reviews() {
    use mongodb::bson::{Document, doc, oid::ObjectId};

    let spec = expected_spec();
    let endpoints = endpoints();
    let client = mongodb::Client::with_uri_str(&endpoints.mongodb)
        .await
        .unwrap();
    let reviews = client
        .database(&endpoints.mongodb_database)
        .collection::<Document>("reviews");
    let count = reviews
        .count_documents(doc! {})
        .await
        .unwrap_or_else(|error| panic!("counting reviews: {error}; {SERVERS_HINT}"));
    assert_eq!(count, spec.reviews());

    let expected = spec.review(3);
    let review = reviews
        .find_one(doc! { "review_id": 3_i64 })
        .await
        .unwrap()
        .expect("review 3");
    assert_eq!(
        review.get_object_id("_id").unwrap(),
        ObjectId::from_bytes(expected.object_id)
    );
    assert_eq!(
        review.get_i64("product_id").unwrap() as u64,
        expected.product_id
    );
    assert_eq!(review.get_i32("rating").unwrap() as u32, expected.rating);
    assert_eq!(review.get_str("title").unwrap(), expected.title);

    // One round trip for many keys, as the subgraph's `_entities` will do it.
    let wanted: Vec<i64> = (1..=20).collect();
    let found: Vec<Document> = reviews
        .find(doc! { "review_id": { "$in": wanted.clone() } })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let found: BTreeSet<i64> = found
        .iter()
        .map(|d| d.get_i64("review_id").unwrap())
        .collect();
    assert_eq!(found, wanted.into_iter().collect());
}

#[tokio::test]
async fn elasticsearch_holds_the_product_index() {
    use elasticsearch::http::transport::Transport;
    use elasticsearch::{CountParts, Elasticsearch, MgetParts, SearchParts};
    use serde_json::{Value, json};

    let spec = expected_spec();
    let client = Elasticsearch::new(Transport::single_node(&endpoints().elasticsearch).unwrap());
    let count: Value = client
        .count(CountParts::Index(&["products"]))
        .send()
        .await
        .unwrap_or_else(|error| panic!("counting products: {error}; {SERVERS_HINT}"))
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"].as_u64(), Some(spec.products()), "{count}");

    let docs: Value = client
        .mget(MgetParts::Index("products"))
        .body(json!({ "ids": ["1", "2", "3"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = docs["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_source"]["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=3).map(|id| spec.product(id).name).collect();
    assert_eq!(names, expected);

    // Full text finds a product by the words of its name.
    let product = spec.product(2);
    let hits: Value = client
        .search(SearchParts::Index(&["products"]))
        .body(json!({ "query": { "match": { "name": { "query": product.name, "operator": "and" } } } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<u64> = hits["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_source"]["id"].as_u64().unwrap())
        .collect();
    assert!(
        ids.contains(&2),
        "search for {:?} found {ids:?}",
        product.name
    );
}

#[tokio::test]
async fn redis_holds_the_online_features() {
    let spec = expected_spec();
    let client = redis::Client::open(endpoints().redis.as_str()).unwrap();
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|error| panic!("connecting to Redis: {error}; {SERVERS_HINT}"));

    let expected = spec.user_features(7);
    let hash: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("features:user:7")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(hash["click_rate_7d"], expected.click_rate_7d.to_string());
    assert_eq!(
        hash["orders_30d"].parse::<i64>().unwrap(),
        expected.orders_30d
    );
    assert_eq!(
        serde_json::from_str::<Vec<f64>>(&hash["embedding"]).unwrap(),
        expected.embedding
    );

    // Every user and product has a feature hash: fetched for all at once with one pipeline.
    let mut pipe = redis::pipe();
    for id in 1..=spec.users() {
        pipe.exists(format!("features:user:{id}"));
    }
    for id in 1..=spec.products() {
        pipe.exists(format!("features:product:{id}"));
    }
    let present: Vec<bool> = pipe.query_async(&mut connection).await.unwrap();
    assert_eq!(present.len() as u64, spec.users() + spec.products());
    assert!(
        present.iter().all(|p| *p),
        "some feature hashes are missing"
    );
}

#[tokio::test]
async fn clickhouse_holds_the_events() {
    let spec = expected_spec();
    let counts = spec.counts();
    let client = clickhouse::Client::default()
        .with_url(&endpoints().clickhouse)
        .with_database(&endpoints().clickhouse_database)
        .with_validation(false);
    for (table, expected) in [
        ("order_events", counts.order_items),
        ("click_events", counts.clicks),
        ("feature_history", counts.feature_history),
    ] {
        let count: u64 = client
            .query("SELECT count() FROM ?")
            .bind(clickhouse::sql::Identifier(table))
            .fetch_one()
            .await
            .unwrap_or_else(|error| panic!("counting {table}: {error}; {SERVERS_HINT}"));
        assert_eq!(count, expected, "rows in {table}");
    }

    // Units sold of one product, computed by ClickHouse, equal the generator's.
    let product_id = 3;
    let expected_units: u64 = (1..=spec.orders())
        .flat_map(|id| spec.order(id).items)
        .filter(|item| item.product_id == product_id)
        .map(|item| u64::from(item.quantity))
        .sum();
    let units: u64 = client
        .query("SELECT sum(toUInt64(quantity)) FROM order_events WHERE product_id = ?")
        .bind(product_id)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(units, expected_units);
}

#[tokio::test]
async fn neo4j_holds_the_graph() {
    use neo4j::{ValueReceive, ValueSend};

    let spec = expected_spec();
    let counts = spec.counts();
    let endpoints = endpoints();
    let result = tokio::task::spawn_blocking(move || {
        let driver = polygraph_demo::load::neo4j_driver(&endpoints).unwrap();
        let scalar = |query: &str| -> i64 {
            let result = driver
                .execute_query(query)
                .run()
                .unwrap_or_else(|error| panic!("{query}: {error}; {SERVERS_HINT}"));
            match result.into_scalar().unwrap() {
                ValueReceive::Integer(n) => n,
                other => panic!("{query} returned {other:?}"),
            }
        };
        let users = scalar("MATCH (u:User) RETURN count(u)");
        let products = scalar("MATCH (p:Product) RETURN count(p)");
        let follows = scalar("MATCH (:User)-[f:FOLLOWS]->(:User) RETURN count(f)");
        let followees = driver
            .execute_query(
                "MATCH (:User {id: $id})-[:FOLLOWS]->(b:User) RETURN b.id AS id ORDER BY id",
            )
            .with_parameters(HashMap::from([("id", ValueSend::Integer(3))]))
            .run()
            .unwrap();
        let followees: Vec<u64> = followees
            .records
            .into_iter()
            .map(|mut record| match record.take_value("id") {
                Some(ValueReceive::Integer(id)) => id as u64,
                other => panic!("id was {other:?}"),
            })
            .collect();
        (users, products, follows, followees)
    })
    .await
    .unwrap();
    assert_eq!(result.0 as u64, counts.users);
    assert_eq!(result.1 as u64, counts.products);
    assert_eq!(result.2 as u64, counts.follows);
    assert_eq!(result.3, spec.followees(3));
}
