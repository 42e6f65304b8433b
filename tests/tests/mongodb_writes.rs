//! The MongoDB subgraph's writes against scratch databases: typed documents and the
//! validator's refusals, row rules on every path to a ruled collection (reads and writes),
//! and only the mutations each collection's config allows.

mod common;

use common::endpoints;
use common::mongo::{Scratch, data, ids, run};
use mongodb::bson::{Document, doc};
use polygraph_subgraph_mongodb::{Config, Subgraph};
use serde_json::{Value, json};

#[tokio::test]
async fn mutations_write_typed_documents_and_the_validator_rejects_bad_ones() {
    let scratch = Scratch::with(Vec::new()).await;
    let validator = polygraph_demo::load::mongodb::review_schema();
    scratch
        .database
        .create_collection("items")
        .validator(validator)
        .await
        .unwrap();
    let subgraph = scratch
        .subgraph("{ items: { type: Review, key: review_id } }")
        .await;
    let review = |id: u32, rating: u32| json!({ "review_id": id.to_string(), "product_id": "1", "user_id": "2", "rating": rating, "title": format!("r{id}"), "created_at": "2025-01-02T03:04:05Z" });
    let inserted = data(
        &subgraph,
        "mutation($o: [ReviewInsertInput!]!) { insert_items(objects: $o) { affected_rows returning { _id review_id rating created_at } } }",
        json!({ "o": [review(1, 4), review(2, 2), review(3, 5)] }),
    )
    .await;
    assert_eq!(inserted["insert_items"]["affected_rows"], 3);
    assert_eq!(
        inserted["insert_items"]["returning"][0]["created_at"],
        "2025-01-02T03:04:05Z"
    );
    assert_eq!(
        inserted["insert_items"]["returning"][0]["_id"]
            .as_str()
            .unwrap()
            .len(),
        24
    );
    // Stored as the validator's types: ids as longs.
    let stored = scratch
        .database
        .collection::<Document>("items")
        .find_one(doc! { "review_id": 1_i64 })
        .await
        .unwrap();
    assert!(stored.is_some());

    // A rating of 9 breaks the validator: a clean error, nothing written.
    let rejected = run(
        &subgraph,
        "mutation($o: ReviewInsertInput!) { insert_items_one(object: $o) { review_id } }",
        json!({ "o": review(4, 9) }),
    )
    .await;
    assert_eq!(
        rejected["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{rejected}"
    );
    let count = scratch
        .database
        .collection::<Document>("items")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(count, 3);

    let updated = data(
        &subgraph,
        "mutation { update_items(where: {rating: {_lt: 5}}, _set: {title: \"edited\"}) { affected_rows returning { review_id title } } }",
        json!({}),
    )
    .await;
    assert_eq!(updated["update_items"]["affected_rows"], 2);
    assert!(
        updated["update_items"]["returning"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["title"] == "edited")
    );
    let one = data(
        &subgraph,
        "mutation { update_items_by_pk(review_id: \"3\", _set: {rating: 1}) { rating title } }",
        json!({}),
    )
    .await;
    assert_eq!(
        one["update_items_by_pk"],
        json!({ "rating": 1, "title": "r3" })
    );
    let deleted = data(&subgraph, "mutation { delete_items(where: {title: {_eq: \"edited\"}}) { affected_rows returning { review_id } } }", json!({})).await;
    assert_eq!(deleted["delete_items"]["affected_rows"], 2);
    assert_eq!(
        ids(&deleted["delete_items"]["returning"], "review_id"),
        ["1", "2"]
    );
    let gone = data(
        &subgraph,
        "mutation { delete_items_by_pk(review_id: \"3\") { review_id } }",
        json!({}),
    )
    .await;
    assert_eq!(gone["delete_items_by_pk"]["review_id"], "3");
    let left = scratch
        .database
        .collection::<Document>("items")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(left, 0);
    scratch.drop().await;
}

/// Items owned by `a` (two) and `b` (one), served over HTTP under `rule: owner = claims.sub`,
/// trusting the tests' gateway key.
async fn ruled_items() -> (Scratch, common::HttpSubgraph) {
    let item = |id: &str, owner: &str, product: &str, qty: i32| {
        doc! { "item_id": id, "owner": owner, "product_id": product, "qty": qty }
    };
    let scratch = Scratch::with(vec![
        item("i1", "a", "p1", 1),
        item("i2", "a", "p2", 2),
        item("i3", "b", "p1", 3),
    ])
    .await;
    let yaml = format!(
        "url: {}\ndatabase: {}\n\
         collections: {{ items: {{ type: Item, key: item_id, rule: owner = claims.sub, cache: {{ max_age: 60 }} }} }}\n\
         extends: {{ Product: {{ cache: {{ max_age: 60 }}, fields: {{\n\
           items: {{ collection: items, foreign_key: product_id }},\n\
           itemCount: {{ collection: items, foreign_key: product_id, aggregate: count }} }} }} }}",
        endpoints().mongodb,
        scratch.name
    );
    let subgraph = Subgraph::start(&Config::from_yaml(&yaml).unwrap())
        .await
        .unwrap();
    let served =
        common::HttpSubgraph::with_trust(subgraph.served(), common::trusting("mongodb")).await;
    (scratch, served)
}

fn claims_of(sub: &str) -> String {
    common::gateway_token("mongodb", &json!({ "sub": sub }))
}

#[tokio::test]
async fn row_rules_hold_for_every_path_to_a_collection() {
    let (scratch, served) = ruled_items().await;
    let a = claims_of("a");
    let ask = |query: &str| json!({ "query": query });

    let (status, cache, body) = served
        .exchange(
            &ask(
                "{ items(order_by: [{ item_id: ASC }]) { item_id } items_aggregate { count } \
                  items_by_pk(item_id: \"i3\") { item_id } \
                  items_connection { edges { node { item_id } } } }",
            ),
            Some(&a),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["items"],
        json!([{ "item_id": "i1" }, { "item_id": "i2" }])
    );
    assert_eq!(body["data"]["items_aggregate"]["count"], 2);
    assert_eq!(
        body["data"]["items_by_pk"],
        Value::Null,
        "b's item is not a's"
    );
    assert_eq!(
        body["data"]["items_connection"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        cache.as_deref(),
        Some("max-age=60, private"),
        "ruled answers are private"
    );

    // _entities of the collection's own type and through the fields it adds to Product.
    let (_, _, body) = served
        .exchange(
            &ask(r#"{ _entities(representations: [{ __typename: "Item", item_id: "i1" }, { __typename: "Item", item_id: "i3" }, { __typename: "Product", id: "p1" }]) { ... on Item { item_id } ... on Product { items { item_id } itemCount } } }"#),
            Some(&a),
        )
        .await;
    let entities = &body["data"]["_entities"];
    assert_eq!(entities[0], json!({ "item_id": "i1" }));
    assert_eq!(entities[1], Value::Null, "{body}");
    assert_eq!(
        entities[2],
        json!({ "items": [{ "item_id": "i1" }], "itemCount": 1 })
    );

    // Without claims a ruled collection is refused; with claims naming nobody, nothing shows.
    let (_, _, body) = served.exchange(&ask("{ items { item_id } }"), None).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let nobody = common::gateway_token("mongodb", &json!({ "roles": [] }));
    let (_, _, body) = served
        .exchange(&ask("{ items { item_id } }"), Some(&nobody))
        .await;
    assert_eq!(body["data"]["items"], json!([]), "{body}");

    // Concurrent callers batched by the extension loader never see each other's items.
    let b = claims_of("b");
    let product = ask(
        r#"{ _entities(representations: [{ __typename: "Product", id: "p1" }]) { ... on Product { items { owner } } } }"#,
    );
    let answers = futures::future::join_all((0..16).map(|n| {
        let (served, product) = (&served, &product);
        let (who, token) = if n % 2 == 0 { ("a", &a) } else { ("b", &b) };
        async move { (who, served.exchange(product, Some(token)).await.2) }
    }))
    .await;
    for (who, body) in answers {
        assert_eq!(
            body["data"]["_entities"][0]["items"],
            json!([{ "owner": who }]),
            "{who}: {body}"
        );
    }
    scratch.drop().await;
}

#[tokio::test]
async fn writes_to_a_ruled_collection_stay_inside_the_rule() {
    let (scratch, served) = ruled_items().await;
    let a = claims_of("a");
    let items = scratch.database.collection::<Document>("items");
    let write = |query: &str| json!({ "query": query });

    for (query, why) in [
        (
            r#"mutation { insert_items_one(object: { item_id: "i4", owner: "b", product_id: "p1", qty: 1 }) { item_id } }"#,
            "an insert for someone else",
        ),
        (
            r#"mutation { insert_items(objects: [{ item_id: "i4", owner: "a", product_id: "p1", qty: 1 }, { item_id: "i5", owner: "b", product_id: "p1", qty: 1 }]) { affected_rows } }"#,
            "a batch with one insert for someone else",
        ),
        (
            r#"mutation { update_items(where: {}, _set: { owner: "b" }) { affected_rows } }"#,
            "an update that moves documents away",
        ),
    ] {
        let (_, _, body) = served.exchange(&write(query), Some(&a)).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{why}: {body}"
        );
    }
    assert_eq!(items.count_documents(doc! {}).await.unwrap(), 3);
    assert_eq!(
        items.count_documents(doc! { "owner": "a" }).await.unwrap(),
        2
    );

    let (_, _, body) = served
        .exchange(
            &write(r#"mutation { insert_items_one(object: { item_id: "i4", owner: "a", product_id: "p1", qty: 1 }) { item_id } update_items(where: {}, _set: { qty: 9 }) { affected_rows } update_items_by_pk(item_id: "i3", _set: { qty: 9 }) { item_id } delete_items_by_pk(item_id: "i3") { item_id } }"#),
            Some(&a),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["update_items"]["affected_rows"], 3,
        "i1, i2, i4"
    );
    assert_eq!(body["data"]["update_items_by_pk"], Value::Null);
    assert_eq!(body["data"]["delete_items_by_pk"], Value::Null);
    let i3 = items
        .find_one(doc! { "item_id": "i3" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i3.get_i32("qty").unwrap(), 3, "b's item is untouched");

    let (_, _, body) = served
        .exchange(
            &write("mutation { delete_items(where: {}) { affected_rows } }"),
            Some(&a),
        )
        .await;
    assert_eq!(body["data"]["delete_items"]["affected_rows"], 3, "{body}");
    assert_eq!(
        items.count_documents(doc! {}).await.unwrap(),
        1,
        "b's item stays"
    );
    scratch.drop().await;
}

#[tokio::test]
async fn each_collection_gets_only_the_mutations_its_config_allows() {
    let scratch = Scratch::with(vec![doc! { "item_id": "i1", "qty": 1 }]).await;
    let insert_only = scratch
        .subgraph("{ items: { key: item_id, mutations: [insert] } }")
        .await;
    let sdl = insert_only.schema.sdl();
    assert!(sdl.contains("insert_items("), "{sdl}");
    assert!(sdl.contains("insert_items_one("), "{sdl}");
    for absent in ["update_items", "delete_items"] {
        assert!(!sdl.contains(absent), "{absent} in {sdl}");
    }
    let response = run(
        &insert_only,
        "mutation { delete_items(where: {}) { affected_rows } }",
        json!({}),
    )
    .await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("delete_items")
    );

    let read_only = scratch
        .subgraph("{ items: { key: item_id, mutations: false } }")
        .await;
    assert!(!read_only.schema.sdl().contains("type Mutation"));
    let response = run(
        &read_only,
        r#"mutation { insert_items_one(object: { item_id: "i2" }) { item_id } }"#,
        json!({}),
    )
    .await;
    assert!(response.get("errors").is_some(), "{response}");
    assert_eq!(
        scratch
            .database
            .collection::<Document>("items")
            .count_documents(doc! {})
            .await
            .unwrap(),
        1
    );
    scratch.drop().await;
}
