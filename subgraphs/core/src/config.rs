//! Reading a subgraph's YAML configuration: one error type and loader for every database's
//! `Config` (each keeps its own fields, defaults and `deny_unknown_fields`).

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cache::CacheHint;

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: serde_yaml::Error,
    },
}

/// Reads and parses the YAML file at `path`; errors name the file.
pub fn from_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.display().to_string(),
        source,
    })
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
#[derive(Clone, Debug, Deserialize)]
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
