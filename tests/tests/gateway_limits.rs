//! What one request may cost the gateway, checked just under and just over each bound on the
//! benchmark federation: the estimated cost (demand control), aliases, root fields, the
//! response's size, the entity representations sent, and the whole request's deadline; and
//! identical queries in flight sharing one run, never across callers.

mod common;

use std::time::{Duration, Instant};

use common::federation::{codes, post, post_with, start, start_slow};
use polygraph_gateway::cost::Mode;
use serde_json::json;

/// Users, their reviews, the reviewed products and those products' reviews.
const DEEP: &str = "{ users { id reviews { id product { upc reviews { id } } } } }";

/// What every subgraph has answered so far, in all.
fn subgraph_requests(graph: &common::federation::Graph) -> usize {
    ["accounts", "inventory", "products", "reviews"]
        .iter()
        .map(|name| graph.requests(name))
        .sum()
}

#[tokio::test]
async fn an_operation_over_the_cost_limit_is_refused_before_any_fetch() {
    // Measured first: the estimate, reported in extensions, with the answer.
    let measuring = start(|settings| settings.demand_control.mode = Mode::Measure).await;
    let (status, _, body) = post(&measuring.url, &json!({ "query": DEEP })).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["users"].as_array().unwrap().len(),
        10,
        "{body}"
    );
    // 10 users × (1 + 10 reviews × (1 + product (1 + 10 reviews × 1))), lists sized 10 by default.
    let estimate = body["extensions"]["cost"]["estimated"].as_u64().unwrap();
    assert_eq!(estimate, 10 * (1 + 10 * (1 + (1 + 10))), "{body}");
    // And what the answer actually held: every user, review and product object once.
    let users = body["data"]["users"].as_array().unwrap();
    let mut objects = users.len();
    for user in users {
        for review in user["reviews"].as_array().unwrap() {
            objects += 2 + review["product"]["reviews"].as_array().unwrap().len();
        }
    }
    assert_eq!(
        body["extensions"]["cost"]["actual"].as_u64(),
        Some(objects as u64),
        "{body}"
    );

    let at_limit = start(|settings| settings.demand_control.max_cost = estimate).await;
    let (status, _, body) = post(&at_limit.url, &json!({ "query": DEEP })).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    assert!(
        body.get("extensions").is_none(),
        "enforcing reports nothing: {body}"
    );

    let under = start(|settings| settings.demand_control.max_cost = estimate - 1).await;
    let accept = [("accept", "application/graphql-response+json")];
    let (status, _, body) = post_with(&under.url, &json!({ "query": DEEP }), &accept).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(codes(&body), ["COST_ESTIMATED_TOO_EXPENSIVE"]);
    assert!(body.get("data").is_none(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&estimate.to_string()) && message.contains("demand_control.max_cost"),
        "the error names the estimate and the limit: {message}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["cost"],
        json!({ "estimated": estimate, "max": estimate - 1 })
    );
    assert_eq!(subgraph_requests(&under), 0, "nothing was fetched");
    // A slicing argument makes the same shape cheaper: the top 2 products' reviews.
    let sliced = "{ topProducts(first: 2) { upc reviews { id } } }";
    let (status, _, body) = post(&under.url, &json!({ "query": sliced })).await;
    assert_eq!((status, codes(&body).len()), (200, 0), "{body}");
    assert_eq!(body["data"]["topProducts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn aliases_and_root_fields_are_bounded() {
    let graph = start(|settings| {
        settings.limits.max_aliases = 2;
        settings.limits.max_root_fields = 3;
    })
    .await;
    let two_aliases = "{ a: me { id } b: me { name } }";
    let (_, _, body) = post(&graph.url, &json!({ "query": two_aliases })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let three_aliases = "{ a: me { id } b: me { name } c: me { id } }";
    let (_, _, body) = post(&graph.url, &json!({ "query": three_aliases })).await;
    assert_eq!(codes(&body), ["MAX_ALIASES_EXCEEDED"], "{body}");
    // Root fields count through fragments.
    let three_roots = "{ me { id } ...F users { id } } fragment F on Query { topProducts { upc } }";
    let (_, _, body) = post(&graph.url, &json!({ "query": three_roots })).await;
    assert!(body.get("errors").is_none(), "{body}");
    let four_roots = "{ me { id } ...F users { id } user(id: \"1\") { id } } fragment F on Query { topProducts { upc } }";
    let (_, _, body) = post(&graph.url, &json!({ "query": four_roots })).await;
    assert_eq!(codes(&body), ["MAX_ROOT_FIELDS_EXCEEDED"], "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_root_fields")
    );
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_null_with_an_error() {
    let query = json!({ "query": "{ users { id name reviews { body } } }" });
    let open = start(|_| {}).await;
    let (_, _, body) = post(&open.url, &query).await;
    let size = serde_json::to_vec(&body["data"]).unwrap().len();

    let fits = start(|settings| settings.limits.max_response_bytes = size).await;
    let (_, _, body) = post(&fits.url, &query).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["users"].as_array().unwrap().len(), 10);

    let too_small = start(|settings| settings.limits.max_response_bytes = size - 1).await;
    let (status, _, body) = post(&too_small.url, &query).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!(null), "{body}");
    assert_eq!(codes(&body), ["RESPONSE_TOO_LARGE"]);
}

#[tokio::test]
async fn entity_representations_per_request_are_bounded() {
    // 10 users' reviews (10 representations), then 30 reviews' products: 10 distinct.
    let query = json!({ "query": "{ users { id reviews { id product { upc price } } } }" });
    let fits = start(|settings| settings.limits.max_entity_representations = 20).await;
    let (_, _, body) = post(&fits.url, &query).await;
    assert!(body.get("errors").is_none(), "{body}");

    let short = start(|settings| settings.limits.max_entity_representations = 19).await;
    let (status, _, body) = post(&short.url, &query).await;
    assert_eq!(status, 200);
    // The reviews were fetched; the products' prices were not.
    let errors = body["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{body}");
    assert!(
        codes(&body)
            .iter()
            .all(|code| code == "MAX_REPRESENTATIONS_EXCEEDED"),
        "{body}"
    );
    assert_eq!(
        errors[0]["path"],
        json!(["users", 0, "reviews", 0, "product", "price"]),
        "{body}"
    );
    assert_eq!(body["data"]["users"][0]["reviews"][0]["id"], "1", "{body}");
    assert_eq!(
        body["data"]["users"][0]["reviews"][0]["product"]["price"],
        json!(null)
    );
}

#[tokio::test]
async fn the_request_deadline_bounds_a_chain_of_fetches() {
    let graph = start_slow(&[("reviews", Duration::from_secs(5))], |settings| {
        settings.request_timeout_ms = 400;
    })
    .await;
    let started = Instant::now();
    let (status, _, body) = post(
        &graph.url,
        &json!({ "query": "{ me { id reviews { id } } }" }),
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(status, 200);
    // The slow subgraph's part is an error, not a wait (and, being non-null, nulls `me`).
    assert_eq!(
        codes(&body),
        ["GATEWAY_TIMEOUT", "NULL_FOR_NON_NULL"],
        "{body}"
    );
    assert_eq!(
        body["data"],
        json!(null),
        "`reviews` is non-null, so `me` and data are null: {body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("reviews") && message.contains("request_timeout_ms"),
        "{message}"
    );
    // A root fetch cut off is reported at its root fields.
    let graph = start_slow(&[("accounts", Duration::from_secs(5))], |settings| {
        settings.request_timeout_ms = 300;
    })
    .await;
    let (_, _, body) = post(
        &graph.url,
        &json!({ "query": "{ me { id } topProducts { upc } }" }),
    )
    .await;
    assert_eq!(codes(&body), ["GATEWAY_TIMEOUT"], "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["me"]), "{body}");
    assert_eq!(body["data"], json!(null), "{body}");
}

/// Sends `count` copies of `query` at once, the `i`th with headers `headers(i)`, and returns
/// the answers.
async fn at_once(
    url: &str,
    query: &str,
    count: usize,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<serde_json::Value> {
    let client = reqwest::Client::new();
    let requests = (0..count).map(|i| {
        let mut request = client.post(url).json(&json!({ "query": query }));
        for (name, value) in headers(i) {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().json().await.unwrap() }
    });
    futures::future::join_all(requests).await
}

#[tokio::test]
async fn identical_queries_in_flight_share_one_run_but_never_across_callers() {
    let slow = [("accounts", Duration::from_millis(1500))];
    let graph = start_slow(&slow, |_| {}).await;
    let query = "{ users { id name } }";
    // A hundred identical misses at once: one run, one subgraph call.
    let answers = at_once(&graph.url, query, 100, |_| Vec::new()).await;
    assert!(answers.iter().all(|answer| answer == &answers[0]));
    assert_eq!(answers[0]["data"]["users"].as_array().unwrap().len(), 10);
    assert_eq!(graph.gateway.in_flight().joined(), 99);
    assert_eq!(graph.requests("accounts"), 1);

    // Two callers (credentials), ten requests each: two runs.
    let answers = at_once(&graph.url, query, 20, |i| {
        vec![("authorization", format!("Bearer caller-{}", i % 2))]
    })
    .await;
    assert_eq!(answers.len(), 20);
    assert_eq!(graph.gateway.in_flight().joined(), 99 + 18);

    // Off: every request runs (the subgraph fetches themselves are still shared).
    let graph = start_slow(&slow, |settings| settings.coalesce_requests = false).await;
    at_once(&graph.url, query, 5, |_| Vec::new()).await;
    assert_eq!(graph.gateway.in_flight().joined(), 0);
}

#[test]
fn only_queries_are_coalesced() {
    let root = common::repo_root();
    let supergraph = polygraph_gateway::supergraph::Supergraph::parse(
        &std::fs::read_to_string(root.join("schema/supergraph.graphql")).unwrap(),
    )
    .unwrap();
    let mut settings = polygraph_gateway::gateway::Settings::default();
    settings.authorization.policies = Some(root.join("policies"));
    let gateway = polygraph_gateway::gateway::Gateway::new(supergraph, settings).unwrap();
    let request = |query: &str, name: Option<&str>| polygraph_gateway::gateway::Request {
        query: Some(query.to_owned()),
        operation_name: name.map(str::to_owned),
        ..Default::default()
    };
    assert!(gateway.is_query(&mut request("{ users { id } }", None)));
    let both = "query Q { users { id } } mutation M { delete_reviews_by_pk(review_id: \"1\") { review_id } }";
    assert!(gateway.is_query(&mut request(both, Some("Q"))));
    assert!(!gateway.is_query(&mut request(both, Some("M"))));
    assert!(
        !gateway.is_query(&mut request(both, None)),
        "ambiguous: not coalesced"
    );
    assert!(!gateway.is_query(&mut request("{ nope }", None)));
}

#[tokio::test]
async fn document_and_plan_caches_are_bounded_by_bytes() {
    const BUDGET: u64 = 256 * 1024;
    let graph = start(|settings| {
        settings.document_cache_bytes = BUDGET;
        settings.plan_cache_bytes = BUDGET;
    })
    .await;
    // Sixty distinct queries of about 2 KB: each weighs some 80 KB prepared.
    for i in 0..60 {
        let fields = (0..40)
            .map(|f| format!(" f{f}: name"))
            .collect::<Vec<_>>()
            .concat();
        let query = format!("query Q{i} {{ me {{ id{fields} }} }}");
        let (_, _, body) = post(&graph.url, &json!({ "query": query })).await;
        assert_eq!(body["data"]["me"]["f39"], "User 1", "{body}");
    }
    let (documents, plans) = graph.gateway.cached_bytes();
    assert!(documents > 0 && plans > 0);
    assert!(documents <= BUDGET, "documents hold {documents} bytes");
    assert!(plans <= BUDGET, "plans hold {plans} bytes");
}

/// A subgraph reply longer than `limits.max_subgraph_reply_bytes` is refused as it arrives,
/// whether its length is announced or it streams in chunks: the fields it would have filled
/// are errors, and the gateway goes on serving.
#[tokio::test]
async fn a_subgraph_reply_over_the_size_limit_is_refused_as_it_arrives() {
    use axum::body::Body;
    // Ten users whose names take 2 MB, as one body or as 64 chunks of 32 KB.
    let users: Vec<serde_json::Value> = (1..=10)
        .map(|i| json!({ "id": i.to_string(), "username": "u".repeat(200_000), "name": "n" }))
        .collect();
    let reply = serde_json::to_vec(&json!({ "data": { "users": users } })).unwrap();
    let (whole, streamed) = (reply.clone(), reply);
    let app = axum::Router::new()
        .route(
            "/whole",
            axum::routing::post(move || async move { whole.clone() }),
        )
        .route(
            "/streamed",
            axum::routing::post(move || async move {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    streamed.chunks(32 * 1024).map(|c| Ok(c.to_vec())).collect();
                Body::from_stream(futures::stream::iter(chunks))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let big = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    for path in ["whole", "streamed"] {
        let graph = start(|settings| {
            settings.limits.max_subgraph_reply_bytes = 1024 * 1024;
            settings
                .subgraph_urls
                .insert("accounts".into(), format!("http://{big}/{path}"));
        })
        .await;
        let (status, _, body) = post(&graph.url, &json!({ "query": "{ users { id } }" })).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("max_subgraph_reply_bytes")),
            "{path}: {body}"
        );
        assert_eq!(codes(&body), ["SUBREQUEST_HTTP_ERROR"], "{path}: {body}");
        // Still serving: a query to another subgraph answers in full.
        let (status, _, body) = post(
            &graph.url,
            &json!({ "query": "{ topProducts { upc name } }" }),
        )
        .await;
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "{body}");
    }
    // Under the limit, the same reply is read.
    let graph = start(|settings| {
        settings
            .subgraph_urls
            .insert("accounts".into(), format!("http://{big}/streamed"));
    })
    .await;
    let (_, _, body) = post(&graph.url, &json!({ "query": "{ users { id } }" })).await;
    assert_eq!(
        body["data"]["users"].as_array().map(Vec::len),
        Some(10),
        "{body}"
    );
}
