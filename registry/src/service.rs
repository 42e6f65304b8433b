//! The registry's HTTP API. Reads (`GET /v1/...`, `POST /v1/check`) need a read or publish
//! token; changes (`POST /v1/publish`, `/v1/remove`, `/v1/rollback`) a publish token. A change
//! is composed against the current version and the supergraph loaded as the gateway would
//! load it before it is stored; one that does not compose is refused with the reasons and the
//! current version stays.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

use crate::store::{Published, Recorded, Store, StoreError, Version};

/// Who may do what: tokens by name, kept as SHA-256 digests and compared as such.
#[derive(Default)]
pub struct Tokens {
    publish: Vec<(String, [u8; 32])>,
    read: Vec<(String, [u8; 32])>,
    /// Reads without a token: only when asked for by name (`--anonymous-reads`).
    pub anonymous_reads: bool,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Tokens {
    /// Tokens from `NAME=SECRET` pairs separated by commas (`ci=…,alice=…`).
    pub fn parse(publish: &str, read: &str) -> anyhow::Result<Self> {
        let pairs = |text: &str, what: &str| -> anyhow::Result<Vec<(String, [u8; 32])>> {
            let mut out = Vec::new();
            for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((name, secret)) = pair.split_once('=') else {
                    anyhow::bail!("a {what} token must be NAME=SECRET");
                };
                anyhow::ensure!(
                    secret.len() >= 16,
                    "the {what} token {name:?} is shorter than 16 characters"
                );
                out.push((name.to_owned(), digest(secret)));
            }
            Ok(out)
        };
        Ok(Self {
            publish: pairs(publish, "publish")?,
            read: pairs(read, "read")?,
            anonymous_reads: false,
        })
    }

    pub fn can_publish(&self) -> bool {
        !self.publish.is_empty()
    }

    fn bearer(headers: &HeaderMap) -> Option<[u8; 32]> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?;
        Some(digest(token.trim()))
    }

    /// The name of the publish token the request carries.
    fn publisher(&self, headers: &HeaderMap) -> Result<String, Denied> {
        let presented =
            Self::bearer(headers).ok_or(Denied::Unauthorized("a publish token is required"))?;
        self.publish
            .iter()
            .find(|(_, d)| *d == presented)
            .map(|(name, _)| name.clone())
            .ok_or(Denied::Forbidden("this token may not publish"))
    }

    fn reader(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let Some(presented) = Self::bearer(headers) else {
            return if self.anonymous_reads {
                Ok(())
            } else {
                Err(Denied::Unauthorized("a read token is required"))
            };
        };
        if self
            .read
            .iter()
            .chain(&self.publish)
            .any(|(_, d)| *d == presented)
        {
            Ok(())
        } else {
            Err(Denied::Forbidden("this token may not read the registry"))
        }
    }
}

/// Why a request may not go on.
enum Denied {
    /// No token (401, with `WWW-Authenticate: Bearer`).
    Unauthorized(&'static str),
    /// A token that may not do this (403).
    Forbidden(&'static str),
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized(message) => unauthorized(message),
            Self::Forbidden(message) => forbidden(message),
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

fn forbidden(message: &str) -> Response {
    error(StatusCode::FORBIDDEN, message)
}

/// Storage failures are logged; the client learns only that storage failed.
fn storage(failure: &StoreError) -> Response {
    match failure {
        StoreError::Conflict(_) => error(StatusCode::CONFLICT, &failure.to_string()),
        StoreError::Storage(detail) => {
            tracing::error!(%detail, "registry storage failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "registry storage is unavailable",
            )
        }
    }
}

/// The registry: its store, its tokens, and one lock so publishes on this process compose in
/// turn (across processes the store's conditional append decides).
pub struct Registry {
    pub store: Store,
    pub tokens: Tokens,
    changing: Mutex<()>,
    /// Compositions running at once: each takes a core while it runs.
    composing: tokio::sync::Semaphore,
}

/// The longest one composition may take before it is given up.
const COMPOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Registry {
    pub fn new(store: Store, tokens: Tokens) -> Arc<Self> {
        Arc::new(Self {
            store,
            tokens,
            changing: Mutex::new(()),
            composing: tokio::sync::Semaphore::new(2),
        })
    }

    /// [`compose`] off the async workers, two at a time, each within [`COMPOSE_TIMEOUT`]; a
    /// 503 when it cannot run now or in time.
    async fn compose(
        &self,
        current: Option<Version>,
        subgraphs: Vec<Published>,
    ) -> Result<Outcome, Response> {
        let busy = || {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the registry is busy composing; try again",
            )
        };
        let Ok(_permit) = tokio::time::timeout(COMPOSE_TIMEOUT, self.composing.acquire()).await
        else {
            return Err(busy());
        };
        let work = tokio::task::spawn_blocking(move || compose(current.as_ref(), &subgraphs));
        match tokio::time::timeout(COMPOSE_TIMEOUT, work).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(panicked)) => {
                tracing::error!(%panicked, "composition failed");
                Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "composition failed",
                ))
            }
            Err(_) => {
                tracing::warn!("a composition took longer than {COMPOSE_TIMEOUT:?}");
                Err(busy())
            }
        }
    }
}

/// The routes, with bodies up to 4 MiB (a large subgraph's SDL).
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/supergraph", get(supergraph))
        .route("/v1/versions", get(list))
        .route("/v1/versions/{id}", get(version))
        .route("/v1/diff", get(diff))
        .route("/v1/check", post(check))
        .route("/v1/publish", post(publish))
        .route("/v1/remove", post(remove))
        .route("/v1/rollback", post(rollback))
        .layer(axum::extract::DefaultBodyLimit::max(4 << 20))
        .with_state(registry)
}

/// The entity tag of a version's supergraph.
pub fn etag(version: &Version) -> String {
    let hash = Sha256::digest(version.supergraph.as_bytes());
    let mut tag = format!("\"{}-", version.id);
    for byte in &hash[..8] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

async fn supergraph(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    if let Err(denied) = registry.tokens.reader(&headers) {
        return denied.into_response();
    }
    let current = match registry.store.current().await {
        Ok(Some(current)) => current,
        Ok(None) => return error(StatusCode::NOT_FOUND, "nothing has been published yet"),
        Err(failure) => return storage(&failure),
    };
    let tag = etag(&current);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            current.supergraph,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = header::HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert("x-polygraph-version", current.id.into());
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response
}

async fn list(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    if let Err(denied) = registry.tokens.reader(&headers) {
        return denied.into_response();
    }
    match registry.store.list().await {
        Ok(versions) => Json(versions).into_response(),
        Err(failure) => storage(&failure),
    }
}

async fn version(
    State(registry): State<Arc<Registry>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = registry.tokens.reader(&headers) {
        return denied.into_response();
    }
    match registry.store.get(id).await {
        Ok(Some(version)) => Json(version).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("there is no version {id}")),
        Err(failure) => storage(&failure),
    }
}

#[derive(Deserialize)]
struct DiffQuery {
    from: i64,
    to: i64,
}

async fn diff(
    State(registry): State<Arc<Registry>>,
    Query(query): Query<DiffQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = registry.tokens.reader(&headers) {
        return denied.into_response();
    }
    let mut found = Vec::new();
    for id in [query.from, query.to] {
        match registry.store.get(id).await {
            Ok(Some(version)) => found.push(version),
            Ok(None) => return error(StatusCode::NOT_FOUND, &format!("there is no version {id}")),
            Err(failure) => return storage(&failure),
        }
    }
    match changes(Some(&found[0].supergraph), &found[1].supergraph) {
        Ok(changes) => {
            Json(json!({ "from": query.from, "to": query.to, "changes": changes })).into_response()
        }
        Err(why) => {
            tracing::error!(%why, "a stored supergraph does not load");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "a stored version could not be compared",
            )
        }
    }
}

/// The changes in the API schema from `old` (none: everything is new) to `new`.
fn changes(old: Option<&str>, new: &str) -> Result<Vec<Recorded>, String> {
    use polygraph_gateway::supergraph::Supergraph;
    let api = |sdl: &str| {
        Supergraph::parse(sdl)
            .map(|s| s.api_schema)
            .map_err(|e| e.to_string())
    };
    let new = api(new)?;
    // The first version changes nothing for anyone: everything in it is an addition.
    let old = match old {
        Some(old) => api(old)?.into_inner(),
        None => apollo_compiler::Schema::new(),
    };
    Ok(polygraph_schema::diff::changes(&old, &new)
        .into_iter()
        .map(|change| Recorded {
            severity: change.severity.as_str().to_owned(),
            coordinate: change.coordinate,
            message: change.message,
        })
        .collect())
}

#[derive(Deserialize)]
struct Candidate {
    name: String,
    url: String,
    sdl: String,
}

/// A new state, composed: its supergraph and what it changes, or why it cannot be.
enum Outcome {
    Composed {
        supergraph: String,
        changes: Vec<Recorded>,
    },
    Refused(serde_json::Value),
}

fn compose(current: Option<&Version>, subgraphs: &[Published]) -> Outcome {
    if subgraphs.is_empty() {
        return Outcome::Refused(
            json!([{ "code": "NO_SUBGRAPHS", "message": "no subgraph would be left" }]),
        );
    }
    let inputs: Vec<polygraph_schema::compose::Input> = subgraphs
        .iter()
        .map(|s| polygraph_schema::compose::Input {
            name: s.name.clone(),
            url: s.url.clone(),
            sdl: s.sdl.clone(),
        })
        .collect();
    let supergraph = match polygraph_schema::compose::compose(&inputs) {
        Ok(supergraph) => supergraph,
        Err(errors) => return Outcome::Refused(json!(errors)),
    };
    match changes(current.map(|c| c.supergraph.as_str()), &supergraph) {
        Ok(changes) => Outcome::Composed {
            supergraph,
            changes,
        },
        Err(why) => Outcome::Refused(json!([{ "code": "INVALID_SUPERGRAPH", "message": why }])),
    }
}

fn with(current: Option<&Version>, candidate: Published) -> Vec<Published> {
    let mut subgraphs: Vec<Published> = current.map(|c| c.subgraphs.clone()).unwrap_or_default();
    subgraphs.retain(|s| s.name != candidate.name);
    subgraphs.push(candidate);
    subgraphs.sort_by(|a, b| a.name.cmp(&b.name));
    subgraphs
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

async fn check(
    State(registry): State<Arc<Registry>>,
    headers: HeaderMap,
    Json(candidate): Json<Candidate>,
) -> Response {
    if let Err(denied) = registry.tokens.reader(&headers) {
        return denied.into_response();
    }
    if let Some(invalid) = invalid_candidate(&candidate) {
        return invalid;
    }
    let current = match registry.store.current().await {
        Ok(current) => current,
        Err(failure) => return storage(&failure),
    };
    let subgraphs = with(
        current.as_ref(),
        Published {
            name: candidate.name,
            url: candidate.url,
            sdl: candidate.sdl,
        },
    );
    match registry.compose(current, subgraphs).await {
        Err(busy) => busy,
        Ok(Outcome::Composed { changes, .. }) => {
            let breaking = changes
                .iter()
                .filter(|c| c.severity == polygraph_schema::diff::Severity::Breaking.as_str())
                .count();
            Json(json!({ "composes": true, "breaking": breaking, "changes": changes }))
                .into_response()
        }
        Ok(Outcome::Refused(errors)) => {
            Json(json!({ "composes": false, "errors": errors })).into_response()
        }
    }
}

/// The subgraphs of the next version, from the current one (read under the change lock, so
/// two publishes never build on the same version), or why there is none.
type Next<'a> =
    Box<dyn FnOnce(Option<&Version>) -> Result<Vec<Published>, Box<Response>> + Send + 'a>;

/// Stores the state `next` makes of the current version as the version after it, when it
/// composes.
async fn change(registry: &Registry, author: String, action: String, next: Next<'_>) -> Response {
    let _turn = registry.changing.lock().await;
    let current = match registry.store.current().await {
        Ok(current) => current,
        Err(failure) => return storage(&failure),
    };
    let subgraphs = match next(current.as_ref()) {
        Ok(subgraphs) => subgraphs,
        Err(response) => return *response,
    };
    if let Some(current) = &current
        && current.subgraphs == subgraphs
    {
        return Json(json!({ "version": current.id, "unchanged": true, "changes": [] }))
            .into_response();
    }
    let (supergraph, changes) = match registry.compose(current.clone(), subgraphs.clone()).await {
        Ok(Outcome::Composed {
            supergraph,
            changes,
        }) => (supergraph, changes),
        Ok(Outcome::Refused(errors)) => {
            tracing::info!(%author, %action, "refused: the subgraphs do not compose");
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": "the subgraphs do not compose; the current version stays", "errors": errors })),
            )
                .into_response();
        }
        Err(busy) => return busy,
    };
    let version = Version {
        id: 0,
        created_at: chrono::Utc::now().to_rfc3339(),
        author,
        action,
        subgraphs,
        supergraph,
        changes,
    };
    match registry
        .store
        .append(current.as_ref().map(|c| c.id), version)
        .await
    {
        Ok(version) => {
            tracing::info!(version = version.id, author = %version.author, action = %version.action, "published");
            Json(json!({ "version": version.id, "unchanged": false, "changes": version.changes }))
                .into_response()
        }
        Err(failure) => storage(&failure),
    }
}

/// Why a candidate cannot be taken as it is: a 400 naming the problem.
fn invalid_candidate(candidate: &Candidate) -> Option<Response> {
    if !valid_name(&candidate.name) {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "a subgraph name is 1 to 64 letters, digits, _ or -",
        ));
    }
    // Published URLs reach every reader: plain http(s), and no credentials in them.
    let url_ok = candidate
        .url
        .split_once("://")
        .is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && !rest.split('/').next().unwrap_or_default().contains('@')
        });
    if !url_ok {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "a subgraph URL is http:// or https://, without credentials in it",
        ));
    }
    None
}

async fn publish(
    State(registry): State<Arc<Registry>>,
    headers: HeaderMap,
    Json(candidate): Json<Candidate>,
) -> Response {
    let author = match registry.tokens.publisher(&headers) {
        Ok(author) => author,
        Err(denied) => return denied.into_response(),
    };
    if let Some(invalid) = invalid_candidate(&candidate) {
        return invalid;
    }
    let action = format!("publish {}", candidate.name);
    let published = Published {
        name: candidate.name,
        url: candidate.url,
        sdl: candidate.sdl,
    };
    let next: Next<'_> = Box::new(move |current| Ok(with(current, published)));
    change(&registry, author, action, next).await
}

#[derive(Deserialize)]
struct Removal {
    name: String,
}

async fn remove(
    State(registry): State<Arc<Registry>>,
    headers: HeaderMap,
    Json(removal): Json<Removal>,
) -> Response {
    let author = match registry.tokens.publisher(&headers) {
        Ok(author) => author,
        Err(denied) => return denied.into_response(),
    };
    let action = format!("remove {}", removal.name);
    let next: Next<'_> = Box::new(move |current| {
        let Some(current) = current.filter(|c| c.subgraphs.iter().any(|s| s.name == removal.name))
        else {
            return Err(Box::new(error(
                StatusCode::NOT_FOUND,
                &format!("there is no subgraph {:?}", removal.name),
            )));
        };
        Ok(current
            .subgraphs
            .iter()
            .filter(|s| s.name != removal.name)
            .cloned()
            .collect())
    });
    change(&registry, author, action, next).await
}

#[derive(Deserialize)]
struct Rollback {
    version: i64,
}

async fn rollback(
    State(registry): State<Arc<Registry>>,
    headers: HeaderMap,
    Json(rollback): Json<Rollback>,
) -> Response {
    let author = match registry.tokens.publisher(&headers) {
        Ok(author) => author,
        Err(denied) => return denied.into_response(),
    };
    let target = match registry.store.get(rollback.version).await {
        Ok(Some(target)) => target,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("there is no version {}", rollback.version),
            );
        }
        Err(failure) => return storage(&failure),
    };
    let action = format!("rollback to {}", target.id);
    let next: Next<'_> = Box::new(move |_| Ok(target.subgraphs));
    change(&registry, author, action, next).await
}
