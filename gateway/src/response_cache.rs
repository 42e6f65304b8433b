//! Whole answers kept and served again: an answer to a query that every subgraph response it
//! was built from lets be cached publicly (`Cache-Control: max-age`, not `private`), asked
//! without credentials, is kept for that long, in memory (bounded by bytes) and in the
//! gateway's Redis for every replica. Answers to callers with credentials are kept only when
//! `private` is on, and then under their principal, so that no caller ever gets another's.
//!
//! Entries are keyed by the supergraph's hash, so a new supergraph never serves an old one's
//! answers, and indexed by the types they hold: a mutation through the gateway, the admin
//! endpoint or `polygraph cache invalidate` drops every answer holding a type.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;
use sha2::Digest as _;

use crate::coalesce::{Answer, Ask};
use crate::store::Store;

#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ResponseCacheSettings {
    /// Keep and serve again publicly cacheable answers.
    pub enabled: bool,
    /// Also keep answers to signed-in callers, each under its principal.
    pub private: bool,
    /// Most bytes of answers kept in memory.
    pub memory_bytes: u64,
    /// The longest an answer is kept, in seconds, whatever its `max-age`.
    pub max_ttl_seconds: u64,
    /// Larger answers are not kept.
    pub max_entry_bytes: usize,
}

impl Default for ResponseCacheSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            private: false,
            memory_bytes: 64 * 1024 * 1024,
            max_ttl_seconds: 3600,
            max_entry_bytes: 1024 * 1024,
        }
    }
}

/// The Redis channel replicas announce invalidations on (a type name, or `*`).
const INVALIDATIONS: &str = "rc-invalidations";

/// The header that says whether an answer came from the cache.
pub const CACHE_HEADER: &str = "x-polygraph-cache";

pub use crate::store::Invalidation;

/// One kept answer.
#[derive(Clone, Debug)]
struct Kept {
    body: Bytes,
    media: HeaderValue,
    cache_control: HeaderValue,
    types: Arc<[String]>,
    until: Instant,
}

pub struct ResponseCache {
    settings: ResponseCacheSettings,
    /// The supergraph's hash, in every key.
    schema: String,
    memory: moka::sync::Cache<String, Kept>,
    store: Option<Arc<Store>>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Frames a kept answer for Redis: media type, `Cache-Control`, the types, then the body.
fn frame(kept: &Kept) -> Vec<u8> {
    let mut out = Vec::with_capacity(kept.body.len() + 128);
    for part in [kept.media.as_bytes(), kept.cache_control.as_bytes()] {
        out.extend_from_slice(part);
        out.push(b'\n');
    }
    out.extend_from_slice(kept.types.join(",").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&kept.body);
    out
}

fn unframe(bytes: &[u8], ttl: Duration) -> Option<Kept> {
    let mut parts = bytes.splitn(4, |&b| b == b'\n');
    let media = HeaderValue::from_bytes(parts.next()?).ok()?;
    let cache_control = HeaderValue::from_bytes(parts.next()?).ok()?;
    let types = std::str::from_utf8(parts.next()?).ok()?;
    let body = Bytes::copy_from_slice(parts.next()?);
    Some(Kept {
        body,
        media,
        cache_control,
        types: types
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        until: Instant::now() + ttl,
    })
}

impl ResponseCache {
    pub fn new(
        settings: ResponseCacheSettings,
        schema_sdl: &str,
        store: Option<Arc<Store>>,
    ) -> Self {
        let memory = moka::sync::Cache::builder()
            .max_capacity(settings.memory_bytes)
            .weigher(|key: &String, kept: &Kept| {
                u32::try_from(key.len() + kept.body.len() + 256).unwrap_or(u32::MAX)
            })
            .support_invalidation_closures()
            .build();
        Self {
            schema: crate::store::schema_hash(schema_sdl),
            settings,
            memory,
            store,
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The key for a query presented as `ask`, whose answer depends on `identity`
    /// ([`crate::gateway::Gateway::cache_identity`]: the normalized operation, its variables and
    /// the caller's claims), under the policies in force (their revision); `None` when such
    /// answers are not kept (credentials that did not sign anyone in, or private caching off).
    pub fn key(
        &self,
        ask: &Ask,
        identity: &[u8],
        signed_in: bool,
        policies: &str,
    ) -> Option<String> {
        if !self.settings.enabled
            || (ask.has_credentials() && !(self.settings.private && signed_in))
        {
            return None;
        }
        let mut hasher = sha2::Sha256::new();
        ask.hash_presentation(&mut hasher);
        for part in [identity, policies.as_bytes()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Some(format!(
            "{}:{}",
            self.schema,
            crate::store::hex(&hasher.finalize())
        ))
    }

    fn redis_key(store: &Store, key: &str) -> String {
        store.key(&format!("rc:{key}"))
    }

    /// The index of the answers holding `type_name` (unprefixed).
    fn type_index(type_name: &str) -> String {
        format!("rc-type:{type_name}")
    }

    /// The kept answer for `key`, from memory or Redis.
    pub async fn get(&self, key: &str) -> Option<Answer> {
        let fresh = self
            .memory
            .get(key)
            .filter(|kept| kept.until > Instant::now());
        let kept = if let Some(kept) = fresh {
            kept
        } else {
            let store = self.store.as_ref()?;
            let pipeline = redis::pipe()
                .cmd("GET")
                .arg(Self::redis_key(store, key))
                .cmd("PTTL")
                .arg(Self::redis_key(store, key))
                .clone();
            let (bytes, ttl): (Option<Vec<u8>>, i64) = store.pipeline(&pipeline).await?;
            let ttl = Duration::from_millis(u64::try_from(ttl).ok()?);
            let kept = unframe(&bytes?, ttl)?;
            self.memory.insert(key.to_owned(), kept.clone());
            kept
        };
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(header::CONTENT_TYPE, kept.media);
        headers.insert(header::CACHE_CONTROL, kept.cache_control);
        headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
        headers.insert(
            header::VARY,
            HeaderValue::from_static("accept, x-polygraph-explain"),
        );
        Some(Answer {
            status: StatusCode::OK,
            headers,
            body: kept.body,
            policy: crate::execute::CachePolicy::NoStore,
            types: Arc::default(),
            errors: false,
        })
    }

    /// Keeps `answer` under `key` for its `max-age` (at most `max_ttl_seconds`).
    pub async fn put(&self, key: String, answer: &Answer, seconds: u64, types: &BTreeSet<String>) {
        let seconds = seconds.min(self.settings.max_ttl_seconds);
        if seconds == 0 || answer.body.len() > self.settings.max_entry_bytes {
            return;
        }
        let (Some(media), Some(cache_control)) = (
            answer.headers.get(header::CONTENT_TYPE),
            answer.headers.get(header::CACHE_CONTROL),
        ) else {
            return;
        };
        let kept = Kept {
            body: answer.body.clone(),
            media: media.clone(),
            cache_control: cache_control.clone(),
            types: types.iter().cloned().collect(),
            until: Instant::now() + Duration::from_secs(seconds),
        };
        if let Some(store) = &self.store {
            let mut pipeline = redis::pipe();
            pipeline
                .cmd("SET")
                .arg(Self::redis_key(store, &key))
                .arg(frame(&kept))
                .arg("EX")
                .arg(seconds)
                .ignore();
            for type_name in types {
                store.index(
                    &mut pipeline,
                    &Self::type_index(type_name),
                    &key,
                    seconds,
                    self.settings.max_ttl_seconds,
                );
            }
            let _: Option<()> = store.pipeline(&pipeline).await;
        }
        self.memory.insert(key, kept);
    }

    /// Drops from memory the answers holding `type_name` (all of them for `*`).
    fn forget(memory: &moka::sync::Cache<String, Kept>, type_name: &str) {
        if type_name == "*" {
            memory.invalidate_all();
        } else {
            let type_name = type_name.to_owned();
            if let Err(error) =
                memory.invalidate_entries_if(move |_, kept| kept.types.contains(&type_name))
            {
                tracing::warn!(%error, "could not drop cached answers from memory");
                memory.invalidate_all();
            }
        }
    }

    /// Keeps this replica's memory in step with invalidations on every replica (Redis
    /// pub/sub), for as long as the gateway runs.
    pub async fn listen(&self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let memory = self.memory.clone();
        store
            .listen(INVALIDATIONS, move |type_name| {
                Self::forget(&memory, &type_name);
            })
            .await;
    }

    /// Drops the answers `invalidation` names, here, in Redis and in every replica's memory;
    /// how many Redis held.
    pub async fn invalidate(&self, invalidation: &Invalidation) -> Result<u64, String> {
        let type_name = invalidation.type_name.as_deref().unwrap_or("*");
        Self::forget(&self.memory, type_name);
        let Some(store) = &self.store else {
            return Ok(0);
        };

        let keys: Vec<String> = match &invalidation.type_name {
            Some(type_name) => {
                let index = Self::type_index(type_name);
                let members = store.members(&index).await?;
                members
                    .iter()
                    .map(|key| Self::redis_key(store, key))
                    .chain([store.key(&index)])
                    .collect()
            }
            None => self.all_keys(store).await?,
        };
        store
            .drop_and_announce(&keys, INVALIDATIONS, type_name)
            .await
    }

    /// Every response-cache key in Redis (entries and type indexes).
    async fn all_keys(&self, store: &Arc<Store>) -> Result<Vec<String>, String> {
        let mut keys = store.scan(&store.key("rc:*")).await?;
        keys.extend(store.scan(&store.key("rc-type:*")).await?);
        Ok(keys)
    }
}
