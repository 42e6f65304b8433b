//! The PostgreSQL subgraph's configuration: plain data from YAML, unknown keys rejected, the
//! connection URL overridable from the environment.
//!
//! ```yaml
//! listen: 127.0.0.1:4001
//! url: postgres://postgres@127.0.0.1:55432/polygraph   # or POLYGRAPH_POSTGRES_URL
//! schema: public
//! tables:                  # omit to expose every table and view of the schema
//!   users: { type: User, entity: true, cache: { max_age: 60 } }
//!   order_items: {}        # exposed, named OrderItem, not an entity
//! ```

use std::net::SocketAddr;
use std::path::Path;

use indexmap::IndexMap;
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::config::Mutations;
use polygraph_subgraph_core::guard::{Guard, WriteGuards};
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
    /// The database; `POLYGRAPH_POSTGRES_URL` overrides it.
    #[serde(default)]
    pub url: Option<String>,
    /// The PostgreSQL schema whose tables are exposed.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Tables to expose, by name; empty exposes every table and view of `schema`.
    #[serde(default)]
    pub tables: IndexMap<String, TableConfig>,
    /// The most rows one list field returns; also the limit when a request gives none.
    #[serde(default = "default_max_limit")]
    pub max_limit: u64,
    /// Connections in the pool.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// The deepest selection a request may make (introspection needs about 15).
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// The most fields a request may select, counting every fragment spread where it is used.
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
    /// How long one statement may run before PostgreSQL cancels it, in milliseconds.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// Fields this subgraph adds to entities other subgraphs own, by entity type name.
    #[serde(default)]
    pub extends: IndexMap<String, ExtensionConfig>,
}

/// An entity another subgraph owns, given fields here:
///
/// ```yaml
/// extends:
///   Review:                       # owned by the MongoDB subgraph
///     key: review_id
///     fields:
///       author_orders: { table: orders, column: user_id, from: user_id }
///       author_orders_aggregate: { table: orders, column: user_id, from: user_id, aggregate: true }
/// ```
///
/// `author_orders` lists the `orders` rows whose `user_id` equals the review's `user_id`, with
/// the usual `where`, `order_by`, `limit` and `offset`. A `from` other than the key is
/// declared `@external` and the field `@requires` it, so the gateway fetches it first.
pub type ExtensionConfig = polygraph_subgraph_core::config::Extension<ExtensionFieldConfig>;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionFieldConfig {
    /// The table whose rows the field lists.
    pub table: String,
    /// The column that must equal the entity's `from` field.
    pub column: String,
    /// The entity's field to match: its key unless given.
    #[serde(default)]
    pub from: Option<String>,
    /// The field is the rows' aggregate (`count`, `sum` …) instead of the rows.
    #[serde(default)]
    pub aggregate: bool,
    /// `@cacheControl` on the field.
    #[serde(default)]
    pub cache: Option<CacheHint>,
}

// Plain YAML switches, each read on its own.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The GraphQL type name; defaults to the singular, `PascalCase` table name.
    #[serde(default, rename = "type")]
    pub type_name: Option<String>,
    /// Whether the type is a federation entity (`@key` on its primary key unless `key` says).
    #[serde(default)]
    pub entity: bool,
    /// Columns of the entity key; defaults to the primary key.
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// A row rule: which rows a request may see (and update or delete), from its verified
    /// claims, e.g. `user_id = claims.sub` or `country in claims.countries and …`. Applied to
    /// root fields, relationships, aggregates and `_entities` alike.
    #[serde(default)]
    pub rule: Option<String>,
    /// Which generated mutations the table gets: `true` (the default), `false`, or a list of
    /// `insert`, `update`, `delete`.
    #[serde(default)]
    pub mutations: Mutations,
    /// Who may run the generated mutations, by kind:
    /// `{ update: { policies: [[shop.products.write]] } }` (see [`Guard`]).
    #[serde(default)]
    pub writes: WriteGuards,
    /// Who may read the type (see [`Guard`]).
    #[serde(default)]
    pub guard: Guard,
    /// `@shareable` on the type: other subgraphs may resolve its fields too.
    #[serde(default)]
    pub shareable: bool,
    /// `@inaccessible` on the type: composed into the supergraph but hidden from its API.
    #[serde(default)]
    pub inaccessible: bool,
    /// `@tag(name:)` on the type for each name, for contracts and policies.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `@cacheControl` on the type and the types derived from it (aggregates, connections),
    /// e.g. `{ max_age: 60 }`; private whatever it says when the table has a row rule.
    #[serde(default)]
    pub cache: Option<CacheHint>,
    /// A subscription field, `<list>_changed`, with the row after each insert or update: the
    /// subgraph installs a trigger on the table that notifies it (`LISTEN`/`NOTIFY`) with the
    /// row's primary key, and reads the row as the subscriber may see it. Needs a primary key,
    /// and the right to create functions and triggers in the schema.
    #[serde(default)]
    pub changes: bool,
    /// Per column: federation directives on its field.
    #[serde(default)]
    pub columns: IndexMap<String, Directives>,
    /// Columns holding the key of an entity another subgraph owns, exposed as that entity.
    #[serde(default)]
    pub references: IndexMap<String, ReferenceConfig>,
}

/// `shipment: { type: Shipment, column: shipment_id, provides: { carrier: carrier_name } }`
/// gives the table's type `shipment: Shipment`, the entity whose key is in `shipment_id`.
/// `provides` names the entity's fields this table keeps a copy of (field: column): they are
/// `@external` here and the field `@provides` them, so the gateway takes them from this row
/// instead of asking the entity's owner.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    #[serde(rename = "type")]
    pub type_name: String,
    /// The column holding the entity's key.
    pub column: String,
    /// The entity's key field (an `ID`).
    #[serde(default = "default_key")]
    pub key: String,
    #[serde(default)]
    pub provides: IndexMap<String, String>,
}

/// Federation directives a type or field can carry.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Directives {
    /// `@shareable`: other subgraphs may resolve it too.
    #[serde(default)]
    pub shareable: bool,
    /// `@inaccessible`: composed into the supergraph but hidden from its API.
    #[serde(default)]
    pub inaccessible: bool,
    /// `@tag(name:)` for each name, for contracts and policies.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `@cacheControl`: how long answers with it may be cached.
    #[serde(default)]
    pub cache: Option<CacheHint>,
    /// `@authenticated`, `@requiresScopes`, `@policy`: who may read it, checked at the gateway.
    #[serde(default)]
    pub guard: Guard,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4001))
}
fn default_schema() -> String {
    "public".to_owned()
}
fn default_max_limit() -> u64 {
    1_000
}
fn default_pool_size() -> u32 {
    8
}
fn default_max_depth() -> usize {
    24
}
fn default_max_complexity() -> usize {
    5_000
}
fn default_statement_timeout_ms() -> u64 {
    10_000
}

impl TableConfig {
    /// The type's directives.
    pub fn directives(&self) -> Directives {
        Directives {
            shareable: self.shareable,
            inaccessible: self.inaccessible,
            tags: self.tags.clone(),
            cache: self.cache,
            guard: self.guard.clone(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("defaults deserialize")
    }
}

pub use polygraph_subgraph_core::config::ConfigError;
use polygraph_subgraph_core::config::{default_key, setting};

impl Config {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        polygraph_subgraph_core::config::from_file(path)
    }

    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    /// The database URL: the environment wins over the file, the development server is last.
    pub fn database_url(&self) -> String {
        setting(
            "POLYGRAPH_POSTGRES_URL",
            self.url.as_deref(),
            "postgres://postgres@127.0.0.1:55432/polygraph",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let error = Config::from_yaml("tables: { users: { typo: 1 } }").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `typo`"),
            "{error}"
        );
        assert!(Config::from_yaml("lisen: 1").is_err());
    }

    #[test]
    fn defaults() {
        let config =
            Config::from_yaml("tables: { users: { type: Customer, entity: true } }").unwrap();
        assert_eq!(config.schema, "public");
        assert_eq!(config.max_limit, 1_000);
        assert_eq!(
            config.tables["users"].type_name.as_deref(),
            Some("Customer")
        );
        assert!(config.tables["users"].entity);
    }
}
