//! What a gateway is configured with: request bounds, how it authenticates callers, what
//! it lets anonymous callers do, and the claims it signs for subgraphs.

use std::collections::HashMap;

use crate::auth::Session;

/// Bounds on what one request may ask.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Deepest field nesting, fragments expanded.
    pub max_depth: usize,
    /// Most fields (aliases included) in one operation, fragments expanded.
    pub max_fields: usize,
    /// Most lexical tokens in a query document.
    pub max_tokens: usize,
    /// Most aliased fields in one operation, fragments expanded.
    pub max_aliases: usize,
    /// Most fields at the root of one operation, fragments expanded.
    pub max_root_fields: usize,
    /// Largest response `data` (as JSON), in bytes: past it the answer is `null` with an
    /// error.
    pub max_response_bytes: usize,
    /// Most entity representations the fetches of one request may send, in all.
    pub max_entity_representations: usize,
    /// Largest reply read from a subgraph, in bytes: a longer one is refused as it arrives
    /// (its fields answered `null` with an error), never held whole.
    pub max_subgraph_reply_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 48,
            max_fields: 4000,
            max_tokens: 60_000,
            max_aliases: 500,
            max_root_fields: 200,
            max_response_bytes: 32 * 1024 * 1024,
            max_entity_representations: 100_000,
            max_subgraph_reply_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The gateway's settings beyond the supergraph.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub limits: Limits,
    /// The gateway's Redis, shared by its replicas.
    pub redis: crate::store::RedisSettings,
    /// Whole answers kept and served again.
    pub response_cache: crate::response_cache::ResponseCacheSettings,
    /// Entities from `_entities` answers kept and served again.
    pub entity_cache: crate::entity_cache::EntityCacheSettings,
    /// Who may drop cached answers (`POST /admin/cache/invalidate`).
    pub cache_admin: Access,
    /// Operations sent by id: APQ, a manifest, a safelist.
    pub persisted_queries: crate::persisted::PersistedSettings,
    /// What one operation may cost, estimated before anything is fetched.
    pub demand_control: crate::cost::DemandControl,
    /// How long one subgraph request may take, in milliseconds.
    pub subgraph_timeout_ms: u64,
    /// How long a whole request may take, every fetch included, in milliseconds: fetches still
    /// running then are given up and their fields answered `null` with an error.
    pub request_timeout_ms: u64,
    /// Subgraph URLs to use instead of the supergraph's, by subgraph name.
    pub subgraph_urls: HashMap<String, String>,
    /// Identical queries in flight at the same time (same request, same credentials) share
    /// one run and one answer.
    pub coalesce_requests: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Connections and requests in flight: header-read timeout, load shedding, shutdown grace.
    pub server: polygraph_service::serve::Limits,
    /// `/ready` answers 503 while a subgraph does not answer. Off: ready once the supergraph is
    /// loaded, so that one subgraph down does not take every replica out of a load balancer
    /// (the fields it serves fail, the rest answer).
    pub ready_requires_subgraphs: bool,
    /// Most bytes of prepared documents kept in memory (estimated per document).
    pub document_cache_bytes: u64,
    /// Most bytes of query plans kept in memory (estimated per plan).
    pub plan_cache_bytes: u64,
    /// Progressive-override labels to treat as active (`@override(from:, label:)` moves the
    /// field only while its label is listed here).
    pub override_labels: Vec<String>,
    /// Who may call: the identity providers whose tokens are accepted.
    pub authentication: crate::auth::AuthSettings,
    /// What callers may do: policies and how denials are answered.
    pub authorization: AuthorizationSettings,
    /// The claims tokens the gateway signs for subgraphs.
    pub claims: ClaimsSettings,
    /// Who may ask for introspection (`__schema`, `__type`).
    pub introspection: Access,
    /// Who may ask for the query plan (`x-polygraph-explain`).
    pub explain: Access,
    /// Which other origins' pages may call from a browser.
    pub cors: crate::edge::CorsSettings,
    /// Which requests must show they were not forged by another site.
    pub csrf: crate::edge::CsrfSettings,
    /// Pass subgraphs' error messages and extensions, and why a subgraph request failed, to
    /// clients as they are — for development: they can hold SQL states, constraint names,
    /// validator text and hosts. Off, clients get a code and a message saying what kind of
    /// failure it was, and the detail goes to the log.
    pub expose_subgraph_errors: bool,
    /// What subscriptions may hold: how many, their buffers, keep-alives.
    pub subscriptions: SubscriptionSettings,
}

/// What callers may do beyond what the supergraph's directives say.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorizationSettings {
    /// The folder of Rego policies `@policy` names (every `.rego` file in it).
    pub policies: Option<std::path::PathBuf>,
    /// Refuse a whole request when any of its selections is denied, instead of answering the
    /// rest with the denied fields `null`.
    pub reject_unauthorized: bool,
    /// Let requests without a token run mutations (off: nothing anonymous writes).
    pub allow_anonymous_mutations: bool,
}

/// How the gateway vouches for callers to subgraphs.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimsSettings {
    /// The Ed25519 private key (PKCS#8 PEM, as `polygraph keys generate` writes it). Without
    /// one, a key is generated at start and its public half served at
    /// `/.well-known/polygraph-claims.json`.
    pub signing_key_file: Option<std::path::PathBuf>,
    /// How long a signed token is good for.
    pub ttl_seconds: u64,
    /// Claims of the caller's token passed on as they are, beyond `sub`, `roles` and `scope`.
    pub forward: Vec<String>,
}

impl Default for ClaimsSettings {
    fn default() -> Self {
        Self {
            signing_key_file: None,
            ttl_seconds: 120,
            forward: Vec::new(),
        }
    }
}

/// Who may use a diagnostic feature.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Access {
    #[default]
    Everyone,
    /// Callers with a valid token.
    Authenticated,
    /// Callers whose token holds this scope.
    Scope(String),
    Nobody,
}

impl schemars::JsonSchema for Access {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Access".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "everyone, authenticated (a valid token), nobody, or scope:NAME",
            "type": "string",
            "pattern": "^(everyone|authenticated|nobody|scope:.+)$"
        })
    }
}

impl<'de> serde::Deserialize<'de> for Access {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "everyone" => Ok(Self::Everyone),
            "authenticated" => Ok(Self::Authenticated),
            "nobody" => Ok(Self::Nobody),
            other => match other.strip_prefix("scope:") {
                Some(scope) if !scope.is_empty() => Ok(Self::Scope(scope.to_owned())),
                _ => Err(serde::de::Error::custom(
                    "expected everyone, authenticated, nobody or scope:NAME",
                )),
            },
        }
    }
}

impl Access {
    pub fn allows(&self, session: Option<&Session>) -> bool {
        match self {
            Self::Everyone => true,
            Self::Authenticated => session.is_some(),
            Self::Scope(scope) => session.is_some_and(|session| session.scopes.contains(scope)),
            Self::Nobody => false,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            redis: crate::store::RedisSettings::default(),
            persisted_queries: crate::persisted::PersistedSettings::default(),
            response_cache: crate::response_cache::ResponseCacheSettings::default(),
            entity_cache: crate::entity_cache::EntityCacheSettings::default(),
            cache_admin: Access::Scope("polygraph:admin".to_owned()),
            demand_control: crate::cost::DemandControl::default(),
            subgraph_timeout_ms: 30_000,
            request_timeout_ms: 60_000,
            subgraph_urls: HashMap::new(),
            coalesce_requests: true,
            max_body_bytes: 2 * 1024 * 1024,
            server: polygraph_service::serve::Limits::default(),
            ready_requires_subgraphs: true,
            document_cache_bytes: 64 * 1024 * 1024,
            plan_cache_bytes: 64 * 1024 * 1024,
            override_labels: Vec::new(),
            authentication: crate::auth::AuthSettings::default(),
            authorization: AuthorizationSettings::default(),
            claims: ClaimsSettings::default(),
            introspection: Access::Everyone,
            explain: Access::Everyone,
            cors: crate::edge::CorsSettings::default(),
            csrf: crate::edge::CsrfSettings::default(),
            expose_subgraph_errors: false,
            subscriptions: SubscriptionSettings::default(),
        }
    }
}

/// The prefix of environment variables that override the gateway's settings:
/// `POLYGRAPH_GATEWAY__REDIS__URL=rediss://cache:6380/1` sets `redis.url`.
pub const ENV_PREFIX: &str = "POLYGRAPH_GATEWAY";

impl Settings {
    /// The settings in the YAML file at `path` (`${NAME}` expanded), with
    /// `POLYGRAPH_GATEWAY__…` overrides from the environment; or, without a file, the
    /// defaults with those overrides.
    pub fn load(
        path: Option<&std::path::Path>,
    ) -> Result<Self, polygraph_service::config::ConfigError> {
        match path {
            Some(path) => polygraph_service::config::from_file(path, ENV_PREFIX),
            None => polygraph_service::config::from_text(
                "",
                "(default settings)",
                &|name| std::env::var(name).ok(),
                &polygraph_service::config::overrides(
                    ENV_PREFIX,
                    polygraph_service::config::environment(),
                ),
            ),
        }
    }
}

/// What subscriptions may hold.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Subscriptions the gateway serves at once, over every transport.
    pub max_subscriptions: usize,
    /// Operations one WebSocket connection may run at once.
    pub max_per_connection: usize,
    /// WebSocket connections the gateway holds at once.
    pub max_connections: usize,
    /// Responses kept for a client that has not read them yet; one more ends the
    /// subscription with `SUBSCRIPTION_BUFFER_FULL`.
    pub buffer: usize,
    /// How often a stream that has nothing to say shows it is alive, in milliseconds: a
    /// WebSocket ping, an SSE comment, a multipart `{}` part.
    pub keepalive_ms: u64,
    /// How long a WebSocket client has to send `connection_init`, in milliseconds.
    pub init_timeout_ms: u64,
    /// How many times to subscribe again to a subgraph whose subscription broke off (waiting
    /// 250 ms, then twice as long each time, at most 5 s) before the client gets the error;
    /// 0 ends it at once. Events while it was away are not replayed.
    pub resubscribe_attempts: u32,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            max_subscriptions: 20_000,
            max_per_connection: 100,
            max_connections: 20_000,
            buffer: 64,
            keepalive_ms: 5_000,
            init_timeout_ms: 3_000,
            resubscribe_attempts: 0,
        }
    }
}
