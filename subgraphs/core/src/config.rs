//! Reading a subgraph's YAML configuration: one error type and loader for every database's
//! `Config` (each keeps its own fields, defaults and `deny_unknown_fields`).

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cache::CacheHint;

/// A password or key from a configuration file: its `Debug` never shows it.
#[derive(Clone, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

pub use polygraph_service::config::{ConfigError, redacted_url};

/// The prefix of environment variables that override a subgraph's settings:
/// `POLYGRAPH_SUBGRAPH__LISTEN=0.0.0.0:4001` sets `listen`.
pub const ENV_PREFIX: &str = "POLYGRAPH_SUBGRAPH";

/// Reads and parses the YAML file at `path`, `${NAME}` expanded and `POLYGRAPH_SUBGRAPH__…`
/// overrides applied; errors name the file, the key and the line.
pub fn from_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    polygraph_service::config::from_file(path, ENV_PREFIX)
}

/// A connection setting: the environment variable `variable` wins when set and not empty,
/// then the file's value, then the development servers' default.
pub fn setting(variable: &str, configured: Option<&str>, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.is_empty())
        .or_else(|| configured.map(ToOwned::to_owned))
        .unwrap_or_else(|| default.to_owned())
}

/// The field an entity is keyed by unless a config says otherwise.
pub fn default_key() -> String {
    "id".to_owned()
}

/// An entity another subgraph owns, given fields by this one (`extends: { Review: … }`);
/// `F` is what each database says of one added field.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Extension<F> {
    /// The entity's key field (a single `ID`), as its owner declares it.
    #[serde(default = "default_key")]
    pub key: String,
    /// The fields this subgraph adds, by name.
    pub fields: IndexMap<String, F>,
    /// `@cacheControl` on the type here: how long answers to `_entities` for it may be kept.
    #[serde(default)]
    pub cache: Option<CacheHint>,
}

/// One kind of generated mutation: `insert_t`/`insert_t_one`, `update_t`/`update_t_by_pk`,
/// `delete_t`/`delete_t_by_pk`.
#[derive(Clone, Copy, Debug, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Write {
    Insert,
    Update,
    Delete,
}

/// Which generated mutations a table or collection gets: `mutations: true` (all, the default),
/// `mutations: false` (none: read-only through GraphQL), or a list such as
/// `mutations: [insert]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mutations {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

impl Default for Mutations {
    fn default() -> Self {
        Self::all(true)
    }
}

impl Mutations {
    /// No generated mutation (views get none).
    pub const NONE: Self = Self {
        insert: false,
        update: false,
        delete: false,
    };

    fn all(on: bool) -> Self {
        Self {
            insert: on,
            update: on,
            delete: on,
        }
    }

    pub fn allows(self, write: Write) -> bool {
        match write {
            Write::Insert => self.insert,
            Write::Update => self.update,
            Write::Delete => self.delete,
        }
    }

    /// Whether any mutation is generated.
    pub fn any(self) -> bool {
        self.insert || self.update || self.delete
    }
}

impl schemars::JsonSchema for Mutations {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Mutations".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "true (every generated mutation), false (none), or a list",
            "anyOf": [
                { "type": "boolean" },
                {
                    "type": "array",
                    "items": { "enum": ["insert", "update", "delete"] },
                    "uniqueItems": true
                }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Mutations {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "true, false, or a list of insert, update, delete"
        )]
        enum Form {
            All(bool),
            Some(Vec<Write>),
        }
        Ok(match Form::deserialize(deserializer)? {
            Form::All(on) => Self::all(on),
            Form::Some(writes) => Self {
                insert: writes.contains(&Write::Insert),
                update: writes.contains(&Write::Update),
                delete: writes.contains(&Write::Delete),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redacted_url("postgres://app:secret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(super::redacted_url("redis://:secret@db"), "redis://:***@db");
        assert_eq!(
            super::redacted_url("https://TOKEN@db/x"),
            "https://***@db/x"
        );
        assert_eq!(
            super::redacted_url("postgres://app:p/a?s#s@db/x?sslmode=require&password=two"),
            "postgres://app:***@db/x?sslmode=require&password=***"
        );
        assert_eq!(
            super::redacted_url(
                "mongodb://u:p@h1:27017,h2:27017/?authMechanismProperties=AWS_SESSION_TOKEN:t"
            ),
            "mongodb://u:***@h1:27017,h2:27017/?authMechanismProperties=***"
        );
        assert_eq!(super::redacted_url("http://db:8123"), "http://db:8123");
        assert_eq!(super::redacted_url("u:p@db"), "***");
    }

    use super::*;

    #[test]
    fn mutations_are_all_none_or_listed() {
        let parse = |text: &str| serde_yaml::from_str::<Mutations>(text);
        assert_eq!(parse("true").unwrap(), Mutations::default());
        assert!(!parse("false").unwrap().any());
        let insert_only = parse("[insert]").unwrap();
        assert!(insert_only.allows(Write::Insert));
        assert!(!insert_only.allows(Write::Update) && !insert_only.allows(Write::Delete));
        let error = parse("[upsert]").unwrap_err().to_string();
        assert!(error.contains("insert, update, delete"), "{error}");
    }
}

#[cfg(test)]
mod secret_tests {
    #[test]
    fn a_secret_is_read_but_never_printed() {
        let secret: super::Secret = serde_yaml::from_str("hunter2").unwrap();
        assert_eq!(secret.0, "hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
