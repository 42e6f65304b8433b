//! The MongoDB subgraph's configuration: plain data from YAML, unknown keys rejected, the
//! connection overridable from the environment.
//!
//! ```yaml
//! listen: 127.0.0.1:4002
//! database: polygraph                       # or POLYGRAPH_MONGODB_DATABASE
//! collections:
//!   reviews:
//!     type: Review
//!     key: review_id                        # an entity, keyed by this field
//!     rule: user_id = claims.sub            # each caller sees (and writes) their own only
//!     mutations: [insert, update]           # no generated deletes
//!     references:                           # fields holding another subgraph's entity key
//!       product: { type: Product, field: product_id }
//! extends:                                  # entities owned elsewhere, given fields here
//!   Product:
//!     fields:
//!       reviews: { collection: reviews, foreign_key: product_id }
//!       averageRating: { collection: reviews, foreign_key: product_id, aggregate: avg, of: rating }
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
    /// The server; `POLYGRAPH_MONGODB_URL` overrides it.
    #[serde(default)]
    pub url: Option<String>,
    /// The database; `POLYGRAPH_MONGODB_DATABASE` overrides it.
    #[serde(default)]
    pub database: Option<String>,
    /// Collections to expose, by name.
    pub collections: IndexMap<String, CollectionConfig>,
    /// Entities owned by other subgraphs that get fields from collections here, by type name.
    #[serde(default)]
    pub extends: IndexMap<String, ExtensionConfig>,
    /// Documents read to infer a collection's shape when it has no declared schema and no
    /// `$jsonSchema` validator.
    #[serde(default = "default_sample_size")]
    pub sample_size: u32,
    /// The most documents one list field returns; also the limit when a request gives none.
    #[serde(default = "default_max_limit")]
    pub max_limit: u64,
    /// The deepest selection a request may make (introspection needs about 15).
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// The most fields a request may select, counting every fragment spread where it is used.
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
    /// How long one database operation may run before the server stops it, in milliseconds.
    #[serde(default = "default_operation_timeout_ms")]
    pub operation_timeout_ms: u64,
}

#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// The GraphQL type name; defaults to the singular, `PascalCase` collection name.
    #[serde(default, rename = "type")]
    pub type_name: Option<String>,
    /// The entity key field: the type gets `@key` on it and is resolvable through `_entities`.
    #[serde(default)]
    pub key: Option<String>,
    /// Fields exposed as `ID` (besides `_id`, the key, references and foreign keys, which are).
    #[serde(default)]
    pub ids: Vec<String>,
    /// The collection's shape as a `$jsonSchema` document; when absent, the collection's
    /// validator is read, and failing that a sample of its documents.
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
    /// Fields that hold the key of an entity another subgraph owns, exposed as that entity.
    #[serde(default)]
    pub references: IndexMap<String, ReferenceConfig>,
    /// A row rule: which documents a request may see (and update or delete), from its
    /// verified claims, e.g. `user_id = claims.sub` or `region in claims.regions and …`.
    /// Applied to root fields, connections, aggregates, extension fields and `_entities`
    /// alike; writes must stay inside it.
    #[serde(default)]
    pub rule: Option<String>,
    /// Which generated mutations the collection gets: `true` (the default), `false`, or a list
    /// of `insert`, `update`, `delete`.
    #[serde(default)]
    pub mutations: Mutations,
    /// Who may run the generated mutations, by kind:
    /// `{ insert: { authenticated: true } }`, checked at the gateway.
    #[serde(default)]
    pub writes: WriteGuards,
    /// Who may read the type: `{ authenticated: true }`, `{ requires_scopes: [[…]] }`,
    /// `{ policies: [[…]] }`, checked at the gateway.
    #[serde(default)]
    pub guard: Guard,
    /// `@shareable` on the type.
    #[serde(default)]
    pub shareable: bool,
    /// `@cacheControl` on the type and the types derived from it (aggregates, connections),
    /// e.g. `{ max_age: 60 }`.
    #[serde(default)]
    pub cache: Option<CacheHint>,
    /// A subscription field, `<list>_changed`, with the document after each insert, update or
    /// replace: the subgraph follows the collection's change stream (the server must run as a
    /// replica set) and reads each changed document as the subscriber may see it.
    #[serde(default)]
    pub changes: bool,
}

/// `product: { type: Product, field: product_id }` gives `Review.product: Product`.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    #[serde(rename = "type")]
    pub type_name: String,
    /// The document field holding the entity's key.
    pub field: String,
}

pub type ExtensionConfig = polygraph_subgraph_core::config::Extension<ExtensionFieldConfig>;

/// A field added to another subgraph's entity: the documents of `collection` whose
/// `foreign_key` equals the entity's key, or an aggregate over them.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionFieldConfig {
    pub collection: String,
    pub foreign_key: String,
    /// `count`, `sum`, `avg`, `min` or `max`; without it the field lists the documents.
    #[serde(default)]
    pub aggregate: Option<String>,
    /// The field the aggregate is computed over (not needed for `count`).
    #[serde(default)]
    pub of: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4002))
}
fn default_sample_size() -> u32 {
    100
}
fn default_max_limit() -> u64 {
    1_000
}
fn default_max_depth() -> usize {
    24
}
fn default_max_complexity() -> usize {
    5_000
}
fn default_operation_timeout_ms() -> u64 {
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
            "POLYGRAPH_MONGODB_URL",
            self.url.as_deref(),
            "mongodb://127.0.0.1:57017",
        )
    }

    /// The database name, likewise.
    pub fn database(&self) -> String {
        setting(
            "POLYGRAPH_MONGODB_DATABASE",
            self.database.as_deref(),
            "polygraph",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let error = Config::from_yaml("collections: { reviews: { typo: 1 } }").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `typo`"),
            "{error}"
        );
        assert!(Config::from_yaml("collections: {}\nlisen: 1").is_err());
    }

    #[test]
    fn extensions_parse_with_defaults() {
        let config = Config::from_yaml(
            "collections: { reviews: { key: review_id } }\n\
             extends: { Product: { fields: { reviews: { collection: reviews, foreign_key: product_id } } } }",
        )
        .unwrap();
        assert_eq!(config.extends["Product"].key, "id");
        assert_eq!(config.max_limit, 1_000);
        assert_eq!(
            config.collections["reviews"].key.as_deref(),
            Some("review_id")
        );
    }
}
