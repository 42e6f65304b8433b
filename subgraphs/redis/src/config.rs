//! The feature store's configuration: feature groups per entity, each a Redis hash per entity
//! key, with typed features and a freshness TTL. Unknown keys are rejected; the URL is
//! overridable from the environment.
//!
//! ```yaml
//! listen: 127.0.0.1:4004
//! groups:
//!   user_online:
//!     entity: User
//!     key: "features:user:{id}"       # the hash holding one user's features
//!     field: onlineFeatures           # User.onlineFeatures { clickRate7d … }
//!     ttl_seconds: 86400              # writes expire after this long
//!     features: { click_rate_7d: Float, segment: String, embedding: "[Float]" }
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
    /// The server; `POLYGRAPH_REDIS_URL` overrides it. `rediss://` for TLS.
    #[serde(default)]
    pub url: Option<String>,
    /// PEM certificates of the CAs a `rediss://` server's certificate must chain to (the
    /// system's roots when not given); `POLYGRAPH_REDIS_CA_FILE` overrides it.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Feature groups by name.
    pub groups: IndexMap<String, GroupConfig>,
    /// The most entities one `featureVector` may ask for.
    #[serde(default = "default_max_ids")]
    pub max_ids: usize,
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The entity type the features describe (owned by another subgraph), keyed by `id`.
    pub entity: String,
    /// The hash key, with `{id}` where the entity's id goes.
    pub key: String,
    /// The typed field on the entity holding the group (`onlineFeatures`).
    pub field: String,
    /// Seconds a written hash stays; none keeps it.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// Feature names and types: `Float`, `Int`, `String`, `Boolean`, `[Float]`.
    pub features: IndexMap<String, String>,
    /// `@cacheControl` on the group's type, e.g. `{ max_age: 60 }`; the entity's type here
    /// takes the strictest of its groups' when they all have one.
    #[serde(default)]
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
    /// A row rule on the entity's `id` (`id = claims.sub`, `id in claims.accounts`): the group
    /// is read and written only for the entities the gateway's claims allow.
    #[serde(default)]
    pub rule: Option<String>,
    /// A subscription field, `<group>_changed`, with the entity after each write to its hash,
    /// from Redis keyspace notifications (the subgraph turns on the hash events it needs when
    /// the server allows `CONFIG SET`).
    #[serde(default)]
    pub changes: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4004))
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

    /// The server URL: the environment wins over the file, the development server is last.
    pub fn url(&self) -> String {
        setting(
            "POLYGRAPH_REDIS_URL",
            self.url.as_deref(),
            "redis://127.0.0.1:56379",
        )
    }

    /// The CA file for TLS: the environment wins over the file.
    pub fn ca_file(&self) -> Option<std::path::PathBuf> {
        std::env::var_os("POLYGRAPH_REDIS_CA_FILE")
            .filter(|value| !value.is_empty())
            .map(Into::into)
            .or_else(|| self.ca_file.clone())
    }
}
