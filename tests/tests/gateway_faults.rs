//! A subgraph that misbehaves — slow, unreachable, answering garbage, an HTML 500, a 50 MB
//! body, or errors that spill its internals — costs the client only the fields it owns: they
//! come back `null` with an error at their paths, with a code and a message that names no
//! host, SQL state or constraint; everything else answers; and the gateway keeps serving.
//! Here the inventory subgraph (`Product.shippingEstimate`, nullable) is the bad one.

mod common;

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::federation::{Graph, codes, post, start};
use serde_json::{Value, json};

const QUERY: &str = "{ me { name } topProducts(first: 3) { upc name shippingEstimate } }";

/// What leaks when a subgraph passes its database's error on as it is.
const LEAKY: &str = "duplicate key value violates unique constraint \"users_email_key\" \
    (SQLSTATE 23505) on postgres://admin:hunter2@db01.internal:5432/prod";

/// How many representations an `_entities` request carries.
fn representations(body: &Bytes) -> usize {
    serde_json::from_slice::<Value>(body).map_or(0, |request| {
        request["variables"]["representations"]
            .as_array()
            .map_or(0, Vec::len)
    })
}

async fn misbehave(kind: &str, body: Bytes) -> Response {
    match kind {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(20)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        "garbage" => (StatusCode::OK, b"\x00\xff{{{ not json at all".to_vec()).into_response(),
        "html500" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/html")],
            "<html><body><h1>500</h1>upstream db01.internal:5432 refused</body></html>",
        )
            .into_response(),
        "huge" => {
            // 50 MB of entities, made as they are sent: never whole on this side either.
            let chunk = Bytes::from(format!("{},", json!({ "pad": "x".repeat(64 * 1024) })));
            let head = Bytes::from_static(b"{\"data\":{\"_entities\":[");
            let chunks = std::iter::once(head).chain(std::iter::repeat_n(chunk, 800));
            Body::from_stream(futures::stream::iter(chunks.map(Ok::<_, std::io::Error>)))
                .into_response()
        }
        "spoofing" => {
            // 1,500 errors posing as the gateway's, each with a 300-step path.
            let count = representations(&body);
            let entities = vec![r#"{"__typename":"Product","shippingEstimate":null}"#; count];
            let deep: Vec<String> = (0..300).map(|i| format!("\"k{i}\"")).collect();
            let error = format!(
                r#"{{"message":"sign in again","path":[{}],"extensions":{{"code":"PERSISTED_QUERY_NOT_FOUND"}}}}"#,
                deep.join(",")
            );
            let errors = vec![error; 1_500];
            let body = format!(
                r#"{{"data":{{"_entities":[{}]}},"errors":[{}]}}"#,
                entities.join(","),
                errors.join(",")
            );
            ([("content-type", "application/json")], body).into_response()
        }
        _ => {
            let count = representations(&body);
            let entities: Vec<Value> = (0..count)
                .map(|_| json!({ "__typename": "Product", "shippingEstimate": null }))
                .collect();
            let errors: Vec<Value> = (0..count)
                .map(|i| {
                    json!({
                        "message": LEAKY,
                        "path": ["_entities", i, "shippingEstimate"],
                        "extensions": {
                            "code": "BAD_USER_INPUT",
                            "sqlState": "23505",
                            "exception": { "stacktrace": ["at db01.internal"] }
                        }
                    })
                })
                .collect();
            axum::Json(json!({ "data": { "_entities": entities }, "errors": errors }))
                .into_response()
        }
    }
}

/// A subgraph misbehaving in the way its path names (`/slow`, `/garbage`, …).
async fn bad_subgraph() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/{kind}",
        axum::routing::post(
            |axum::extract::Path(kind): axum::extract::Path<String>, body: Bytes| async move {
                misbehave(&kind, body).await
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// The gateway with inventory at `url`.
async fn gateway(url: String, expose: bool) -> Graph {
    start(|settings| {
        settings.subgraph_timeout_ms = 500;
        settings.limits.max_subgraph_reply_bytes = 8 * 1024 * 1024;
        settings.expose_subgraph_errors = expose;
        settings.subgraph_urls.insert("inventory".into(), url);
    })
    .await
}

/// The answer to [`QUERY`] with inventory failing: everything but `shippingEstimate` is
/// there, and each `shippingEstimate` is `null` with one error at its path.
fn assert_only_inventory_failed(body: &Value, code: &str) {
    assert_eq!(body["data"]["me"]["name"], "User 1", "{body}");
    let products = body["data"]["topProducts"].as_array().expect("products");
    assert_eq!(products.len(), 3, "{body}");
    for (i, product) in products.iter().enumerate() {
        assert_eq!(product["name"], format!("Product {}", i + 1), "{body}");
        assert_eq!(product["shippingEstimate"], Value::Null, "{body}");
    }
    let paths: Vec<&Value> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| &error["path"])
        .collect();
    assert_eq!(
        paths,
        (0..3)
            .map(|i| json!(["topProducts", i, "shippingEstimate"]))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>(),
        "{body}"
    );
    assert!(codes(body).iter().all(|c| c == code), "{body}");
    for error in body["errors"].as_array().unwrap() {
        let extensions = &error["extensions"];
        let service = extensions.get("serviceName").or(extensions.get("service"));
        assert_eq!(service, Some(&json!("inventory")), "{body}");
    }
}

/// Nothing internal in what the client got.
fn assert_nothing_leaks(body: &Value) {
    let text = body.to_string();
    for secret in [
        "db01",
        "hunter2",
        "23505",
        "users_email_key",
        "127.0.0.1",
        "stacktrace",
        "Connection refused",
    ] {
        assert!(!text.contains(secret), "{secret:?} leaked: {text}");
    }
}

#[tokio::test]
async fn each_bad_reply_costs_only_its_fields_and_says_why_without_internals() {
    let bad = bad_subgraph().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    for (kind, url, said) in [
        (
            "slow",
            format!("http://{bad}/slow"),
            "timed out after 500 ms",
        ),
        (
            "garbage",
            format!("http://{bad}/garbage"),
            "answered something that is not a GraphQL response",
        ),
        (
            "html500",
            format!("http://{bad}/html500"),
            "answered HTTP 500 Internal Server Error",
        ),
        (
            "huge",
            format!("http://{bad}/huge"),
            "answered more than 8388608 bytes",
        ),
        (
            "unreachable",
            format!("http://{closed}/graphql"),
            "unreachable",
        ),
    ] {
        let graph = gateway(url, false).await;
        let started = Instant::now();
        let (status, _, body) = post(&graph.url, &json!({ "query": QUERY })).await;
        assert!(started.elapsed() < Duration::from_secs(5), "{kind}");
        assert_eq!(status, 200, "{kind}: {body}");
        assert_only_inventory_failed(&body, "SUBREQUEST_HTTP_ERROR");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with("subgraph \"inventory\" failed: ") && message.contains(said),
            "{kind}: {message}"
        );
        assert_nothing_leaks(&body);
        // Still serving: what inventory does not own answers in full.
        let (_, _, body) = post(&graph.url, &json!({ "query": "{ users { name } }" })).await;
        assert!(body.get("errors").is_none(), "{kind}: {body}");
    }
}

#[tokio::test]
async fn a_subgraphs_own_errors_reach_clients_as_a_code_and_a_safe_message() {
    let bad = bad_subgraph().await;
    let graph = gateway(format!("http://{bad}/leaky"), false).await;
    let (_, _, body) = post(&graph.url, &json!({ "query": QUERY })).await;
    assert_only_inventory_failed(&body, "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        "subgraph \"inventory\" refused the request's input"
    );
    assert_eq!(
        body["errors"][0]["extensions"],
        json!({ "code": "BAD_USER_INPUT", "serviceName": "inventory" })
    );
    assert_nothing_leaks(&body);
}

/// `expose_subgraph_errors`, for development, passes messages, extensions and causes on.
#[tokio::test]
async fn exposing_subgraph_errors_passes_them_on_as_they_are() {
    let bad = bad_subgraph().await;
    let graph = gateway(format!("http://{bad}/leaky"), true).await;
    let (_, _, body) = post(&graph.url, &json!({ "query": QUERY })).await;
    assert_only_inventory_failed(&body, "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["message"], LEAKY);
    assert_eq!(body["errors"][0]["extensions"]["sqlState"], "23505");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let graph = gateway(format!("http://{closed}/graphql"), true).await;
    let (_, _, body) = post(&graph.url, &json!({ "query": QUERY })).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("unreachable: ") && message.len() > "unreachable: ".len() + 30,
        "the cause is told: {message}"
    );
}

/// A subgraph cannot pose as the gateway with its codes, nor make the answer or the work of
/// placing its errors as large as it likes.
#[tokio::test]
async fn a_subgraph_cannot_spoof_codes_or_flood_errors() {
    let bad = bad_subgraph().await;
    let graph = gateway(format!("http://{bad}/spoofing"), false).await;
    let started = Instant::now();
    let (status, _, body) = post(&graph.url, &json!({ "query": QUERY })).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status, 200);
    assert_eq!(body["data"]["me"]["name"], "User 1", "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.len() <= 1000, "{} errors", errors.len());
    assert!(
        codes(&body)
            .iter()
            .all(|code| code == "DOWNSTREAM_SERVICE_ERROR"),
        "{:?}",
        &errors[..3]
    );
    // The over-long paths were not taken: each error sits at a fetched object.
    assert!(
        errors
            .iter()
            .all(|error| error["path"].as_array().is_some_and(|p| p.len() <= 3)),
        "{}",
        errors[0]
    );
}
