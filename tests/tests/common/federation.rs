//! A federated graph on loopback for gateway tests: the four benchmark subgraphs (accounts,
//! inventory, products, reviews) as real HTTP servers, and a gateway in front of them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::supergraph::Supergraph;
use polygraph_testkit::federation::{NAMES, Served, subgraph};

use super::repo_root;

/// The benchmark supergraph, as checked in.
pub fn supergraph_sdl() -> String {
    std::fs::read_to_string(repo_root().join("bench/federation/supergraph.graphql"))
        .expect("bench/federation/supergraph.graphql is checked in")
}

pub struct Graph {
    /// The gateway's GraphQL endpoint.
    pub url: String,
    pub address: SocketAddr,
    pub gateway: Arc<Gateway>,
    subgraphs: HashMap<&'static str, Served>,
}

impl Graph {
    /// Requests subgraph `name` has answered so far.
    pub fn requests(&self, name: &str) -> usize {
        self.subgraphs[name].requests.load(Ordering::SeqCst)
    }
}

/// Starts the four subgraphs and a gateway; `adjust` may change the settings (timeouts,
/// limits, a subgraph URL pointing somewhere else).
pub async fn start(adjust: impl FnOnce(&mut Settings)) -> Graph {
    start_slow(&[], adjust).await
}

/// [`start`], with the subgraphs named in `slow` taking that long over each answer.
pub async fn start_slow(
    slow: &[(&str, std::time::Duration)],
    adjust: impl FnOnce(&mut Settings),
) -> Graph {
    let mut settings = Settings::default();
    let mut subgraphs = HashMap::new();
    for name in NAMES {
        let mut served = subgraph(name).expect("a benchmark subgraph");
        if let Some((_, delay)) = slow.iter().find(|(slow, _)| *slow == name) {
            served.delay = *delay;
        }
        let address = served
            .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a loopback port");
        settings
            .subgraph_urls
            .insert(name.to_owned(), format!("http://{address}/graphql"));
        subgraphs.insert(name, served);
    }
    // The benchmark's subgraphs test federation, not sign-in: its mutations run anonymously.
    settings.authorization.allow_anonymous_mutations = true;
    adjust(&mut settings);
    let supergraph = Supergraph::parse(&supergraph_sdl()).expect("the supergraph loads");
    let gateway = Arc::new(Gateway::new(supergraph, settings).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = polygraph_gateway::http::app(gateway.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Graph {
        url: format!("http://{address}/graphql"),
        address,
        gateway,
        subgraphs,
    }
}

/// POSTs `body` as JSON and returns the status, the content type and the parsed body.
pub async fn post(url: &str, body: &serde_json::Value) -> (u16, String, serde_json::Value) {
    post_with(url, body, &[]).await
}

pub async fn post_with(
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> (u16, String, serde_json::Value) {
    let mut request = reqwest::Client::new().post(url).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"));
    (status, content_type, json)
}

/// The error codes of a response.
pub fn codes(body: &serde_json::Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}
