//! Persisted queries: operations sent by an id instead of their text.
//!
//! - **Automatic persisted queries** (APQ, the protocol of Apollo Client's and urql's
//!   persisted-query links): a client sends `extensions.persistedQuery.sha256Hash` alone; the
//!   gateway answers `PERSISTED_QUERY_NOT_FOUND` until the client sends the text with its hash,
//!   which the gateway checks and keeps (in memory, bounded by bytes, and in Redis when one is
//!   configured, so that every replica knows it).
//! - **A manifest** of the operations an app was built with: Apollo's
//!   (`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}]}`) or Relay's
//!   (`{"id": "text"}`), sent by id (`documentId`, `doc_id` or the APQ hash).
//! - **A safelist**: with `safelist: enforce` only the manifest's operations run (by id or by
//!   their exact text) and APQ cannot add any; `log` runs everything and logs the rest.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apollo_compiler::response::JsonValue;
use sha2::Digest as _;

use crate::errors::{Code, GraphqlError};
use crate::store::Store;

#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PersistedSettings {
    /// Accept automatic persisted queries (APQ).
    pub apq: bool,
    /// How long a query registered through APQ is kept in Redis, in seconds.
    pub apq_ttl_seconds: u64,
    /// Most bytes of registered query text kept in memory.
    pub memory_bytes: u64,
    /// The operations an app was built with: Apollo's or Relay's manifest (JSON).
    pub manifest: Option<PathBuf>,
    /// What happens to operations that are not in the manifest.
    pub safelist: Safelist,
}

impl Default for PersistedSettings {
    fn default() -> Self {
        Self {
            apq: true,
            apq_ttl_seconds: 24 * 3600,
            memory_bytes: 16 * 1024 * 1024,
            manifest: None,
            safelist: Safelist::Off,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Safelist {
    /// Every operation runs.
    #[default]
    Off,
    /// Every operation runs; those not in the manifest are logged.
    Log,
    /// Only the manifest's operations run.
    Enforce,
}

/// Why a request's persisted query could not be used.
#[derive(Debug)]
pub struct Refusal {
    pub error: Box<GraphqlError>,
    /// The client should send the text (HTTP 200, as APQ clients expect); otherwise a bad
    /// request.
    pub retry_with_text: bool,
}

/// What a request says about persistence.
#[derive(Debug, Default)]
pub struct Ask<'a> {
    pub query: Option<&'a str>,
    /// `documentId` or `doc_id`.
    pub document_id: Option<&'a str>,
    /// `extensions.persistedQuery`.
    pub persisted_query: Option<&'a JsonValue>,
}

/// A request's query text, as [`PersistedQueries::resolve`] finds it.
#[derive(Debug, Default)]
pub struct Resolved {
    pub text: Option<Arc<str>>,
    /// The APQ hash to register the text under once it validates.
    pub register: Option<String>,
}

impl Resolved {
    fn text(text: Arc<str>) -> Self {
        Self {
            text: Some(text),
            register: None,
        }
    }
}

pub struct PersistedQueries {
    settings: PersistedSettings,
    /// The manifest's operations by id.
    manifest: HashMap<String, Arc<str>>,
    /// The SHA-256 of each manifest operation's text.
    listed: HashSet<[u8; 32]>,
    memory: moka::sync::Cache<String, Arc<str>>,
    store: Option<Arc<Store>>,
}

impl std::fmt::Debug for PersistedQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistedQueries")
            .field("manifest", &self.manifest.len())
            .finish_non_exhaustive()
    }
}

fn refuse(message: &str, code: &'static str, retry_with_text: bool) -> Refusal {
    let mut error = GraphqlError::new(message, Code::BadRequest);
    error.extensions.insert("code", JsonValue::from(code));
    Refusal {
        error: Box::new(error),
        retry_with_text,
    }
}

fn sha256(text: &str) -> [u8; 32] {
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// A manifest's operations by id, from Apollo's format or Relay's.
pub fn read_manifest(path: &Path) -> Result<HashMap<String, Arc<str>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading {}: {error}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|error| format!("{} is not JSON: {error}", path.display()))?;
    let mut operations = HashMap::new();
    match &value {
        serde_json::Value::Object(object)
            if object.get("format").and_then(serde_json::Value::as_str)
                == Some("apollo-persisted-query-manifest") =>
        {
            let listed = object
                .get("operations")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| format!("{}: no \"operations\" array", path.display()))?;
            for operation in listed {
                let (Some(id), Some(body)) = (
                    operation.get("id").and_then(serde_json::Value::as_str),
                    operation.get("body").and_then(serde_json::Value::as_str),
                ) else {
                    return Err(format!(
                        "{}: an operation without an \"id\" and a \"body\"",
                        path.display()
                    ));
                };
                operations.insert(id.to_owned(), Arc::from(body));
            }
        }
        serde_json::Value::Object(object) => {
            for (id, body) in object {
                let body = body.as_str().ok_or_else(|| {
                    format!(
                        "{}: neither Apollo's manifest format nor Relay's (id → text): {id}",
                        path.display()
                    )
                })?;
                operations.insert(id.clone(), Arc::from(body));
            }
        }
        _ => return Err(format!("{}: not a manifest", path.display())),
    }
    Ok(operations)
}

impl PersistedQueries {
    pub fn new(settings: PersistedSettings, store: Option<Arc<Store>>) -> Result<Self, String> {
        let manifest = match &settings.manifest {
            Some(path) => read_manifest(path)?,
            None => HashMap::new(),
        };
        if settings.safelist != Safelist::Off && settings.manifest.is_none() {
            return Err("persisted_queries.safelist needs persisted_queries.manifest".to_owned());
        }
        let listed = manifest.values().map(|body| sha256(body)).collect();
        let memory = moka::sync::Cache::builder()
            .max_capacity(settings.memory_bytes)
            .weigher(|key: &String, text: &Arc<str>| {
                u32::try_from(key.len() + text.len() + 64).unwrap_or(u32::MAX)
            })
            .build();
        Ok(Self {
            settings,
            manifest,
            listed,
            memory,
            store,
        })
    }

    /// How many operations the manifest lists.
    pub fn listed(&self) -> usize {
        self.manifest.len()
    }

    /// The query text to run: the request's own (checked against its hash and the safelist)
    /// or the one its id stands for; `None` when the request names none. With it, the hash to
    /// register the text under once it has proved a valid operation ([`Self::register`]).
    pub async fn resolve(&self, ask: Ask<'_>) -> Result<Resolved, Refusal> {
        let hash = match ask.persisted_query {
            None => None,
            Some(persisted) => Some(apq_hash(persisted)?),
        };
        if let Some(query) = ask.query {
            let digest =
                (hash.is_some() || self.settings.safelist != Safelist::Off).then(|| sha256(query));
            if let (Some(hash), Some(digest)) = (&hash, &digest)
                && *hash != crate::store::hex(digest)
            {
                return Err(refuse(
                    "provided sha does not match query",
                    "PERSISTED_QUERY_HASH_MISMATCH",
                    false,
                ));
            }
            if let Some(digest) = &digest
                && !self.listed.contains(digest)
            {
                match self.settings.safelist {
                    Safelist::Enforce => {
                        return Err(refuse(
                            "this gateway runs only the operations in its manifest (persisted_queries.safelist)",
                            "PERSISTED_QUERY_NOT_IN_LIST",
                            false,
                        ));
                    }
                    Safelist::Log => {
                        tracing::warn!(sha256 = %crate::store::hex(digest), "an operation not in the manifest ran");
                    }
                    Safelist::Off => {}
                }
            }
            return Ok(Resolved {
                text: Some(Arc::from(query)),
                register: hash.filter(|_| self.settings.apq),
            });
        }
        let Some(id) = ask.document_id.map(str::to_owned).or(hash) else {
            return Ok(Resolved::default());
        };
        if let Some(body) = self.manifest.get(&id) {
            return Ok(Resolved::text(body.clone()));
        }
        if self.settings.safelist == Safelist::Enforce {
            return Err(refuse(
                "no operation in the manifest has this id (persisted_queries.safelist)",
                "PERSISTED_QUERY_NOT_IN_LIST",
                false,
            ));
        }
        if !self.settings.apq {
            return Err(refuse(
                "PersistedQueryNotSupported",
                "PERSISTED_QUERY_NOT_SUPPORTED",
                false,
            ));
        }
        match self.lookup(&id).await {
            Some(text) => Ok(Resolved::text(text)),
            None => Err(refuse(
                "PersistedQueryNotFound",
                "PERSISTED_QUERY_NOT_FOUND",
                true,
            )),
        }
    }

    /// Keeps `query` under `hash` (checked by [`Self::resolve`]), here and in Redis.
    pub async fn register(&self, hash: String, query: &str) {
        let text: Arc<str> = Arc::from(query);
        if let Some(store) = &self.store {
            let mut command = redis::cmd("SET");
            command
                .arg(store.key(&format!("apq:{hash}")))
                .arg(query)
                .arg("EX")
                .arg(self.settings.apq_ttl_seconds.max(1));
            let _: Option<()> = store.run(&command).await;
        }
        self.memory.insert(hash, text);
    }

    async fn lookup(&self, hash: &str) -> Option<Arc<str>> {
        if let Some(text) = self.memory.get(hash) {
            return Some(text);
        }
        let store = self.store.as_ref()?;
        let mut command = redis::cmd("GET");
        command.arg(store.key(&format!("apq:{hash}")));
        let text: Option<String> = store.run(&command).await.flatten();
        let text = text?;
        // Kept only if it is what the hash says.
        if crate::store::hex(&sha256(&text)) != hash {
            tracing::warn!("redis held a persisted query that does not match its hash");
            return None;
        }
        let text: Arc<str> = Arc::from(text);
        self.memory.insert(hash.to_owned(), text.clone());
        Some(text)
    }
}

/// The hash of `extensions.persistedQuery` (version 1, lowercase hex SHA-256).
fn apq_hash(persisted: &JsonValue) -> Result<String, Refusal> {
    let malformed = || {
        refuse(
            "extensions.persistedQuery must be { \"version\": 1, \"sha256Hash\": \"<64 hex digits>\" }",
            "PERSISTED_QUERY_MALFORMED",
            false,
        )
    };
    let version = persisted.get("version").and_then(JsonValue::as_u64);
    let hash = persisted
        .get("sha256Hash")
        .and_then(JsonValue::as_str)
        .ok_or_else(malformed)?;
    if version != Some(1) || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed());
    }
    Ok(hash.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persisted(hash: &str) -> JsonValue {
        serde_json::from_str(&format!(r#"{{"version": 1, "sha256Hash": "{hash}"}}"#)).unwrap()
    }

    #[tokio::test]
    async fn apq_registers_text_by_its_hash_and_refuses_a_wrong_hash() {
        let queries = PersistedQueries::new(PersistedSettings::default(), None).unwrap();
        let query = "{ me { id } }";
        let hash = crate::store::hex(&sha256(query));
        let only_hash = persisted(&hash);
        let ask = || Ask {
            persisted_query: Some(&only_hash),
            ..Ask::default()
        };
        let missing = queries.resolve(ask()).await.unwrap_err();
        assert!(missing.retry_with_text);
        assert_eq!(
            missing.error.extensions.get("code"),
            Some(&JsonValue::from("PERSISTED_QUERY_NOT_FOUND"))
        );
        let wrong = persisted(&"0".repeat(64));
        let mismatch = queries
            .resolve(Ask {
                query: Some(query),
                persisted_query: Some(&wrong),
                ..Ask::default()
            })
            .await
            .unwrap_err();
        assert!(!mismatch.retry_with_text);
        let registered = queries
            .resolve(Ask {
                query: Some(query),
                persisted_query: Some(&only_hash),
                ..Ask::default()
            })
            .await
            .unwrap();
        assert_eq!(registered.text.as_deref(), Some(query));
        assert!(
            queries.resolve(ask()).await.is_err(),
            "kept only once the text proves valid"
        );
        queries.register(registered.register.unwrap(), query).await;
        assert_eq!(
            queries.resolve(ask()).await.unwrap().text.as_deref(),
            Some(query)
        );
        let bad = serde_json::from_str(r#"{"version": 2, "sha256Hash": "x"}"#).unwrap();
        let malformed = queries
            .resolve(Ask {
                persisted_query: Some(&bad),
                ..Ask::default()
            })
            .await
            .unwrap_err();
        assert!(malformed.error.message.contains("sha256Hash"));
    }

    #[tokio::test]
    async fn a_safelist_runs_only_the_manifests_operations() {
        let folder =
            std::env::temp_dir().join(format!("polygraph-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let apollo = folder.join("apollo.json");
        std::fs::write(
            &apollo,
            r#"{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id":"abc","name":"Me","type":"query","body":"query Me { me { id } }"}]}"#,
        )
        .unwrap();
        let relay = folder.join("relay.json");
        std::fs::write(&relay, r#"{"q1": "query Users { users { id } }"}"#).unwrap();
        for (path, id, body) in [
            (&apollo, "abc", "query Me { me { id } }"),
            (&relay, "q1", "query Users { users { id } }"),
        ] {
            let settings = PersistedSettings {
                manifest: Some(path.clone()),
                safelist: Safelist::Enforce,
                ..PersistedSettings::default()
            };
            let queries = PersistedQueries::new(settings, None).unwrap();
            let by_id = queries
                .resolve(Ask {
                    document_id: Some(id),
                    ..Ask::default()
                })
                .await
                .unwrap();
            assert_eq!(by_id.text.as_deref(), Some(body));
            // The listed text itself runs; any other text, or an unknown id, does not.
            assert!(
                queries
                    .resolve(Ask {
                        query: Some(body),
                        ..Ask::default()
                    })
                    .await
                    .is_ok()
            );
            for refused in [
                Ask {
                    query: Some("{ __typename }"),
                    ..Ask::default()
                },
                Ask {
                    document_id: Some("nope"),
                    ..Ask::default()
                },
            ] {
                let refusal = queries.resolve(refused).await.unwrap_err();
                assert_eq!(
                    refusal.error.extensions.get("code"),
                    Some(&JsonValue::from("PERSISTED_QUERY_NOT_IN_LIST"))
                );
            }
        }
        std::fs::remove_dir_all(&folder).unwrap();
        let without = PersistedSettings {
            safelist: Safelist::Enforce,
            ..PersistedSettings::default()
        };
        assert!(PersistedQueries::new(without, None).is_err());
    }
}
