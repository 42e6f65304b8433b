//! The analytics subgraph's configuration: time series that extend entities, and the
//! point-in-time feature history. Tables and columns are checked against `system.columns` at
//! start-up; unknown keys are rejected; the URL and database are overridable from the
//! environment.
//!
//! ```yaml
//! series:
//!   - entity: Product
//!     field: sales                      # Product.sales(from, to, granularity)
//!     table: order_events
//!     key: product_id
//!     time: event_time
//!     measures:
//!       orders: { function: count }
//!       revenue: { function: sum, column: amount }
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
    /// The server's HTTP interface; `POLYGRAPH_CLICKHOUSE_URL` overrides it.
    #[serde(default)]
    pub url: Option<String>,
    /// `POLYGRAPH_CLICKHOUSE_DATABASE` overrides it.
    #[serde(default)]
    pub database: Option<String>,
    /// The user to sign in as; `POLYGRAPH_CLICKHOUSE_USER` overrides it (`default` when unset).
    #[serde(default)]
    pub user: Option<String>,
    /// Better from `POLYGRAPH_CLICKHOUSE_PASSWORD` than in the file; it overrides this.
    #[serde(default)]
    pub password: Option<polygraph_subgraph_core::config::Secret>,
    #[serde(default)]
    pub series: Vec<SeriesConfig>,
    #[serde(default)]
    pub training: Option<TrainingConfig>,
    /// The most ids one request may ask about.
    #[serde(default = "default_max_ids")]
    pub max_ids: usize,
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesConfig {
    /// The entity type extended (owned by another subgraph), keyed by `id`.
    pub entity: String,
    pub field: String,
    pub table: String,
    /// The column holding the entity's id.
    pub key: String,
    /// The event time column (`DateTime`).
    pub time: String,
    pub measures: IndexMap<String, MeasureConfig>,
    /// `@cacheControl` on the series' points, e.g. `{ max_age: 300 }`; the entity's type here
    /// takes the strictest of its series' when they all have one.
    #[serde(default)]
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureConfig {
    /// `count`, `uniq`, `sum`, `avg`, `min` or `max`.
    pub function: String,
    /// The column it is computed over (not for `count`).
    #[serde(default)]
    pub column: Option<String>,
}

/// A long table of feature values over time: one row per entity, feature and time.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    pub table: String,
    /// The column naming the entity kind, and the value it holds per entity type.
    pub entity_column: String,
    pub entities: IndexMap<String, String>,
    pub id: String,
    pub feature: String,
    pub value: String,
    pub time: String,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4005))
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
            "POLYGRAPH_CLICKHOUSE_URL",
            self.url.as_deref(),
            "http://127.0.0.1:58123",
        )
    }

    /// The user and password to sign in with, where given.
    pub fn credentials(&self) -> (Option<String>, Option<String>) {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        (
            var("POLYGRAPH_CLICKHOUSE_USER").or_else(|| self.user.clone()),
            var("POLYGRAPH_CLICKHOUSE_PASSWORD")
                .or_else(|| self.password.as_ref().map(|secret| secret.0.clone())),
        )
    }

    pub fn database(&self) -> String {
        setting(
            "POLYGRAPH_CLICKHOUSE_DATABASE",
            self.database.as_deref(),
            "polygraph",
        )
    }
}
