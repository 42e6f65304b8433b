//! The search subgraph's configuration: plain data from YAML, unknown keys rejected, the server
//! URL overridable from the environment.
//!
//! ```yaml
//! listen: 127.0.0.1:4003
//! indices:
//!   products:
//!     type: Product            # each document is this entity …
//!     key: id                  # … keyed by this field (also the document's _id)
//!     expose: [tags, popularity]
//!     search: { name: 3, description: 1 }   # full-text fields and their boosts
//!     highlight: [name, description]
//! ```

use std::net::SocketAddr;
use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the subgraph listens.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Connections and requests in flight: timeouts, load shedding, shutdown grace, and
    /// where `/metrics` is served.
    #[serde(default)]
    pub server: polygraph_service::serve::Limits,
    /// The server; `POLYGRAPH_ELASTICSEARCH_URL` overrides it.
    #[serde(default)]
    pub url: Option<String>,
    /// Indices to expose, by name.
    pub indices: IndexMap<String, IndexConfig>,
    /// The most hits one search returns.
    #[serde(default = "default_max_size")]
    pub max_size: u64,
    /// The deepest `from` a search may page to (deeper pages use `after`).
    #[serde(default = "default_max_from")]
    pub max_from: u64,
    /// Documents read at start-up to tell list fields from single ones (mappings do not say).
    #[serde(default = "default_sample_size")]
    pub sample_size: u64,
    /// The deepest selection a request may make (introspection needs about 15).
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// The most fields a request may select, counting every fragment spread where it is used.
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
    /// How long one request to the server may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// The entity type of the documents.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The document field holding the entity key; the document's `_id` must equal it.
    #[serde(default = "polygraph_subgraph_core::config::default_key")]
    pub key: String,
    /// Document fields exposed on the entity type (owned here); by default every mapped field.
    #[serde(default)]
    pub expose: Option<Vec<String>>,
    /// Exposed fields that other subgraphs resolve too (`@shareable`).
    #[serde(default)]
    pub shareable: Vec<String>,
    /// Full-text fields searched, with their boosts; by default every `text` field, boost 1.
    #[serde(default)]
    pub search: IndexMap<String, f64>,
    /// Fields whose matches come back highlighted; by default the searched fields.
    #[serde(default)]
    pub highlight: Option<Vec<String>>,
    /// The root search field's name; by default `search` + the plural type name.
    #[serde(default)]
    pub field: Option<String>,
    /// How long search results (and the entity's fields here) may be cached, as
    /// `@cacheControl` on the result and entity types: `{ max_age: 60 }`. Without it, answers
    /// are `no-store`.
    #[serde(default)]
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
    /// A row rule on keyword, number or boolean fields (`owner = claims.sub`, `region in
    /// claims.regions`): searches, facets and `_entities` see only the documents the gateway's
    /// claims allow.
    #[serde(default)]
    pub rule: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4003))
}
fn default_max_size() -> u64 {
    100
}
fn default_max_from() -> u64 {
    10_000
}
fn default_sample_size() -> u64 {
    50
}
fn default_max_depth() -> usize {
    24
}
fn default_max_complexity() -> usize {
    5_000
}
fn default_timeout_ms() -> u64 {
    10_000
}

pub use polygraph_subgraph_core::config::ConfigError;
use polygraph_subgraph_core::config::setting;

impl Config {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        polygraph_subgraph_core::config::from_file(path)
    }

    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    /// The server URL: the environment wins over the file, the development server is last.
    pub fn url(&self) -> String {
        setting(
            "POLYGRAPH_ELASTICSEARCH_URL",
            self.url.as_deref(),
            "http://127.0.0.1:59200",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_and_defaults_fill_in() {
        let error =
            Config::from_yaml("indices: { products: { type: Product, boost: 1 } }").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `boost`"),
            "{error}"
        );
        let config = Config::from_yaml("indices: { products: { type: Product } }").unwrap();
        assert_eq!(config.indices["products"].key, "id");
        assert_eq!(config.max_size, 100);
    }
}
