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
    let mut aliases = String::from("{ me {");
    for index in 0..10_000 {
        let _ = write!(aliases, " a{index}: id");
    }
    aliases.push_str(" } }");
    let (status, _, body) = post(&graph.url, &json!({ "query": aliases })).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&body), ["MAX_ALIASES_EXCEEDED"], "{body}");
    // 5,000 fields without aliases.
    let wide = format!("{{ me {{ {} }} }}", "id ".repeat(5_000));
    let (_, _, body) = post(&graph.url, &json!({ "query": wide })).await;
    assert_eq!(codes(&body), ["MAX_FIELDS_EXCEEDED"], "{body}");
    // 300 root fields.
    let roots = format!("{{ {} }}", "me { id } ".repeat(300));
    let (_, _, body) = post(&graph.url, &json!({ "query": roots })).await;
    assert_eq!(codes(&body), ["MAX_ROOT_FIELDS_EXCEEDED"], "{body}");
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

#[tokio::test]
async fn a_get_riding_on_the_sign_in_cookie_must_show_it_was_not_forged() {
    let graph = start(|settings| {
        settings.authentication.cookie = Some("session".to_owned());
    })
    .await;
    let client = reqwest::Client::new();
    let get = |headers: &[(&'static str, &'static str)]| {
        let mut request = client.get(format!(
            "{}?query=%7B%20me%20%7B%20id%20%7D%20%7D",
            graph.url
        ));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    // No cookie, or only cookies the gateway does not sign in with: nothing to forge.
    let (status, body) = get(&[]).await;
    assert_eq!(
        (status, &body["data"]["me"]["id"]),
        (200, &json!("1")),
        "{body}"
    );
    let (status, _) = get(&[("cookie", "theme=dark")]).await;
    assert_eq!(status, 200);
    // The sign-in cookie on a request a page on another site could send without asking.
    for headers in [
        &[("cookie", "session=abc")][..],
        &[("cookie", "session=abc"), ("content-type", "text/plain")][..],
    ] {
        let (status, body) = get(headers).await;
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert_eq!(codes(&body), vec!["CSRF_PREVENTED"], "{body}");
    }
    // A header no simple request has lets it through (to sign-in, which here trusts no
    // issuer and so runs it anonymously).
    for headers in [
        &[("cookie", "session=abc"), ("x-polygraph-preflight", "1")][..],
        &[
            ("cookie", "session=abc"),
            ("content-type", "application/json"),
        ][..],
    ] {
        let (status, body) = get(headers).await;
        assert_eq!(status, 200, "{headers:?}: {body}");
        assert_eq!(body["data"]["me"]["id"], "1", "{body}");
    }
}

#[tokio::test]
async fn only_the_allowed_origins_may_read_answers_from_a_browser() {
    let preflight = |url: String, origin: &'static str| async move {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
            .await
            .unwrap()
    };
    let allowed = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|value| value.to_str().unwrap().to_owned())
    };
    // By default no origin is allowed: browsers keep other sites' pages from reading answers.
    let closed = start(|_| {}).await;
    let response = preflight(closed.url.clone(), "https://shop.example").await;
    assert_eq!(allowed(&response), None);

    let open = start(|settings| {
        settings.cors.allow_origins = vec!["https://shop.example".to_owned()];
        settings.cors.allow_credentials = true;
    })
    .await;
    let response = preflight(open.url.clone(), "https://shop.example").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(allowed(&response).as_deref(), Some("https://shop.example"));
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allow_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allow_headers.contains("authorization"), "{allow_headers}");
    assert_eq!(
        allowed(&preflight(open.url.clone(), "https://evil.example").await),
        None
    );
    let response = reqwest::Client::new()
        .post(&open.url)
        .header("origin", "https://shop.example")
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&response).as_deref(), Some("https://shop.example"));
    assert!(
        response
            .headers()
            .get_all("vary")
            .iter()
            .any(|value| value.to_str().unwrap().contains("origin")),
        "answers differ by origin"
    );

    // Credentials for any origin would let every site read a signed-in user's answers.
    let mut settings = polygraph_gateway::gateway::Settings::default();
    settings.cors.allow_origins = vec!["*".to_owned()];
    settings.cors.allow_credentials = true;
    let supergraph =
        polygraph_gateway::supergraph::Supergraph::parse(&common::federation::supergraph_sdl())
            .unwrap();
    let Err(error) = polygraph_gateway::gateway::Gateway::new(supergraph, settings) else {
        panic!("credentials for every origin were accepted");
    };
    assert!(error.contains("allow_credentials"), "{error}");
}
