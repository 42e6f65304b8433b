//! Serving a subgraph: `POST`/`GET /graphql` for the gateway and for people, `GET /health`.
//!
//! A request's claims header (see [`crate::claims`]) is verified here, before any resolver
//! runs; a header that does not verify rejects the request with 401. What else a subgraph asks
//! of its callers is its [`Trust`]: by default, a mutation needs claims that name someone, so
//! nothing anonymous writes; with `require_gateway_token`, nothing reaches the subgraph except
//! through the gateway. Mutations over GET are refused, and bodies are limited in size. The schema sits behind an
//! atomic pointer so a reload (after the database's schema changed) swaps it without dropping
//! requests in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use async_graphql::ParseRequestError;
use async_graphql::dynamic::Schema;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql_axum::GraphQLResponse;
pub use axum::Router;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::cache::CacheRules;
use crate::claims::{Claims, ClaimsError, HEADER, RequestClaims, Verifier};
use crate::documents::Documents;
use crate::engine::{self, Engine, Operation};
use polygraph_service::ws;

/// Bytes of validated documents kept per schema.
const DOCUMENTS_BUDGET: usize = 32 << 20;

/// What is being served; `store` a new one to swap it in.
pub type SharedSchema = Arc<ArcSwap<Served>>;

/// A schema, and the engine that answers the operations it validates: every subgraph of
/// ours has one; a schema without one (a test fixture's) runs on async-graphql's execution.
pub struct Served {
    pub schema: Schema,
    /// The subgraph's one execution path; schemas served with one register [`engine::Hook`].
    engine: Option<Arc<dyn Engine>>,
    /// Validated documents by query text, for the engine.
    documents: Documents,
    /// Documents validated so far (texts not yet kept), for metrics and tests.
    validations: AtomicU64,
    /// The schema's `@cacheControl` hints, for each response's `Cache-Control` header.
    cache: Option<CacheRules>,
}

impl Served {
    /// A schema whose resolvers async-graphql runs.
    pub fn new(schema: Schema) -> Self {
        Self {
            cache: CacheRules::from_registry(schema.registry()),
            schema,
            engine: None,
            documents: Documents::new(DOCUMENTS_BUDGET),
            validations: AtomicU64::new(0),
        }
    }

    /// A schema whose every operation the engine answers (the schema registers
    /// [`engine::Hook`]).
    pub fn with_engine(schema: Schema, engine: Arc<dyn Engine>) -> Self {
        let mut served = Self::new(schema);
        served.engine = Some(engine);
        served
    }

    /// How many query texts were parsed and validated: a text seen before is not again.
    pub fn validations(&self) -> u64 {
        self.validations.load(Ordering::Relaxed)
    }
}

/// The schema's SDL as `_service { sdl }` serves it: federation directives, and the
/// definitions of the other directives it applies.
pub fn sdl(schema: &Schema) -> String {
    let text = schema.sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .federation()
            .compose_directive(),
    );
    let mut text = crate::guard::link_directives(&text);
    text.push_str(&subscription_sdl(schema.registry()));
    if schema
        .registry()
        .types
        .contains_key(crate::cache::SCOPE_ENUM)
    {
        crate::cache::with_definition(&text)
    } else {
        text
    }
}

/// The `Subscription` type's definition, which async-graphql leaves out of a dynamic
/// schema's federation SDL (it has no switch for it); empty without one.
fn subscription_sdl(registry: &async_graphql::registry::Registry) -> String {
    use std::fmt::Write as _;
    let Some(async_graphql::registry::MetaType::Object { name, fields, .. }) = registry
        .subscription_type
        .as_deref()
        .and_then(|name| registry.types.get(name))
    else {
        return String::new();
    };
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let mut out = format!("\ntype {name} {{\n");
    for field in fields.values() {
        if let Some(description) = &field.description {
            let _ = writeln!(out, "\t{}", quoted(description));
        }
        let _ = write!(out, "\t{}", field.name);
        if !field.args.is_empty() {
            let args: Vec<String> = field
                .args
                .values()
                .map(|arg| match &arg.default_value {
                    Some(default) => format!("{}: {} = {default}", arg.name, arg.ty),
                    None => format!("{}: {}", arg.name, arg.ty),
                })
                .collect();
            let _ = write!(out, "({})", args.join(", "));
        }
        let _ = writeln!(out, ": {}", field.ty);
    }
    out.push_str("}\n");
    out
}

/// Shares what is served, for serving and swapping.
pub fn share(served: Served) -> SharedSchema {
    Arc::new(ArcSwap::from_pointee(served))
}

/// Shares `schema` for serving and swapping.
pub fn shared(schema: Schema) -> SharedSchema {
    share(Served::new(schema))
}

/// Whom a subgraph trusts, and what it asks of the requests it serves.
#[derive(Debug)]
pub struct Trust {
    /// Verifies the gateway's claims tokens; without one, claims headers are ignored (and row
    /// rules, which need claims, deny).
    pub verifier: Option<Verifier>,
    /// Refuse every request without a valid gateway token: the subgraph is not a back door.
    pub require_gateway_token: bool,
    /// Let requests whose claims name nobody run mutations (off: nothing anonymous writes).
    pub allow_anonymous_writes: bool,
    /// The largest request body accepted (a GET's query string alike). The gateway sends
    /// every representation of one entity fetch in one request, so this bounds the largest
    /// fetch a subgraph takes: keep it above what the gateway's lists can fan out to.
    pub max_body_bytes: usize,
}

impl Default for Trust {
    fn default() -> Self {
        Self {
            verifier: None,
            require_gateway_token: false,
            allow_anonymous_writes: false,
            max_body_bytes: 16 << 20,
        }
    }
}

impl Trust {
    /// From the environment, for the subgraph the supergraph calls `name` (the audience its
    /// tokens must name; `POLYGRAPH_SUBGRAPH_NAME` overrides it):
    /// `POLYGRAPH_GATEWAY_JWKS` (a file with the gateway's public keys, as `polygraph keys
    /// generate` writes it), `POLYGRAPH_REQUIRE_GATEWAY_TOKEN` (on by default when the
    /// keys are given), `POLYGRAPH_ALLOW_ANONYMOUS_WRITES`
    /// (`true` or `1`) and `POLYGRAPH_MAX_BODY_BYTES`.
    pub fn from_env(name: &str) -> Result<Self, ClaimsError> {
        let flag = |variable: &str| {
            std::env::var(variable)
                .is_ok_and(|value| matches!(value.trim(), "1" | "true" | "yes" | "on"))
        };
        let audience = std::env::var("POLYGRAPH_SUBGRAPH_NAME")
            .ok()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| name.to_owned());
        let verifier = match std::env::var("POLYGRAPH_GATEWAY_JWKS") {
            Ok(path) if !path.is_empty() => {
                Some(Verifier::from_file(std::path::Path::new(&path), &audience)?)
            }
            _ => None,
        };
        // With the gateway's keys known, only the gateway is answered unless said otherwise.
        let require_gateway_token = match std::env::var("POLYGRAPH_REQUIRE_GATEWAY_TOKEN") {
            Ok(value) if !value.trim().is_empty() => flag("POLYGRAPH_REQUIRE_GATEWAY_TOKEN"),
            _ => verifier.is_some(),
        };
        if verifier.is_none() {
            tracing::warn!(
                "POLYGRAPH_GATEWAY_JWKS is not set: this subgraph cannot tell the gateway's requests from anyone's, and refuses every write"
            );
        }
        if require_gateway_token && verifier.is_none() {
            return Err(ClaimsError(
                "POLYGRAPH_REQUIRE_GATEWAY_TOKEN needs the gateway's keys in POLYGRAPH_GATEWAY_JWKS"
                    .into(),
            ));
        }
        let max_body_bytes = match std::env::var("POLYGRAPH_MAX_BODY_BYTES") {
            Ok(value) if !value.is_empty() => value.trim().parse().map_err(|_| {
                ClaimsError(format!(
                    "POLYGRAPH_MAX_BODY_BYTES={value:?} is not a number"
                ))
            })?,
            _ => Self::default().max_body_bytes,
        };
        Ok(Self {
            verifier,
            require_gateway_token,
            allow_anonymous_writes: flag("POLYGRAPH_ALLOW_ANONYMOUS_WRITES"),
            max_body_bytes,
        })
    }
}

#[derive(Clone)]
struct AppState {
    schema: SharedSchema,
    trust: Arc<Trust>,
}

/// The subgraph's HTTP app, without a socket, so tests can drive it directly.
pub fn app(schema: SharedSchema, trust: Trust) -> Router {
    app_with(schema, trust, &polygraph_service::serve::Limits::default())
}

/// [`app`] with the configuration's `server` limits (load shedding, where metrics are).
pub fn app_with(
    schema: SharedSchema,
    trust: Trust,
    limits: &polygraph_service::serve::Limits,
) -> Router {
    let state = AppState {
        schema,
        trust: Arc::new(trust),
    };
    let graphql = Router::new()
        .route("/graphql", get(graphql).post(graphql))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(polygraph_service::http::observe))
        .layer(axum::middleware::from_fn_with_state(
            state.trust.clone(),
            admit,
        ));
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .with_state(state)
        .merge(limits.shed(graphql));
    limits.with_metrics(router)
}

/// `GET /ready`: 200 when the database answers within 2 s, 503 otherwise (why goes to the
/// log, not to the caller).
async fn ready(State(state): State<AppState>) -> Response {
    let served = state.schema.load_full();
    let answered = match &served.engine {
        None => Ok(()),
        Some(engine) => tokio::time::timeout(std::time::Duration::from_secs(2), engine.ping())
            .await
            .unwrap_or_else(|_| Err("no answer within 2 s".to_owned())),
    };
    match answered {
        Ok(()) => (StatusCode::OK, "{\"status\":\"pass\"}").into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "{\"status\":\"fail\",\"reason\":\"the database does not answer\"}",
            )
                .into_response()
        }
    }
}

/// Tells the request's observer its operation name and whether the answer has errors.
fn answered(mut response: Response, operation: Option<&str>, errors: bool) -> Response {
    response
        .extensions_mut()
        .insert(polygraph_service::http::Answered {
            operation: operation.map(str::to_owned),
            errors,
        });
    response
}

/// The request's claims header as [`admit`] found it: verified claims, none, or why it does not
/// verify.
#[derive(Clone)]
struct Admitted(Result<Option<Claims>, String>);

/// Verifies the claims header before the request is observed: when the subgraph knows the
/// gateway's keys, only a request whose header verifies may carry trace context in and be
/// traced. Anyone else's `traceparent` is dropped and the request is never sampled, so it can
/// neither make spans nor join the gateway's traces.
async fn admit(
    State(trust): State<Arc<Trust>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let admitted = verify(&trust, request.headers());
    if trust.verifier.is_some() && !matches!(admitted, Ok(Some(_))) {
        request.headers_mut().remove("traceparent");
        request.headers_mut().remove("tracestate");
        request
            .extensions_mut()
            .insert(polygraph_service::http::NeverSample);
    }
    request.extensions_mut().insert(Admitted(admitted));
    next.run(request).await
}

async fn graphql(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, body) = request.into_parts();
    // Who is asking is known from the headers: nothing of a refused caller's body is read.
    let admitted = parts.extensions.remove::<Admitted>().map_or_else(
        || verify(&state.trust, &parts.headers),
        |admitted| admitted.0,
    );
    let (method, headers) = (&parts.method, &parts.headers);
    let claims = match admitted {
        Ok(claims) => claims,
        Err(reason) => {
            tracing::info!(%reason, "refused a request with an invalid claims header");
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid claims header",
                "UNAUTHENTICATED",
            );
        }
    };
    if claims.is_none() && state.trust.require_gateway_token {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "this subgraph answers only requests through the gateway",
            "UNAUTHENTICATED",
        );
    }
    if parts
        .headers
        .get(axum::http::header::UPGRADE)
        .is_some_and(|upgrade| upgrade.as_bytes().eq_ignore_ascii_case(b"websocket"))
    {
        return sockets(state, parts, claims).await;
    }
    let request = match limited_request(&parts, body, state.trust.max_body_bytes).await {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let served = state.schema.load_full();
    let anonymous = !claims.as_ref().is_some_and(Claims::has_subject);
    let check_writes = anonymous && !state.trust.allow_anonymous_writes;
    if (check_writes || method == axum::http::Method::GET)
        && is_mutation(&request.query, request.operation_name.as_deref())
    {
        if method == axum::http::Method::GET {
            return refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "mutations are accepted over POST only",
                "BAD_REQUEST",
            );
        }
        return refuse(
            StatusCode::UNAUTHORIZED,
            "mutations need a signed-in caller",
            "UNAUTHENTICATED",
        );
    }
    if let Some(engine) = &served.engine {
        let asked = Asked {
            query: &request.query,
            operation_name: request.operation_name.as_deref(),
            variables: &request.variables,
        };
        let reply = engine_reply(&served, engine.as_ref(), &asked, claims.as_ref()).await;
        let document = reply.document.clone();
        let errors = reply.errors;
        let answer = engine::Answer {
            body: reply.body,
            errors,
        };
        let response = written(&served, answer, document.as_deref(), &asked, headers);
        return answered(response, asked.operation_name, errors);
    }
    let document = served
        .cache
        .as_ref()
        .and_then(|_| async_graphql::parser::parse_query(&request.query).ok());
    let (operation_name, variables) = (request.operation_name.clone(), request.variables.clone());
    let query = request.query.clone();
    let response = served
        .schema
        .execute(request.data(RequestClaims(claims)))
        .await;
    let asked = Asked {
        query: &query,
        operation_name: operation_name.as_deref(),
        variables: &variables,
    };
    let errors = !response.errors.is_empty();
    let document = document.filter(|_| !errors);
    let mut answer = GraphQLResponse::from(response).into_response();
    answer.headers_mut().insert(
        CACHE_CONTROL,
        cache_control(&served, document.as_ref(), &asked),
    );
    answered(answer, operation_name.as_deref(), errors)
}

/// GraphQL over WebSocket (`graphql-transport-ws`), how the gateway subscribes: the
/// connection's claims are the upgrade request's, verified like any request's.
async fn sockets(
    state: AppState,
    mut parts: axum::http::request::Parts,
    claims: Option<Claims>,
) -> Response {
    use axum::extract::FromRequestParts as _;
    let upgrade =
        match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => upgrade,
            Err(rejection) => return rejection.into_response(),
        };
    let max_message = state.trust.max_body_bytes;
    let handler = Arc::new(Sockets {
        schema: state.schema,
        claims,
    });
    upgrade
        .protocols([ws::PROTOCOL])
        .max_message_size(max_message)
        .on_upgrade(move |socket| {
            // The gateway opens one connection per subscription.
            let limits = ws::Limits {
                max_operations: 1,
                ..ws::Limits::default()
            };
            ws::serve(
                socket,
                handler,
                limits,
                polygraph_service::serve::stopping(),
            )
        })
}

/// One WebSocket connection's operations.
struct Sockets {
    schema: SharedSchema,
    claims: Option<Claims>,
}

impl ws::Handler for Sockets {
    type Connection = ();

    fn init(
        &self,
        _payload: Option<serde_json::Value>,
    ) -> futures::future::BoxFuture<'_, Result<(), String>> {
        // Who is asking was settled by the upgrade request's claims header.
        Box::pin(async { Ok(()) })
    }

    fn subscribe(
        &self,
        _connection: Arc<()>,
        payload: serde_json::Value,
    ) -> futures::future::BoxFuture<'static, futures::stream::BoxStream<'static, ws::Event>> {
        use futures::StreamExt as _;
        let served = self.schema.load_full();
        let claims = self.claims.clone();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            socket_operation(&served, claims.as_ref(), payload, &sender).await;
        });
        Box::pin(async move { futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed() })
    }
}

/// A `subscribe` message's payload.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SocketRequest {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
}

/// The errors (a JSON array) of a body that failed.
fn errors_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|body| body.get("errors").cloned())
        .unwrap_or_else(|| serde_json::json!([{ "message": "the operation failed" }]))
        .to_string()
}

fn socket_error(message: &str, code: &str) -> ws::Event {
    ws::Event::Error(
        serde_json::json!([{ "message": message, "extensions": { "code": code } }]).to_string(),
    )
}

/// Runs one subscription that came over WebSocket, its events sent to `sender` until it ends
/// or the client stops listening (queries and mutations are refused: the gateway sends them
/// over HTTP).
async fn socket_operation(
    served: &Served,
    claims: Option<&Claims>,
    payload: serde_json::Value,
    sender: &tokio::sync::mpsc::Sender<ws::Event>,
) {
    use async_graphql::parser::types::OperationType;
    use futures::StreamExt as _;
    let request: SocketRequest = match serde_json::from_value(payload) {
        Ok(request) => request,
        Err(error) => {
            let message = format!("the subscribe payload is not a GraphQL request: {error}");
            let _ = sender.send(socket_error(&message, "BAD_REQUEST")).await;
            return;
        }
    };
    let variables =
        async_graphql::Variables::from_json(request.variables.unwrap_or(serde_json::Value::Null));
    let asked = Asked {
        query: &request.query,
        operation_name: request.operation_name.as_deref(),
        variables: &variables,
    };
    let Some(engine) = &served.engine else {
        let refusal = socket_error("this subgraph answers over HTTP only", "BAD_REQUEST");
        let _ = sender.send(refusal).await;
        return;
    };
    let (document, variables) = match prepared(served, &asked).await {
        Ok(prepared) => prepared,
        Err(reply) => {
            let _ = sender.send(ws::Event::Error(errors_of(&reply.body))).await;
            return;
        }
    };
    let definition = engine::operation_named(&document, asked.operation_name)
        .expect("a prepared document has the operation");
    if definition.ty != OperationType::Subscription {
        let refusal = socket_error(
            "only subscriptions are answered over WebSocket; send queries and mutations over HTTP",
            "BAD_REQUEST",
        );
        let _ = sender.send(refusal).await;
        return;
    }
    let operation = Operation {
        document: &document,
        definition,
        variables: &variables,
        claims,
        registry: served.schema.registry(),
    };
    let fields = match engine::root_fields(&operation) {
        Ok(fields) => fields,
        Err(refused) => {
            let _ = sender
                .send(ws::Event::Error(errors_of(&refused.body)))
                .await;
            return;
        }
    };
    let Some(mut events) = engine::events(engine.as_ref(), &operation, &fields) else {
        let refusal = socket_error("this subgraph has no events for that field", "BAD_REQUEST");
        let _ = sender.send(refusal).await;
        return;
    };
    loop {
        tokio::select! {
            () = sender.closed() => return,
            event = events.next() => {
                let Some(answer) = event else { return };
                if sender.send(ws::Event::Next(answer.body)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The claims the request's header carries, verified; none without a header (or without a
/// verifier); why, for a header that does not verify.
fn verify(trust: &Trust, headers: &HeaderMap) -> Result<Option<Claims>, String> {
    let (Some(token), Some(verifier)) = (headers.get(HEADER), &trust.verifier) else {
        return Ok(None);
    };
    token
        .to_str()
        .map_err(|_| "not text".to_owned())
        .and_then(|token| verifier.verify(token).map_err(|error| error.0))
        .map(Some)
}

/// The `Cache-Control` header of an answer without errors to `asked` (whose parsed text is
/// `document`, or `None` when it has errors): its policy by the schema's hints.
fn cache_control(
    served: &Served,
    document: Option<&ExecutableDocument>,
    asked: &Asked<'_>,
) -> HeaderValue {
    let policy = served
        .cache
        .as_ref()
        .zip(document)
        .map(|(rules, document)| rules.policy(document, asked.operation_name, asked.variables));
    policy
        .and_then(|policy| HeaderValue::from_str(&policy.header()).ok())
        .unwrap_or(HeaderValue::from_static("no-store"))
}

/// What a request asks.
struct Asked<'a> {
    query: &'a str,
    operation_name: Option<&'a str>,
    variables: &'a async_graphql::Variables,
}

/// A response with `answer`'s body: its media type by `Accept`, its `Cache-Control` by the
/// schema's hints when it has no errors (`document` is the parsed query).
fn written(
    served: &Served,
    answer: engine::Answer,
    document: Option<&ExecutableDocument>,
    asked: &Asked<'_>,
    headers: &HeaderMap,
) -> Response {
    let wants_graphql_response = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/graphql-response+json"));
    let content_type = if wants_graphql_response {
        "application/graphql-response+json"
    } else {
        "application/json"
    };
    let cache = cache_control(served, document.filter(|_| !answer.errors), asked);
    (
        StatusCode::OK,
        [
            (
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            ),
            (CACHE_CONTROL, cache),
            // The media type follows `Accept`.
            (axum::http::header::VARY, HeaderValue::from_static("accept")),
        ],
        answer.body,
    )
        .into_response()
}

/// What a request gets: its body, whether it reports errors, and its parsed document (for the
/// `Cache-Control` hints) when it has none.
pub struct Reply {
    pub body: String,
    pub errors: bool,
    document: Option<Arc<ExecutableDocument>>,
}

impl Reply {
    fn of(answer: engine::Answer, document: Option<Arc<ExecutableDocument>>) -> Self {
        Self {
            document: document.filter(|_| !answer.errors),
            body: answer.body,
            errors: answer.errors,
        }
    }

    fn from_response(response: &async_graphql::Response) -> Self {
        Self {
            body: serde_json::to_string(response).unwrap_or_default(),
            errors: !response.errors.is_empty(),
            document: None,
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

impl Served {
    /// Answers a request in process, as the server would (for tests and tools): through the
    /// engine, or async-graphql's execution for a schema without one.
    pub async fn execute(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &async_graphql::Variables,
        claims: Option<&Claims>,
    ) -> Reply {
        let asked = Asked {
            query,
            operation_name,
            variables,
        };
        if let Some(engine) = &self.engine {
            return engine_reply(self, engine.as_ref(), &asked, claims).await;
        }
        let mut request = async_graphql::Request::new(query)
            .variables(variables.clone())
            .data(RequestClaims(claims.cloned()));
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        Reply::from_response(&self.schema.execute(request).await)
    }
}

/// A request answered by the subgraph's engine: its document validated once (by
/// async-graphql, which runs none of it) and then kept, its variables checked each time.
async fn engine_reply(
    served: &Served,
    engine: &dyn Engine,
    asked: &Asked<'_>,
    claims: Option<&Claims>,
) -> Reply {
    let (document, variables) = match prepared(served, asked).await {
        Ok(prepared) => prepared,
        Err(refused) => return refused,
    };
    let definition = engine::operation_named(&document, asked.operation_name)
        .expect("a prepared document has the operation");
    let operation = Operation {
        document: &document,
        definition,
        variables: &variables,
        claims,
        registry: served.schema.registry(),
    };
    if engine::introspects(&document, definition) {
        return mixed_reply(served, engine, &operation, asked, claims).await;
    }
    let answer = engine::run(engine, &operation).await;
    Reply::of(answer, Some(document.clone()))
}

/// The request's document, validated the first time its text is seen and kept, with its
/// variables checked against their types; the reply that refuses it otherwise.
async fn prepared(
    served: &Served,
    asked: &Asked<'_>,
) -> Result<(Arc<ExecutableDocument>, async_graphql::Variables), Reply> {
    let kept = served.documents.get(asked.query);
    let first_sight = kept.is_none();
    let document = match kept {
        Some(document) => document,
        None => match async_graphql::parser::parse_query(asked.query) {
            Ok(document) => Arc::new(document),
            // async-graphql says where it does not parse.
            Err(_) => return Err(refused(served, asked, None).await),
        },
    };
    let Some(definition) = engine::operation_named(&document, asked.operation_name) else {
        if first_sight {
            return Err(refused(served, asked, Some(&document)).await);
        }
        let answer = engine::request_error(
            "the request names no operation of its document",
            "BAD_REQUEST",
        );
        return Err(Reply::of(answer, None));
    };
    let registry = served.schema.registry();
    let variables =
        match crate::variables::coerce(registry, &definition.variable_definitions, asked.variables)
        {
            Ok(variables) => variables,
            Err(error) => {
                // A document that does not validate says so first.
                if first_sight {
                    let (passed, response) = validation(served, asked, Some(&document), None).await;
                    if !passed {
                        return Err(Reply::from_response(&response));
                    }
                }
                return Err(Reply::of(
                    engine::request_error(&error.0, "BAD_USER_INPUT"),
                    None,
                ));
            }
        };
    if first_sight {
        // Only an argument that mixes literals and variables needs their values to be checked.
        let with = mixes_literals_and_variables(&document).then_some(&variables);
        let (passed, response) = validation(served, asked, Some(&document), with).await;
        if !passed {
            return Err(Reply::from_response(&response));
        }
        served.documents.insert(asked.query, document.clone());
    }
    Ok((document, variables))
}

/// async-graphql's validation of `asked` (parsed as `document`, where it parses), with
/// `variables` where they are known to fit their types: the literals inside an argument that
/// also holds a variable are checked only when the variable has a value. A text that passes is
/// kept and not validated again; its variables are checked on every request (see
/// [`crate::variables`]).
async fn validation(
    served: &Served,
    asked: &Asked<'_>,
    document: Option<&ExecutableDocument>,
    variables: Option<&async_graphql::Variables>,
) -> (bool, async_graphql::Response) {
    let mut request = async_graphql::Request::new(asked.query);
    if let Some(name) = asked.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables {
        request = request.variables(variables.clone());
    }
    if let Some(document) = document {
        request.set_parsed_query(crate::documents::for_validation(document));
    }
    served.validations.fetch_add(1, Ordering::Relaxed);
    let check = Arc::new(engine::ValidateOnly::default());
    let response = served.schema.execute(request.data(check.clone())).await;
    let passed = check.passed() && document.is_some();
    let mistyped = document.map(crate::documents::mistyped_conditions);
    match mistyped.filter(|mistyped| passed && !mistyped.is_empty()) {
        Some(mistyped) => {
            let errors = mistyped
                .into_iter()
                .map(|(message, pos)| async_graphql::ServerError::new(message, Some(pos)))
                .collect();
            (false, async_graphql::Response::from_errors(errors))
        }
        None => (passed, response),
    }
}

/// Whether some argument of `document` is a list or an input object with a variable inside:
/// async-graphql checks the literals beside it only when given the variables' values.
fn mixes_literals_and_variables(document: &ExecutableDocument) -> bool {
    use async_graphql::parser::types::{Selection, SelectionSet};
    use async_graphql_value::Value;
    fn holds_variable(value: &Value) -> bool {
        match value {
            Value::Variable(_) => true,
            Value::List(items) => items.iter().any(holds_variable),
            Value::Object(fields) => fields.values().any(holds_variable),
            _ => false,
        }
    }
    fn in_set(set: &SelectionSet) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                field.node.arguments.iter().any(|(_, value)| {
                    matches!(value.node, Value::List(_) | Value::Object(_))
                        && holds_variable(&value.node)
                }) || in_set(&field.node.selection_set.node)
            }
            Selection::InlineFragment(inline) => in_set(&inline.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    document
        .operations
        .iter()
        .any(|(_, operation)| in_set(&operation.node.selection_set.node))
        || document
            .fragments
            .values()
            .any(|fragment| in_set(&fragment.node.selection_set.node))
}

/// async-graphql's answer saying why `asked` does not parse or validate.
async fn refused(
    served: &Served,
    asked: &Asked<'_>,
    document: Option<&ExecutableDocument>,
) -> Reply {
    let (passed, response) = validation(served, asked, document, None).await;
    if passed {
        // Validation passed after all: the request's own fault is what is left.
        return Reply::of(
            engine::request_error(
                "the request names no operation of its document",
                "BAD_REQUEST",
            ),
            None,
        );
    }
    Reply::from_response(&response)
}

/// An operation that selects introspection or `_service` beside our fields: the engine
/// answers ours first, async-graphql the rest, and the engine's errors join the response.
async fn mixed_reply(
    served: &Served,
    engine: &dyn Engine,
    operation: &Operation<'_>,
    asked: &Asked<'_>,
    claims: Option<&Claims>,
) -> Reply {
    let (answered, errors) = engine::answer_mixed(engine, operation).await;
    let mut request = async_graphql::Request::new(asked.query)
        .variables(operation.variables.clone())
        .data(answered)
        .data(RequestClaims(claims.cloned()));
    if let Some(name) = asked.operation_name {
        request = request.operation_name(name);
    }
    // async-graphql validates what it runs: the conditions on `__typename` lifted, as when the
    // text was first validated (the same selections).
    request.set_parsed_query(crate::documents::for_validation(operation.document));
    let response = served.schema.execute(request).await;
    let mut body = serde_json::to_value(&response).unwrap_or_default();
    if !errors.is_empty()
        && let Some(object) = body.as_object_mut()
    {
        let list = object
            .entry("errors")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(list) = list.as_array_mut() {
            list.extend(errors);
        }
    }
    Reply {
        errors: body.get("errors").is_some(),
        body: body.to_string(),
        document: None,
    }
}

/// Whether the operation `query` runs (by `operation_name`) is a mutation. A text that does not
/// say `mutation` anywhere is not; one that does not parse is left to validation, which refuses
/// it.
fn is_mutation(query: &str, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    if !query.contains("mutation") {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let kind = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| operation.node.ty)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations
            .values()
            .next()
            .map(|operation| operation.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    };
    kind == Some(OperationType::Mutation)
}

/// The GraphQL request `parts` and `body` carry: the body (or, over GET, the query string)
/// read up to `limit` bytes; a JSON error otherwise (413 past the limit, 400 for what is no
/// GraphQL request). async-graphql's own extractor reads bodies without any limit.
async fn limited_request(
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
    limit: usize,
) -> Result<async_graphql::Request, Box<Response>> {
    use http_body_util::BodyExt as _;
    if parts.method == axum::http::Method::GET {
        let query = parts.uri.query().unwrap_or_default();
        if query.len() > limit {
            return Err(Box::new(too_large()));
        }
        return async_graphql::http::parse_query_string(query)
            .map_err(|error| Box::new(not_a_request(&error)));
    }
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Box::new(too_large()));
    }
    let content_type = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // A body that does not arrive within 10 s holds a request slot for nothing.
    let collected = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        http_body_util::Limited::new(body, limit).collect(),
    )
    .await
    .map_err(|_| {
        Box::new(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
            "BAD_REQUEST",
        ))
    })?;
    let body = collected
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                Box::new(too_large())
            } else {
                Box::new(not_a_request(&ParseRequestError::Io(
                    std::io::Error::other(error),
                )))
            }
        })?
        .to_bytes();
    async_graphql::http::receive_batch_body(
        content_type,
        body.as_ref(),
        async_graphql::http::MultipartOptions::default(),
    )
    .await
    .and_then(async_graphql::BatchRequest::into_single)
    .map_err(|error| Box::new(not_a_request(&error)))
}

fn too_large() -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request is too large",
        "PAYLOAD_TOO_LARGE",
    )
}

/// A request that is no GraphQL request, answered as a JSON error like every other. What the
/// parser said goes to the log (Debug-formatted: nothing in it can forge a log line); it names
/// Rust types.
fn not_a_request(error: &ParseRequestError) -> Response {
    tracing::info!(reason = ?error, "refused a body that is no GraphQL request");
    if matches!(error, ParseRequestError::PayloadTooLarge) {
        return too_large();
    }
    refuse(
        StatusCode::BAD_REQUEST,
        "the body is not a GraphQL request: a JSON object with a \"query\" string, and \"variables\" an object when given",
        "BAD_REQUEST",
    )
}

fn refuse(status: StatusCode, message: &str, code: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Binds `listen` and serves `app` until Ctrl-C or SIGTERM.
pub async fn serve(
    app: Router,
    listen: SocketAddr,
    name: &str,
    limits: &polygraph_service::serve::Limits,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow::anyhow!("binding {listen}: {error}"))?;
    tracing::info!(subgraph = name, %listen, "serving");
    eprintln!("{name} subgraph listening on http://{listen}/graphql");
    polygraph_service::serve::serve(listener, app, limits).await
}

/// Serves `app` on a bound listener until Ctrl-C or SIGTERM, then finishes the requests in
/// flight (see [`polygraph_service::serve`]).
pub async fn serve_on(listener: tokio::net::TcpListener, app: Router) -> anyhow::Result<()> {
    polygraph_service::serve::serve(listener, app, &polygraph_service::serve::Limits::default())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// Whether a request with a sampled `traceparent` (and `token` as its claims header) still
    /// carries it past [`admit`] and may be sampled (both or neither).
    async fn keeps_trace_context(trust: Trust, token: Option<String>) -> bool {
        let app = Router::new()
            .route(
                "/graphql",
                get(|request: axum::extract::Request| async move {
                    let kept = request.headers().contains_key("traceparent");
                    let sampled = request
                        .extensions()
                        .get::<polygraph_service::http::NeverSample>()
                        .is_none();
                    assert_eq!(kept, sampled, "trace context dropped, sampling left open");
                    kept.to_string()
                }),
            )
            .layer(axum::middleware::from_fn_with_state(Arc::new(trust), admit));
        let mut request = axum::http::Request::get("/graphql").header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        if let Some(token) = token {
            request = request.header(HEADER, token);
        }
        let response = app
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap()
            == "true"
    }

    #[tokio::test]
    async fn only_the_gateway_brings_trace_context_in_once_its_keys_are_known() {
        let gateway = crate::claims::Signer::generate();
        let trusting = || Trust {
            verifier: Some(Verifier::new(&gateway.jwks(), "postgres").unwrap()),
            ..Trust::default()
        };
        let ttl = std::time::Duration::from_mins(1);
        let signed = gateway.sign("postgres", &serde_json::Map::new(), ttl);
        assert!(keeps_trace_context(trusting(), Some(signed)).await);
        assert!(!keeps_trace_context(trusting(), None).await);
        assert!(!keeps_trace_context(trusting(), Some("forged".to_owned())).await);
        let stranger = crate::claims::Signer::generate();
        let signed_by_a_stranger = stranger.sign("postgres", &serde_json::Map::new(), ttl);
        assert!(!keeps_trace_context(trusting(), Some(signed_by_a_stranger)).await);
        let for_another_subgraph = gateway.sign("redis", &serde_json::Map::new(), ttl);
        assert!(!keeps_trace_context(trusting(), Some(for_another_subgraph)).await);
        // Without the gateway's keys no caller can be told apart from another: trace context
        // is taken as the tracing settings say (`POLYGRAPH_TRACE_TRUST_CALLERS`).
        assert!(keeps_trace_context(Trust::default(), None).await);
    }
}
