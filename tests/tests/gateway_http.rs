//! GraphQL over HTTP at the gateway, and what it does with bad and hostile requests: each gets
//! a GraphQL error with a code and a fitting status, and the gateway keeps serving.

mod common;

use std::fmt::Write as _;

use common::federation::{codes, post, post_with, start};
use serde_json::json;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn raw(url: &str, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

async fn still_serving(url: &str) {
    let (status, _, body) = post(url, &json!({ "query": "{ me { name } }" })).await;
    assert_eq!(
        (status, &body["data"]["me"]["name"]),
        (200, &json!("User 1")),
        "{body}"
    );
}

#[tokio::test]
async fn the_graphql_http_audit_finds_no_failing_must() {
    let graph = start(|_| {}).await;
    let root = common::repo_root();
    let url = graph.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(root.join("tests/js/http-audit.mjs"))
            .arg(url)
            .output()
            .expect("node runs (scripts/test installs tests/js)")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    assert!(results.len() > 40, "the audit ran: {report}");
    let failing: Vec<&serde_json::Value> = results.iter().filter(|r| r["status"] != "ok").collect();
    assert!(failing.is_empty(), "failing audits: {failing:#?}");
}

#[tokio::test]
async fn media_types_and_statuses_follow_the_spec() {
    let graph = start(|_| {}).await;
    let accept = [("accept", GRAPHQL_RESPONSE)];
    let (status, media, body) =
        post_with(&graph.url, &json!({ "query": "{ me { id } }" }), &accept).await;
    assert_eq!((status, media.starts_with(GRAPHQL_RESPONSE)), (200, true));
    assert_eq!(body["data"]["me"]["id"], "1");
    // A validation error: 400 with the new media type, 200 with application/json.
    let invalid = json!({ "query": "{ me { nope } }" });
    let (status, _, body) = post_with(&graph.url, &invalid, &accept).await;
    assert_eq!(status, 400);
    assert!(
        codes(&body)
            .iter()
            .all(|code| code == "GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    assert!(
        body.get("data").is_none(),
        "request errors have no data: {body}"
    );
    let nope = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|error| error["message"].as_str().unwrap().contains("nope"))
        .expect("an error names the field");
    assert_eq!(
        nope["locations"],
        json!([{ "line": 1, "column": 8 }]),
        "{body}"
    );
    let (status, media, _) = post(&graph.url, &invalid).await;
    assert_eq!((status, media.starts_with("application/json")), (200, true));
    // GET runs queries, refuses mutations-to-be and reads variables.
    let response = reqwest::get(format!(
        "{}?query=query($id:ID!){{user(id:$id){{name}}}}&variables={{\"id\":\"2\"}}",
        graph.url
    ))
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"]["user"]["name"], "User 2");
    let (status, body) = raw(&graph.url, "text/plain", b"{ me { id } }".to_vec()).await;
    assert_eq!(
        (status, codes(&body)),
        (415, vec!["UNSUPPORTED_MEDIA_TYPE".to_owned()])
    );
    let health = reqwest::get(format!("http://{}/health", graph.address))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn malformed_requests_get_400_and_a_code() {
    let graph = start(|_| {}).await;
    for (body, code) in [
        (b"{\"query\": ".to_vec(), "BAD_REQUEST"),
        (b"[1, 2]".to_vec(), "BAD_REQUEST"),
        (b"{\"query\": 42}".to_vec(), "BAD_REQUEST"),
        (
            b"{\"query\": \"{ me { id } }\", \"variables\": [1]}".to_vec(),
            "BAD_REQUEST",
        ),
        (b"{}".to_vec(), "BAD_REQUEST"),
    ] {
        let (status, answer) = raw(&graph.url, "application/json", body.clone()).await;
        assert_eq!(status, 400, "{}: {answer}", String::from_utf8_lossy(&body));
        assert_eq!(codes(&answer), [code]);
    }
    let (status, _, body) = post(&graph.url, &json!({ "query": "{ me { id " })).await;
    assert_eq!(status, 200);
    assert!(!codes(&body).is_empty(), "{body}");
    assert!(
        codes(&body)
            .iter()
            .all(|code| code == "GRAPHQL_PARSE_FAILED"),
        "{body}"
    );
    still_serving(&graph.url).await;
}

#[tokio::test]
async fn operation_names_and_variables_are_checked() {
    let graph = start(|_| {}).await;
    let accept = [("accept", GRAPHQL_RESPONSE)];
    let two = "query A { me { id } } query B { me { name } }";
    let (status, _, body) = post_with(
        &graph.url,
        &json!({ "query": two, "operationName": "C" }),
        &accept,
    )
    .await;
    assert_eq!(
        (status, codes(&body)),
        (400, vec!["GRAPHQL_UNKNOWN_OPERATION_NAME".to_owned()])
    );
    let (_, _, body) = post(&graph.url, &json!({ "query": two, "operationName": "B" })).await;
    assert_eq!(body["data"]["me"]["name"], "User 1");
    let typed = "query($id: ID!) { user(id: $id) { name } }";
    for variables in [
        json!({}),
        json!({ "id": { "nested": true } }),
        json!({ "id": [1] }),
    ] {
        let (status, _, body) = post_with(
            &graph.url,
            &json!({ "query": typed, "variables": variables }),
            &accept,
        )
        .await;
        assert_eq!(status, 400, "{variables}: {body}");
        assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{variables}");
    }
    still_serving(&graph.url).await;
}

#[tokio::test]
async fn oversized_and_hostile_operations_are_refused() {
    let graph = start(|_| {}).await;
    // A 5 MB body.
    let padding = "#".repeat(5 * 1024 * 1024);
    let big = json!({ "query": format!("{{ me {{ id }} }}\n{padding}") });
    let (status, body) = raw(
        &graph.url,
        "application/json",
        serde_json::to_vec(&big).unwrap(),
    )
    .await;
    assert_eq!(
        (status, codes(&body)),
        (413, vec!["PAYLOAD_TOO_LARGE".to_owned()])
    );
    // 10,000 aliases.
    let mut aliases = String::from("{");
    for index in 0..10_000 {
        let _ = write!(aliases, " a{index}: __typename");
    }
    aliases.push('}');
    let (status, _, body) = post(&graph.url, &json!({ "query": aliases })).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&body), ["MAX_FIELDS_EXCEEDED"], "{body}");
    // Deep nesting, within the parser's limits and beyond them.
    let nest = |depth: usize| {
        let mut query = String::from("{ me ");
        for _ in 0..depth {
            query.push_str("{ reviews { author ");
        }
        query.push_str("{ id }");
        for _ in 0..depth {
            query.push_str(" } }");
        }
        query.push_str(" }");
        query
    };
    let (_, _, body) = post(&graph.url, &json!({ "query": nest(40) })).await;
    assert_eq!(codes(&body), ["MAX_DEPTH_EXCEEDED"], "{body}");
    let (_, _, body) = post(&graph.url, &json!({ "query": nest(5_000) })).await;
    assert!(!codes(&body).is_empty(), "{body}");
    // Fragments that multiply: counted where they are spread.
    let mut fragments = String::from("{ users { ...F0 } }\n");
    for level in 0..12 {
        let _ = writeln!(
            fragments,
            "fragment F{level} on User {{ reviews {{ author {{ ...F{next} }} }} author2: reviews {{ author {{ ...F{next} }} }} }}",
            next = level + 1
        );
    }
    fragments.push_str("fragment F12 on User { id }\n");
    let (_, _, body) = post(&graph.url, &json!({ "query": fragments })).await;
    assert!(!codes(&body).is_empty(), "{body}");
    still_serving(&graph.url).await;
}

#[tokio::test]
async fn graphiql_is_served_from_the_binary() {
    let graph = start(|_| {}).await;
    let page = reqwest::get(format!("http://{}/", graph.address))
        .await
        .unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>Polygraph</title>"));
    assert!(!html.contains("https://"), "no CDN: {html}");
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "polygraph.js",
    ] {
        assert!(html.contains(&format!("/graphiql/{asset}")));
        let response = reqwest::get(format!("http://{}/graphiql/{asset}", graph.address))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 50, "{asset}");
    }
}
