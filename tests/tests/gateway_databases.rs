//! The gateway over the demo's six database subgraphs, each against its real server: one request
//! answers with search hits (Elasticsearch), their PostgreSQL fields and their MongoDB reviews;
//! another with a user's online features (Redis), recommendations through the people they
//! follow (Neo4j) and those products' weekly sales (ClickHouse). Subgraph requests and database
//! round trips are counted.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{endpoints, expected_spec, federation::post, repo_root, serve};
use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::supergraph::Supergraph;
use polygraph_subgraph_core::server;
use serde_json::json;

struct Demo {
    url: String,
    postgres: Arc<polygraph_subgraph_postgres::execute::Executor>,
    mongodb: polygraph_subgraph_mongodb::Subgraph,
    elasticsearch: polygraph_subgraph_elasticsearch::Subgraph,
    redis: polygraph_subgraph_redis::Subgraph,
    clickhouse: polygraph_subgraph_clickhouse::Subgraph,
    neo4j: polygraph_subgraph_neo4j::Subgraph,
    /// HTTP requests each subgraph received from the gateway.
    requests: HashMap<&'static str, Arc<AtomicU64>>,
    gateway: Arc<Gateway>,
}

impl Demo {
    fn requests(&self) -> HashMap<&'static str, u64> {
        self.requests
            .iter()
            .map(|(name, count)| (*name, count.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Serves `app`, counting its requests.
async fn serve_counted(
    app: polygraph_subgraph_core::server::Router,
) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let app = app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counter.fetch_add(1, Ordering::Relaxed);
            next.run(request)
        },
    ));
    (serve(app).await, count)
}

/// The six subgraphs as their demo configs set them up, on free ports, and the gateway over
/// the checked-in supergraph.
async fn demo() -> Demo {
    demo_with(|_| server::Trust::default(), |_| {}).await
}

/// [`demo`] with each subgraph trusting what `trust` gives for its name, and the gateway's
/// settings adjusted.
async fn demo_with(
    trust: impl Fn(&str) -> server::Trust,
    adjust: impl FnOnce(&mut Settings),
) -> Demo {
    let root = repo_root();
    let postgres_config =
        polygraph_subgraph_postgres::Config::from_file(&root.join("config/postgres.yaml")).unwrap();
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let postgres = polygraph_subgraph_postgres::Subgraph::with_pool(&postgres_config, pool)
        .await
        .unwrap();
    let mongodb = polygraph_subgraph_mongodb::Subgraph::start(
        &polygraph_subgraph_mongodb::Config::from_file(&root.join("config/mongodb.yaml")).unwrap(),
    )
    .await
    .unwrap();
    let elasticsearch = polygraph_subgraph_elasticsearch::Subgraph::start(
        &polygraph_subgraph_elasticsearch::Config::from_file(
            &root.join("config/elasticsearch.yaml"),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let redis = polygraph_subgraph_redis::Subgraph::start(
        &polygraph_subgraph_redis::Config::from_file(&root.join("config/redis.yaml")).unwrap(),
    )
    .await
    .unwrap();
    let clickhouse = polygraph_subgraph_clickhouse::Subgraph::start(
        &polygraph_subgraph_clickhouse::Config::from_file(&root.join("config/clickhouse.yaml"))
            .unwrap(),
    )
    .await
    .unwrap();
    let neo4j = polygraph_subgraph_neo4j::Subgraph::start(
        &polygraph_subgraph_neo4j::Config::from_file(&root.join("config/neo4j.yaml")).unwrap(),
    )
    .await
    .unwrap();
    let mut settings = Settings::default();
    // The demo supergraph's mutations name the demo's policies.
    settings.authorization.policies = Some(root.join("policies"));
    let served = [
        ("postgres", server::share(postgres.served())),
        ("mongodb", server::share(mongodb.served())),
        ("elasticsearch", server::share(elasticsearch.served())),
        ("redis", server::share(redis.served())),
        ("clickhouse", server::share(clickhouse.served())),
        ("neo4j", server::share(neo4j.served())),
    ];
    let mut requests = HashMap::new();
    for (name, schema) in served {
        let (address, count) = serve_counted(server::app(schema, trust(name))).await;
        requests.insert(name, count);
        settings
            .subgraph_urls
            .insert(name.to_owned(), format!("http://{address}/graphql"));
    }
    adjust(&mut settings);
    let sdl = std::fs::read_to_string(root.join("schema/supergraph.graphql")).unwrap();
    let gateway = Arc::new(Gateway::new(Supergraph::parse(&sdl).unwrap(), settings).unwrap());
    gateway.start().await;
    let address = serve(polygraph_gateway::http::app(gateway.clone())).await;
    Demo {
        url: format!("http://{address}/graphql"),
        postgres: postgres.executor.clone(),
        mongodb,
        elasticsearch,
        redis,
        clickhouse,
        neo4j,
        requests,
        gateway,
    }
}

#[tokio::test]
async fn search_hits_come_with_database_fields_and_reviews_in_one_request() {
    let demo = demo().await;
    let counts = |demo: &Demo| {
        (
            demo.postgres.statements(),
            demo.mongodb.commands(),
            demo.elasticsearch.requests(),
        )
    };
    let before = counts(&demo);
    let (status, _, body) = post(
        &demo.url,
        &json!({ "query": "{ searchProducts(query: \"lamp\", size: 20, facets: {terms: [{field: category}]}) {
            total
            hits { highlights { field } product {
              id name price tags reviewCount averageRating
              reviews(order_by: [{rating: DESC}], limit: 3) { rating title author { name } }
            } }
            facets { terms { buckets { value count } } }
        } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body:#}");
    let after = counts(&demo);
    // Search once; PostgreSQL for the products' fields and again for the review authors; MongoDB
    // for the reviews, their count and their average: one round trip per field per step.
    assert_eq!(after.2 - before.2, 1, "Elasticsearch requests");
    assert_eq!(after.0 - before.0, 2, "PostgreSQL statements");
    assert_eq!(after.1 - before.1, 3, "MongoDB commands");

    let result = &body["data"]["searchProducts"];
    let hits = result["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert_eq!(hits.len() as u64, result["total"].as_u64().unwrap().min(20));
    let mut reviews_seen = 0;
    for hit in hits {
        let product = &hit["product"];
        // The name comes from PostgreSQL; the search matched it in Elasticsearch.
        assert!(
            product["name"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("lamp"),
            "{product}"
        );
        assert!(product["price"].as_f64().unwrap() > 0.0);
        let reviews = product["reviews"].as_array().unwrap();
        assert_eq!(
            reviews.len() as u64,
            product["reviewCount"].as_u64().unwrap().min(3)
        );
        let ratings: Vec<u64> = reviews
            .iter()
            .map(|r| r["rating"].as_u64().unwrap())
            .collect();
        assert!(
            ratings.windows(2).all(|pair| pair[0] >= pair[1]),
            "{ratings:?}"
        );
        for review in reviews {
            assert!(!review["author"]["name"].as_str().unwrap().is_empty());
        }
        reviews_seen += reviews.len();
    }
    assert!(
        reviews_seen > 0,
        "no product of the search has reviews: {body}"
    );
    assert!(
        result["facets"]["terms"][0]["buckets"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    );
}

#[tokio::test]
async fn reviews_reach_postgres_entities_and_users_reach_their_reviews() {
    let demo = demo().await;
    let (status, _, body) = post(
        &demo.url,
        &json!({ "query": "{ reviews(where: {rating: {_eq: 5}}, limit: 5, order_by: [{review_id: ASC}]) {
              review_id product { id name reviewCount } author { id email reviews(limit: 100) { review_id } }
            }
            users(limit: 2, order_by: [{id: ASC}]) { id reviews { rating } } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body:#}");
    for review in body["data"]["reviews"].as_array().unwrap() {
        assert!(review["product"]["name"].is_string(), "{review}");
        assert!(review["product"]["reviewCount"].as_u64().unwrap() >= 1);
        let own = review["author"]["reviews"].as_array().unwrap();
        assert!(
            own.iter().any(|r| r["review_id"] == review["review_id"]),
            "{review}"
        );
    }
    let users = body["data"]["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    let total: usize = users
        .iter()
        .map(|u| u["reviews"].as_array().unwrap().len())
        .sum();
    assert!(total <= expected_spec().reviews() as usize);
}

#[tokio::test]
async fn a_user_gets_features_recommendations_and_their_sales_in_one_request() {
    let demo = demo().await;
    let requests_before = demo.requests();
    let statements_before = (
        demo.redis.round_trips(),
        demo.neo4j.statements(),
        demo.clickhouse.statements(),
    );
    let (status, _, body) = post(
        &demo.url,
        &json!({ "query": "{ users(where: {id: {_in: [\"1\", \"2\", \"3\", \"4\"]}}, order_by: [{id: ASC}]) {
            id name
            onlineFeatures { click_rate_7d segment embedding }
            recommendedProducts(limit: 3) {
              id name
              sales(from: \"2025-01-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\", granularity: WEEK) { start orders units revenue }
            }
        } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body:#}");
    let after = demo.requests();
    let called = |name: &str| after[name] - requests_before[name];
    // The plan: PostgreSQL for the users; then Redis and Neo4j for them; then PostgreSQL and
    // ClickHouse for the recommended products. Each subgraph once per step it takes part in.
    assert_eq!(called("redis"), 1);
    assert_eq!(called("neo4j"), 1);
    assert_eq!(called("clickhouse"), 1);
    assert_eq!(called("postgres"), 2);
    assert_eq!(called("mongodb") + called("elasticsearch"), 0);
    // And each of those requests is one round trip to its database.
    assert_eq!(demo.redis.round_trips() - statements_before.0, 1);
    assert_eq!(demo.neo4j.statements() - statements_before.1, 1);
    assert_eq!(demo.clickhouse.statements() - statements_before.2, 1);

    let users = body["data"]["users"].as_array().unwrap();
    assert_eq!(users.len(), 4);
    let mut with_sales = 0;
    for user in users {
        assert!(user["onlineFeatures"]["click_rate_7d"].is_f64(), "{user}");
        assert!(
            !user["onlineFeatures"]["embedding"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        let recommended = user["recommendedProducts"].as_array().unwrap();
        assert!(recommended.len() <= 3);
        for product in recommended {
            assert!(product["name"].is_string(), "{product}");
            let weeks = product["sales"].as_array().unwrap();
            assert!(
                weeks
                    .iter()
                    .all(|w| w["start"].as_str().unwrap() >= "2024-12-30"),
                "{product}"
            );
            if !weeks.is_empty() {
                with_sales += 1;
            }
        }
    }
    assert!(with_sales > 0, "no recommended product sold at all: {body}");
}

#[tokio::test]
async fn entity_fetches_to_one_subgraph_in_one_step_share_a_request() {
    let demo = demo().await;
    let before = demo.requests();
    let (status, _, body) = post(
        &demo.url,
        &json!({ "query": "{ users_by_pk(id: \"1\") { name follows { id name } recommendedProducts(limit: 3) { id name } } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body:#}");
    let after = demo.requests();
    // The user, then (after Neo4j) the followees' names and the products' names: two
    // `_entities` fetches to PostgreSQL at one step, sent as one request.
    assert_eq!(after["postgres"] - before["postgres"], 2);
    assert_eq!(after["neo4j"] - before["neo4j"], 1);
    let user = &body["data"]["users_by_pk"];
    assert!(user["name"].is_string());
    for followee in user["follows"].as_array().unwrap() {
        assert!(followee["name"].is_string(), "{followee}");
    }
    let products = user["recommendedProducts"].as_array().unwrap();
    assert!(!products.is_empty());
    for product in products {
        assert!(product["name"].is_string(), "{product}");
    }
}

/// Posts `query` to the gateway; the `Cache-Control` header and the body.
async fn cache_control(
    url: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> (String, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": query }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (cache, response.json().await.unwrap())
}

#[tokio::test]
async fn answers_may_be_cached_as_long_as_every_subgraph_response_they_were_built_from() {
    let demo = demo().await;
    let url = demo.url.as_str();
    // The demo configs cache products for 300 s, users for 60 s, reviews (MongoDB) for 120 s,
    // online features (Redis) for 30 s, relationships (Neo4j) and sales (ClickHouse) for 300 s;
    // search hits have no hint.
    let cases = [
        ("{ products(limit: 3) { id name } }", "max-age=300, public"),
        (
            "{ users(limit: 2) { name } products(limit: 1) { name } }",
            "max-age=60, public",
        ),
        (
            "{ products(limit: 2) { name reviews { rating } } }",
            "max-age=120, public",
        ),
        // Online features (Redis) for 30 s.
        (
            r#"{ users_by_pk(id: "1") { name onlineFeatures { segment } } }"#,
            "max-age=30, public",
        ),
        // Recommendations (Neo4j) and their sales (ClickHouse) for 300 s.
        (
            r#"{ users_by_pk(id: "1") { recommendedProducts(limit: 2) { name sales(from: "2025-01-01T00:00:00Z", to: "2025-02-01T00:00:00Z", granularity: MONTH) { units } } } }"#,
            "max-age=60, public",
        ),
        (
            "{ products(limit: 2) { name reviews { rating author { name } } } }",
            "max-age=60, public",
        ),
        // Search results (Elasticsearch) for 60 s.
        (
            r#"{ searchProducts(query: "lamp", size: 2) { total } products(limit: 1) { name } }"#,
            "max-age=60, public",
        ),
        ("{ __schema { queryType { name } } }", "no-store"),
    ];
    for (query, expected) in cases {
        let (cache, body) = cache_control(url, query, &[]).await;
        assert!(body.get("errors").is_none(), "{query}: {body}");
        assert_eq!(cache, expected, "{query}");
    }
    // A cacheable answer says what else it depends on.
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": "{ products(limit: 1) { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("vary").map(|v| v.to_str().unwrap()),
        Some("accept, x-polygraph-explain")
    );
    // Credentials make it the client's own.
    let (cache, _) = cache_control(
        url,
        "{ products(limit: 3) { id name } }",
        &[("authorization", "Bearer a-token")],
    )
    .await;
    assert_eq!(cache, "max-age=300, private");
    // An answer with errors is not kept.
    let (cache, body) = cache_control(
        url,
        r#"{ products(where: { id: { _eq: "x" } }) { id } }"#,
        &[],
    )
    .await;
    assert!(body.get("errors").is_some(), "{body}");
    assert_eq!(cache, "no-store");
}

/// The PostgreSQL subgraph extends MongoDB's `Review` (see `extends` in config/postgres.yaml):
/// the gateway fetches each review's `user_id` and `product_id` from MongoDB (`@requires`),
/// then PostgreSQL answers every review's author orders in one statement, and every review's
/// product sales in another, however many reviews.
#[tokio::test]
async fn postgres_adds_fields_to_mongodb_reviews_through_requires() {
    let demo = demo().await;
    let statements = demo.postgres.statements();
    let (status, _, body) = post(
        &demo.url,
        &json!({ "query": "{ reviews(limit: 20, order_by: [{review_id: ASC}]) {
              review_id
              author_orders(order_by: [{total: DESC}], limit: 2) { id user_id total }
              product_sales { count sum { quantity } }
            } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        demo.postgres.statements() - statements,
        2,
        "one statement per extension field for all 20 reviews"
    );
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let reviews = body["data"]["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 20);
    let endpoints = endpoints();
    let mongo = mongodb::Client::with_uri_str(&endpoints.mongodb)
        .await
        .unwrap();
    let collection = mongo
        .database(&endpoints.mongodb_database)
        .collection::<mongodb::bson::Document>("reviews");
    for review in reviews {
        let id: i64 = review["review_id"].as_str().unwrap().parse().unwrap();
        let stored = collection
            .find_one(mongodb::bson::doc! { "review_id": id })
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("review {id} is in MongoDB"));
        let user = stored.get_i64("user_id").unwrap();
        let product = stored.get_i64("product_id").unwrap();
        let expected: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM orders WHERE user_id = $1 ORDER BY total DESC LIMIT 2")
                .bind(user)
                .fetch_all(&pool)
                .await
                .unwrap();
        let orders = review["author_orders"].as_array().unwrap();
        let ids: Vec<String> = orders
            .iter()
            .map(|order| order["id"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<String> = expected.iter().map(|(id,)| id.to_string()).collect();
        assert_eq!(ids, expected, "{review}");
        for order in orders {
            assert_eq!(order["user_id"], json!(user.to_string()));
        }
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM order_items WHERE product_id = $1")
                .bind(product)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(review["product_sales"]["count"], json!(count), "{review}");
    }
}

#[tokio::test]
async fn the_fan_out_query_is_refused_by_default_before_any_fetch() {
    let demo = demo().await;
    let fan_out = |limit: u32| {
        json!({ "query": format!(
            "{{ users(limit: {limit}) {{ follows {{ follows {{ follows {{ follows {{ follows {{ follows {{ follows {{ follows {{ id }} }} }} }} }} }} }} }} }} }}"
        ) })
    };
    let before = demo.requests();
    let (status, _, body) = post(&demo.url, &fan_out(200)).await;
    assert_eq!(status, 200, "application/json: a request error is a 200");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "COST_ESTIMATED_TOO_EXPENSIVE",
        "{body}"
    );
    assert!(body.get("data").is_none(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("200000"), "names the limit: {message}");
    assert_eq!(demo.requests(), before, "no subgraph was called");
    // Two users' eight levels of follows (about 4 each, by the Neo4j subgraph's @listSize)
    // come in under it, and run.
    let (status, _, body) = post(&demo.url, &fan_out(2)).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["users"].as_array().unwrap().len(), 2);
}

/// A write through the gateway drops the cached entities it returns, by key: the products it
/// names are fetched again, the others still come from the cache. A write that names none of
/// the products it changed drops them all.
#[tokio::test]
async fn a_write_drops_the_cached_entities_it_returns() {
    let redis = common::redis::OwnRedis::start();
    let url = redis.url();
    // The gateway signs its callers' claims for the subgraphs; PostgreSQL writes only for a
    // signed-in caller.
    let keys = tempfile::tempdir().unwrap();
    let (pem, jwks) = polygraph_subgraph_core::claims::Signer::generate_pem();
    std::fs::write(keys.path().join("gateway.pem"), pem).unwrap();
    let trust = |name: &str| server::Trust {
        verifier: Some(polygraph_subgraph_core::claims::Verifier::new(&jwks, name).unwrap()),
        ..server::Trust::default()
    };
    let demo = demo_with(trust, |settings| {
        settings.claims.signing_key_file = Some(keys.path().join("gateway.pem"));
        settings.redis.url = Some(url);
        settings.entity_cache.enabled = true;
        settings.entity_cache.default_ttl_seconds = Some(60);
        let issuers = json!([{ "issuer": common::oidc::issuer(), "audiences": ["polygraph"] }]);
        settings.authentication = serde_json::from_value(json!({ "issuers": issuers })).unwrap();
    })
    .await;
    let admin = common::oidc::token("admin", "polygraph-demo-secret-admin").await;
    // Products 1 and 2 with their MongoDB reviews: one `_entities` fetch of two products.
    let query = r#"{ products(where: {id: {_in: ["1", "2"]}}, order_by: [{id: ASC}]) { id name reviews(limit: 1) { rating } } }"#;
    let read = || async {
        let (status, _, body) = post(&demo.url, &json!({ "query": query })).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body
    };
    let write = |mutation: String| {
        let (url, admin) = (demo.url.clone(), admin.clone());
        async move {
            let answer = reqwest::Client::new()
                .post(&url)
                .bearer_auth(admin)
                .json(&json!({ "query": mutation }))
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = answer.json().await.unwrap();
            assert!(body.get("errors").is_none(), "{body}");
        }
    };
    let counts = || demo.gateway.entities().counts();
    let first = read().await;
    let name = first["data"]["products"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(counts(), (0, 2), "both products fetched: {first}");
    assert_eq!(read().await, first);
    assert_eq!(counts(), (2, 2), "both from the cache");

    // Product 1 rewritten (to the name it has) and returned by key: only it is dropped.
    write(format!(
        r#"mutation {{ update_products(where: {{id: {{_eq: "1"}}}}, _set: {{name: "{name}"}}) {{ returning {{ id }} }} }}"#
    ))
    .await;
    assert_eq!(read().await, first);
    assert_eq!(
        counts(),
        (3, 3),
        "product 1 fetched again, product 2 from the cache"
    );

    // A write that returns only a count names no product: every product is dropped.
    write(format!(
        r#"mutation {{ update_products(where: {{id: {{_eq: "1"}}}}, _set: {{name: "{name}"}}) {{ affected_rows }} }}"#
    ))
    .await;
    assert_eq!(read().await, first);
    assert_eq!(counts(), (3, 5), "both fetched again");
}

/// Generated operations over the demo supergraph (the differential test's generator, with
/// twins), checked by invariants that need no monolith: a field's aliased twin answers the
/// same as the field, every `__typename` names an object type its position may hold, a valid
/// operation is never refused as invalid, and no argument the caller chose makes a database
/// fail — every other operation with hostile argument values (the ends of `Int` and `Float`,
/// NUL and other control characters, quotes, long strings). `POLYGRAPH_DIFFERENTIAL_SEED`
/// replays a run.
#[tokio::test(flavor = "multi_thread")]
async fn generated_operations_keep_the_demo_invariants() {
    use polygraph_testkit::operations::{Seeded, Shape, generate};
    let demo = demo().await;
    let sdl = std::fs::read_to_string(repo_root().join("schema/supergraph.graphql")).unwrap();
    let api = Supergraph::parse(&sdl).unwrap().api_schema;
    let first = std::env::var("POLYGRAPH_DIFFERENTIAL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    let shape = Shape {
        depth: 3,
        width: 3,
        fields: 12,
        twins: true,
        ..Shape::default()
    };
    let (mut answered, mut twins) = (0, 0);
    let mut codes: HashMap<String, usize> = HashMap::new();
    let count: u64 = std::env::var("POLYGRAPH_DIFFERENTIAL_OPERATIONS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(200);
    for seed in first..first + count {
        let shape = Shape {
            hostile: seed % 2 == 1,
            ..shape
        };
        let operation = generate(&api, &mut Seeded(seed), shape);
        let request = json!({ "query": operation.query, "variables": operation.variables });
        let (status, _, body) = post(&demo.url, &request).await;
        let context = || format!("seed {seed}\n{}\n{body}", operation.query);
        assert_eq!(status, 200, "{}", context());
        for code in common::federation::codes(&body) {
            assert!(
                !matches!(
                    code.as_str(),
                    "GRAPHQL_VALIDATION_FAILED"
                        | "GRAPHQL_PARSE_FAILED"
                        | "QUERY_PLANNING_FAILED"
                        // What the caller chose cannot break a database: bad input is theirs.
                        | "DATABASE_ERROR"
                        | "INTERNAL_SERVER_ERROR"
                ),
                "{}",
                context()
            );
            *codes.entry(code).or_default() += 1;
        }
        if let Some(data) = body.get("data").filter(|data| !data.is_null()) {
            answered += 1;
            twins += usize::from(operation.query.contains("_twin"));
            let broken = operation.broken_invariants(data);
            assert!(broken.is_empty(), "{broken:?}\n{}", context());
        }
    }
    eprintln!(
        "{count} operations from seed {first}: {answered} answered, {twins} with twins; errors {codes:?}"
    );
    assert!(
        answered as u64 > count * 3 / 10 && twins as u64 > count / 7,
        "{answered} answered, {twins} with twins"
    );
}

/// The catalog `fuzz/introspection/NAME.json` keeps.
fn kept<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, String> {
    let path = repo_root().join(format!("fuzz/introspection/{name}.json"));
    let text =
        std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
}

/// What is wrong with the kept catalog of `name`: `built`, the subgraph SDL built from it,
/// must be `live_sdl`, the one start-up made from the database. With
/// `POLYGRAPH_UPDATE_INTROSPECTION=1`, writes `live` (the catalog start-up read) there instead.
fn outdated<T: serde::Serialize>(
    name: &str,
    live: &T,
    live_sdl: &str,
    built: Result<String, String>,
) -> Option<String> {
    if std::env::var("POLYGRAPH_UPDATE_INTROSPECTION").is_ok_and(|value| value == "1") {
        let path = repo_root().join(format!("fuzz/introspection/{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(live).unwrap() + "\n").unwrap();
        return None;
    }
    match built {
        Ok(sdl) if sdl == live_sdl => None,
        Ok(_) => Some(format!("the kept {name} catalog builds another schema")),
        Err(error) => Some(format!("the kept {name} catalog: {error}")),
    }
}

/// The fuzz targets build each subgraph from the catalog its database gave
/// (`fuzz/introspection/`), not from the database; that catalog must still build the schema
/// the live database does, or they fuzz a subgraph nobody runs.
#[tokio::test]
async fn the_fuzz_targets_know_the_demo_databases() {
    use polygraph_subgraph_clickhouse as clickhouse;
    use polygraph_subgraph_elasticsearch as elasticsearch;
    use polygraph_subgraph_mongodb as mongodb;
    use polygraph_subgraph_neo4j as neo4j;
    use polygraph_subgraph_postgres as postgres;
    let root = repo_root();
    let config = |name: &str| root.join(format!("config/{name}.yaml"));
    let nowhere = |scheme: &str| format!("{scheme}://127.0.0.1:9");
    let sdl = |built: anyhow::Result<String>| built.map_err(|error| format!("{error:#}"));
    let mut outdated_catalogs = Vec::new();

    let settings = postgres::Config::from_file(&config("postgres")).unwrap();
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let live = postgres::Subgraph::with_pool(&settings, pool)
        .await
        .unwrap();
    let built = kept("postgres").and_then(|kept| {
        sdl(
            postgres::Subgraph::from_introspection(&settings, &kept, &nowhere("postgres"))
                .map(|built| built.sdl()),
        )
    });
    outdated_catalogs.extend(outdated(
        "postgres",
        live.introspection(),
        &live.sdl(),
        built,
    ));

    let settings = mongodb::Config::from_file(&config("mongodb")).unwrap();
    let live = mongodb::Subgraph::start(&settings).await.unwrap();
    let built = match kept("mongodb") {
        Ok(kept) => {
            sdl(
                mongodb::Subgraph::from_introspection(&settings, &kept, &nowhere("mongodb"))
                    .await
                    .map(|built| built.sdl()),
            )
        }
        Err(error) => Err(error),
    };
    outdated_catalogs.extend(outdated(
        "mongodb",
        live.introspection(),
        &live.sdl(),
        built,
    ));

    let settings = elasticsearch::Config::from_file(&config("elasticsearch")).unwrap();
    let live = elasticsearch::Subgraph::start(&settings).await.unwrap();
    let built = kept("elasticsearch").and_then(|kept| {
        sdl(
            elasticsearch::Subgraph::from_introspection(&settings, &kept, &nowhere("http"))
                .map(|built| built.sdl()),
        )
    });
    outdated_catalogs.extend(outdated(
        "elasticsearch",
        live.introspection(),
        &live.sdl(),
        built,
    ));

    let settings = clickhouse::Config::from_file(&config("clickhouse")).unwrap();
    let live = clickhouse::Subgraph::start(&settings).await.unwrap();
    let built = kept("clickhouse").and_then(|kept| {
        sdl(
            clickhouse::Subgraph::from_introspection(&settings, &kept, &nowhere("http"))
                .map(|built| built.sdl()),
        )
    });
    outdated_catalogs.extend(outdated(
        "clickhouse",
        live.introspection(),
        &live.sdl(),
        built,
    ));

    let settings = neo4j::Config::from_file(&config("neo4j")).unwrap();
    let live = neo4j::Subgraph::start(&settings).await.unwrap();
    let built = kept("neo4j").and_then(|kept| {
        sdl(
            neo4j::Subgraph::from_introspection(&settings, &kept, &nowhere("bolt"))
                .map(|built| built.sdl()),
        )
    });
    outdated_catalogs.extend(outdated("neo4j", live.introspection(), &live.sdl(), built));

    assert!(
        outdated_catalogs.is_empty(),
        "{outdated_catalogs:?}: run this test with POLYGRAPH_UPDATE_INTROSPECTION=1 to keep the databases' catalogs as they are now"
    );
}
