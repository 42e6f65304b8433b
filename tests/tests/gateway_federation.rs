//! The gateway over four real HTTP subgraphs: answers built across subgraphs with @key,
//! @requires and @provides, entity fetches batched, failures reported where they happened.

mod common;

use common::federation::{codes, post, post_with, start, start_slow};
use serde_json::json;

const DEEP: &str = include_str!("../../bench/load/query.graphql");

/// Independently of the gateway: the shipping estimate the inventory subgraph gives product n.
fn shipping(n: u64) -> u64 {
    let (price, weight) = (100 * n, 10 * n);
    if price > 1000 { 0 } else { weight / 2 }
}

#[tokio::test]
async fn the_deep_benchmark_query_is_answered_across_four_subgraphs() {
    let graph = start(|_| {}).await;
    let (status, _, body) = post(&graph.url, &json!({ "query": DEEP })).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    let users = body["data"]["users"].as_array().unwrap();
    assert_eq!(users.len(), 10);
    let first = &users[0];
    assert_eq!(first["name"], "User 1");
    assert_eq!(first["username"], "user1");
    let review = &first["reviews"][0];
    assert_eq!(review["id"], "1");
    let product = &review["product"];
    assert_eq!(product["upc"], "1");
    assert_eq!(product["name"], "Product 1");
    assert_eq!(product["inStock"], true);
    assert_eq!(
        product["shippingEstimate"],
        shipping(1),
        "@requires(price weight)"
    );
    let author = &product["reviews"][0]["author"];
    assert_eq!(
        author["name"], "User 1",
        "name comes from accounts, past @provides"
    );
    let nested = &author["reviews"][1]["product"];
    assert_eq!(nested["upc"], "2");
    assert_eq!(nested["shippingEstimate"], shipping(2));
    let top = body["data"]["topProducts"].as_array().unwrap();
    assert_eq!(top.len(), 5, "topProducts(first: 5) by default");
    assert_eq!(
        top[2]["inStock"], false,
        "every third product is out of stock"
    );
    assert_eq!(top[4]["reviews"][0]["author"]["username"], "user2");
    // Field order follows the query, and nothing the planner added leaks.
    let keys: Vec<&str> = top[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "inStock",
            "name",
            "price",
            "shippingEstimate",
            "upc",
            "weight",
            "reviews"
        ]
    );
    assert!(!body.to_string().contains("__typename"), "{body}");
}

#[tokio::test]
async fn each_entity_fetch_is_one_request_with_distinct_representations() {
    let graph = start(|_| {}).await;
    let (_, _, plan) = post_with(
        &graph.url,
        &json!({ "query": "{ users { reviews { product { name } } } }" }),
        &[("x-polygraph-explain", "1")],
    )
    .await;
    let text = plan["extensions"]["queryPlan"].as_str().unwrap().to_owned();
    assert_eq!(text.matches("Fetch(").count(), 3, "{text}");
    // 30 reviews name 10 distinct products: one products request carries 10 representations.
    assert_eq!(graph.requests("accounts"), 1);
    assert_eq!(graph.requests("reviews"), 1);
    assert_eq!(graph.requests("products"), 1);
    let products: Vec<&serde_json::Value> = plan["data"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|user| user["reviews"].as_array().unwrap())
        .map(|review| &review["product"]["name"])
        .collect();
    assert_eq!(products.len(), 30);
    assert!(
        products
            .iter()
            .all(|name| name.as_str().unwrap().starts_with("Product "))
    );
}

#[tokio::test]
async fn variables_defaults_and_conditions_reach_the_plan() {
    let graph = start(|_| {}).await;
    let query = "query Top($n: Int = 2, $withReviews: Boolean!) {
        topProducts(first: $n) { upc reviews @include(if: $withReviews) { id } } }";
    let (_, _, without) = post(
        &graph.url,
        &json!({ "query": query, "variables": { "withReviews": false } }),
    )
    .await;
    assert_eq!(
        without["data"],
        json!({ "topProducts": [{ "upc": "1" }, { "upc": "2" }] })
    );
    assert_eq!(
        graph.requests("reviews"),
        0,
        "a skipped field is never fetched"
    );
    let (_, _, with) = post(
        &graph.url,
        &json!({ "query": query, "variables": { "n": 1, "withReviews": true } }),
    )
    .await;
    assert_eq!(with["data"]["topProducts"][0]["reviews"][0]["id"], "1");
    assert_eq!(with["data"]["topProducts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn aliases_fragments_and_typename_come_back_as_asked() {
    let graph = start(|_| {}).await;
    let query = "{ a: user(id: \"3\") { ...U handle: username kind: __typename }
                   b: user(id: \"4\") { ... on User { id } } }
                 fragment U on User { id name }";
    let (_, _, body) = post(&graph.url, &json!({ "query": query })).await;
    assert_eq!(
        body["data"],
        json!({
            "a": { "id": "3", "name": "User 3", "handle": "user3", "kind": "User" },
            "b": { "id": "4" }
        })
    );
}

#[tokio::test]
async fn a_client_alias_cannot_stand_in_for_a_key_or_a_requirement() {
    // The key (User.id) and the requirements (Product.price, weight) are under the client's
    // aliases of other fields: representations must still carry the real values, or the
    // client would choose which entity the next subgraph resolves.
    let graph = start(|_| {}).await;
    let aliased = "{ user(id: \"3\") { id: username reviews { id } }
                    topProducts(first: 2) { price: name weight: upc shippingEstimate } }";
    let plain = "{ user(id: \"3\") { username reviews { id } }
                  topProducts(first: 2) { name upc shippingEstimate } }";
    let (_, _, aliased) = post(&graph.url, &json!({ "query": aliased })).await;
    let (_, _, plain) = post(&graph.url, &json!({ "query": plain })).await;
    assert!(aliased.get("errors").is_none(), "{aliased}");
    assert_eq!(aliased["data"]["user"]["id"], "user3", "the client's alias");
    assert_eq!(
        aliased["data"]["user"]["reviews"], plain["data"]["user"]["reviews"],
        "reviews of user 3, not of a user whose id is \"user3\""
    );
    assert!(
        !plain["data"]["user"]["reviews"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{plain}"
    );
    let products = aliased["data"]["topProducts"].as_array().unwrap();
    assert_eq!(products[1]["price"], "Product 2");
    assert_eq!(products[1]["weight"], "2");
    assert_eq!(products[1]["shippingEstimate"], shipping(2));
    assert_eq!(products[0]["shippingEstimate"], shipping(1));
    // A key's place cannot be taken by a name the planner would choose either.
    let reserved =
        "{ user(id: \"3\") { id: name _pg__id: username _pg_0_id: name reviews { id } } }";
    let (_, _, body) = post(&graph.url, &json!({ "query": reserved })).await;
    assert_eq!(
        body["data"]["user"]["reviews"],
        plain["data"]["user"]["reviews"]
    );
    // __typename cannot be aliased to another field: the gateway reads it to type objects.
    let (_, _, body) = post(
        &graph.url,
        &json!({ "query": "{ user(id: \"3\") { __typename: username reviews { id } } }" }),
    )
    .await;
    assert!(body.get("data").is_none(), "nothing runs: {body}");
    assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"]);
}

#[tokio::test]
async fn a_subgraph_that_is_down_costs_its_fields_not_the_response() {
    let graph = start(|settings| {
        settings
            .subgraph_urls
            .insert("inventory".into(), "http://127.0.0.1:9/graphql".into());
    })
    .await;
    let (status, _, body) = post(
        &graph.url,
        &json!({ "query": "{ topProducts { name inStock } }" }),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        codes(&body).contains(&"SUBREQUEST_HTTP_ERROR".to_owned()),
        "{body}"
    );
    // An error at each field the dead subgraph would have filled.
    let paths: Vec<&serde_json::Value> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| &error["path"])
        .collect();
    let expected: Vec<serde_json::Value> = (0..5)
        .map(|i| json!(["topProducts", i, "inStock"]))
        .collect();
    assert_eq!(paths, expected.iter().collect::<Vec<_>>(), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("inventory")
    );
    // inStock is Boolean! and topProducts [Product!]!: the null reaches data.
    assert_eq!(body["data"], serde_json::Value::Null, "{body}");
    // What does not touch the dead subgraph still works.
    let (_, _, body) = post(&graph.url, &json!({ "query": "{ topProducts { name } }" })).await;
    assert_eq!(body["data"]["topProducts"][0]["name"], "Product 1");
    assert!(body.get("errors").is_none());
}

#[tokio::test]
async fn nulls_propagate_to_the_nearest_nullable_parent() {
    let graph = start(|settings| {
        settings
            .subgraph_urls
            .insert("reviews".into(), "http://127.0.0.1:9/graphql".into());
    })
    .await;
    // users: [User!]! and User.reviews: [Review!]!: a missing reviews list nulls all of data.
    let (status, _, body) = post(
        &graph.url,
        &json!({ "query": "{ users { id reviews { id } } }" }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], serde_json::Value::Null, "{body}");
    assert!(!codes(&body).is_empty());
    // user(id:): User is nullable: only it becomes null.
    let (_, _, body) = post(
        &graph.url,
        &json!({ "query": "{ user(id: \"1\") { id reviews { id } } users { id } }" }),
    )
    .await;
    assert_eq!(body["data"]["user"], serde_json::Value::Null, "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["user", "reviews"]),
        "{body}"
    );
    assert_eq!(body["data"]["users"][0]["id"], "1", "{body}");
}

#[tokio::test]
async fn a_slow_subgraph_times_out_with_an_error() {
    use axum::routing::post as route_post;
    let slow = axum::Router::new().route(
        "/graphql",
        route_post(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            "{}"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, slow).await });
    let graph = start(|settings| {
        settings.subgraph_timeout_ms = 300;
        settings
            .subgraph_urls
            .insert("accounts".into(), format!("http://{slow_address}/graphql"));
    })
    .await;
    let started = std::time::Instant::now();
    let (status, _, body) = post(
        &graph.url,
        &json!({ "query": "{ user(id: \"1\") { name } topProducts { name } }" }),
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(status, 200);
    let error = &body["errors"][0];
    assert!(
        error["message"].as_str().unwrap().contains("timed out"),
        "{body}"
    );
    assert_eq!(error["path"], json!(["user"]), "{body}");
    assert_eq!(body["data"]["user"], serde_json::Value::Null);
    assert_eq!(
        body["data"]["topProducts"][0]["name"], "Product 1",
        "the other subgraph still answers: {body}"
    );
}

#[tokio::test]
async fn introspection_describes_the_api_schema() {
    let graph = start(|_| {}).await;
    let (_, _, body) = post(
        &graph.url,
        &json!({ "query": "{ __schema { queryType { name } } __type(name: \"Product\") { fields { name } } }" }),
    )
    .await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let fields: Vec<&str> = body["data"]["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for field in [
        "upc",
        "name",
        "price",
        "inStock",
        "shippingEstimate",
        "reviews",
    ] {
        assert!(fields.contains(&field), "{fields:?}");
    }
    let (_, _, body) = post(
        &graph.url,
        &json!({ "query": "{ __type(name: \"join__Graph\") { name } }" }),
    )
    .await;
    assert_eq!(
        body["data"]["__type"],
        serde_json::Value::Null,
        "join machinery is hidden"
    );
}

#[tokio::test]
async fn identical_requests_in_flight_share_one_subgraph_request() {
    // products takes 500 ms over each answer: ten identical queries sent at once all arrive
    // while the first one's request is in flight, and share it.
    let graph = start_slow(
        &[("products", std::time::Duration::from_millis(500))],
        |_| {},
    )
    .await;
    let query = json!({ "query": "{ topProducts(first: 3) { name } }" });
    let answers = futures::future::join_all((0..10).map(|_| post(&graph.url, &query))).await;
    for (status, _, body) in &answers {
        assert_eq!(*status, 200);
        assert_eq!(
            body["data"]["topProducts"][2]["name"], "Product 3",
            "{body}"
        );
    }
    assert_eq!(
        graph.requests("products"),
        1,
        "one request for ten identical fetches"
    );
    // Once answered, the next identical query is sent again: nothing is cached.
    let (_, _, body) = post(&graph.url, &query).await;
    assert_eq!(body["data"]["topProducts"][0]["name"], "Product 1");
    assert_eq!(graph.requests("products"), 2);
}

/// Found by the differential test: with every field under an object skipped, the subgraph
/// was sent `user { }` and the whole answer failed. The object is `{}`, as the spec has it.
#[tokio::test]
async fn an_object_whose_fields_are_all_skipped_answers_empty() {
    let graph = start(|_| {}).await;
    let (status, _, body) = post(
        &graph.url,
        &json!({
            "query": "query($no: Boolean!) { user(id: \"3\") { name @include(if: $no) } \
                      topProducts { ... on Product @skip(if: true) { upc } } me { id } }",
            "variables": { "no": false }
        }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "data": { "user": {}, "topProducts": [{}, {}, {}, {}, {}], "me": { "id": "1" } } }),
    );
}
