//! Persisted queries at the gateway: APQ shared between replicas through a real Redis (one this
//! test starts, stops and restarts), Apollo Client's persisted-queries link against it, and a
//! safelist built from what that client sends.

mod common;

use std::time::{Duration, Instant};

use common::federation::{Graph, codes, post, start};
use common::redis::OwnRedis;
use serde_json::json;
use sha2::Digest as _;

fn sha256(text: &str) -> String {
    use std::fmt::Write as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::new(), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// A request with the query's hash and, when `with_text`, the query.
fn apq(query: &str, with_text: bool) -> serde_json::Value {
    let mut body = json!({
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256(query) } }
    });
    if with_text {
        body["query"] = json!(query);
    }
    body
}

async fn gateway_on(redis: &OwnRedis) -> Graph {
    let url = redis.url();
    let graph = start(|settings| settings.redis.url = Some(url)).await;
    graph.gateway.start().await;
    graph
}

#[tokio::test]
async fn apq_is_shared_through_redis_and_survives_redis_going_away() {
    let mut redis = OwnRedis::start();
    let (a, b) = (gateway_on(&redis).await, gateway_on(&redis).await);
    let query = "{ me { id name } }";
    let (status, _, body) = post(&a.url, &apq(query, false)).await;
    assert_eq!(
        (status, codes(&body)),
        (200, vec!["PERSISTED_QUERY_NOT_FOUND".to_owned()])
    );
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    let (_, _, body) = post(&a.url, &apq(query, true)).await;
    assert_eq!(body["data"]["me"]["name"], "User 1", "{body}");
    // Another replica knows it through Redis.
    let (_, _, body) = post(&b.url, &apq(query, false)).await;
    assert_eq!(body["data"]["me"]["name"], "User 1", "{body}");
    // The wrong text for a hash is refused.
    let mut forged = apq(query, true);
    forged["query"] = json!("{ users { id } }");
    let (_, _, body) = post(&a.url, &forged).await;
    assert_eq!(codes(&body), ["PERSISTED_QUERY_HASH_MISMATCH"]);

    redis.stop();
    // Without Redis: what a replica holds in memory still answers, new text still registers
    // there, and nothing reaches the client but answers.
    let (_, _, body) = post(&a.url, &apq(query, false)).await;
    assert_eq!(body["data"]["me"]["name"], "User 1", "{body}");
    let other = "{ users { id } }";
    let (_, _, body) = post(&b.url, &apq(other, true)).await;
    assert_eq!(
        body["data"]["users"].as_array().unwrap().len(),
        10,
        "{body}"
    );
    let (_, _, body) = post(&b.url, &apq(other, false)).await;
    assert_eq!(
        body["data"]["users"].as_array().unwrap().len(),
        10,
        "{body}"
    );
    let c = gateway_on(&redis).await;
    let (status, _, body) = post(&c.url, &apq(query, false)).await;
    assert_eq!(
        (status, codes(&body)),
        (200, vec!["PERSISTED_QUERY_NOT_FOUND".to_owned()])
    );
    let (_, _, body) = post(&c.url, &json!({ "query": query })).await;
    assert_eq!(body["data"]["me"]["name"], "User 1", "{body}");

    // Redis back (empty): sharing resumes once the replicas have reconnected.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        post(&a.url, &apq(query, true)).await;
        let (_, _, body) = post(&c.url, &apq(query, false)).await;
        if body["data"]["me"]["name"] == "User 1" {
            break;
        }
        assert!(Instant::now() < deadline, "sharing did not resume: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `tests/js/apq-client.mjs` (Apollo Client with its persisted-queries link) against
/// `url` with `queries`.
async fn apollo_client(url: &str, queries: &[&str]) -> serde_json::Value {
    let script = common::repo_root().join("tests/js/apq-client.mjs");
    let mut command = tokio::process::Command::new("node");
    command.arg(script).arg(url).args(queries);
    let output = command
        .output()
        .await
        .expect("node runs (scripts/test installs tests/js)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn apollo_clients_persisted_queries_link_misses_then_hits_and_a_safelist_holds() {
    let redis = OwnRedis::start();
    let graph = gateway_on(&redis).await;
    let query = "query Me { me { id name } }";
    let run = apollo_client(&graph.url, &[query, query]).await;
    assert_eq!(run["results"][0]["data"]["me"]["name"], "User 1", "{run}");
    assert_eq!(run["results"][1]["data"]["me"]["name"], "User 1", "{run}");
    let sent = run["sent"].as_array().unwrap();
    // The first query: its hash alone (a miss), then with its text; the second: its hash alone.
    assert_eq!(sent.len(), 3, "{run}");
    assert!(sent[0]["text"].is_null() && sent[1]["text"].is_string() && sent[2]["text"].is_null());
    let text = sent[1]["text"].as_str().unwrap();
    assert_eq!(sent[0]["hash"], json!(sha256(text)));

    // A safelist of exactly what the app sent: its query runs by id, another does not.
    let folder = std::env::temp_dir().join(format!("polygraph-safelist-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let manifest = folder.join("manifest.json");
    std::fs::write(
        &manifest,
        json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{ "id": sha256(text), "name": "Me", "type": "query", "body": text }]
        })
        .to_string(),
    )
    .unwrap();
    let listed = start(|settings| {
        settings.persisted_queries.manifest = Some(manifest.clone());
        settings.persisted_queries.safelist = polygraph_gateway::persisted::Safelist::Enforce;
    })
    .await;
    let unlisted = "query Users { users { id } }";
    let run = apollo_client(&listed.url, &[query, unlisted]).await;
    assert_eq!(run["results"][0]["data"]["me"]["name"], "User 1", "{run}");
    assert!(run["results"][1]["data"].is_null(), "{run}");
    assert_eq!(
        run["sent"].as_array().unwrap().len(),
        2,
        "no text was sent: {run}"
    );
    // Sent as text, an unlisted operation is refused too.
    let (status, _, body) = post(&listed.url, &json!({ "query": unlisted })).await;
    assert_eq!(
        (status, codes(&body)),
        (200, vec!["PERSISTED_QUERY_NOT_IN_LIST".to_owned()])
    );
    std::fs::remove_dir_all(&folder).unwrap();
}
