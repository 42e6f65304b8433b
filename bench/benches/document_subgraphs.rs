//! The MongoDB and search subgraphs against their raw clients for the same reads, in one run:
//! `_entities` for 100 reviews and a filtered, sorted page of reviews (MongoDB driver), and
//! `_entities` for 100 products and a filtered full-text search (elasticsearch client). Needs the
//! demo data (`scripts/dev up`, `polygraph demo load`). Prints `ratio` lines: subgraph time over
//! raw client time, from interleaved runs.

mod common;

use std::time::Duration;

use async_graphql::Variables;
use common::{compare, config, first_sight, served};
use criterion::{Criterion, criterion_group, criterion_main};
use elasticsearch::{Elasticsearch, MgetParts, SearchParts};
use futures::TryStreamExt as _;
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};

const REVIEW_ENTITIES: &str = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Review { review_id rating title } } }";
const REVIEWS: &str = "{ reviews(where: {rating: {_gte: 4}}, order_by: [{created_at: DESC}], limit: 50) { review_id rating title created_at } }";
const PRODUCT_ENTITIES: &str = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id tags popularity } } }";
const SEARCH: &str = "{ searchProducts(query: \"lamp desk\", filters: {in_stock: true}, size: 20) { total hits { score product { id tags popularity } } } }";

fn review_json(document: &Document, with_date: bool) -> Value {
    let mut review = json!({
        "review_id": document.get_i64("review_id").unwrap().to_string(),
        "rating": document.get_i32("rating").unwrap(),
        "title": document.get_str("title").unwrap(),
    });
    if with_date {
        review["created_at"] = json!(
            document
                .get_datetime("created_at")
                .unwrap()
                .try_to_rfc3339_string()
                .unwrap()
        );
    }
    review
}

async fn raw_review_entities(collection: &mongodb::Collection<Document>, ids: &[i64]) -> Value {
    let found: Vec<Document> = collection
        .find(doc! { "review_id": { "$in": ids } })
        .batch_size(ids.len() as u32)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let by_id: std::collections::HashMap<i64, &Document> = found
        .iter()
        .map(|d| (d.get_i64("review_id").unwrap(), d))
        .collect();
    let entities: Vec<Value> = ids.iter().map(|id| review_json(by_id[id], false)).collect();
    json!({ "data": { "_entities": entities } })
}

async fn raw_reviews(collection: &mongodb::Collection<Document>) -> Value {
    let found: Vec<Document> = collection
        .find(doc! { "rating": { "$gte": 4 } })
        .sort(doc! { "created_at": -1, "_id": 1 })
        .limit(50)
        .batch_size(50)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let reviews: Vec<Value> = found.iter().map(|d| review_json(d, true)).collect();
    json!({ "data": { "reviews": reviews } })
}

async fn raw_product_entities(client: &Elasticsearch, ids: &[u64]) -> Value {
    let answer: Value = client
        .mget(MgetParts::Index("products"))
        .body(json!({ "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entities: Vec<Value> = answer["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| {
            let source = &doc["_source"];
            json!({ "id": source["id"].to_string(), "tags": source["tags"], "popularity": source["popularity"] })
        })
        .collect();
    json!({ "data": { "_entities": entities } })
}

async fn raw_search(client: &Elasticsearch) -> Value {
    let body = json!({
        "query": { "bool": {
            "must": [{ "multi_match": { "query": "lamp desk", "fields": ["name^3", "brand^2", "category^1", "tags^1", "description^1"], "type": "best_fields" } }],
            "filter": [{ "term": { "in_stock": true } }],
        } },
        "size": 20, "from": 0, "sort": [{ "_score": "desc" }, { "id": "asc" }], "track_total_hits": true,
    });
    let answer: Value = client
        .search(SearchParts::Index(&["products"]))
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hits: Vec<Value> = answer["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| {
            let source = &hit["_source"];
            json!({ "score": hit["_score"], "product": { "id": source["id"].to_string(), "tags": source["tags"], "popularity": source["popularity"] } })
        })
        .collect();
    json!({ "data": { "searchProducts": { "total": answer["hits"]["total"]["value"], "hits": hits } } })
}

fn benches(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let endpoints = polygraph_demo::Endpoints::from_env();
    let (mongo, search, collection, client) = runtime.block_on(async {
        let mongo = polygraph_subgraph_mongodb::Subgraph::start(
            &polygraph_subgraph_mongodb::Config::from_file(&config("mongodb")).unwrap(),
        )
        .await
        .expect("the demo data: run scripts/dev up and polygraph demo load");
        let search = polygraph_subgraph_elasticsearch::Subgraph::start(
            &polygraph_subgraph_elasticsearch::Config::from_file(&config("elasticsearch")).unwrap(),
        )
        .await
        .unwrap();
        let collection = mongodb::Client::with_uri_str(&endpoints.mongodb)
            .await
            .unwrap()
            .database(&endpoints.mongodb_database)
            .collection::<Document>("reviews");
        let transport =
            elasticsearch::http::transport::Transport::single_node(&endpoints.elasticsearch)
                .unwrap();
        (mongo, search, collection, Elasticsearch::new(transport))
    });
    let review_ids: Vec<i64> = (1..=100).collect();
    let reviews: Value = review_ids
        .iter()
        .map(|id| json!({ "__typename": "Review", "review_id": id.to_string() }))
        .collect();
    let reviews = json!({ "r": reviews });
    let product_ids: Vec<u64> = (1..=100).collect();
    let products: Value = product_ids
        .iter()
        .map(|id| json!({ "__typename": "Product", "id": id.to_string() }))
        .collect();
    let products = json!({ "r": products });

    // Both through the engine, as the HTTP layer answers a query.
    let mongo = mongo.served();
    let review_variables = Variables::from_json(reviews.clone());
    let no_variables = Variables::default();
    compare(
        criterion,
        &runtime,
        "mongodb_entities_100_reviews",
        || served(&mongo, REVIEW_ENTITIES, &review_variables),
        || raw_review_entities(&collection, &review_ids),
    );
    compare(
        criterion,
        &runtime,
        "mongodb_reviews_filtered_page_50",
        || served(&mongo, REVIEWS, &no_variables),
        || raw_reviews(&collection),
    );
    first_sight(
        &runtime,
        "mongodb_entities_100_reviews",
        &mongo,
        REVIEW_ENTITIES,
        &review_variables,
    );
    let search = search.served();
    let product_variables = Variables::from_json(products.clone());
    compare(
        criterion,
        &runtime,
        "search_entities_100_products",
        || served(&search, PRODUCT_ENTITIES, &product_variables),
        || raw_product_entities(&client, &product_ids),
    );
    first_sight(
        &runtime,
        "search_entities_100_products",
        &search,
        PRODUCT_ENTITIES,
        &product_variables,
    );
    compare(
        criterion,
        &runtime,
        "search_filtered_20",
        || served(&search, SEARCH, &no_variables),
        || raw_search(&client),
    );
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(group);
