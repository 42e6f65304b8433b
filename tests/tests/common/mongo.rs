//! The MongoDB subgraph tests' fixtures: the demo subgraph, scratch databases and requests
//! answered in process.

use std::sync::atomic::{AtomicU32, Ordering};

use async_graphql::Variables;
use mongodb::bson::Document;
use polygraph_subgraph_mongodb::{Config, Subgraph};
use serde_json::Value;

use super::{SERVERS_HINT, endpoints, repo_root};

/// The demo subgraph, as `config/mongodb.yaml` configures it.
pub async fn demo() -> Subgraph {
    let config = Config::from_file(&repo_root().join("config/mongodb.yaml")).unwrap();
    Subgraph::start(&config)
        .await
        .unwrap_or_else(|error| panic!("starting the MongoDB subgraph: {error:#}; {SERVERS_HINT}"))
}

/// A scratch database holding `documents` in `items`, dropped when the guard goes.
pub struct Scratch {
    pub database: mongodb::Database,
    pub name: String,
}

impl Scratch {
    pub async fn with(documents: Vec<Document>) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "polygraph_scratch_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let client = mongodb::Client::with_uri_str(&endpoints().mongodb)
            .await
            .unwrap();
        let database = client.database(&name);
        database.drop().await.unwrap();
        if !documents.is_empty() {
            database
                .collection::<Document>("items")
                .insert_many(documents)
                .await
                .unwrap();
        }
        Self { database, name }
    }

    pub async fn subgraph(&self, collections: &str) -> Subgraph {
        self.start(&format!("collections: {collections}")).await
    }

    /// The `items` collection keyed by `item_id`, its reads ending at `timeout_ms`.
    pub async fn timed(&self, timeout_ms: u64) -> Subgraph {
        self.start(&format!(
            "operation_timeout_ms: {timeout_ms}\ncollections: {{ items: {{ key: item_id }} }}"
        ))
        .await
    }

    /// A subgraph over this database with the rest of its configuration `settings`.
    pub async fn start(&self, settings: &str) -> Subgraph {
        let yaml = format!(
            "url: {}\ndatabase: {}\n{settings}",
            endpoints().mongodb,
            self.name
        );
        Subgraph::start(&Config::from_yaml(&yaml).unwrap())
            .await
            .unwrap()
    }

    pub async fn drop(self) {
        self.database.drop().await.unwrap();
    }
}

pub async fn run(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    subgraph
        .served()
        .execute(query, None, &Variables::from_json(variables), None)
        .await
        .json()
}

/// Data of a response that must have no errors.
pub async fn data(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    let response = run(subgraph, query, variables).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"].clone()
}

pub fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap().to_owned())
        .collect()
}
