//! The gateway's Redis: where persisted queries (and cached answers) are shared between
//! replicas. Every call has a short timeout; a Redis that is down, slow or answering garbage
//! makes calls fail fast (logged and counted), never a client's request. After a failure the
//! connection is dropped and made again on a later call, at most once a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

/// Where the gateway's Redis is and how long a call may take.
#[derive(Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; none: nothing is shared between replicas.
    pub url: Option<String>,
    /// How long one call may take before it counts as failed, in milliseconds.
    pub timeout_ms: u64,
    /// Prefixed to every key, so that several gateways can share one Redis.
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("RedisSettings")
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            timeout_ms: 50,
            key_prefix: "polygraph:".to_owned(),
        }
    }
}

/// Bytes as lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// A supergraph's hash as cache keys hold it: a new supergraph never reads an old one's
/// entries.
pub fn schema_hash(sdl: &str) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(sdl.as_bytes()))[..16].to_owned()
}

/// What to drop: answers holding a type and entities of it (one entity with `key`), or
/// everything.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Invalidation {
    /// Answers holding this type, and its entities (everything when absent).
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    /// Only the entity with these key fields (`{"id": "1"}`); answers holding its type are
    /// dropped all the same.
    #[serde(default)]
    pub key: Option<serde_json::Map<String, serde_json::Value>>,
}

/// How long after a failed connection the next attempt waits.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub struct Store {
    client: redis::Client,
    timeout: Duration,
    prefix: String,
    connection: Mutex<Connection>,
    /// Calls that failed (timed out, refused, garbled).
    failures: AtomicU64,
}

#[derive(Default)]
struct Connection {
    current: Option<MultiplexedConnection>,
    /// A connection is being made.
    connecting: bool,
    /// No attempt to connect before this.
    not_before: Option<Instant>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("Store")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The store `settings` name, if any; an error for a URL that does not parse (its text
    /// left out, as it may hold a password).
    pub fn open(settings: &RedisSettings) -> Result<Option<Self>, String> {
        let Some(url) = &settings.url else {
            return Ok(None);
        };
        let client = redis::Client::open(url.as_str())
            .map_err(|error| format!("redis.url does not parse: {:?}", error.kind()))?;
        Ok(Some(Self {
            client,
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            prefix: settings.key_prefix.clone(),
            connection: Mutex::default(),
            failures: AtomicU64::new(0),
        }))
    }

    /// Delivers each message published on `channel` (prefixed) to `deliver`, for as long as
    /// the gateway runs: subscribed again a second after Redis goes away.
    pub async fn listen(self: Arc<Self>, channel: &str, deliver: impl Fn(String)) {
        use futures::StreamExt as _;
        let channel = self.key(channel);
        let limit = Duration::from_secs(5);
        loop {
            match tokio::time::timeout(limit, self.client.get_async_pubsub()).await {
                Err(_) => self.failed("subscribe", "timed out"),
                Ok(Err(error)) => self.failed("subscribe", &error.to_string()),
                Ok(Ok(mut pubsub)) => {
                    match tokio::time::timeout(limit, pubsub.subscribe(&channel)).await {
                        Err(_) => self.failed("subscribe", "timed out"),
                        Ok(Ok(())) => {
                            // What was announced while unsubscribed is unknown: start afresh.
                            deliver("*".to_owned());
                            let mut messages = pubsub.on_message();
                            while let Some(message) = messages.next().await {
                                if let Ok(payload) = message.get_payload::<String>() {
                                    deliver(payload);
                                }
                            }
                        }
                        Ok(Err(error)) => self.failed("subscribe", &error.to_string()),
                    }
                }
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    /// Every key matching `pattern` (`SCAN`, a thousand at a time).
    pub async fn scan(self: &Arc<Self>, pattern: &str) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, found): (u64, Vec<String>) =
                self.run(&scan).await.ok_or("redis did not answer")?;
            keys.extend(found);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Adds to `pipeline` the writes that put `member` in the index `index` (both unprefixed)
    /// until it expires in `seconds`: a sorted set scored by expiry, pruned of expired members
    /// on every write (so that it holds no more than the live entries) and kept `lasts` seconds
    /// past its last write.
    pub fn index(
        &self,
        pipeline: &mut redis::Pipeline,
        index: &str,
        member: &str,
        seconds: u64,
        lasts: u64,
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let expires = now + u128::from(seconds) * 1000;
        let index = self.key(index);
        pipeline
            .cmd("ZADD")
            .arg(&index)
            .arg(expires.to_string())
            .arg(member)
            .ignore();
        pipeline
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now.to_string())
            .ignore();
        pipeline
            .cmd("EXPIRE")
            .arg(&index)
            .arg(lasts.max(seconds))
            .ignore();
    }

    /// The members of the index `index` ([`Self::index`]).
    pub async fn members(self: &Arc<Self>, index: &str) -> Result<Vec<String>, String> {
        let mut range = redis::cmd("ZRANGE");
        range.arg(self.key(index)).arg(0).arg(-1);
        self.run(&range)
            .await
            .ok_or_else(|| "redis did not answer".to_owned())
    }

    /// Deletes `keys`, then announces `message` on `channel` (in that order, so that a replica
    /// acting on the announcement cannot read a deleted entry back); how many were deleted.
    pub async fn drop_and_announce(
        self: &Arc<Self>,
        keys: &[String],
        channel: &str,
        message: &str,
    ) -> Result<u64, String> {
        let dropped = if keys.is_empty() {
            0
        } else {
            let mut unlink = redis::cmd("UNLINK");
            unlink.arg(keys);
            self.run(&unlink)
                .await
                .ok_or_else(|| "redis did not answer".to_owned())?
        };
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.key(channel)).arg(message);
        let _: Option<u64> = self.run(&publish).await;
        Ok(dropped)
    }

    /// `name` with the configured prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Calls that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The connection, if there is one; if not, one is made in the background (calls meanwhile
    /// go without Redis rather than wait for it).
    fn connection(self: &Arc<Self>) -> Option<MultiplexedConnection> {
        let mut connection = self.connection.lock().expect("not poisoned");
        if let Some(current) = &connection.current {
            return Some(current.clone());
        }
        if connection.connecting || connection.not_before.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        connection.connecting = true;
        let store = self.clone();
        tokio::spawn(async move { store.connect().await });
        None
    }

    /// Connects now (waiting at most five seconds).
    pub async fn connect(&self) {
        let made = tokio::time::timeout(
            Duration::from_secs(5),
            self.client.get_multiplexed_async_connection(),
        )
        .await;
        let made = match made {
            Ok(Ok(made)) => Some(made),
            Ok(Err(error)) => {
                self.failed("connect", &error.to_string());
                None
            }
            Err(_) => {
                self.failed("connect", "timed out");
                None
            }
        };
        let mut connection = self.connection.lock().expect("not poisoned");
        connection.connecting = false;
        connection.not_before = made.is_none().then(|| Instant::now() + RECONNECT_AFTER);
        connection.current = made;
    }

    fn failed(&self, what: &str, reason: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(what, reason, "redis call failed; answering without it");
    }

    /// Runs `command`, giving `None` when Redis is down, slow or answers something else.
    pub async fn run<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        command: &redis::Cmd,
    ) -> Option<T> {
        let mut connection = self.connection()?;
        let answer = tokio::time::timeout(self.timeout, command.query_async::<T>(&mut connection));
        self.settle(answer.await)
    }

    /// Runs `pipeline` (its answers as one value).
    pub async fn pipeline<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        pipeline: &redis::Pipeline,
    ) -> Option<T> {
        let mut connection = self.connection()?;
        let answer = tokio::time::timeout(self.timeout, pipeline.query_async::<T>(&mut connection));
        self.settle(answer.await)
    }

    fn settle<T>(
        &self,
        answer: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        match answer {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                self.failed("call", &error.to_string());
                if error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_unrecoverable_error()
                {
                    self.drop_connection();
                }
                None
            }
            Err(_) => {
                self.failed("call", "timed out");
                None
            }
        }
    }

    fn drop_connection(&self) {
        let mut connection = self.connection.lock().expect("not poisoned");
        connection.current = None;
        connection.not_before = Some(Instant::now() + RECONNECT_AFTER);
    }
}
