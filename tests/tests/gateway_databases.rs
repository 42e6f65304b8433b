//! The gateway over the demo's database subgraphs, each against its real server: one request
//! answers with search hits (Elasticsearch), their PostgreSQL fields and their MongoDB reviews,
//! and each subgraph goes to its database once per plan step.

mod common;

use std::sync::Arc;

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
}

/// The three subgraphs as their demo configs set them up, on free ports, and the gateway over
/// the checked-in supergraph.
async fn demo() -> Demo {
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
    let mut settings = Settings::default();
    let served = [
        ("postgres", server::share(postgres.served())),
        ("mongodb", server::shared(mongodb.schema.clone())),
        (
            "elasticsearch",
            server::shared(elasticsearch.schema.clone()),
        ),
    ];
    for (name, schema) in served {
        let address = serve(server::app(schema, None)).await;
        settings
            .subgraph_urls
            .insert(name.to_owned(), format!("http://{address}/graphql"));
    }
    let sdl = std::fs::read_to_string(root.join("schema/supergraph.graphql")).unwrap();
    let gateway = Arc::new(Gateway::new(Supergraph::parse(&sdl).unwrap(), settings));
    let address = serve(polygraph_gateway::http::app(gateway)).await;
    Demo {
        url: format!("http://{address}/graphql"),
        postgres: postgres.executor.clone(),
        mongodb,
        elasticsearch,
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
