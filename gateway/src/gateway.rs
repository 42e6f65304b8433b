//! A request through the gateway, transport aside: prepare (parse, validate, bound), coerce
//! variables, plan (cached), run, build the response.

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use apollo_compiler::ast::OperationType;
use apollo_compiler::executable::{self, ExecutableDocument};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::schema::Implementers;
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node};

use crate::auth::{AuthError, Authenticator, Session};
use crate::authorize::{self, Guard};
use crate::coalesce::{Answer, Ask, Coalescer};
use crate::cost::{self, CostModel};
use crate::entity_cache::EntityCache;
use crate::errors::Code;
use crate::errors::GraphqlError;
use crate::execute::{self, CachePolicy, Subgraphs};
use crate::operation::{self, Normalized};
use crate::persisted::PersistedQueries;
use crate::plan::{self, QueryPlan};
use crate::policy::Policies;
use crate::prepare::{self, RequestError};
use crate::response_cache::{Invalidation, ResponseCache};
pub use crate::settings::{Access, AuthorizationSettings, ClaimsSettings, Limits, Settings};
use crate::store::Store;
use crate::supergraph::Supergraph;

/// A GraphQL request, transport aside.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<JsonMap>,
    pub extensions: Option<JsonMap>,
    /// A persisted document's id (`documentId`, or Relay's `doc_id`).
    #[serde(alias = "doc_id")]
    pub document_id: Option<String>,
    /// The persisted query was resolved already: `query` holds its text.
    #[serde(skip)]
    pub resolved: bool,
    /// The APQ hash to register `query` under once it proves a valid operation.
    #[serde(skip)]
    pub register: Option<String>,
    /// `query` prepared, once per request however many times it is asked for.
    #[serde(skip)]
    pub prepared: Option<Arc<Document>>,
}

/// How a request arrived.
// Independent facts about the request, each read on its own.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Who sent it, from a verified token; `None` for anonymous requests.
    pub session: Option<Arc<Session>>,
    /// Mutations are refused (a GET request).
    pub read_only: bool,
    /// Attach the query plan as `extensions.queryPlan`.
    pub explain: bool,
    /// The request carries credentials (`Authorization`, `Cookie`): whatever its answer's
    /// cache policy, only the client's own cache may keep it.
    pub credentials: bool,
    /// The transport streams responses (WebSocket, SSE, multipart): subscriptions may run.
    pub streaming: bool,
}

/// What went wrong before execution: the response has no `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Not a GraphQL-over-HTTP request at all, such as one without a query (400 always).
    Malformed,
    /// The operation fails parsing, validation or variable coercion (400 where the media
    /// type allows).
    BadRequest,
    /// A mutation over GET (405).
    NotAllowed,
    /// Refused for want of credentials (401).
    Unauthenticated,
    /// Refused by authorization (403).
    Forbidden,
    /// A persisted query the gateway does not know: the client should send its text (200, as
    /// APQ clients expect).
    PersistedQueryNotFound,
}

/// Past this many entities of one type, a mutation drops the whole type from the entity
/// cache instead of each entity.
const MAX_KEYS_DROPPED: usize = 100;

/// A response, transport aside.
#[derive(Clone, Debug)]
pub struct Response {
    /// The body's start: `{"data":` and the data as JSON, written so that the rest of the
    /// body follows in the same buffer ([`data_start`]); `None` for request errors: no
    /// `data` key at all.
    pub data: Option<Vec<u8>>,
    pub errors: Vec<GraphqlError>,
    pub extensions: JsonMap,
    pub failure: Option<Failure>,
    /// How long the answer may be cached (the `Cache-Control` header).
    pub cache: CachePolicy,
    /// The object, interface and union types the operation selects (what a cached answer
    /// holds).
    pub types: Arc<std::collections::BTreeSet<String>>,
}

/// A response body begun with `{"data":`, with room for `size` more bytes.
pub fn data_start(size: usize) -> Vec<u8> {
    const START: &[u8] = b"{\"data\":";
    let mut body = Vec::with_capacity(START.len() + size);
    body.extend_from_slice(START);
    body
}

/// The refusal of a mutation (or subscription) sent with GET.
fn not_in_get(operation_type: OperationType) -> Response {
    Response::request_error(
        Failure::NotAllowed,
        vec![GraphqlError::new(
            format!("a {operation_type} cannot be sent with GET: use POST"),
            Code::MethodNotAllowed,
        )],
    )
}

/// The cache policy of a query's answer without errors: as long as every subgraph response
/// it was built from may be kept, and only by the client's own cache when the request carries
/// credentials. (A mutation's answer, or one with errors, is never kept.)
fn client_cache(subgraphs: CachePolicy, credentials: bool) -> CachePolicy {
    match subgraphs {
        CachePolicy::MaxAge { seconds, .. } if credentials => CachePolicy::MaxAge {
            seconds,
            private: true,
        },
        policy => policy,
    }
}

impl Response {
    pub fn request_error(failure: Failure, errors: Vec<GraphqlError>) -> Self {
        Self {
            data: None,
            errors,
            extensions: JsonMap::new(),
            failure: Some(failure),
            cache: CachePolicy::NoStore,
            types: Arc::default(),
        }
    }

    /// The response as JSON: `data` as written, then `errors` and `extensions`.
    pub fn into_bytes(self) -> Vec<u8> {
        let has_data = self.data.is_some();
        let mut out = self.data.unwrap_or_else(|| {
            let mut out = Vec::with_capacity(256);
            out.push(b'{');
            out
        });
        if !self.errors.is_empty() {
            if has_data {
                out.push(b',');
            }
            out.extend_from_slice(b"\"errors\":");
            let errors: Vec<JsonValue> = self.errors.iter().map(GraphqlError::to_json).collect();
            serde_json::to_writer(&mut out, &errors).expect("errors serialize");
        }
        if !self.extensions.is_empty() {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(b"\"extensions\":");
            serde_json::to_writer(&mut out, &self.extensions).expect("extensions serialize");
        }
        out.push(b'}');
        out
    }
}

/// A query text prepared once: cached by the text's hash, and checked against the text itself
/// on every hit.
pub struct Document {
    key: u64,
    query: Box<str>,
    prepared: prepare::Prepared,
    condition_variables: Vec<Name>,
    /// About how many bytes it holds (measured: 12 to 40 times its text, and 1.4 KB).
    weight: u32,
    /// The SHA-256 of the document as apollo-compiler prints it: the same for texts that differ
    /// only in spacing, commas and comments.
    normalized: [u8; 32],
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// A plan is the same for the same document, operation, `@skip`/`@include` values and
/// selections denied by authorization.
type PlanKey = (u64, Option<Name>, Vec<Option<bool>>, Vec<u32>);

/// A request checked, authorized and planned, ready to run.
pub(crate) struct Ready {
    pub document: Arc<Document>,
    pub operation: Node<executable::Operation>,
    pub variables: apollo_compiler::validation::Valid<JsonMap>,
    pub planned: Arc<Planned>,
    /// The response begun: its cost and plan extensions.
    pub response: Response,
}

pub(crate) struct Planned {
    /// The operation as the response is written from: denied selections marked.
    operation: Normalized,
    /// The selections with requirements to check per request.
    guards: Vec<Guard>,
    pub(crate) plan: Result<Arc<QueryPlan>, plan::PlanError>,
    /// The size of the last response's `data`: room to write the next one in without growing.
    data_size: std::sync::atomic::AtomicUsize,
    /// About how many bytes it holds (measured: about 33 times the query's text, and 2.4 KB).
    weight: u32,
    /// The object, interface and union types it selects.
    types: Arc<std::collections::BTreeSet<String>>,
}

/// The gateway for one supergraph.
pub struct Gateway {
    pub supergraph: Arc<Supergraph>,
    pub(crate) subgraphs: Subgraphs,
    settings: Settings,
    authenticator: Arc<Authenticator>,
    policies: Option<Arc<Policies>>,
    /// The supergraph's cost directives.
    cost: CostModel,
    implementers: apollo_compiler::collections::HashMap<Name, Implementers>,
    /// Prepared documents by their text's hash, bounded by their estimated size in memory.
    documents: moka::sync::Cache<u64, Arc<Document>>,
    /// Plans, bounded alike.
    plans: moka::sync::Cache<PlanKey, Arc<Planned>>,
    /// HTTP queries in flight, which identical ones join.
    in_flight: Coalescer<Ask, Answer>,
    persisted: Arc<PersistedQueries>,
    responses: ResponseCache,
    entities: Arc<EntityCache>,
    store: Option<Arc<Store>>,
    hasher: std::collections::hash_map::RandomState,
    /// Tasks listening for cache invalidations, stopped when a newer supergraph takes over.
    listeners: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// Set when a newer supergraph takes over: its subscriptions end.
    retired: tokio::sync::watch::Sender<bool>,
    /// Subscriptions' shared feeds, by what makes subscriptions identical.
    pub(crate) feeds: crate::fanout::Fanout<Arc<Response>>,
}

/// Whether every policy the supergraph names is among `policies`.
fn check_policy_names(
    policies: Option<&Policies>,
    names: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    match policies {
        Some(policies) => policies.check_names(names),
        None if !names.is_empty() => Err(format!(
            "the supergraph names policies ({}) but no policies folder is configured (authorization.policies)",
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
        None => Ok(()),
    }
}

/// What a gateway keeps when its supergraph changes.
struct Kept {
    authenticator: Arc<Authenticator>,
    policies: Option<Arc<Policies>>,
    store: Option<Arc<Store>>,
    persisted: Arc<PersistedQueries>,
    /// Its claims signing and HTTP client (URLs are the new supergraph's).
    subgraphs: Subgraphs,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("subgraphs", &self.supergraph.subgraphs)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The gateway for `supergraph`: settings checked, policies and the claims key loaded.
    /// [`Gateway::start`] then fetches the identity providers' keys.
    pub fn new(mut supergraph: Supergraph, settings: Settings) -> Result<Self, String> {
        supergraph
            .active_labels
            .extend(settings.override_labels.iter().cloned());
        settings.cors.check()?;
        let policies = match &settings.authorization.policies {
            Some(folder) => {
                Some(Arc::new(Policies::load(folder).map_err(|error| {
                    format!("the policies in {}: {error}", folder.display())
                })?))
            }
            None => None,
        };
        check_policy_names(policies.as_deref(), &supergraph.requirements.policy_names)?;
        let signer = match &settings.claims.signing_key_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| format!("reading {}: {error}", path.display()))?;
                polygraph_subgraph_core::claims::Signer::from_pem(&text)
                    .map_err(|error| format!("{}: {error}", path.display()))?
            }
            None => polygraph_subgraph_core::claims::Signer::generate(),
        };
        let authenticator = Arc::new(Authenticator::new(settings.authentication.clone())?);
        let store = Store::open(&settings.redis)?.map(Arc::new);
        let persisted = Arc::new(PersistedQueries::new(
            settings.persisted_queries.clone(),
            store.clone(),
        )?);
        let subgraphs = Subgraphs::new(
            &supergraph,
            Duration::from_millis(settings.subgraph_timeout_ms),
            &settings.subgraph_urls,
            execute::ClaimsSigning::new(
                signer,
                Duration::from_secs(settings.claims.ttl_seconds.max(10)),
                settings.claims.forward.clone(),
            ),
        )
        .with_max_reply_bytes(settings.limits.max_subgraph_reply_bytes)
        .with_exposed_errors(settings.expose_subgraph_errors);
        let kept = Kept {
            authenticator,
            policies,
            store,
            persisted,
            subgraphs,
        };
        Ok(Self::assemble(supergraph, settings, kept))
    }

    /// A gateway for another supergraph that keeps this one's settings, sign-in, policies,
    /// claims key, Redis and HTTP connections; its caches start empty (their keys hold the
    /// schema anyway). Refused when the supergraph names policies the gateway does not have.
    pub fn with_supergraph(&self, mut supergraph: Supergraph) -> Result<Self, String> {
        supergraph
            .active_labels
            .extend(self.settings.override_labels.iter().cloned());
        check_policy_names(
            self.policies.as_deref(),
            &supergraph.requirements.policy_names,
        )?;
        let kept = Kept {
            authenticator: self.authenticator.clone(),
            policies: self.policies.clone(),
            store: self.store.clone(),
            persisted: self.persisted.clone(),
            subgraphs: self.subgraphs.clone(),
        };
        Ok(Self::assemble(supergraph, self.settings.clone(), kept))
    }

    /// The gateway from its supergraph and the parts that outlive one supergraph.
    fn assemble(supergraph: Supergraph, settings: Settings, kept: Kept) -> Self {
        let implementers = supergraph.api_schema.implementers_map();
        let cost = CostModel::of(&supergraph.schema);
        let schema_sdl = supergraph.schema.to_string();
        let responses = ResponseCache::new(
            settings.response_cache.clone(),
            &schema_sdl,
            kept.store.clone(),
        );
        let entities = Arc::new(EntityCache::new(
            settings.entity_cache.clone(),
            &schema_sdl,
            kept.store.clone(),
        ));
        let subgraphs = kept
            .subgraphs
            .for_supergraph(&supergraph, &settings.subgraph_urls)
            .with_entity_cache(entities.clone());
        let documents = moka::sync::Cache::builder()
            .max_capacity(settings.document_cache_bytes)
            .weigher(|_, document: &Arc<Document>| document.weight)
            .build();
        let plans = moka::sync::Cache::builder()
            .max_capacity(settings.plan_cache_bytes)
            .weigher(|_, planned: &Arc<Planned>| planned.weight)
            .build();
        Self {
            supergraph: Arc::new(supergraph),
            subgraphs,
            settings,
            authenticator: kept.authenticator,
            policies: kept.policies,
            cost,
            implementers,
            documents,
            plans,
            in_flight: Coalescer::default(),
            persisted: kept.persisted,
            responses,
            entities,
            store: kept.store,
            hasher: std::collections::hash_map::RandomState::new(),
            listeners: std::sync::Mutex::default(),
            retired: tokio::sync::watch::Sender::new(false),
            feeds: crate::fanout::Fanout::default(),
        }
    }

    /// Fetches the identity providers' keys and starts refreshing them; starts watching the
    /// policies.
    pub async fn start(self: &Arc<Self>) {
        if let Some(store) = &self.store {
            store.connect().await;
        }
        self.listen();
        self.authenticator.start().await;
        if let Some(policies) = &self.policies {
            policies.watch();
        }
    }

    /// Starts listening for other replicas' cache invalidations (with Redis); a gateway made
    /// by [`Gateway::with_supergraph`] calls this itself before it serves.
    pub fn listen(self: &Arc<Self>) {
        if self.store.is_none() {
            return;
        }
        let Ok(mut listeners) = self.listeners.lock() else {
            return;
        };
        let gateway = self.clone();
        listeners
            .push(tokio::spawn(async move { gateway.responses.listen().await }).abort_handle());
        let gateway = self.clone();
        listeners.push(tokio::spawn(async move { gateway.entities.listen().await }).abort_handle());
    }

    /// Stops [`Gateway::listen`]'s tasks, which hold the gateway: once a newer one serves, the
    /// old one is dropped when its last request finishes.
    pub fn stop_listening(&self) {
        self.retired.send_replace(true);
        if let Ok(mut listeners) = self.listeners.lock() {
            for listener in listeners.drain(..) {
                listener.abort();
            }
        }
    }

    /// The subgraphs that do not answer now (see [`Subgraphs::unreachable`]).
    pub async fn unreachable_subgraphs(&self) -> Vec<String> {
        self.subgraphs.unreachable().await
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The estimated bytes the document and plan caches hold.
    pub fn cached_bytes(&self) -> (u64, u64) {
        self.documents.run_pending_tasks();
        self.plans.run_pending_tasks();
        (self.documents.weighted_size(), self.plans.weighted_size())
    }

    /// Whole answers kept to serve again.
    pub fn responses(&self) -> &ResponseCache {
        &self.responses
    }

    /// Which policies are in force (what cached answers were authorized under).
    pub fn policy_revision(&self) -> String {
        self.policies
            .as_ref()
            .map_or_else(String::new, |policies| policies.revision())
    }

    /// Entities kept from `_entities` answers.
    pub fn entities(&self) -> &EntityCache {
        &self.entities
    }

    /// Drops the cached answers and entities `invalidation` names, on every replica; how many
    /// Redis held.
    pub async fn invalidate(&self, invalidation: &Invalidation) -> Result<u64, String> {
        let answers = self.responses.invalidate(invalidation).await;
        let entities = self.entities.invalidate(invalidation).await;
        Ok(answers? + entities?)
    }

    /// Failed calls to the gateway's Redis so far.
    pub fn redis_failures(&self) -> u64 {
        self.store.as_ref().map_or(0, |store| store.failures())
    }

    /// The HTTP queries in flight, which identical ones join.
    pub fn in_flight(&self) -> &Coalescer<Ask, Answer> {
        &self.in_flight
    }

    /// The public keys subgraphs verify the gateway's claims tokens with (a JWKS).
    pub fn claims_jwks(&self) -> serde_json::Value {
        self.subgraphs.claims_jwks()
    }

    /// Who sent a request, from its token: `None` for an anonymous request, an error (401)
    /// for a token that does not verify or a missing one where one is required.
    pub async fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Option<Arc<Session>>, AuthError> {
        let settings = self.authenticator.settings();
        let token = crate::auth::token_of(headers, settings.cookie.as_deref())?;
        match token {
            Some(token) if self.authenticator.is_enabled() => {
                self.authenticator.authenticate(&token).await.map(Some)
            }
            _ if settings.require_token => Err(AuthError {
                message: "this gateway requires a token: send Authorization: Bearer <token>"
                    .to_owned(),
                code: Code::Unauthenticated,
            }),
            // No issuer configured: tokens are not looked at.
            _ => Ok(None),
        }
    }

    fn hash(&self, parts: impl Hash) -> u64 {
        self.hasher.hash_one(&parts)
    }

    /// The request's document, prepared now if it was not yet, and kept in the request.
    fn prepared(&self, request: &mut Request) -> Result<Arc<Document>, Vec<GraphqlError>> {
        let query = request.query.as_deref().unwrap_or_default();
        if let Some(document) = &request.prepared
            && *document.query == *query
        {
            return Ok(document.clone());
        }
        let document = self.document(query)?;
        request.prepared = Some(document.clone());
        Ok(document)
    }

    /// Whether `request` is a query (not a mutation), by its document, prepared now if it was
    /// not yet; `false` for a request that fails before its operation is known.
    pub fn is_query(&self, request: &mut Request) -> bool {
        self.operation_type(request) == Some(OperationType::Query)
    }

    /// Puts the text of the request's persisted query (APQ hash or document id) in its
    /// `query`, checks the text against the safelist and registers it by its hash; once.
    pub async fn resolve(&self, request: &mut Request) -> Result<(), Box<Response>> {
        if request.resolved {
            return Ok(());
        }
        let ask = crate::persisted::Ask {
            query: request.query.as_deref(),
            document_id: request.document_id.as_deref(),
            persisted_query: request
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("persistedQuery")),
        };
        match self.persisted.resolve(ask).await {
            Ok(resolved) => {
                if request.query.is_none() {
                    request.query = resolved.text.map(|text| text.to_string());
                }
                request.register = resolved.register;
                request.resolved = true;
                Ok(())
            }
            Err(refusal) => {
                let failure = if refusal.retry_with_text {
                    Failure::PersistedQueryNotFound
                } else {
                    Failure::BadRequest
                };
                Err(Box::new(Response::request_error(
                    failure,
                    vec![*refusal.error],
                )))
            }
        }
    }

    /// What a query's cached answer is keyed by besides how it is presented: its document
    /// normalized, its operation name, its variables in a canonical order, and the caller's
    /// claims (but those that change with every token: `exp`, `iat`, `nbf`, `jti`,
    /// `auth_time`); `None` when the request does not prepare.
    pub fn cache_identity(
        &self,
        request: &mut Request,
        session: Option<&Session>,
    ) -> Option<Vec<u8>> {
        request.query.as_ref()?;
        let document = self.prepared(request).ok()?;
        let mut identity = Vec::with_capacity(256);
        identity.extend_from_slice(&document.normalized);
        identity.push(0);
        identity.extend_from_slice(
            request
                .operation_name
                .as_deref()
                .unwrap_or_default()
                .as_bytes(),
        );
        identity.push(0);
        let variables = serde_json::to_value(request.variables.as_ref()).ok()?;
        serde_json::to_writer(&mut identity, &canonical(&variables)).ok()?;
        identity.push(0);
        write_caller(&mut identity, session).ok()?;
        Some(identity)
    }

    /// Answers one request.
    pub async fn execute(&self, mut request: Request, options: Options) -> Response {
        let started = tokio::time::Instant::now();
        if let Err(refused) = self.resolve(&mut request).await {
            return *refused;
        }
        let ready = match self.ready(&mut request, &options).await {
            Ok(ready) => ready,
            Err(refused) => return *refused,
        };
        let Ready {
            document,
            operation,
            variables,
            planned,
            mut response,
        } = ready;
        let plan = planned.plan.as_ref().expect("a ready operation has a plan");
        let session = options.session.as_deref();
        let document = &document.prepared.document;
        let introspection = match self.introspect(document, &operation, &variables, session) {
            Ok(introspection) => introspection,
            Err(refused) => return *refused,
        };
        let inputs = execute::Inputs {
            plan,
            variables: &variables,
            session,
            introspection,
            bounds: self.bounds(started),
            event: None,
        };
        let outcome = execute::run(&self.supergraph, &self.subgraphs, inputs, |data, errors| {
            self.write_data(&planned, data, errors)
        })
        .await;
        planned
            .data_size
            .store(outcome.data.len(), std::sync::atomic::Ordering::Relaxed);
        self.measured(&mut response, &planned.operation, &variables, &outcome.data);
        if operation.operation_type == OperationType::Mutation {
            let failed = !outcome.errors.is_empty();
            self.forget_changed(&planned, &outcome.data, failed).await;
        }
        response.data = Some(outcome.data);
        response.errors = outcome.errors;
        if operation.operation_type == OperationType::Query && response.errors.is_empty() {
            response.cache = client_cache(outcome.cache, options.credentials);
        }
        response
    }

    /// What a run may use, from `started`.
    fn bounds(&self, started: tokio::time::Instant) -> execute::Bounds {
        execute::Bounds {
            deadline: started + Duration::from_millis(self.settings.request_timeout_ms),
            max_representations: self.settings.limits.max_entity_representations,
        }
    }

    /// A request (its persisted query resolved) checked, authorized and planned, or the
    /// response that refuses it.
    pub(crate) async fn ready(
        &self,
        request: &mut Request,
        options: &Options,
    ) -> Result<Ready, Box<Response>> {
        if request.query.as_deref().is_none_or(|q| q.trim().is_empty()) {
            return Err(Box::new(no_query()));
        }
        let document = self
            .prepared(request)
            .map_err(|errors| Box::new(Response::request_error(Failure::BadRequest, errors)))?;
        if let Some(hash) = request.register.take() {
            self.persisted.register(hash, &document.query).await;
        }
        let operation = document
            .prepared
            .operation(request.operation_name.as_deref())
            .map_err(|error| Box::new(bad_request(error)))?
            .clone();
        let session = options.session.as_deref();
        self.admit(operation.operation_type, options)?;
        let raw_variables = request.variables.take().unwrap_or_default();
        let variables = apollo_compiler::request::coerce_variable_values(
            &self.supergraph.api_schema,
            &operation,
            &raw_variables,
        )
        .map_err(|error| Box::new(bad_variables(&error)))?;
        let planned = self.authorized(&document, &operation, &variables, session)?;
        let mut response = Response {
            data: None,
            errors: Vec::new(),
            extensions: JsonMap::new(),
            failure: None,
            cache: CachePolicy::NoStore,
            types: planned.types.clone(),
        };
        let plan = match &planned.plan {
            Ok(plan) => plan,
            Err(error) => return Err(Box::new(unplannable(error))),
        };
        if let Some(estimated) = self.demand(&planned.operation, &variables)? {
            response
                .extensions
                .insert("cost", self.cost_report(estimated));
        }
        if options.explain {
            response
                .extensions
                .insert("queryPlan", JsonValue::from(plan.to_string()));
        }
        Ok(Ready {
            document,
            operation,
            variables,
            planned,
            response,
        })
    }

    /// The kind of operation `request` runs, by its document, prepared now if it was not yet;
    /// `None` for a request that fails before its operation is known.
    pub fn operation_type(&self, request: &mut Request) -> Option<OperationType> {
        request.query.as_ref()?;
        let document = self.prepared(request).ok()?;
        let operation = document
            .prepared
            .operation(request.operation_name.as_deref())
            .ok()?;
        Some(operation.operation_type)
    }

    /// One event's response: the rest of the plan run with the event as the root fetch's
    /// reply.
    pub(crate) async fn event_response(
        &self,
        planned: &Planned,
        variables: &JsonMap,
        session: Option<&Session>,
        event: bytes::Bytes,
    ) -> Response {
        let plan = planned.plan.as_ref().expect("a ready operation has a plan");
        let inputs = execute::Inputs {
            plan,
            variables,
            session,
            introspection: None,
            bounds: self.bounds(tokio::time::Instant::now()),
            event: Some(event),
        };
        let outcome = execute::run(&self.supergraph, &self.subgraphs, inputs, |data, errors| {
            self.write_data(planned, data, errors)
        })
        .await;
        Response {
            data: Some(outcome.data),
            errors: outcome.errors,
            extensions: JsonMap::new(),
            failure: None,
            cache: CachePolicy::NoStore,
            types: planned.types.clone(),
        }
    }

    /// Completes once a newer supergraph serves instead of this one (or at once when one
    /// does already).
    pub async fn retired(&self) {
        let mut retired = self.retired.subscribe();
        let _ = retired.wait_for(|retired| *retired).await;
    }

    /// Refuses mutations over GET, anonymous mutations (unless allowed) and plans asked for by callers who may
    /// not see them.
    fn admit(&self, kind: OperationType, options: &Options) -> Result<(), Box<Response>> {
        if options.read_only && kind != OperationType::Query {
            return Err(Box::new(not_in_get(kind)));
        }
        if kind == OperationType::Subscription && !options.streaming {
            return Err(Box::new(Response::request_error(
                Failure::Malformed,
                vec![GraphqlError::new(
                    "subscriptions are answered over WebSocket (graphql-transport-ws), with Accept: text/event-stream, or with Accept: multipart/mixed;subscriptionSpec=1.0",
                    Code::SubscriptionTransport,
                )],
            )));
        }
        let session = options.session.as_deref();
        if kind == OperationType::Mutation
            && session.is_none()
            && !self.settings.authorization.allow_anonymous_mutations
        {
            return Err(Box::new(Response::request_error(
                Failure::Unauthenticated,
                vec![GraphqlError::new(
                    "mutations need a signed-in caller: send Authorization: Bearer <token>",
                    Code::Unauthenticated,
                )],
            )));
        }
        if options.explain && !self.settings.explain.allows(session) {
            return Err(Box::new(Response::request_error(
                Failure::Forbidden,
                vec![GraphqlError::new(
                    "the query plan is not available to this caller",
                    Code::Forbidden,
                )],
            )));
        }
        Ok(())
    }

    /// The plan for what `session` may ask of `operation`: the operation's own when nothing is
    /// denied, else one without the denied selections (or a 403 when configured to refuse).
    fn authorized(
        &self,
        document: &Document,
        operation: &Node<executable::Operation>,
        variables: &JsonMap,
        session: Option<&Session>,
    ) -> Result<Arc<Planned>, Box<Response>> {
        let planned = self.planned(document, operation, variables, Vec::new());
        if planned.guards.is_empty() {
            return Ok(planned);
        }
        let context = authorize::Context {
            session,
            operation_name: operation.name.as_ref().map(Name::as_str),
            kind: operation.operation_type,
            variables,
            decider: self
                .policies
                .as_deref()
                .map(|policies| policies as &dyn authorize::Decider),
        };
        let denied = authorize::decide(&planned.guards, &context);
        if denied.is_empty() {
            return Ok(planned);
        }
        polygraph_service::metrics().denied();
        if self.settings.authorization.reject_unauthorized {
            return Err(Box::new(Response::request_error(
                Failure::Forbidden,
                vec![GraphqlError::new(
                    "the request selects fields or types this caller may not see",
                    authorize::UNAUTHORIZED,
                )],
            )));
        }
        Ok(self.planned(document, operation, variables, denied))
    }

    /// The operation's estimated cost, checked against the limit: a refusal when over it and
    /// enforcing, the estimate when measuring, nothing when off.
    fn demand(
        &self,
        operation: &Normalized,
        variables: &JsonMap,
    ) -> Result<Option<u64>, Box<Response>> {
        let settings = &self.settings.demand_control;
        if settings.mode == cost::Mode::Off {
            return Ok(None);
        }
        let estimated = cost::whole(self.estimator(variables).estimate(operation));
        if settings.mode == cost::Mode::Enforce && estimated > settings.max_cost {
            let mut error = GraphqlError::new(
                format!(
                    "the operation's estimated cost is {estimated}, over the limit of {} (demand_control.max_cost)",
                    settings.max_cost
                ),
                Code::CostEstimatedTooExpensive,
            );
            error.extensions.insert("cost", self.cost_report(estimated));
            return Err(Box::new(Response::request_error(
                Failure::BadRequest,
                vec![error],
            )));
        }
        Ok((settings.mode == cost::Mode::Measure).then_some(estimated))
    }

    /// Costs operations with this supergraph's weights and the request's `variables`.
    fn estimator<'a>(&'a self, variables: &'a JsonMap) -> cost::Estimator<'a> {
        cost::Estimator {
            model: &self.cost,
            schema: &self.supergraph.api_schema,
            settings: &self.settings.demand_control,
            variables,
        }
    }

    /// After a mutation answered with `body` (`{"data":…`): drops the cached answers holding the
    /// types it selects, the cached entities it returned (by key where the answer names them,
    /// else by type; by type past [`MAX_KEYS_DROPPED`] of one type) and every kept root fetch,
    /// with one call per type. A mutation whose fields were all denied ran nothing and drops
    /// nothing. Failures are logged; the mutation's answer stands.
    async fn forget_changed(&self, planned: &Planned, body: &[u8], failed: bool) {
        if !self.responses.enabled() && !self.entities.enabled()
            || planned.operation.fields.iter().all(|field| field.denied)
        {
            return;
        }
        let data = body.get(data_start(0).len()..).unwrap_or_default();
        let data = serde_json::from_slice::<serde_json::Value>(data).unwrap_or_default();
        let changed = crate::changed::changed(&self.supergraph, &planned.operation, &data, failed);
        let mut by_type: std::collections::BTreeMap<&str, Vec<serde_json::Map<_, _>>> = changed
            .types
            .iter()
            .map(|t| (t.as_str(), Vec::new()))
            .collect();
        for (type_name, key) in &changed.entities {
            if !changed.types.contains(type_name) {
                by_type.entry(type_name).or_default().push(key.clone());
            }
        }
        let mut answers: std::collections::BTreeSet<&str> =
            planned.types.iter().map(String::as_str).collect();
        answers.extend(by_type.keys());
        for type_name in answers {
            let invalidation = Invalidation {
                type_name: Some(type_name.to_owned()),
                key: None,
            };
            if let Err(error) = self.responses.invalidate(&invalidation).await {
                tracing::warn!(%error, type_name, "a mutation could not drop cached answers");
            }
        }
        if by_type.is_empty() {
            by_type.insert(crate::entity_cache::ROOT_TYPE, Vec::new());
        }
        for (type_name, mut keys) in by_type {
            if keys.len() > MAX_KEYS_DROPPED {
                keys.clear();
            }
            if let Err(error) = self.entities.invalidate_keys(Some(type_name), &keys).await {
                tracing::warn!(%error, type_name, "a mutation could not drop cached entities");
            }
        }
    }

    /// In measure mode, adds what the answer written in `body` (`{"data":…`) actually cost
    /// to the response's `extensions.cost`.
    fn measured(
        &self,
        response: &mut Response,
        operation: &Normalized,
        variables: &JsonMap,
        body: &[u8],
    ) {
        let Some(JsonValue::Object(cost)) = response.extensions.get_mut("cost") else {
            return;
        };
        let data = body.get(data_start(0).len()..).unwrap_or_default();
        let actual = serde_json::from_slice::<serde_json::Value>(data).map_or(0, |data| {
            cost::whole(self.estimator(variables).actual(operation, &data))
        });
        cost.insert("actual", JsonValue::from(actual));
    }

    fn cost_report(&self, estimated: u64) -> JsonValue {
        let mut report = JsonMap::new();
        report.insert("estimated", JsonValue::from(estimated));
        report.insert(
            "max",
            JsonValue::from(self.settings.demand_control.max_cost),
        );
        JsonValue::Object(report)
    }

    /// The body's start with the response's `data`, written from what the run put together.
    fn write_data(
        &self,
        planned: &Planned,
        data: crate::data::Value<'_>,
        errors: &mut Vec<GraphqlError>,
    ) -> Vec<u8> {
        let size = planned.data_size.load(std::sync::atomic::Ordering::Relaxed);
        // A little more than last time, so that a slightly bigger answer does not double the
        // buffer.
        let mut out = data_start(size + size / 8 + 256);
        crate::response::write(&self.supergraph, &planned.operation, data, errors, &mut out);
        let limit = self.settings.limits.max_response_bytes;
        let written = out.len() - data_start(0).len();
        if written > limit {
            tracing::warn!(
                bytes = written,
                limit,
                "response over limits.max_response_bytes"
            );
            out = data_start(4);
            out.extend_from_slice(b"null");
            errors.push(GraphqlError::new(
                format!(
                    "the response would be larger than {limit} bytes (limits.max_response_bytes)"
                ),
                Code::ResponseTooLarge,
            ));
        }
        out
    }

    /// The answers to `__schema` and `__type`, from the API schema, when the operation asks.
    fn introspect(
        &self,
        document: &Valid<ExecutableDocument>,
        operation: &executable::Operation,
        variables: &Valid<JsonMap>,
        session: Option<&Session>,
    ) -> Result<Option<JsonMap>, Box<Response>> {
        let asks = operation.selection_set.selections.iter().any(|selection| {
            selection
                .as_field()
                .is_some_and(|field| field.name == "__schema" || field.name == "__type")
        });
        if !asks {
            return Ok(None);
        }
        if !self.settings.introspection.allows(session) {
            return Err(Box::new(Response::request_error(
                Failure::Forbidden,
                vec![GraphqlError::new(
                    "introspection is not available to this caller",
                    Code::IntrospectionDisabled,
                )],
            )));
        }
        let refuse = |error: apollo_compiler::request::RequestError| {
            Box::new(Response::request_error(
                Failure::BadRequest,
                vec![GraphqlError::new(
                    error.message().to_string(),
                    Code::GraphqlValidationFailed,
                )],
            ))
        };
        apollo_compiler::introspection::check_max_depth(document, operation).map_err(refuse)?;
        let response = apollo_compiler::introspection::partial_execute(
            &self.supergraph.api_schema,
            &self.implementers,
            document,
            operation,
            variables,
        )
        .map_err(refuse)?;
        Ok(response.data)
    }

    fn document(&self, query: &str) -> Result<Arc<Document>, Vec<GraphqlError>> {
        let key = self.hash(query);
        if let Some(document) = self.documents.get(&key)
            && *document.query == *query
        {
            polygraph_service::metrics().cache("document", true);
            return Ok(document.clone());
        }
        polygraph_service::metrics().cache("document", false);
        let prepared = prepare::prepare_with_limits(
            &self.supergraph.api_schema,
            query,
            self.settings.limits.max_tokens,
        )
        .map_err(|errors| errors.into_iter().map(from_request).collect::<Vec<_>>())?;
        check_bounds(&prepared.document, &self.settings.limits)?;
        let document = Arc::new(Document {
            key,
            query: query.into(),
            condition_variables: operation::condition_variables(&prepared.document),
            normalized: sha2::Digest::finalize(sha2::Digest::chain_update(
                <sha2::Sha256 as sha2::Digest>::new(),
                prepared.document.to_string().as_bytes(),
            ))
            .into(),
            prepared,
            weight: weight(40 * query.len() + 1536),
        });
        self.documents.insert(key, document.clone());
        Ok(document)
    }

    fn planned(
        &self,
        document: &Document,
        operation: &Node<executable::Operation>,
        variables: &JsonMap,
        denied: Vec<u32>,
    ) -> Arc<Planned> {
        let conditions: Vec<Option<bool>> = document
            .condition_variables
            .iter()
            .map(|name| variables.get(name.as_str()).and_then(JsonValue::as_bool))
            .collect();
        let key = (document.key, operation.name.clone(), conditions, denied);
        if let Some(planned) = self.plans.get(&key) {
            polygraph_service::metrics().cache("plan", true);
            return planned;
        }
        polygraph_service::metrics().cache("plan", false);
        let _span = tracing::info_span!("graphql plan").entered();
        let normalized = operation::normalize(
            &self.supergraph.schema,
            &document.prepared.document,
            operation,
            variables,
        );
        let guards =
            authorize::guards(&self.supergraph.requirements, &self.supergraph, &normalized);
        let (operation, plan) = if key.3.is_empty() {
            let plan = plan::plan(&self.supergraph, &normalized).map(Arc::new);
            (normalized, plan)
        } else {
            let (marked, pruned) = authorize::mark(&normalized, &key.3);
            let plan = plan::plan(&self.supergraph, &pruned).map(Arc::new);
            (marked, plan)
        };
        let fetches: usize = plan.as_ref().map_or(0, |plan| {
            plan.fetches.iter().map(|fetch| fetch.operation.len()).sum()
        });
        let planned = Arc::new(Planned {
            types: Arc::new(selected_types(&operation)),
            operation,
            guards,
            plan,
            data_size: std::sync::atomic::AtomicUsize::new(0),
            weight: weight(32 * document.query.len() + 2 * fetches + 2560),
        });
        self.plans.insert(key, planned.clone());
        planned
    }

    /// The plan for a query, as readable text (for explain and snapshots).
    pub fn explain(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<String, Vec<GraphqlError>> {
        self.explain_inner(query, operation_name, None)
    }

    /// [`Self::explain`] with variables (coerced as a request's are; they decide
    /// `@skip`/`@include`): prepares, validates, bounds, estimates the cost of and plans the
    /// operation without calling any subgraph.
    pub fn explain_with(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &JsonMap,
    ) -> Result<String, Vec<GraphqlError>> {
        self.explain_inner(query, operation_name, Some(variables))
    }

    /// The plan, with `variables` coerced and the cost checked when given.
    fn explain_inner(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: Option<&JsonMap>,
    ) -> Result<String, Vec<GraphqlError>> {
        let document = self.document(query)?;
        let operation = document
            .prepared
            .operation(operation_name)
            .map_err(|error| vec![from_request(error)])?
            .clone();
        let coerced = match variables {
            Some(variables) => apollo_compiler::request::coerce_variable_values(
                &self.supergraph.api_schema,
                &operation,
                variables,
            )
            .map_err(|error| bad_variables(&error).errors)?
            .into_inner(),
            None => JsonMap::new(),
        };
        let planned = self.planned(&document, &operation, &coerced, Vec::new());
        if variables.is_some()
            && let Err(refused) = self.demand(&planned.operation, &coerced)
        {
            return Err(refused.errors);
        }
        match &planned.plan {
            Ok(plan) => Ok(plan.to_string()),
            Err(error) => Err(vec![GraphqlError::new(
                error.0.clone(),
                Code::QueryPlanningFailed,
            )]),
        }
    }
}

/// `value` with every object's keys in order, so that equal values print alike.
/// Writes who `session` is: its issuer and claims in a canonical order, but those that change
/// with every token (`exp`, `iat`, `nbf`, `jti`, `auth_time`); nothing for an anonymous caller.
pub(crate) fn write_caller(
    out: &mut Vec<u8>,
    session: Option<&Session>,
) -> Result<(), serde_json::Error> {
    let Some(session) = session else {
        return Ok(());
    };
    let claims: std::collections::BTreeMap<&String, serde_json::Value> = session
        .claims
        .iter()
        .filter(|(name, _)| !["exp", "iat", "nbf", "jti", "auth_time"].contains(&name.as_str()))
        .map(|(name, value)| (name, canonical(value)))
        .collect();
    serde_json::to_writer(out, &(&session.issuer, claims))
}

pub(crate) fn canonical(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(object) => {
            let sorted: std::collections::BTreeMap<&String, serde_json::Value> = object
                .iter()
                .map(|(key, value)| (key, canonical(value)))
                .collect();
            serde_json::to_value(sorted).unwrap_or_default()
        }
        serde_json::Value::Array(items) => items.iter().map(canonical).collect(),
        other => other.clone(),
    }
}

/// The refusal of a request whose operation cannot be found.
fn bad_request(error: RequestError) -> Response {
    Response::request_error(Failure::BadRequest, vec![from_request(error)])
}

/// The refusal of a request without a query.
fn no_query() -> Response {
    Response::request_error(
        Failure::Malformed,
        vec![GraphqlError::new(
            "the request has no query: send {\"query\": \"…\"}",
            Code::BadRequest,
        )],
    )
}

/// The answer to an operation no plan answers: `data` null.
pub(crate) fn unplannable(error: &plan::PlanError) -> Response {
    let mut data = data_start(0);
    data.extend_from_slice(b"null");
    Response {
        data: Some(data),
        errors: vec![GraphqlError::new(
            error.0.clone(),
            Code::QueryPlanningFailed,
        )],
        extensions: JsonMap::new(),
        failure: None,
        cache: CachePolicy::NoStore,
        types: Arc::default(),
    }
}

/// The object, interface and union types `operation` selects, fragments' included.
fn selected_types(operation: &Normalized) -> std::collections::BTreeSet<String> {
    fn field(field: &operation::Field, types: &mut std::collections::BTreeSet<String>) {
        if matches!(
            field.kind,
            operation::Kind::Object | operation::Kind::Abstract
        ) {
            types.insert(field.type_name().to_string());
        }
        selections(&field.selections, types);
    }
    fn selections(under: &[operation::Selection], types: &mut std::collections::BTreeSet<String>) {
        for selection in under {
            match selection {
                operation::Selection::Field(selected) => field(selected, types),
                operation::Selection::Fragment(fragment) => {
                    types.insert(fragment.on.to_string());
                    selections(&fragment.selections, types);
                }
            }
        }
    }
    let mut types = std::collections::BTreeSet::new();
    for selected in &operation.fields {
        field(selected, &mut types);
    }
    types
}

/// A cache entry's weight in bytes, as the caches count it.
fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

fn bad_variables(error: &apollo_compiler::request::RequestError) -> Response {
    Response::request_error(
        Failure::BadRequest,
        vec![GraphqlError::new(
            error.message().to_string(),
            Code::BadUserInput,
        )],
    )
}

fn from_request(error: RequestError) -> GraphqlError {
    let mut graphql = GraphqlError::new(error.message, error.code);
    graphql.locations = error.locations;
    graphql
}

/// What one operation selects, fragments counted where they are used.
#[derive(Default)]
struct Measured {
    fields: usize,
    deepest: usize,
    aliases: usize,
    roots: usize,
}

struct Measure<'a> {
    document: &'a ExecutableDocument,
    limits: &'a Limits,
    measured: Measured,
    visiting: Vec<Name>,
}

impl Measure<'_> {
    fn over(&self) -> bool {
        let (measured, limits) = (&self.measured, self.limits);
        measured.fields > limits.max_fields
            || measured.deepest > limits.max_depth
            || measured.aliases > limits.max_aliases
            || measured.roots > limits.max_root_fields
    }

    fn walk(&mut self, set: &executable::SelectionSet, depth: usize) {
        for selection in &set.selections {
            if self.over() {
                return;
            }
            match selection {
                executable::Selection::Field(field) => {
                    self.measured.fields += 1;
                    self.measured.aliases += usize::from(field.alias.is_some());
                    self.measured.roots += usize::from(depth == 0);
                    if !field.selection_set.selections.is_empty() {
                        self.measured.deepest = self.measured.deepest.max(depth + 1);
                        self.walk(&field.selection_set, depth + 1);
                    }
                }
                executable::Selection::InlineFragment(inline) => {
                    self.walk(&inline.selection_set, depth);
                }
                executable::Selection::FragmentSpread(spread) => {
                    if self.visiting.contains(&spread.fragment_name) {
                        continue;
                    }
                    if let Some(fragment) = self.document.fragments.get(&spread.fragment_name) {
                        self.visiting.push(spread.fragment_name.clone());
                        self.walk(&fragment.selection_set, depth);
                        self.visiting.pop();
                    }
                }
            }
        }
    }
}

/// Rejects operations deeper or wider than the limits, counting fragments where they are used.
fn check_bounds(document: &ExecutableDocument, limits: &Limits) -> Result<(), Vec<GraphqlError>> {
    for operation in document.operations.iter() {
        let mut measure = Measure {
            document,
            limits,
            measured: Measured::default(),
            visiting: Vec::new(),
        };
        measure.walk(&operation.selection_set, 0);
        let measured = measure.measured;
        let refused = if measured.deepest > limits.max_depth {
            (
                format!(
                    "the operation nests deeper than {} levels (limits.max_depth)",
                    limits.max_depth
                ),
                Code::MaxDepthExceeded,
            )
        } else if measured.fields > limits.max_fields {
            (
                format!(
                    "the operation selects more than {} fields (limits.max_fields)",
                    limits.max_fields
                ),
                Code::MaxFieldsExceeded,
            )
        } else if measured.aliases > limits.max_aliases {
            (
                format!(
                    "the operation has more than {} aliases (limits.max_aliases)",
                    limits.max_aliases
                ),
                Code::MaxAliasesExceeded,
            )
        } else if measured.roots > limits.max_root_fields {
            (
                format!(
                    "the operation selects more than {} root fields (limits.max_root_fields)",
                    limits.max_root_fields
                ),
                Code::MaxRootFieldsExceeded,
            )
        } else {
            continue;
        };
        return Err(vec![GraphqlError::new(refused.0, refused.1)]);
    }
    Ok(())
}
