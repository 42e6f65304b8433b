//! Entities kept from `_entities` answers and served again: per subgraph, entity type, key,
//! selection and caller scope, for as long as the subgraph's `Cache-Control` (or the
//! configured default) says, in memory (bounded by bytes) in front of the gateway's Redis.
//! An entity fetch looks all its representations up at once (one `MGET`), sends only the
//! misses to the subgraph, and writes what comes back in one pipeline.
//!
//! Keys hold the entity's type and a hash of its key fields, and each type's keys are indexed,
//! so that one entity, or a whole type, can be dropped without scanning Redis; and the
//! supergraph's hash, so that a new supergraph never reads an
//! old one's entities. An entity a subgraph marks `private` is kept only under the caller it
//! was fetched for; anonymous callers share public entities only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::Digest as _;
use tokio::sync::oneshot;

use crate::store::{Invalidation, Store};

#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EntityCacheSettings {
    /// Keep entities from `_entities` answers and serve them again.
    pub enabled: bool,
    /// Most bytes of entities kept in memory.
    pub memory_bytes: u64,
    /// The longest an entity is kept, in seconds, whatever the subgraph says.
    pub max_ttl_seconds: u64,
    /// How long to keep entities from answers without a `max-age`, `no-store` ones included
    /// (none: not kept). Set it only for subgraphs that send no cache hints at all.
    pub default_ttl_seconds: Option<u64>,
    /// Keep queries' root fetches too (a subgraph's whole reply to a root selection, per
    /// operation, variables and caller), as long as their answers allow; any invalidation
    /// drops them all.
    pub root_fetches: bool,
}

impl Default for EntityCacheSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            memory_bytes: 64 * 1024 * 1024,
            max_ttl_seconds: 3600,
            default_ttl_seconds: None,
            root_fetches: true,
        }
    }
}

/// Root fetches' keys start with this, under a type name no schema can have; they are
/// indexed under it too.
const ROOTS: &str = "ec:(root):";
/// The index of root fetches, as a type: `invalidate_keys(Some(ROOT_TYPE), &[])` drops them.
pub const ROOT_TYPE: &str = "(root)";

/// The Redis channel replicas announce dropped entities on.
const INVALIDATIONS: &str = "ec-invalidations";

/// One kept entity: its JSON and the policy it was answered with.
#[derive(Clone, Debug)]
pub struct Entry {
    pub json: Bytes,
    pub seconds: u64,
    pub private: bool,
}

#[derive(Clone, Debug)]
struct Held {
    entry: Entry,
    until: Instant,
}

pub struct EntityCache {
    settings: EntityCacheSettings,
    schema: String,
    memory: moka::sync::Cache<String, Held>,
    store: Option<Arc<Store>>,
    /// Lookups answered from memory or Redis, and not.
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
    /// Misses being fetched now, by key, with whoever waits for them: a request that misses
    /// an entity another request is already fetching waits for that fetch instead of sending
    /// its own.
    in_flight: std::sync::Mutex<HashMap<String, Vec<oneshot::Sender<Option<Entry>>>>>,
    /// Misses answered by another request's fetch.
    joined: std::sync::atomic::AtomicU64,
    /// Invalidations seen here or announced by other replicas.
    generation: Arc<AtomicU64>,
    /// Root fetches answered from the cache, and not.
    root_hits: std::sync::atomic::AtomicU64,
    root_misses: std::sync::atomic::AtomicU64,
}

/// What a fetch does about one miss: fetch it (and tell the others), or wait for the request
/// already fetching it.
pub enum Claim {
    Mine,
    Wait(oneshot::Receiver<Option<Entry>>),
}

/// The misses one fetch has claimed. Each is settled with what the fetch kept, or with
/// nothing (the waiters then fetch it themselves) if the fetch fails or is dropped first.
pub struct Claimed<'a> {
    cache: &'a EntityCache,
    keys: Vec<String>,
}

impl Claimed<'_> {
    pub fn push(&mut self, key: String) {
        self.keys.push(key);
    }

    /// Hands each claimed entity to its waiters: the kept entry, or nothing.
    pub fn settle(mut self, kept: &[(String, Entry)]) {
        let kept: HashMap<&str, &Entry> = kept.iter().map(|(k, e)| (k.as_str(), e)).collect();
        for key in std::mem::take(&mut self.keys) {
            self.cache.settle(&key, kept.get(key.as_str()).copied());
        }
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        for key in std::mem::take(&mut self.keys) {
            self.cache.settle(&key, None);
        }
    }
}

impl std::fmt::Debug for EntityCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityCache")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The top-level field names of a `@key` field set (`"id org { id }"` gives `id`, `org`), the
/// fields an entity is named by in the cache.
pub fn key_field_names(key: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    key.split_inclusive(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',')
        .filter_map(move |token| {
            let name = token
                .trim_end_matches(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',');
            let at = depth;
            match token.chars().last() {
                Some('{') => depth += 1,
                Some('}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            (at == 0 && !name.is_empty()).then_some(name)
        })
}

/// The hash of an entity's key fields, whatever order they come in.
pub fn key_hash(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    let sorted: BTreeMap<&String, &serde_json::Value> = fields.iter().collect();
    let text = serde_json::to_string(&sorted).expect("JSON serializes");
    crate::store::hex(&sha2::Sha256::digest(text.as_bytes()))[..16].to_owned()
}

impl EntityCache {
    pub fn new(settings: EntityCacheSettings, schema_sdl: &str, store: Option<Arc<Store>>) -> Self {
        let memory = moka::sync::Cache::builder()
            .max_capacity(settings.memory_bytes)
            .weigher(|key: &String, held: &Held| {
                u32::try_from(key.len() + held.entry.json.len() + 96).unwrap_or(u32::MAX)
            })
            .support_invalidation_closures()
            .build();
        Self {
            schema: crate::store::schema_hash(schema_sdl),
            settings,
            memory,
            store,
            hits: std::sync::atomic::AtomicU64::new(0),
            misses: std::sync::atomic::AtomicU64::new(0),
            in_flight: std::sync::Mutex::default(),
            joined: std::sync::atomic::AtomicU64::new(0),
            generation: Arc::default(),
            root_hits: std::sync::atomic::AtomicU64::new(0),
            root_misses: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether queries' root fetches are kept as well as entities.
    pub fn caches_roots(&self) -> bool {
        self.settings.enabled && self.settings.root_fetches
    }

    /// The key of `subgraph`'s reply to the request `body` for callers of `scope`.
    pub fn root_key(&self, subgraph: &str, body: &[u8], scope: &str) -> String {
        let mut hasher = sha2::Sha256::new();
        for part in [
            self.schema.as_bytes(),
            subgraph.as_bytes(),
            body,
            scope.as_bytes(),
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        format!("{ROOTS}{}", &crate::store::hex(&hasher.finalize())[..32])
    }

    /// The root fetch reply kept under `key`, if any.
    pub async fn get_root(&self, key: &str) -> Option<Entry> {
        use std::sync::atomic::Ordering::Relaxed;
        let found = self.look_up(&[key.to_owned()]).await.pop().flatten();
        let hit = u64::from(found.is_some());
        polygraph_service::metrics().cache_counts("root", hit, 1 - hit);
        let counter = if found.is_some() {
            &self.root_hits
        } else {
            &self.root_misses
        };
        counter.fetch_add(1, Relaxed);
        found
    }

    /// Root fetches answered from the cache, and not, so far.
    pub fn root_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.root_hits.load(Relaxed), self.root_misses.load(Relaxed))
    }

    /// Claims the miss `key`: [`Claim::Mine`] if no request is fetching it (the caller
    /// fetches it and settles it through [`Claimed`]), else a wait for that fetch.
    pub fn claim(&self, key: &str) -> Claim {
        let mut in_flight = self.in_flight.lock().expect("not poisoned");
        if let Some(waiters) = in_flight.get_mut(key) {
            let (sender, receiver) = oneshot::channel();
            waiters.push(sender);
            return Claim::Wait(receiver);
        }
        in_flight.insert(key.to_owned(), Vec::new());
        Claim::Mine
    }

    /// A set of claims to fill with [`Claimed::push`].
    pub fn claims(&self) -> Claimed<'_> {
        Claimed {
            cache: self,
            keys: Vec::new(),
        }
    }

    fn settle(&self, key: &str, entry: Option<&Entry>) {
        let waiters = self
            .in_flight
            .lock()
            .expect("not poisoned")
            .remove(key)
            .unwrap_or_default();
        if entry.is_some() {
            self.joined
                .fetch_add(waiters.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        for waiter in waiters {
            let _ = waiter.send(entry.cloned());
        }
    }

    /// Misses answered by another request's fetch of the same entity.
    pub fn joined(&self) -> u64 {
        self.joined.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Entities found and not found so far.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }

    /// The key of one representation's entity as `subgraph` answers `selection` to `scope`.
    pub fn key(
        &self,
        type_name: &str,
        key_hash: &str,
        subgraph: &str,
        selection: &str,
        representation: &[u8],
        scope: &str,
    ) -> String {
        let mut hasher = sha2::Sha256::new();
        for part in [
            self.schema.as_bytes(),
            subgraph.as_bytes(),
            selection.as_bytes(),
            representation,
            scope.as_bytes(),
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        format!(
            "ec:{type_name}:{key_hash}:{}",
            &crate::store::hex(&hasher.finalize())[..32]
        )
    }

    /// The entities kept under `keys`, in order: from memory, the rest with one `MGET`.
    pub async fn get_many(&self, keys: &[String]) -> Vec<Option<Entry>> {
        use std::sync::atomic::Ordering::Relaxed;
        let found = self.look_up(keys).await;
        let hits = found.iter().filter(|entry| entry.is_some()).count() as u64;
        self.hits.fetch_add(hits, Relaxed);
        self.misses.fetch_add(keys.len() as u64 - hits, Relaxed);
        polygraph_service::metrics().cache_counts("entity", hits, keys.len() as u64 - hits);
        found
    }

    /// What is kept under `keys`, in order: from memory, the rest with one `MGET`.
    #[tracing::instrument(name = "cache lookup", skip_all, fields(keys = keys.len()))]
    async fn look_up(&self, keys: &[String]) -> Vec<Option<Entry>> {
        let now = Instant::now();
        let mut found: Vec<Option<Entry>> = keys
            .iter()
            .map(|key| {
                self.memory
                    .get(key)
                    .filter(|held| held.until > now)
                    .map(|held| held.entry)
            })
            .collect();
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if let Some(store) = &self.store
            && !missing.is_empty()
        {
            let mut mget = redis::cmd("MGET");
            for &i in &missing {
                mget.arg(store.key(&keys[i]));
            }
            let answers: Option<Vec<Option<Vec<u8>>>> = store.run(&mget).await;
            for (&i, answer) in missing.iter().zip(answers.unwrap_or_default()) {
                if let Some(entry) = answer.as_deref().and_then(unframe) {
                    self.memory.insert(
                        keys[i].clone(),
                        Held {
                            entry: entry.clone(),
                            until: now + Duration::from_secs(entry.seconds),
                        },
                    );
                    found[i] = Some(entry);
                }
            }
        }
        found
    }

    /// How long an entity answered with `max_age` (seconds, private) is kept, if at all.
    pub fn ttl(&self, max_age: Option<(u64, bool)>) -> Option<(u64, bool)> {
        let (seconds, private) = match max_age {
            Some(max_age) => max_age,
            None => (self.settings.default_ttl_seconds?, false),
        };
        let seconds = seconds.min(self.settings.max_ttl_seconds);
        (seconds > 0).then_some((seconds, private))
    }

    /// Keeps `entries`, in memory and with one pipeline in Redis.
    pub async fn put_many(&self, entries: Vec<(String, Entry)>) {
        if entries.is_empty() {
            return;
        }
        if let Some(store) = &self.store {
            let mut pipeline = redis::pipe();
            for (key, entry) in &entries {
                pipeline
                    .cmd("SET")
                    .arg(store.key(key))
                    .arg(frame(entry))
                    .arg("EX")
                    .arg(entry.seconds)
                    .ignore();
                // Indexed by type, so that dropping a type or one entity of it reads only that
                // type's keys rather than scanning Redis.
                let type_name = key.split(':').nth(1).unwrap_or_default();
                store.index(
                    &mut pipeline,
                    &Self::type_index(type_name),
                    key,
                    entry.seconds,
                    self.settings.max_ttl_seconds,
                );
            }
            let _: Option<()> = store.pipeline(&pipeline).await;
        }
        let now = Instant::now();
        for (key, entry) in entries {
            let until = now + Duration::from_secs(entry.seconds);
            self.memory.insert(key, Held { entry, until });
        }
    }

    /// The index of a type's entities (unprefixed).
    fn type_index(type_name: &str) -> String {
        format!("ec-type:{type_name}")
    }

    /// The key patterns (after the prefix) for `keys` of `type_name` (the whole type when
    /// there are none; everything without a type).
    fn patterns(
        type_name: Option<&str>,
        keys: &[serde_json::Map<String, serde_json::Value>],
    ) -> Vec<String> {
        match type_name {
            Some(type_name) if !keys.is_empty() => keys
                .iter()
                .map(|key| format!("ec:{type_name}:{}:", key_hash(key)))
                .collect(),
            Some(type_name) => vec![format!("ec:{type_name}:")],
            None => vec!["ec:".to_owned()],
        }
    }

    /// Drops from `memory` the entries under any of the newline-separated `patterns`, and
    /// every root fetch (which may hold any entity); counts an invalidation (`*`, everything
    /// after a resubscription, is not one).
    fn forget(memory: &moka::sync::Cache<String, Held>, generation: &AtomicU64, patterns: &str) {
        if patterns == "*" {
            // (Re)subscribed: what was announced meanwhile is unknown, so memory starts afresh.
            memory.invalidate_all();
            return;
        }
        generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let patterns: Vec<String> = patterns.lines().map(str::to_owned).collect();
        if memory
            .invalidate_entries_if(move |key, _| {
                key.starts_with(ROOTS) || patterns.iter().any(|pattern| key.starts_with(pattern))
            })
            .is_err()
        {
            memory.invalidate_all();
        }
    }

    /// How many invalidations this replica has seen: a fetch that began before one keeps
    /// nothing it brought.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Keeps this replica's memory in step with invalidations on every replica.
    pub async fn listen(&self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let (memory, generation) = (self.memory.clone(), self.generation.clone());
        store
            .listen(INVALIDATIONS, move |patterns| {
                Self::forget(&memory, &generation, &patterns);
            })
            .await;
    }

    /// Drops the entities `invalidation` names (one entity, a type, or all), here, in Redis
    /// and in every replica's memory; how many Redis held.
    pub async fn invalidate(&self, invalidation: &Invalidation) -> Result<u64, String> {
        let keys: Vec<_> = invalidation.key.iter().cloned().collect();
        self.invalidate_keys(invalidation.type_name.as_deref(), &keys)
            .await
    }

    /// Drops the entities of `type_name` with `keys` (the whole type when there are none;
    /// everything without a type), and every root fetch, with one read of the type's index and
    /// one announcement.
    pub async fn invalidate_keys(
        &self,
        type_name: Option<&str>,
        keys: &[serde_json::Map<String, serde_json::Value>],
    ) -> Result<u64, String> {
        let patterns = Self::patterns(type_name, keys);
        let message = patterns.join("\n");
        Self::forget(&self.memory, &self.generation, &message);
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let dropped = if let Some(type_name) = type_name {
            // The type's entities (those of the keys when given), from its index; the index
            // itself when the whole type goes.
            let index = Self::type_index(type_name);
            let mut dropped: Vec<String> = store
                .members(&index)
                .await?
                .iter()
                .filter(|key| patterns.iter().any(|pattern| key.starts_with(pattern)))
                .map(|key| store.key(key))
                .collect();
            if keys.is_empty() {
                dropped.push(store.key(&index));
            }
            let roots = Self::type_index(ROOT_TYPE);
            dropped.extend(
                store
                    .members(&roots)
                    .await?
                    .iter()
                    .map(|key| store.key(key)),
            );
            dropped.push(store.key(&roots));
            dropped
        } else {
            let mut dropped = store.scan(&store.key("ec:*")).await?;
            dropped.extend(store.scan(&store.key("ec-type:*")).await?);
            dropped
        };
        store
            .drop_and_announce(&dropped, INVALIDATIONS, &message)
            .await
    }
}

/// An entry for Redis: seconds, `p` or `-`, then the JSON.
fn frame(entry: &Entry) -> Vec<u8> {
    let mut out = format!(
        "{}|{}|",
        entry.seconds,
        if entry.private { 'p' } else { '-' }
    )
    .into_bytes();
    out.extend_from_slice(&entry.json);
    out
}

fn unframe(bytes: &[u8]) -> Option<Entry> {
    let mut parts = bytes.splitn(3, |&b| b == b'|');
    let seconds = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let private = parts.next()? == b"p";
    let json = Bytes::copy_from_slice(parts.next()?);
    // Only an object is an entity; anything else in Redis is not ours.
    (json.first() == Some(&b'{')).then_some(Entry {
        json,
        seconds,
        private,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_field_names_are_the_top_level_ones() {
        let names = |key| key_field_names(key).collect::<Vec<_>>();
        assert_eq!(names("id"), ["id"]);
        assert_eq!(names("id org { id }"), ["id", "org"]);
        assert_eq!(names("org{id} sku"), ["org", "sku"]);
        assert_eq!(names("a { b { c } d } e"), ["a", "e"]);
    }

    #[test]
    fn keys_hold_the_type_and_key_and_entries_survive_framing() {
        let cache = EntityCache::new(
            EntityCacheSettings::default(),
            "type Query { a: Int }",
            None,
        );
        let id: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"id": "1", "sku": "a"}"#).unwrap();
        let reordered = serde_json::from_str(r#"{"sku": "a", "id": "1"}"#).unwrap();
        assert_eq!(key_hash(&id), key_hash(&reordered));
        let key = cache.key(
            "User",
            &key_hash(&id),
            "accounts",
            "{ name }",
            b"{}",
            "public",
        );
        assert!(key.starts_with(&format!("ec:User:{}:", key_hash(&id))));
        let other = cache.key("User", &key_hash(&id), "accounts", "{ name }", b"{}", "u:1");
        assert_ne!(key, other, "scopes never share");
        let entry = Entry {
            json: Bytes::from_static(br#"{"name":"a|b"}"#),
            seconds: 30,
            private: true,
        };
        let back = unframe(&frame(&entry)).unwrap();
        assert_eq!(
            (back.json, back.seconds, back.private),
            (entry.json, 30, true)
        );
        assert!(unframe(b"30|-|null").is_none());
        let patterns = EntityCache::patterns(Some("User"), &[id]);
        assert!(key.starts_with(&patterns[0]));
    }
}
