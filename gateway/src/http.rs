//! GraphQL over HTTP: `POST /graphql` (JSON), `GET /graphql` for queries, the
//! `application/graphql-response+json` and `application/json` media types, `/health`, and
//! GraphiQL at `/` from files built into the binary.
//!
//! Status codes follow the GraphQL-over-HTTP spec: with `application/graphql-response+json`, a
//! request that fails before execution gets 400 (405 for a mutation over GET); with the legacy
//! `application/json`, a well-formed request always gets 200. A body that is not JSON, too
//! large, or of the wrong media type is refused with 400, 413 or 415 — always with a GraphQL
//! error in the body. A token that does not verify is refused with 401 (and
//! `WWW-Authenticate: Bearer error="invalid_token"`), as is an anonymous mutation; a request
//! authorization refuses whole gets 403.
//!
//! `/.well-known/polygraph-claims.json` serves the public keys of the claims tokens the gateway
//! signs for subgraphs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt as _;

use apollo_compiler::ast::OperationType;
use apollo_compiler::response::{JsonMap, JsonValue};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::get;

use crate::coalesce::{Answer, Ask};
use crate::errors::Code;
use crate::errors::GraphqlError;
use crate::execute::CachePolicy;
use crate::gateway::{Failure, Gateway, Options, Request, Response};
use crate::live::Live;

/// The header that asks for the query plan in `extensions.queryPlan`.
pub const EXPLAIN_HEADER: &str = "x-polygraph-explain";

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

/// The gateway's routes, over one supergraph for good.
pub fn app(gateway: Arc<Gateway>) -> Router {
    app_live(Live::new(gateway, ""))
}

/// The gateway's routes, over the supergraph `live` serves at the time each request arrives.
pub fn app_live(live: Arc<Live>) -> Router {
    let gateway = live.current();
    let settings = gateway.settings();
    let cors = settings.cors.layer(&settings.csrf);
    let graphql = Router::new()
        .route("/graphql", get(get_graphql).post(post_graphql))
        .with_state(live.clone())
        .layer(axum::middleware::from_fn(polygraph_service::http::observe));
    let router = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route(
            "/admin/cache/invalidate",
            axum::routing::post(invalidate_cache),
        )
        .route("/.well-known/polygraph-claims.json", get(claims_jwks))
        .route("/", get(graphiql_page))
        .route("/graphiql", get(graphiql_page))
        .route("/graphiql/", get(graphiql_page))
        .route("/graphiql/{file}", get(graphiql_asset))
        .with_state(live)
        .merge(settings.server.shed(graphql));
    let router = settings.server.with_metrics(router);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The refusal of a request that may have been forged by another site's page, if it is one.
fn forged(gateway: &Gateway, headers: &HeaderMap, media: &'static str) -> Option<HttpResponse> {
    let settings = gateway.settings();
    let cookie = settings.authentication.cookie.as_deref();
    settings.csrf.refuses(headers, cookie).then(|| {
        tracing::info!("refused a request that could come from another site's page (CSRF)");
        refuse(
            StatusCode::BAD_REQUEST,
            media,
            "this request carries the sign-in cookie but could have been sent by another site's page: send it with Content-Type: application/json or an x-polygraph-preflight header",
            Code::CsrfPrevented,
        )
    })
}

/// Serves `app` on `listen` until SIGINT or SIGTERM, then finishes requests in flight within
/// the settings' grace period.
pub async fn serve(
    app: Router,
    listen: SocketAddr,
    limits: &polygraph_service::serve::Limits,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {listen}: {error}"))?;
    eprintln!(
        "polygraph gateway: GraphQL at http://{}/graphql, GraphiQL at http://{}/",
        listener.local_addr()?,
        listener.local_addr()?
    );
    polygraph_service::serve::serve(listener, app, limits).await
}

async fn claims_jwks(State(live): State<Arc<Live>>) -> HttpResponse {
    let gateway = live.current();
    respond(
        StatusCode::OK,
        JSON,
        gateway.claims_jwks().to_string().into_bytes(),
    )
}

/// The 401 for credentials that do not verify.
fn unauthorized(error: &crate::auth::AuthError, media: &'static str) -> HttpResponse {
    tracing::info!(reason = %error.message, "refused a request's credentials");
    let mut response = refuse(StatusCode::UNAUTHORIZED, media, &error.message, error.code);
    let challenge = if error.code == Code::InvalidToken {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// `POST /admin/cache/invalidate` with `{"type": "User"}` (or `{}` for everything): drops
/// cached answers, for callers `cache_admin` allows.
async fn invalidate_cache(
    State(live): State<Arc<Live>>,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResponse {
    let gateway = live.current();
    let session = match gateway.authenticate(&headers).await {
        Ok(session) => session,
        Err(error) => return unauthorized(&error, JSON),
    };
    if !gateway.settings().cache_admin.allows(session.as_deref()) {
        if session.is_none() {
            let error = crate::auth::AuthError {
                message: "dropping cached answers needs a signed-in caller".to_owned(),
                code: Code::Unauthenticated,
            };
            return unauthorized(&error, JSON);
        }
        return refuse(
            StatusCode::FORBIDDEN,
            JSON,
            "this caller may not drop cached answers (cache_admin)",
            Code::Forbidden,
        );
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let invalidation: crate::response_cache::Invalidation =
        match serde_json::from_slice::<crate::response_cache::Invalidation>(&body) {
            Ok(invalidation)
                if is_json
                    && invalidation
                        .type_name
                        .as_deref()
                        .is_none_or(|name| apollo_compiler::Name::new(name).is_ok()) =>
            {
                invalidation
            }
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    JSON,
                    "send Content-Type: application/json and {\"type\": \"TypeName\"} or {}",
                    Code::BadRequest,
                );
            }
        };
    match gateway.invalidate(&invalidation).await {
        Ok(dropped) => {
            tracing::info!(type_name = ?invalidation.type_name, dropped, "cached answers dropped");
            let body = serde_json::json!({ "dropped": dropped }).to_string();
            respond(StatusCode::OK, JSON, body.into_bytes())
        }
        Err(error) => {
            tracing::warn!(%error, "dropping cached answers in redis failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                JSON,
                "cached answers were dropped here but not in Redis; try again",
                Code::DownstreamServiceError,
            )
        }
    }
}

async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JSON)], "{\"status\":\"pass\"}")
}

/// `GET /ready`: 200 when the supergraph is loaded and (unless `ready_requires_subgraphs` is
/// off) every subgraph answers HTTP; 503 with how many do not otherwise (which, and why, goes
/// to the log). Subgraphs are asked at most once every 2 s, however often this is called.
async fn ready(State(live): State<Arc<Live>>) -> HttpResponse {
    let gateway = live.current();
    let unreachable = if gateway.settings().ready_requires_subgraphs {
        gateway.unreachable_subgraphs().await.len()
    } else {
        0
    };
    let (status, body) = if unreachable == 0 {
        (StatusCode::OK, serde_json::json!({ "status": "pass" }))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "fail", "unreachable": unreachable }),
        )
    };
    respond(status, JSON, body.to_string().into_bytes())
}

/// The media type to answer with, from the `Accept` header; `None` when neither is acceptable.
fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(JSON);
    };
    let mut json = false;
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or_default().trim();
        match media.to_ascii_lowercase().as_str() {
            "application/graphql-response+json" => return Some(GRAPHQL_RESPONSE),
            "application/json" | "*/*" | "application/*" => json = true,
            _ => {}
        }
    }
    json.then_some(JSON)
}

/// The 406 for a request that accepts neither media type.
fn not_acceptable() -> HttpResponse {
    refuse(
        StatusCode::NOT_ACCEPTABLE,
        JSON,
        "accept application/graphql-response+json or application/json",
        Code::NotAcceptable,
    )
}

fn respond(status: StatusCode, media: &'static str, body: Vec<u8>) -> HttpResponse {
    let mut response = HttpResponse::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

/// A request refused before GraphQL: always a GraphQL error body.
fn refuse(status: StatusCode, media: &'static str, message: &str, code: Code) -> HttpResponse {
    let response =
        Response::request_error(Failure::BadRequest, vec![GraphqlError::new(message, code)]);
    respond(status, media, response.into_bytes())
}

fn finished(response: Response, media: &'static str) -> Answer {
    let status = match (response.failure, media) {
        (Some(Failure::NotAllowed), _) => StatusCode::METHOD_NOT_ALLOWED,
        (Some(Failure::Unauthenticated), _) => StatusCode::UNAUTHORIZED,
        (Some(Failure::Forbidden), _) => StatusCode::FORBIDDEN,
        (Some(Failure::Malformed), _) | (Some(Failure::BadRequest), GRAPHQL_RESPONSE) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    let cacheable = matches!(response.cache, CachePolicy::MaxAge { .. });
    let cache = HeaderValue::from_str(&response.cache.header())
        .unwrap_or(HeaderValue::from_static("no-store"));
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::CACHE_CONTROL, cache);
    if cacheable {
        // The same URL answers differently by media type and with the plan attached.
        headers.insert(
            header::VARY,
            HeaderValue::from_static("accept, x-polygraph-explain"),
        );
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    let (policy, types) = (response.cache, response.types.clone());
    let errors = !response.errors.is_empty();
    Answer {
        errors,
        status,
        headers,
        body: Bytes::from(response.into_bytes()),
        policy,
        types,
    }
}

/// Runs `request`: a query is answered from the response cache when it holds the answer, or
/// joins an identical one in flight (when coalescing is on); a kept answer is stored. (What
/// a mutation changed is dropped from the caches as it is executed.)
async fn answer(
    gateway: Arc<Gateway>,
    ask: Ask,
    request: Request,
    options: Options,
    media: &'static str,
) -> HttpResponse {
    let operation = request.operation_name.clone();
    let answer = answered(gateway, ask, request, options, media).await;
    // The request's observer learns its operation name and whether the answer has errors.
    let errors = answer.errors;
    let mut response = answer.into_http();
    response
        .extensions_mut()
        .insert(polygraph_service::http::Answered { operation, errors });
    response
}

async fn answered(
    gateway: Arc<Gateway>,
    ask: Ask,
    mut request: Request,
    options: Options,
    media: &'static str,
) -> Answer {
    if let Err(refused) = gateway.resolve(&mut request).await {
        return finished(*refused, media);
    }
    let query = gateway.is_query(&mut request);
    let responses = gateway.responses();
    let session = options.session.as_deref();
    let signed_in = session.is_some_and(|session| session.principal.is_some());
    let key = (query && responses.enabled())
        .then(|| gateway.cache_identity(&mut request, session))
        .flatten()
        .and_then(|identity| responses.key(&ask, &identity, signed_in, &gateway.policy_revision()));
    if let Some(key) = &key {
        let hit = responses.get(key).await;
        polygraph_service::metrics().cache("response", hit.is_some());
        if let Some(hit) = hit {
            return hit;
        }
    }
    let credentials = ask.has_credentials();
    let mut answer = if query && gateway.settings().coalesce_requests {
        let leader = gateway.clone();
        gateway
            .in_flight()
            .run(ask, move || {
                async move { finished(leader.execute(request, options).await, media) }.boxed()
            })
            .await
    } else {
        finished(gateway.execute(request, options).await, media)
    };
    match answer.policy {
        CachePolicy::MaxAge { seconds, private } if !private || credentials => {
            if let Some(key) = key {
                responses.put(key, &answer, seconds, &answer.types).await;
                answer.headers.insert(
                    crate::response_cache::CACHE_HEADER,
                    HeaderValue::from_static("miss"),
                );
            }
        }
        _ => {}
    }
    answer
}

fn options(
    headers: &HeaderMap,
    read_only: bool,
    session: Option<Arc<crate::auth::Session>>,
) -> Options {
    Options {
        session,
        read_only,
        explain: headers
            .get(EXPLAIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.is_empty() && v != "0" && v != "false"),
        credentials: headers.contains_key(header::AUTHORIZATION)
            || headers.contains_key(header::COOKIE),
        streaming: false,
    }
}

async fn post_graphql(
    State(live): State<Arc<Live>>,
    headers: HeaderMap,
    body: Body,
) -> HttpResponse {
    let gateway = live.current();
    let streaming = crate::streams::streaming(&headers);
    let Some(media) = negotiate(&headers).or(streaming.map(|_| JSON)) else {
        return not_acceptable();
    };
    if let Some(refusal) = forged(&gateway, &headers, media) {
        return refusal;
    }
    let session = match gateway.authenticate(&headers).await {
        Ok(session) => session,
        Err(error) => return unauthorized(&error, media),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if content_type != "application/json" && content_type != "application/graphql-response+json" {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "send the request as Content-Type: application/json",
            Code::UnsupportedMediaType,
        );
    }
    let limit = gateway.settings().max_body_bytes;
    let patience = Duration::from_millis(gateway.settings().server.body_read_timeout_ms);
    let Ok(read) = tokio::time::timeout(patience, axum::body::to_bytes(body, limit)).await else {
        return refuse(
            StatusCode::REQUEST_TIMEOUT,
            media,
            "the request body did not arrive in time",
            Code::BadRequest,
        );
    };
    let Ok(bytes) = read else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            media,
            &format!("the request body is larger than {limit} bytes"),
            Code::PayloadTooLarge,
        );
    };
    let mut request = match parse_body(&bytes) {
        Ok(request) => request,
        Err(message) => {
            return refuse(StatusCode::BAD_REQUEST, media, &message, Code::BadRequest);
        }
    };
    let mut options = options(&headers, false, session);
    if let Some(streaming) = streaming {
        if let Err(refused) = gateway.resolve(&mut request).await {
            return finished(*refused, media).into_http();
        }
        let subscription =
            gateway.operation_type(&mut request) == Some(OperationType::Subscription);
        if subscription || streaming == crate::streams::Streaming::Sse {
            options.streaming = true;
            let keepalive =
                Duration::from_millis(gateway.settings().subscriptions.keepalive_ms.max(1));
            let subscribed = gateway.subscribe(request, options).await;
            return crate::streams::over_http(subscribed, streaming, keepalive)
                .unwrap_or_else(|refused| finished(*refused, media).into_http());
        }
    }
    let ask = Ask::new(false, media, &headers, EXPLAIN_HEADER, bytes);
    answer(gateway, ask, request, options, media).await
}

/// A POST body as a request: a JSON object whose parameters have the types the spec says.
fn parse_body(bytes: &[u8]) -> Result<Request, String> {
    let value: JsonValue = serde_json::from_slice(bytes)
        .map_err(|error| format!("the request body is not valid JSON: {error}"))?;
    let JsonValue::Object(mut object) = value else {
        return Err("the request body must be a JSON object".to_owned());
    };
    let query = match object.remove("query") {
        Some(JsonValue::String(query)) => Some(query.as_str().to_owned()),
        None | Some(JsonValue::Null) => None,
        Some(_) => return Err("\"query\" must be a string".to_owned()),
    };
    let operation_name = match object.remove("operationName") {
        Some(JsonValue::String(name)) => Some(name.as_str().to_owned()),
        None | Some(JsonValue::Null) => None,
        Some(_) => return Err("\"operationName\" must be a string".to_owned()),
    };
    let mut document_id = None;
    for name in ["documentId", "doc_id"] {
        match object.remove(name) {
            Some(JsonValue::String(id)) => document_id = Some(id.as_str().to_owned()),
            None | Some(JsonValue::Null) => {}
            Some(_) => return Err(format!("\"{name}\" must be a string")),
        }
    }
    let variables = object_parameter("variables", object.remove("variables"))?;
    let extensions = object_parameter("extensions", object.remove("extensions"))?;
    Ok(Request {
        query,
        operation_name,
        variables,
        extensions,
        document_id,
        resolved: false,
        register: None,
        prepared: None,
    })
}

/// A parameter that must be a JSON object when present (`variables`, `extensions`).
fn object_parameter(name: &str, value: Option<JsonValue>) -> Result<Option<JsonMap>, String> {
    match value {
        Some(JsonValue::Object(object)) => Ok(Some(object)),
        None | Some(JsonValue::Null) => Ok(None),
        Some(_) => Err(format!("\"{name}\" must be a JSON object")),
    }
}

async fn get_graphql(
    State(live): State<Arc<Live>>,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> HttpResponse {
    if let Ok(upgrade) = upgrade {
        return crate::streams::socket(live, upgrade, &headers);
    }
    let gateway = live.current();
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    if let Some(refusal) = forged(&gateway, &headers, media) {
        return refusal;
    }
    let session = match gateway.authenticate(&headers).await {
        Ok(session) => session,
        Err(error) => return unauthorized(&error, media),
    };
    let raw = raw.unwrap_or_default();
    let mut request = Request::default();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        match name.as_ref() {
            "query" => request.query = Some(value.into_owned()),
            "operationName" => request.operation_name = Some(value.into_owned()),
            "documentId" | "doc_id" => request.document_id = Some(value.into_owned()),
            "variables" | "extensions" => {
                let parsed = serde_json::from_str::<JsonValue>(&value)
                    .map_err(|_| format!("\"{name}\" must be a JSON object"))
                    .and_then(|parsed| object_parameter(&name, Some(parsed)));
                match parsed {
                    Ok(object) if name == "variables" => request.variables = object,
                    Ok(object) => request.extensions = object,
                    Err(message) => {
                        return refuse(StatusCode::BAD_REQUEST, media, &message, Code::BadRequest);
                    }
                }
            }
            _ => {}
        }
    }
    let ask = Ask::new(true, media, &headers, EXPLAIN_HEADER, Bytes::from(raw));
    answer(
        gateway,
        ask,
        request,
        options(&headers, true, session),
        media,
    )
    .await
}

const INDEX: &str = include_str!("../assets/graphiql/index.html");

async fn graphiql_page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX)
}

async fn graphiql_asset(Path(file): Path<String>) -> HttpResponse {
    let (body, media): (&'static [u8], &'static str) = match file.as_str() {
        "index.html" => (INDEX.as_bytes(), "text/html; charset=utf-8"),
        "graphiql.min.js" => (
            include_bytes!("../assets/graphiql/graphiql.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "graphiql.min.css" => (
            include_bytes!("../assets/graphiql/graphiql.min.css"),
            "text/css; charset=utf-8",
        ),
        "react.production.min.js" => (
            include_bytes!("../assets/graphiql/react.production.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "react-dom.production.min.js" => (
            include_bytes!("../assets/graphiql/react-dom.production.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "polygraph.js" => (
            include_bytes!("../assets/graphiql/polygraph.js"),
            "text/javascript; charset=utf-8",
        ),
        "polygraph.css" => (
            include_bytes!("../assets/graphiql/polygraph.css"),
            "text/css; charset=utf-8",
        ),
        "LICENSES.txt" => (
            include_bytes!("../assets/graphiql/LICENSES.txt"),
            "text/plain; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
