//! A Federation v2 search subgraph over Elasticsearch or OpenSearch indices.
//!
//! Start-up reads each configured index's mapping and a few documents ([`model`]) and generates
//! the schema ([`schema`]): an entity type per index and a search field whose arguments become
//! one `_search` body ([`query`]).

mod client;
pub mod config;
mod engine;
pub mod model;
pub mod query;
pub mod schema;
mod search;

use std::sync::Arc;

use anyhow::{Context as _, bail};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::indices::IndicesGetMappingParts;
use elasticsearch::{Elasticsearch, SearchParts};
use polygraph_subgraph_core::config::redacted_url;
use polygraph_subgraph_core::recorder::Recorder;
use serde_json::{Value as Json, json};

pub use config::Config;

/// A running subgraph: its schema and the client it serves from.
pub struct Subgraph {
    pub schema: async_graphql::dynamic::Schema,
    pub model: Arc<model::Model>,
    /// Answers every operation the schema validates.
    engine: Arc<engine::Searches>,
    requests: Arc<Recorder>,
    mappings: Introspection,
}

/// What start-up reads from the search server: each configured index's mapping and the
/// fields its sample documents hold, in the config's order.
pub type Introspection = Vec<(serde_json::Value, std::collections::BTreeSet<String>)>;

/// A client of the search server at `url`, each request ended at the configured timeout.
/// With `POLYGRAPH_ELASTICSEARCH_API_KEY` (the encoded key, as the server hands it out) it
/// signs in with that key; with a user and password in the URL, with those (basic auth).
fn client(config: &Config, url: &str) -> anyhow::Result<Elasticsearch> {
    use elasticsearch::auth::Credentials;
    let mut parsed: elasticsearch::http::Url = url
        .parse()
        .with_context(|| format!("the search server URL {}", redacted_url(url)))?;
    let decoded = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let basic = (!parsed.username().is_empty()).then(|| {
        Credentials::Basic(
            decoded(parsed.username()),
            decoded(parsed.password().unwrap_or_default()),
        )
    });
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let api_key = std::env::var("POLYGRAPH_ELASTICSEARCH_API_KEY")
        .ok()
        .filter(|key| !key.is_empty())
        .map(Credentials::EncodedApiKey);
    let mut transport = TransportBuilder::new(SingleNodeConnectionPool::new(parsed))
        .timeout(std::time::Duration::from_millis(config.timeout_ms));
    if let Some(credentials) = api_key.or(basic) {
        transport = transport.auth(credentials);
    }
    let transport = transport.build().context("building the search client")?;
    Ok(Elasticsearch::new(transport))
}

impl Subgraph {
    /// Connects, reads each index's mapping and generates the schema.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let url = config.url();
        let client = client(config, &url)?;
        let mut mappings = Vec::with_capacity(config.indices.len());
        for name in config.indices.keys() {
            mappings.push(
                mapping(&client, name, config.sample_size)
                    .await
                    .with_context(|| format!("reading index {name} at {}", redacted_url(&url)))?,
            );
        }
        Self::assemble(config, mappings, client)
    }

    /// The subgraph from mappings read before (as [`Subgraph::introspection`] gives them), its
    /// client to `url`: what start-up does once the mappings are read, and how the fuzz targets
    /// build the subgraph without a search server.
    pub fn from_introspection(
        config: &Config,
        mappings: &Introspection,
        url: &str,
    ) -> anyhow::Result<Self> {
        Self::assemble(config, mappings.clone(), client(config, url)?)
    }

    fn assemble(
        config: &Config,
        mappings: Introspection,
        client: Elasticsearch,
    ) -> anyhow::Result<Self> {
        let model = Arc::new(model::build(config, &mappings)?);
        let requests = Arc::new(Recorder::new("elasticsearch", "elasticsearch"));
        let schema = schema::build(&model).context("generating the GraphQL schema")?;
        let engine = Arc::new(engine::Searches {
            client: client::Client {
                model: model.clone(),
                server: client,
                requests: requests.clone(),
            },
        });
        Ok(Self {
            schema,
            model,
            engine,
            requests,
            mappings,
        })
    }

    /// Each configured index's mapping as start-up read it, for
    /// [`Subgraph::from_introspection`].
    pub fn introspection(&self) -> &Introspection {
        &self.mappings
    }

    /// The schema and its engine, ready to serve.
    pub fn served(&self) -> polygraph_subgraph_core::server::Served {
        polygraph_subgraph_core::server::Served::with_engine(
            self.schema.clone(),
            self.engine.clone(),
        )
    }

    /// Requests sent to the search server since start-up.
    pub fn requests(&self) -> u64 {
        self.requests.count()
    }

    /// Counts what it sends the database, and keeps their texts while a test asks it to.
    pub fn recorder(&self) -> &Recorder {
        &self.requests
    }

    /// The subgraph's SDL, as `_service { sdl }` returns it.
    pub fn sdl(&self) -> String {
        polygraph_subgraph_core::server::sdl(&self.schema)
    }
}

/// An index's mapped properties, and the fields its first documents hold arrays in.
async fn mapping(
    client: &Elasticsearch,
    name: &str,
    sample_size: u64,
) -> anyhow::Result<(Json, std::collections::BTreeSet<String>)> {
    let response = client
        .indices()
        .get_mapping(IndicesGetMappingParts::Index(&[name]))
        .send()
        .await?;
    if !response.status_code().is_success() {
        bail!("no mapping (HTTP {})", response.status_code());
    }
    let body: Json = response.json().await?;
    let properties = body
        .as_object()
        .and_then(|indices| indices.values().next())
        .map(|index| index["mappings"]["properties"].clone())
        .filter(Json::is_object)
        .ok_or_else(|| anyhow::anyhow!("the mapping has no properties"))?;
    let samples: Json = client
        .search(SearchParts::Index(&[name]))
        .body(json!({ "size": sample_size, "query": { "match_all": {} } }))
        .send()
        .await?
        .json()
        .await?;
    let documents: Vec<Json> = samples["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|hit| hit["_source"].clone())
        .collect();
    Ok((properties, model::array_paths(&documents)))
}

impl polygraph_subgraph_core::subgraph::Subgraph for Subgraph {
    type Config = Config;
    const NAME: &'static str = "elasticsearch";

    fn listen(config: &Config) -> std::net::SocketAddr {
        config.listen
    }

    fn server(config: &Config) -> &polygraph_service::serve::Limits {
        &config.server
    }

    async fn start(config: &Config) -> anyhow::Result<Self> {
        Subgraph::start(config).await
    }

    fn served(&self) -> polygraph_subgraph_core::server::Served {
        Subgraph::served(self)
    }

    fn has_rules(&self) -> bool {
        self.model.indices.iter().any(|index| index.rule.is_some())
    }
}
