//! The gateway follows its supergraph while serving: from the registry (polled with its
//! entity tag) and from a file it re-reads. Under a steady load, a field is added and then
//! removed; no request fails, the new field answers soon after it is published, and a
//! supergraph that does not load is refused while the old one keeps serving. Real binaries:
//! the Redis subgraph over the demo data, the registry, the gateway.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{polygraph_binary, repo_root};
use serde_json::{Value, json};

const PUBLISH: &str = "ci-publisher-secret-0123456789";
const READ: &str = "gateway-reader-secret-0123456789";

/// Selects the field the test adds and removes (`FeatureVector.missing`).
const WITH_FIELD: &str = r#"{ featureVector(entity: User, ids: ["1"], names: ["segment"]) { ids missing { id name } } }"#;
/// What the load asks throughout.
const STEADY: &str =
    r#"{ featureVector(entity: User, ids: ["1", "2"], names: ["segment"]) { ids names } }"#;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "{base} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(polygraph_binary());
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    Running(command.spawn().unwrap())
}

/// The Redis subgraph on a free port; its URL.
async fn redis_subgraph() -> (Running, String) {
    let port = free_port();
    let config = repo_root().join("config/redis.yaml");
    let running = spawn(
        &[
            "subgraph",
            "redis",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[],
    );
    wait_healthy(&format!("http://127.0.0.1:{port}")).await;
    (running, format!("http://127.0.0.1:{port}/graphql"))
}

/// The subgraph's SDL with and without `FeatureVector.missing`.
fn sdls() -> (String, String) {
    let full = std::fs::read_to_string(repo_root().join("schema/subgraphs/redis.graphql")).unwrap();
    let line = "\tmissing: [MissingFeature!]!\n";
    assert!(
        full.contains(line),
        "the Redis SDL has FeatureVector.missing"
    );
    (full.replace(line, ""), full)
}

async fn ask(client: &reqwest::Client, gateway: &str, query: &str) -> (u16, Value) {
    let response = client
        .post(gateway)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Asks `STEADY` over and over from four clients until `stop`; counts answers and failures.
fn load(
    gateway: &str,
    stop: &Arc<AtomicBool>,
) -> (
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let tasks = (0..4)
        .map(|_| {
            let (gateway, stop) = (gateway.to_owned(), stop.clone());
            let (answered, failed) = (answered.clone(), failed.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = ask(&client, &gateway, STEADY).await;
                    if status == 200
                        && body["errors"].is_null()
                        && body["data"]["featureVector"]["ids"] == json!(["1", "2"])
                    {
                        answered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        eprintln!("failed: {status} {body}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    (answered, failed, tasks)
}

/// Waits until `WITH_FIELD` answers (`true`) or is refused by validation (`false`); returns
/// how long that took.
async fn until_field(client: &reqwest::Client, gateway: &str, answers: bool) -> Duration {
    let started = Instant::now();
    loop {
        let (_, body) = ask(client, gateway, WITH_FIELD).await;
        let answered =
            body["errors"].is_null() && body["data"]["featureVector"]["missing"].is_array();
        if answered == answers {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the gateway did not follow: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn publish(client: &reqwest::Client, registry: &str, url: &str, sdl: &str) {
    let response = client
        .post(format!("{registry}/v1/publish"))
        .bearer_auth(PUBLISH)
        .json(&json!({ "name": "redis", "url": url, "sdl": sdl }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn the_gateway_follows_the_registry_without_failing_a_request() {
    let (_subgraph, url) = redis_subgraph().await;
    let (without, with) = sdls();
    let dir = tempfile::tempdir().unwrap();
    let registry_port = free_port();
    let registry = format!("http://127.0.0.1:{registry_port}");
    let file = dir.path().join("registry.json");
    let _registry = spawn(
        &[
            "registry",
            "serve",
            "--listen",
            &format!("127.0.0.1:{registry_port}"),
        ],
        &[
            ("POLYGRAPH_REGISTRY_FILE", file.to_str().unwrap()),
            (
                "POLYGRAPH_REGISTRY_PUBLISH_TOKENS",
                &format!("ci={PUBLISH}"),
            ),
            ("POLYGRAPH_REGISTRY_READ_TOKENS", &format!("gateway={READ}")),
        ],
    );
    wait_healthy(&registry).await;
    let client = reqwest::Client::new();
    publish(&client, &registry, &url, &without).await;

    let gateway_port = free_port();
    let _gateway = spawn(
        &[
            "gateway",
            "--supergraph",
            &format!("{registry}/v1/supergraph"),
            "--poll-seconds",
            "1",
            "--listen",
            &format!("127.0.0.1:{gateway_port}"),
        ],
        &[("POLYGRAPH_SUPERGRAPH_TOKEN", READ)],
    );
    let gateway = format!("http://127.0.0.1:{gateway_port}/graphql");
    wait_healthy(&format!("http://127.0.0.1:{gateway_port}")).await;
    assert!(until_field(&client, &gateway, false).await < Duration::from_secs(1));

    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed, tasks) = load(&gateway, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish(&client, &registry, &url, &with).await;
    let added = until_field(&client, &gateway, true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish(&client, &registry, &url, &without).await;
    let removed = until_field(&client, &gateway, false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let (answered, failed) = (
        answered.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "{answered} answered, {failed} failed; the field answered after {added:?}, was gone after {removed:?} (polling every 1 s)"
    );
    assert_eq!(failed, 0);
    assert!(answered > 20, "only {answered} requests ran");
}

#[tokio::test]
async fn the_gateway_follows_a_file_and_refuses_a_supergraph_that_does_not_load() {
    let (_subgraph, url) = redis_subgraph().await;
    let (without, with) = sdls();
    let compose = |sdl: &str| polygraph_schema_compose(&url, sdl);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supergraph.graphql");
    std::fs::write(&path, compose(&without)).unwrap();
    let port = free_port();
    let _gateway = spawn(
        &[
            "gateway",
            "--supergraph",
            path.to_str().unwrap(),
            "--poll-seconds",
            "1",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[],
    );
    let gateway = format!("http://127.0.0.1:{port}/graphql");
    wait_healthy(&format!("http://127.0.0.1:{port}")).await;
    let client = reqwest::Client::new();
    until_field(&client, &gateway, false).await;

    // Not a supergraph: refused, and the one serving keeps answering.
    std::fs::write(&path, "type Query { broken: Nope }").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = ask(&client, &gateway, STEADY).await;
    assert_eq!(status, 200);
    assert!(body["errors"].is_null(), "{body}");

    std::fs::write(&path, compose(&with)).unwrap();
    until_field(&client, &gateway, true).await;
}

/// The supergraph of the Redis subgraph alone with `sdl`, composed by `polygraph compose`.
fn polygraph_schema_compose(url: &str, sdl: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("redis.graphql");
    std::fs::write(&file, sdl).unwrap();
    let config = dir.path().join("subgraphs.yaml");
    std::fs::write(
        &config,
        format!(
            "subgraphs:\n  - name: redis\n    url: {url}\n    file: {}\n",
            file.display()
        ),
    )
    .unwrap();
    let output = Command::new(polygraph_binary())
        .arg("compose")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
