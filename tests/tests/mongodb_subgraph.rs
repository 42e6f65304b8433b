//! The MongoDB subgraph against the real server: the demo's reviews (typed by their
//! `$jsonSchema` validator), and scratch databases for inferred shapes, batching and writes.

mod common;

use common::expected_spec;
use common::mongo::{Scratch, data, demo, ids, run};
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};

#[tokio::test]
async fn the_validator_types_reviews_and_every_operator_filters() {
    let subgraph = demo().await;
    let sdl = subgraph.sdl();
    for expected in [
        "type Review @cacheControl(maxAge: 120) @key(fields: \"review_id\")",
        "rating: Int!",
        "created_at: DateTime!",
        "product: Product!",
        "type Product @cacheControl(maxAge: 120) @key(fields: \"id\")",
        "averageRating: Float",
    ] {
        assert!(sdl.contains(expected), "{expected} missing from\n{sdl}");
    }
    let reviews = expected_spec().reviews() as usize;
    let count = |filter: Value| {
        let subgraph = &subgraph;
        async move {
            let data = data(
                subgraph,
                "query($w: ReviewBoolExp) { reviews_aggregate(where: $w) { count } reviews(where: $w, limit: 1000) { rating title body } }",
                json!({ "w": filter }),
            )
            .await;
            let listed = data["reviews"].as_array().unwrap().len();
            assert_eq!(
                data["reviews_aggregate"]["count"].as_u64().unwrap() as usize,
                listed
            );
            (listed, data["reviews"].clone())
        }
    };
    let (all, _) = count(json!({})).await;
    assert_eq!(all, reviews);
    let (five, rows) = count(json!({ "rating": { "_eq": 5 } })).await;
    assert!(five > 0 && rows.as_array().unwrap().iter().all(|r| r["rating"] == 5));
    let (not_five, _) = count(json!({ "rating": { "_neq": 5 } })).await;
    assert_eq!(five + not_five, all);
    let (gt, _) = count(json!({ "rating": { "_gt": 3 } })).await;
    let (lte, _) = count(json!({ "rating": { "_lte": 3 } })).await;
    assert_eq!(gt + lte, all);
    let (gte, _) = count(json!({ "rating": { "_gte": 3 } })).await;
    let (lt, _) = count(json!({ "rating": { "_lt": 3 } })).await;
    assert_eq!(gte + lt, all);
    let (in_, rows) = count(json!({ "rating": { "_in": [1, 2] } })).await;
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["rating"] == 1 || r["rating"] == 2)
    );
    let (nin, _) = count(json!({ "rating": { "_nin": [1, 2] } })).await;
    assert_eq!(in_ + nin, all);
    let (with_body, _) = count(json!({ "body": { "_is_null": false } })).await;
    let (without_body, _) = count(json!({ "body": { "_is_null": true } })).await;
    assert_eq!(with_body + without_body, all);
    let (like, rows) = count(json!({ "title": { "_like": "Great%" } })).await;
    assert!(
        like > 0
            && rows
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["title"].as_str().unwrap().starts_with("Great"))
    );
    let (insensitive, _) = count(json!({ "title": { "_ilike": "great%" } })).await;
    assert_eq!(like, insensitive);
    let (case_sensitive, _) = count(json!({ "title": { "_like": "great%" } })).await;
    assert_eq!(case_sensitive, 0);
    let (or, _) =
        count(json!({ "_or": [{ "rating": { "_eq": 5 } }, { "rating": { "_eq": 1 } }] })).await;
    let (one, _) = count(json!({ "rating": { "_eq": 1 } })).await;
    assert_eq!(or, five + one);
    let (not, _) = count(json!({ "_not": { "rating": { "_eq": 5 } } })).await;
    assert_eq!(not, not_five);
    let (and, _) =
        count(json!({ "_and": [{ "rating": { "_gte": 2 } }, { "rating": { "_lte": 2 } }] })).await;
    let (two, _) = count(json!({ "rating": { "_eq": 2 } })).await;
    assert_eq!(and, two);
}

#[tokio::test]
async fn pages_sort_and_look_up_by_key() {
    let subgraph = demo().await;
    let page = |offset: u64| {
        let subgraph = &subgraph;
        async move {
            data(
                subgraph,
                "query($o: Int) { reviews(order_by: [{rating: DESC}, {review_id: ASC}], limit: 10, offset: $o) { review_id rating } }",
                json!({ "o": offset }),
            )
            .await["reviews"]
                .clone()
        }
    };
    let first = page(0).await;
    let second = page(10).await;
    let whole = data(
        &subgraph,
        "{ reviews(order_by: [{rating: DESC}, {review_id: ASC}], limit: 20) { review_id rating } }",
        json!({}),
    )
    .await["reviews"]
        .clone();
    let mut joined = first.as_array().unwrap().clone();
    joined.extend(second.as_array().unwrap().iter().cloned());
    assert_eq!(Value::Array(joined), whole);
    let ratings: Vec<u64> = whole
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rating"].as_u64().unwrap())
        .collect();
    assert!(
        ratings.windows(2).all(|pair| pair[0] >= pair[1]),
        "{ratings:?}"
    );

    let found = data(
        &subgraph,
        "{ reviews_by_pk(review_id: \"7\") { review_id product_id } }",
        json!({}),
    )
    .await;
    assert_eq!(found["reviews_by_pk"]["review_id"], "7");
    let missing = data(
        &subgraph,
        "{ reviews_by_pk(review_id: \"99999999\") { review_id } }",
        json!({}),
    )
    .await;
    assert!(missing["reviews_by_pk"].is_null());

    let too_many = run(
        &subgraph,
        "{ reviews(limit: 5000) { review_id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        too_many["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{too_many}"
    );
    let unavailable = run(
        &subgraph,
        "{ reviews(order_by: [{rating: ASC_NULLS_LAST}]) { review_id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        unavailable["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{unavailable}"
    );
}

#[tokio::test]
async fn aggregates_match_the_documents() {
    let subgraph = demo().await;
    let data = data(
        &subgraph,
        "{ all: reviews(where: {product_id: {_eq: \"3\"}}, limit: 1000) { rating }
           reviews_aggregate(where: {product_id: {_eq: \"3\"}}) { count sum { rating } avg { rating } min { rating } max { rating } } }",
        json!({}),
    )
    .await;
    let ratings: Vec<u64> = data["all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rating"].as_u64().unwrap())
        .collect();
    let aggregate = &data["reviews_aggregate"];
    let sum: u64 = ratings.iter().sum();
    assert_eq!(aggregate["count"].as_u64().unwrap() as usize, ratings.len());
    // Sums of small integers are exact in floating point.
    assert_eq!(
        aggregate["sum"]["rating"]
            .as_f64()
            .map(|total| total as u64),
        Some(sum)
    );
    let average = sum as f64 / ratings.len() as f64;
    assert!((aggregate["avg"]["rating"].as_f64().unwrap() - average).abs() < 1e-9);
    assert_eq!(
        aggregate["min"]["rating"].as_u64(),
        ratings.iter().min().copied()
    );
    assert_eq!(
        aggregate["max"]["rating"].as_u64(),
        ratings.iter().max().copied()
    );
}

#[tokio::test]
async fn extension_fields_load_in_one_round_trip_per_field() {
    let subgraph = demo().await;
    let products = expected_spec().products();
    let representations: Vec<Value> = (1..=products)
        .map(|id| json!({ "__typename": "Product", "id": id.to_string() }))
        .collect();
    let before = subgraph.commands();
    let data = data(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id reviewCount averageRating reviews(order_by: [{rating: DESC}], limit: 2) { review_id rating product { id } } } } }",
        json!({ "r": representations }),
    )
    .await;
    // One aggregate per aggregate field, one find for the lists: three, for every product.
    assert_eq!(subgraph.commands() - before, 3);
    let entities = data["_entities"].as_array().unwrap();
    assert_eq!(entities.len() as u64, products);
    let total: u64 = entities
        .iter()
        .map(|e| e["reviewCount"].as_u64().unwrap())
        .sum();
    assert_eq!(total, expected_spec().reviews());
    for entity in entities {
        let reviews = entity["reviews"].as_array().unwrap();
        assert!(reviews.len() <= 2);
        assert!(reviews.iter().all(|r| r["product"]["id"] == entity["id"]));
        if entity["reviewCount"] == 0 {
            assert!(entity["averageRating"].is_null());
        }
    }
}

#[tokio::test]
async fn a_thousand_entities_are_one_find_and_missing_keys_are_null_with_an_error() {
    let documents: Vec<Document> = (1..=1000_i64)
        .map(|n| doc! { "sku": n, "name": format!("item {n}"), "tags": ["a", if n % 2 == 0 { "even" } else { "odd" }], "size": { "w": n as i32, "h": 2 } })
        .collect();
    let scratch = Scratch::with(documents).await;
    let subgraph = scratch
        .subgraph("{ items: { type: Item, key: sku } }")
        .await;
    let mut representations: Vec<Value> = (1..=1000)
        .rev()
        .map(|n| json!({ "__typename": "Item", "sku": n.to_string() }))
        .collect();
    representations.push(json!({ "__typename": "Item", "sku": "5000" }));
    let before = subgraph.commands();
    let response = run(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { sku name } } }",
        json!({ "r": representations }),
    )
    .await;
    assert_eq!(subgraph.commands() - before, 1);
    let entities = response["data"]["_entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1001);
    assert_eq!(entities[0], json!({ "sku": "1000", "name": "item 1000" }));
    assert_eq!(entities[999], json!({ "sku": "1", "name": "item 1" }));
    assert!(entities[1000].is_null());
    assert_eq!(
        response["errors"][0]["message"], "no Item with sku 5000",
        "{response}"
    );
    scratch.drop().await;
}

#[tokio::test]
async fn sampled_shapes_give_nested_types_lists_and_contains() {
    let scratch = Scratch::with(vec![
        doc! { "sku": 1_i64, "tags": ["red", "sale"], "size": { "w": 10, "h": 2 }, "parts": [{ "name": "lid", "count": 1 }] },
        doc! { "sku": 2_i64, "tags": ["blue"], "size": { "w": 3, "h": 4 }, "parts": [{ "name": "box", "count": 2 }, { "name": "lid", "count": 5 }] },
        doc! { "sku": 3_i64, "tags": ["red"], "size": { "w": 7, "h": 1 } },
    ])
    .await;
    let subgraph = scratch.subgraph("{ items: { type: Item } }").await;
    let sdl = subgraph.sdl();
    assert!(sdl.contains("type ItemSize"), "{sdl}");
    assert!(sdl.contains("tags: [String!]!"), "{sdl}");
    assert!(sdl.contains("parts: [ItemPart!]"), "{sdl}");
    let skus = |filter: Value| {
        let subgraph = &subgraph;
        async move {
            let data = data(
                subgraph,
                "query($w: ItemBoolExp) { items(where: $w, order_by: [{sku: ASC}]) { sku } }",
                json!({ "w": filter }),
            )
            .await;
            data["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["sku"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        skus(json!({ "tags": { "_contains": ["red"] } })).await,
        [1, 3]
    );
    assert_eq!(
        skus(json!({ "tags": { "_contains": ["red", "sale"] } })).await,
        [1]
    );
    assert_eq!(skus(json!({ "size": { "w": { "_gt": 5 } } })).await, [1, 3]);
    // One element must match both conditions: box×2 and lid×5 do not make a "lid with 2".
    assert_eq!(
        skus(json!({ "parts": { "name": { "_eq": "lid" }, "count": { "_gte": 2 } } })).await,
        [2]
    );
    assert_eq!(
        skus(json!({ "parts": { "name": { "_eq": "lid" }, "count": { "_lt": 2 } } })).await,
        [1]
    );
    let nested = data(
        &subgraph,
        "{ items(where: {sku: {_eq: 2}}) { size { w h } parts { name count } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        nested["items"][0],
        json!({ "size": { "w": 3, "h": 4 }, "parts": [{ "name": "box", "count": 2 }, { "name": "lid", "count": 5 }] })
    );
    scratch.drop().await;
}

#[tokio::test]
async fn operator_shaped_input_changes_nothing() {
    let subgraph = demo().await;
    let total = expected_spec().reviews();
    for hostile in [
        json!({ "title": { "_eq": "{\"$ne\": null}" } }),
        json!({ "title": { "_eq": "{\"$where\": \"sleep(1000) || true\"}" } }),
        json!({ "title": { "_in": ["$where", "{$gt: ''}"] } }),
        json!({ "title": { "_like": ".*" } }),
        json!({ "title": { "_ilike": "(?i).*" } }),
        json!({ "body": { "_like": "^" } }),
    ] {
        let response = run(
            &subgraph,
            "query($w: ReviewBoolExp) { reviews(where: $w) { review_id } }",
            json!({ "w": hostile }),
        )
        .await;
        assert!(response.get("errors").is_none(), "{response}");
        assert_eq!(
            response["data"]["reviews"],
            json!([]),
            "{hostile} matched documents"
        );
    }
    // A key-shaped value where an id belongs, and an operator where a field name belongs.
    let response = run(
        &subgraph,
        "{ reviews(where: {review_id: {_eq: \"1 || true\"}}) { review_id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{response}"
    );
    let response = run(
        &subgraph,
        "{ reviews(where: {$where: {_eq: 1}}) { review_id } }",
        json!({}),
    )
    .await;
    assert!(response["errors"].is_array(), "{response}");
    let response = run(
        &subgraph,
        "mutation { update_reviews(where: {}, _set: {title: {_eq: 1}}) { affected_rows } }",
        json!({}),
    )
    .await;
    assert!(response["errors"].is_array(), "{response}");
    let count = data(&subgraph, "{ reviews_aggregate { count } }", json!({})).await;
    assert_eq!(count["reviews_aggregate"]["count"].as_u64().unwrap(), total);
}

#[tokio::test]
async fn cursors_page_through_everything_in_order() {
    let subgraph = demo().await;
    let whole = data(
        &subgraph,
        "{ reviews(order_by: [{rating: DESC}], limit: 1000) { review_id } }",
        json!({}),
    )
    .await;
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = data(
            &subgraph,
            "query($after: String) { reviews_connection(order_by: [{rating: DESC}], first: 37, after: $after) { edges { cursor node { review_id } } pageInfo { hasNextPage endCursor } } }",
            json!({ "after": after }),
        )
        .await;
        let connection = &page["reviews_connection"];
        for edge in connection["edges"].as_array().unwrap() {
            paged.push(edge["node"].clone());
        }
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = Some(
            connection["pageInfo"]["endCursor"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(Value::Array(paged), whole["reviews"]);
    let bad = run(
        &subgraph,
        "{ reviews_connection(after: \"bm9wZQ\") { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{bad}"
    );
}

#[tokio::test]
async fn object_ids_can_be_entity_keys() {
    let scratch = Scratch::with(vec![doc! { "name": "first" }, doc! { "name": "second" }]).await;
    let subgraph = scratch
        .subgraph("{ items: { type: Item, key: _id } }")
        .await;
    let listed = data(
        &subgraph,
        "{ items(order_by: [{name: ASC}]) { _id name } }",
        json!({}),
    )
    .await;
    let ids: Vec<String> = ids(&listed["items"], "_id");
    assert!(ids.iter().all(|id| id.len() == 24));
    let found = run(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { name } } }",
        json!({ "r": [
            { "__typename": "Item", "_id": ids[1] },
            { "__typename": "Item", "_id": "0123456789abcdef01234567" },
        ] }),
    )
    .await;
    assert_eq!(found["data"]["_entities"][0], json!({ "name": "second" }));
    assert!(found["data"]["_entities"][1].is_null(), "{found}");
    let bad = run(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { name } } }",
        json!({ "r": [{ "__typename": "Item", "_id": "not-an-object-id" }] }),
    )
    .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{bad}"
    );
    scratch.drop().await;
}

/// A `_like` pattern built to backtrack (`%a%a%a…%!` over long runs of `a`) answers at once,
/// and patterns still mean what SQL's `LIKE` means.
#[tokio::test]
async fn like_patterns_cannot_backtrack_catastrophically() {
    let scratch = Scratch::with(vec![
        doc! { "item_id": "1", "s": "a".repeat(64) },
        doc! { "item_id": "2", "s": "xaby" },
        doc! { "item_id": "3", "s": "ab" },
    ])
    .await;
    let subgraph = scratch.subgraph("{ items: { key: item_id } }").await;
    let ids = |data: &Value| -> Vec<String> {
        data["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["item_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let like = |operator: &str, pattern: String| {
        let subgraph = &subgraph;
        let operator = operator.to_owned();
        async move {
            data(
                subgraph,
                &format!("query($p: String!) {{ items(where: {{ s: {{ {operator}: $p }} }}, order_by: [{{ item_id: ASC }}]) {{ item_id }} }}"),
                json!({ "p": pattern }),
            )
            .await
        }
    };
    let started = std::time::Instant::now();
    let hostile = format!("{}!", "%a".repeat(16));
    assert_eq!(ids(&like("_like", hostile).await), Vec::<String>::new());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    for (operator, pattern, expected) in [
        ("_like", "%a%b%y", vec!["2"]),
        ("_like", "%ab%b", vec![]),
        ("_like", "%ab%", vec!["2", "3"]),
        ("_like", "a%", vec!["1", "3"]),
        ("_like", "%a_y", vec!["2"]),
        ("_ilike", "%A%B%", vec!["2", "3"]),
        ("_like", "%", vec!["1", "2", "3"]),
    ] {
        assert_eq!(
            ids(&like(operator, pattern.to_owned()).await),
            expected,
            "{operator} {pattern}"
        );
    }
    scratch.drop().await;
}

/// A read that outlasts `operation_timeout_ms` ends there with a clean `TIMEOUT` error (the
/// server is asked to stop with `maxTimeMS`; the subgraph stops waiting whatever it does), and
/// the subgraph goes on answering.
#[tokio::test]
async fn reads_end_at_the_operation_timeout() {
    let documents = (0..3000)
        .map(|n| doc! { "item_id": n.to_string(), "s": "x".repeat(200) })
        .collect();
    let scratch = Scratch::with(documents).await;
    let hurried = scratch.timed(1).await;
    let query = "{ items(limit: 1000) { item_id s } items_aggregate { count } }";
    for _ in 0..2 {
        let response = run(&hurried, query, json!({})).await;
        let errors = response["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .all(|error| error["extensions"]["code"] == "TIMEOUT"),
            "{response}"
        );
        assert!(
            errors[0]["message"]
                .as_str()
                .unwrap()
                .contains("within 1 ms"),
            "{response}"
        );
    }
    let patient = scratch.timed(10_000).await;
    let answer = data(&patient, query, json!({})).await;
    assert_eq!(answer["items_aggregate"]["count"], 3000);
    scratch.drop().await;
}

/// A read that scans far more than its timeout allows ends at `operation_timeout_ms` with a
/// `TIMEOUT` error at its path, not when the server finishes, and the subgraph answers what does
/// not need the busy server in the meantime and database reads again afterwards. (The
/// development server, `SecantusDB`, runs one operation at a time and ignores `maxTimeMS`, so
/// other reads wait for it; a real MongoDB stops the read itself and serves others alongside.)
#[tokio::test]
async fn a_slow_read_times_out_while_the_subgraph_keeps_answering() {
    let documents = (0..20_000)
        .map(|n: u32| doc! { "item_id": n.to_string(), "s": format!("{n:08}").repeat(125) })
        .collect();
    let scratch = Scratch::with(documents).await;
    let subgraph = scratch.timed(300).await;
    let server = std::sync::Arc::new(common::HttpSubgraph::start(subgraph.served()).await);
    let slow = json!({ "query": "{ items_aggregate(where: { s: { _like: \"%9%8%7%6%5%4%3%2%1%x\" } }) { count } }" });
    let slow = tokio::spawn({
        let server = server.clone();
        async move { server.post(&slow).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    for _ in 0..5 {
        let answer = server.post(&json!({ "query": "{ __typename }" })).await;
        assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    }
    assert!(
        !slow.is_finished(),
        "answered while the slow read was still running"
    );
    let answer = slow.await.unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "TIMEOUT",
        "{answer}"
    );
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("within 300 ms")),
        "{answer}"
    );
    // Database reads are answered again once the server is free.
    let patient = scratch.timed(30_000).await;
    let answer = data(&patient, "{ items(limit: 1) { item_id } }", json!({})).await;
    assert_eq!(answer["items"].as_array().map(Vec::len), Some(1));
    scratch.drop().await;
}

/// The corpus in `tests/corpus/mongodb/`, over HTTP: every answer, first sight and repeat,
/// equals its golden answer, in the same commands.
#[tokio::test]
async fn the_corpus_answers_as_recorded() {
    let subgraph = demo().await;
    let server = common::HttpSubgraph::start(subgraph.served()).await;
    common::corpus::check(&server, "mongodb", subgraph.recorder()).await;
}
