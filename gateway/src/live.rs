//! The supergraph the gateway serves, replaced while it runs: from a file it re-reads or a URL
//! it polls (the registry's `GET /v1/supergraph`, with `If-None-Match`). A new supergraph is
//! loaded beside the old one and swapped in atomically: requests in flight finish on the
//! gateway they started on, new ones plan against the new schema (plans are cached per
//! gateway, so none carries over). One that does not parse, validate or fit the gateway's
//! policies is refused — logged and counted — and the old one keeps serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::gateway::Gateway;
use crate::supergraph::Supergraph;

/// Where a supergraph comes from.
#[derive(Clone, Debug)]
pub enum Source {
    File(std::path::PathBuf),
    /// An http(s) URL, fetched with the bearer token when there is one.
    Url {
        url: String,
        token: Option<String>,
    },
}

/// The gateway serving now.
pub struct Live {
    current: ArcSwap<Gateway>,
    /// A hash of the supergraph text serving now, to skip reloading the same one.
    text_hash: AtomicU64,
    /// A hash of the text refused last, not to refuse (and count) it again.
    refused_hash: AtomicU64,
    replaced: AtomicU64,
    refused: AtomicU64,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("replaced", &self.replaced)
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

fn hash(text: &str) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = foldhash::fast::FixedState::with_seed(0).build_hasher();
    hasher.write(text.as_bytes());
    hasher.finish()
}

impl Live {
    /// Serving `gateway`, made from the supergraph text `sdl`.
    pub fn new(gateway: Arc<Gateway>, sdl: &str) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::new(gateway),
            text_hash: AtomicU64::new(hash(sdl)),
            refused_hash: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// The gateway a request starts on (and keeps until it ends).
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// How many supergraphs replaced the first, and how many were refused.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.replaced.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Serves the supergraph `sdl` from now on: `Ok(false)` when it is the one serving.
    pub fn replace(&self, sdl: &str) -> Result<bool, String> {
        let text_hash = hash(sdl);
        if text_hash == self.text_hash.load(Ordering::Acquire) {
            return Ok(false);
        }
        if text_hash == self.refused_hash.load(Ordering::Acquire) {
            return Err("this supergraph was refused before".to_owned());
        }
        let old = self.current();
        let next = Supergraph::parse(sdl)
            .map_err(|error| error.to_string())
            .and_then(|supergraph| old.with_supergraph(supergraph));
        let next = match next {
            Ok(next) => Arc::new(next),
            Err(error) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                polygraph_service::metrics().reload(false);
                self.refused_hash.store(text_hash, Ordering::Release);
                tracing::error!(%error, "refused a new supergraph; the current one keeps serving");
                return Err(error);
            }
        };
        next.listen();
        self.current.store(next);
        self.text_hash.store(text_hash, Ordering::Release);
        old.stop_listening();
        self.replaced.fetch_add(1, Ordering::Relaxed);
        polygraph_service::metrics().reload(true);
        tracing::info!("serving a new supergraph");
        eprintln!("polygraph gateway: serving a new supergraph");
        Ok(true)
    }

    /// Checks `source` every `every` for a new supergraph, for as long as the gateway runs.
    pub fn follow(self: &Arc<Self>, source: Source, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default();
            let mut etag: Option<String> = None;
            loop {
                tokio::time::sleep(every).await;
                let Some(live) = weak.upgrade() else { return };
                match fetch(&client, &source, &mut etag).await {
                    Ok(Some(sdl)) => {
                        let _ = live.replace(&sdl);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, "checking for a new supergraph failed; the current one keeps serving");
                    }
                }
            }
        });
    }
}

/// The supergraph at `source`: `None` when a URL answers 304 to the entity tag seen last.
pub async fn fetch(
    client: &reqwest::Client,
    source: &Source,
    etag: &mut Option<String>,
) -> Result<Option<String>, String> {
    match source {
        Source::File(path) => tokio::fs::read_to_string(path)
            .await
            .map(Some)
            .map_err(|error| format!("reading {}: {error}", path.display())),
        Source::Url { url, token } => {
            let mut request = client.get(url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(tag) = etag.as_deref() {
                request = request.header(reqwest::header::IF_NONE_MATCH, tag);
            }
            let response = request
                .send()
                .await
                .map_err(|error| format!("fetching the supergraph: {error}"))?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(format!("fetching the supergraph answered HTTP {status}"));
            }
            let tag = response
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response
                .text()
                .await
                .map_err(|error| format!("reading the supergraph: {error}"))?;
            *etag = tag;
            Ok(Some(text))
        }
    }
}
