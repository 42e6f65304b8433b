//! The relationships subgraph's configuration: which node labels are which entities, and the
//! relationship fields, each a Cypher pattern from `(n)` (the entity) to `(m)` (the related
//! entity) with an optional ranking score. Patterns are the operator's; request values reach
//! Cypher only as parameters (`$keys`, `$limit`). Unknown keys are rejected; the connection is
//! overridable from the environment.
//!
//! ```yaml
//! entities:
//!   User: { label: User }
//! relationships:
//!   - entity: User
//!     field: follows
//!     target: User
//!     pattern: "(n)-[:FOLLOWS]->(m:User)"
//! ```

use std::net::SocketAddr;
use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Connections and requests in flight: timeouts, load shedding, shutdown grace, and
    /// where `/metrics` is served.
    #[serde(default)]
    pub server: polygraph_service::serve::Limits,
    /// `POLYGRAPH_NEO4J_URL`, `POLYGRAPH_NEO4J_USER` and `POLYGRAPH_NEO4J_PASSWORD` override
    /// these.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<polygraph_subgraph_core::config::Secret>,
    /// Entity types by name: the node label and key property.
    pub entities: IndexMap<String, EntityConfig>,
    pub relationships: Vec<RelationshipConfig>,
    /// Threads that run the (blocking) driver; requests beyond them wait their turn.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Statements waiting for a thread, at most; past this a request is refused as busy
    /// rather than queued without bound.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// How long one statement may run before the server ends its transaction, in
    /// milliseconds; the request gets a `TIMEOUT` error.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// The most related entities one field returns; also the default `limit`.
    #[serde(default = "default_max_limit")]
    pub max_limit: u64,
    #[serde(default = "default_max_ids")]
    pub max_ids: usize,
    /// The most entities one request may return, counting every level of relationships:
    /// past it the request is refused rather than answered at any size.
    #[serde(default = "default_max_objects")]
    pub max_objects: usize,
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    pub label: String,
    /// The key property; the entity's `id`.
    #[serde(default = "polygraph_subgraph_core::config::default_key")]
    pub key: String,
    /// Whether keys are stored as integers (ids arrive as strings and are converted).
    #[serde(default = "default_integer")]
    pub integer_keys: bool,
    /// `@cacheControl` on the type, e.g. `{ max_age: 300 }`.
    #[serde(default)]
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
    /// A row rule on the entity's `id` (`id = claims.sub`): its relationship fields answer
    /// only for the entities the gateway's claims allow (empty for the others).
    #[serde(default)]
    pub rule: Option<String>,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationshipConfig {
    pub entity: String,
    pub field: String,
    pub target: String,
    /// A Cypher pattern (with an optional `WHERE`) from `(n)` to `(m)`.
    pub pattern: String,
    /// An aggregate ranking the related entities, highest first (default: how many matches).
    #[serde(default)]
    pub score: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// How many related entities the gateway's cost estimate assumes the field returns when
    /// no `limit` is given (`@listSize(assumedSize:)`); without it, `max_limit`.
    #[serde(default)]
    pub assumed_size: Option<u64>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4006))
}
fn default_integer() -> bool {
    true
}
fn default_threads() -> usize {
    4
}
fn default_queue() -> usize {
    256
}
fn default_statement_timeout_ms() -> u64 {
    10_000
}
fn default_max_limit() -> u64 {
    100
}
fn default_max_objects() -> usize {
    20_000
}
fn default_max_ids() -> usize {
    10_000
}
fn default_max_depth() -> usize {
    24
}
fn default_max_complexity() -> usize {
    5_000
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

    pub fn url(&self) -> String {
        setting(
            "POLYGRAPH_NEO4J_URL",
            self.url.as_deref(),
            "bolt://127.0.0.1:57687",
        )
    }

    pub fn user(&self) -> String {
        setting("POLYGRAPH_NEO4J_USER", self.user.as_deref(), "neo4j")
    }

    pub fn password(&self) -> String {
        setting(
            "POLYGRAPH_NEO4J_PASSWORD",
            self.password.as_ref().map(|secret| secret.0.as_str()),
            "polygraph",
        )
    }
}
