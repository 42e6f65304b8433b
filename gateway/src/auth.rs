//! Authentication at the edge: bearer JSON Web Tokens checked against the keys of the issuers
//! the gateway trusts, giving each request a [`Session`] (or none, for anonymous requests).
//!
//! Keys come from each issuer's JWKS, found by OpenID Connect discovery
//! (`{issuer}/.well-known/openid-configuration`, whose `issuer` must match) or configured
//! directly. They are fetched at start, refreshed on an interval, and fetched again when a token
//! names a key id (`kid`) the gateway does not know — at most once per
//! `unknown_kid_refresh_seconds` per issuer, so unknown kids cannot make the gateway hammer the
//! identity provider. When a refresh fails, the keys already fetched stay in force.
//!
//! Accepted: RS256/384/512, PS256/384/512, ES256/384 and `EdDSA` with keys of the matching type
//! from the JWKS (symmetric keys in a JWKS are ignored); HS256 only for an issuer configured with
//! a shared secret, which then cannot also have a JWKS. `alg: none` never verifies. `exp` is
//! required, `nbf` is honoured, `iss` must be the issuer's and `aud` one of its audiences, all
//! with `leeway_seconds` of clock skew.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::errors::Code;

/// Most bytes of a discovery document or JWKS the gateway reads.
const FETCH_LIMIT: usize = 1 << 20;

/// How the gateway authenticates requests (`authentication:` in its settings).
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The identity providers whose tokens are accepted.
    pub issuers: Vec<IssuerSettings>,
    /// Refuse requests without a token (by default they run as anonymous).
    pub require_token: bool,
    /// A cookie that may carry the token when there is no `Authorization` header.
    pub cookie: Option<String>,
    /// Clock skew allowed when checking `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// How often each issuer's keys are fetched again.
    pub jwks_refresh_seconds: u64,
    /// The least time between two fetches caused by tokens naming unknown keys.
    pub unknown_kid_refresh_seconds: u64,
    /// How long one fetch of a discovery document or JWKS may take.
    pub fetch_timeout_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            require_token: false,
            cookie: None,
            leeway_seconds: 30,
            jwks_refresh_seconds: 300,
            unknown_kid_refresh_seconds: 10,
            fetch_timeout_ms: 5_000,
        }
    }
}

/// One trusted identity provider.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The `iss` its tokens carry; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Where its discovery document is, if not under the issuer.
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// Its JWKS, to skip discovery.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Accepted `aud` values; a token must name one of them.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accept tokens whatever their `aud` (only for providers that issue no audience).
    #[serde(default)]
    pub accept_any_audience: bool,
    /// An environment variable holding a shared secret: this issuer's tokens are HS256, and it
    /// has no JWKS.
    #[serde(default)]
    pub hs256_secret_env: Option<String>,
    /// The claim listing the token's roles.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Put before `sub` in the claims subgraphs get (`sub` there is what row rules compare):
    /// with several issuers, one person's `sub` at one must not be another's at the next, so
    /// every issuer but one needs a prefix of its own.
    #[serde(default)]
    pub subject_prefix: Option<String>,
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

/// Who a request is for, from a verified token.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// `sub`.
    pub subject: Option<String>,
    /// `iss`.
    pub issuer: String,
    /// `sub` as subgraphs get it: after the issuer's `subject_prefix`.
    pub principal: Option<String>,
    /// From `scope` (space-separated) or `scp` (a list).
    pub scopes: Vec<String>,
    /// From the issuer's roles claim.
    pub roles: Vec<String>,
    /// Every claim of the token.
    pub claims: Map<String, Value>,
}

impl Session {
    /// The session a set of verified claims describes.
    pub fn from_claims(issuer: &str, roles_claim: &str, claims: Map<String, Value>) -> Self {
        let strings = |value: Option<&Value>| -> Vec<String> {
            match value {
                Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut scopes = strings(claims.get("scope"));
        scopes.extend(strings(claims.get("scp")));
        let subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        Self {
            principal: subject.clone(),
            subject,
            issuer: issuer.to_owned(),
            scopes,
            roles: strings(claims.get(roles_claim)),
            claims,
        }
    }

    /// The session as policies and subgraphs see it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "sub": self.subject,
            "iss": self.issuer,
            "scopes": self.scopes,
            "roles": self.roles,
            "claims": self.claims,
        })
    }
}

/// Why a request's credentials were refused: answered with 401.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    pub message: String,
    /// `INVALID_TOKEN` for a token that does not verify, `UNAUTHENTICATED` for a missing one.
    pub code: Code,
}

impl AuthError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: Code::InvalidToken,
        }
    }
}

/// A key from a JWKS, with the algorithms it may verify.
struct Key {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    decoding: DecodingKey,
}

/// An issuer's keys as last fetched.
#[derive(Default)]
struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Vec<&DecodingKey> {
        self.keys
            .iter()
            .filter(|key| key.algorithms.contains(&algorithm))
            .filter(|key| match kid {
                Some(kid) => key.kid.as_deref() == Some(kid),
                None => true,
            })
            .map(|key| &key.decoding)
            .take(4)
            .collect()
    }

    fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }
}

struct Issuer {
    settings: IssuerSettings,
    secret: Option<DecodingKey>,
    keys: ArcSwap<KeySet>,
    /// When keys were last fetched because of an unknown kid; held while fetching, so
    /// concurrent requests wait for one fetch instead of making their own.
    last_forced: tokio::sync::Mutex<Option<Instant>>,
}

/// Verifies tokens against the configured issuers.
pub struct Authenticator {
    settings: AuthSettings,
    issuers: Vec<Issuer>,
    client: reqwest::Client,
    /// Tokens verified before, by their whole text: a client sends the same token with every
    /// request, and checking its signature again is most of what sign-in costs.
    verified: std::sync::Mutex<Verified>,
}

/// Sessions of tokens already verified, with what they were verified against.
#[derive(Default)]
struct Verified {
    sessions: HashMap<Box<str>, VerifiedToken>,
    /// The tokens' text, in bytes: the map is emptied rather than grow past [`VERIFIED_BYTES`].
    bytes: usize,
}

struct VerifiedToken {
    session: Arc<Session>,
    issuer: usize,
    /// The issuer's key set that verified it: a token is verified again once keys change (a key
    /// withdrawn from the JWKS stops verifying tokens at once).
    keys: Arc<KeySet>,
    expires: u64,
    not_before: Option<u64>,
}

/// The most token text kept verified.
const VERIFIED_BYTES: usize = 4 * 1024 * 1024;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|issuer| &issuer.settings.issuer)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The algorithms a token may be signed with when its issuer publishes keys.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Authenticator {
    /// Checks the settings; keys are fetched by [`Authenticator::start`].
    pub fn new(settings: AuthSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.fetch_timeout_ms))
            .build()
            .map_err(|error| format!("an HTTP client for JWKS: {error}"))?;
        let mut prefixes: HashMap<&str, &str> = HashMap::new();
        for issuer in &settings.issuers {
            let prefix = issuer.subject_prefix.as_deref().unwrap_or_default();
            if let Some(other) = prefixes.insert(prefix, &issuer.issuer) {
                return Err(format!(
                    "issuers {other} and {} would give subgraphs the same `sub` for different \
                     people: give each but one a distinct subject_prefix (e.g. \"b:\")",
                    issuer.issuer
                ));
            }
        }
        let mut issuers = Vec::new();
        for issuer in &settings.issuers {
            if issuer.audiences.is_empty() && !issuer.accept_any_audience {
                return Err(format!(
                    "issuer {}: list its `audiences` (or set accept_any_audience: true)",
                    issuer.issuer
                ));
            }
            let secret = match &issuer.hs256_secret_env {
                Some(variable) => {
                    if issuer.jwks_url.is_some() || issuer.discovery_url.is_some() {
                        return Err(format!(
                            "issuer {}: an HS256 secret and published keys exclude each other",
                            issuer.issuer
                        ));
                    }
                    let secret = std::env::var(variable).unwrap_or_default();
                    if secret.len() < 32 {
                        return Err(format!(
                            "issuer {}: ${variable} must hold a secret of at least 32 bytes",
                            issuer.issuer
                        ));
                    }
                    Some(DecodingKey::from_secret(secret.as_bytes()))
                }
                None => None,
            };
            issuers.push(Issuer {
                settings: issuer.clone(),
                secret,
                keys: ArcSwap::from_pointee(KeySet::default()),
                last_forced: tokio::sync::Mutex::new(None),
            });
        }
        Ok(Self {
            settings,
            issuers,
            client,
            verified: std::sync::Mutex::new(Verified::default()),
        })
    }

    /// The session of a token verified before, if it still holds: within its time (with the
    /// same leeway), against the same keys.
    fn verified_before(&self, token: &str) -> Option<Arc<Session>> {
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = verified.sessions.get(token)?;
        let now = unix_now();
        let leeway = self.settings.leeway_seconds;
        let in_time = now <= known.expires.saturating_add(leeway)
            && known
                .not_before
                .is_none_or(|nbf| nbf <= now.saturating_add(leeway));
        let same_keys = Arc::ptr_eq(&known.keys, &self.issuers[known.issuer].keys.load());
        (in_time && same_keys).then(|| known.session.clone())
    }

    fn remember(&self, token: &str, known: VerifiedToken) {
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.bytes + token.len() > VERIFIED_BYTES {
            verified.sessions.clear();
            verified.bytes = 0;
        }
        verified.bytes += token.len();
        if verified.sessions.insert(token.into(), known).is_some() {
            verified.bytes -= token.len();
        }
    }

    /// Whether any issuer is configured: without one, tokens are not looked at.
    pub fn is_enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Fetches every issuer's keys once (an issuer that cannot be reached is logged and tried
    /// again on the next refresh; its tokens fail until then), and starts refreshing them.
    pub async fn start(self: &Arc<Self>) {
        for index in 0..self.issuers.len() {
            if self.issuers[index].secret.is_some() {
                continue;
            }
            let refreshed = self.refresh(index).await;
            polygraph_service::metrics().key_refresh(refreshed.is_ok());
            if let Err(error) = refreshed {
                tracing::error!(issuer = %self.issuers[index].settings.issuer, %error, "fetching the issuer's keys failed; its tokens are refused until a refresh succeeds");
            }
            let weak: Weak<Self> = Arc::downgrade(self);
            let every = Duration::from_secs(self.settings.jwks_refresh_seconds.max(1));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(this) = weak.upgrade() else { return };
                    let refreshed = this.refresh(index).await;
                    polygraph_service::metrics().key_refresh(refreshed.is_ok());
                    if let Err(error) = refreshed {
                        tracing::warn!(issuer = %this.issuers[index].settings.issuer, %error, "refreshing the issuer's keys failed; keeping the keys fetched before");
                    }
                }
            });
        }
    }

    /// Fetches issuer `index`'s JWKS (by discovery unless configured) and swaps its keys in.
    async fn refresh(&self, index: usize) -> Result<(), String> {
        let issuer = &self.issuers[index];
        let jwks_url = if let Some(url) = &issuer.settings.jwks_url {
            url.clone()
        } else {
            let url = issuer.settings.discovery_url.clone().unwrap_or_else(|| {
                format!(
                    "{}/.well-known/openid-configuration",
                    issuer.settings.issuer.trim_end_matches('/')
                )
            });
            let document: Value = self.fetch_json(&url).await?;
            let named = document.get("issuer").and_then(Value::as_str);
            if named != Some(issuer.settings.issuer.as_str()) {
                return Err(format!(
                    "the discovery document at {url} names issuer {named:?}, not {:?}",
                    issuer.settings.issuer
                ));
            }
            document
                .get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("the discovery document at {url} has no jwks_uri"))?
                .to_owned()
        };
        let jwks: Value = self.fetch_json(&jwks_url).await?;
        let keys = parse_jwks(&jwks);
        if keys.is_empty() {
            return Err(format!("the JWKS at {jwks_url} has no usable signing key"));
        }
        tracing::info!(issuer = %issuer.settings.issuer, keys = keys.len(), "fetched the issuer's keys");
        issuer.keys.store(Arc::new(KeySet { keys }));
        Ok(())
    }

    async fn fetch_json(&self, url: &str) -> Result<Value, String> {
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|error| format!("GET {url}: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        // Read by chunks and stop past the limit: a provider (or whoever answers in its
        // place) cannot make the gateway hold an answer of any size.
        if response
            .content_length()
            .is_some_and(|length| length > FETCH_LIMIT as u64)
        {
            return Err(format!("GET {url}: the answer is larger than 1 MB"));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| format!("GET {url}: {error}"))?
        {
            if bytes.len() + chunk.len() > FETCH_LIMIT {
                return Err(format!("GET {url}: the answer is larger than 1 MB"));
            }
            bytes.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&bytes).map_err(|error| format!("GET {url}: not JSON: {error}"))
    }

    /// The session a token stands for, or why it is refused.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Session>, AuthError> {
        let token = token.trim();
        if token.len() > 16 * 1024 {
            return Err(AuthError::invalid("the token is too long"));
        }
        if let Some(session) = self.verified_before(token) {
            return Ok(session);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::invalid("the token is not a signed JWT"))?;
        // Which issuer to check against: the claimed `iss`, verified by the signature below.
        let unverified: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| AuthError::invalid("the token's claims are not a JSON object"))?;
        let claimed = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
        let Some(index) = self
            .issuers
            .iter()
            .position(|issuer| issuer.settings.issuer == claimed)
        else {
            return Err(AuthError::invalid("the token's issuer is not trusted"));
        };
        let issuer = &self.issuers[index];
        let algorithm = header.alg;
        let kid = header.kid.as_deref();
        // Loaded before verifying: if they change meanwhile, the token is verified again next
        // time rather than trusted under keys it was not checked with.
        let keys = issuer.keys.load_full();
        let claims = if let Some(secret) = &issuer.secret {
            if algorithm != Algorithm::HS256 {
                return Err(AuthError::invalid(format!(
                    "the issuer's tokens are HS256, not {algorithm:?}"
                )));
            }
            self.verify(token, secret, issuer, algorithm)?
        } else {
            if !ASYMMETRIC.contains(&algorithm) {
                return Err(AuthError::invalid(format!(
                    "the algorithm {algorithm:?} is not accepted for this issuer"
                )));
            }
            if let Some(kid) = kid
                && !issuer.keys.load().knows(kid)
            {
                self.refresh_for_unknown_kid(index).await;
            }
            let keys = issuer.keys.load();
            let candidates = keys.find(kid, algorithm);
            if candidates.is_empty() {
                return Err(AuthError::invalid(
                    "no key of the issuer verifies the token",
                ));
            }
            let mut outcome = Err(AuthError::invalid("the token's signature does not verify"));
            for key in candidates {
                outcome = self.verify(token, key, issuer, algorithm);
                if outcome.is_ok() {
                    break;
                }
            }
            outcome?
        };
        let mut session = Session::from_claims(
            &issuer.settings.issuer,
            &issuer.settings.roles_claim,
            claims,
        );
        if let (Some(prefix), Some(subject)) = (&issuer.settings.subject_prefix, &session.subject) {
            session.principal = Some(format!("{prefix}{subject}"));
        }
        let seconds = |name: &str| session.claims.get(name).and_then(Value::as_u64);
        let (expires, not_before) = (seconds("exp"), seconds("nbf"));
        let session = Arc::new(session);
        if let Some(expires) = expires {
            let known = VerifiedToken {
                session: session.clone(),
                issuer: index,
                keys,
                expires,
                not_before,
            };
            self.remember(token, known);
        }
        Ok(session)
    }

    fn verify(
        &self,
        token: &str,
        key: &DecodingKey,
        issuer: &Issuer,
        algorithm: Algorithm,
    ) -> Result<Map<String, Value>, AuthError> {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.settings.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer.settings.issuer.as_str()]);
        if issuer.settings.accept_any_audience {
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp", "iss"]);
        } else {
            validation.set_audience(&issuer.settings.audiences);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        }
        jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                AuthError::invalid(match error.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet",
                    ErrorKind::InvalidAudience => "the token is not meant for this gateway (aud)",
                    ErrorKind::InvalidIssuer => "the token's issuer is not trusted",
                    ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                    ErrorKind::InvalidSignature => "the token's signature does not verify",
                    _ => "the token does not verify",
                })
            })
    }

    /// Fetches keys again for a token naming an unknown kid, unless that was done recently.
    async fn refresh_for_unknown_kid(&self, index: usize) {
        let issuer = &self.issuers[index];
        let mut last = issuer.last_forced.lock().await;
        let wait = Duration::from_secs(self.settings.unknown_kid_refresh_seconds);
        if last.is_some_and(|at| at.elapsed() < wait) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(error) = self.refresh(index).await {
            tracing::warn!(issuer = %issuer.settings.issuer, %error, "fetching keys for an unknown kid failed; keeping the keys fetched before");
        }
    }
}

/// The signing keys of a JWKS, each with the algorithms it may verify; keys that are for
/// encryption, symmetric, of unknown types or malformed are left out.
fn parse_jwks(jwks: &Value) -> Vec<Key> {
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for value in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value.clone()) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature)
        {
            continue;
        }
        let by_type: Vec<Algorithm> = match &jwk.algorithm {
            // The first six asymmetric algorithms are RSA's.
            AlgorithmParameters::RSA(_) => ASYMMETRIC[..6].to_vec(),
            AlgorithmParameters::EllipticCurve(params) => match params.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => Vec::new(),
            },
            AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
                vec![Algorithm::EdDSA]
            }
            _ => Vec::new(),
        };
        let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
            None => by_type,
            Some(named) => key_algorithm(named)
                .filter(|algorithm| by_type.contains(algorithm))
                .into_iter()
                .collect(),
        };
        if algorithms.is_empty() {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        out.push(Key {
            kid: jwk.common.key_id.clone(),
            algorithms,
            decoding: key,
        });
    }
    out
}

fn key_algorithm(named: KeyAlgorithm) -> Option<Algorithm> {
    Some(match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The token a request carries: `Authorization: Bearer …`, else the named cookie. `Err` for an
/// `Authorization` header of another scheme.
pub fn token_of(
    headers: &axum::http::HeaderMap,
    cookie: Option<&str>,
) -> Result<Option<String>, AuthError> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| AuthError::invalid("the Authorization header is not text"))?;
        let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::invalid(
                "send the token as Authorization: Bearer <token>",
            ));
        }
        return Ok(Some(token.trim().to_owned()));
    }
    Ok(cookie.and_then(|name| cookie_value(headers, name)))
}

/// The value of the cookie `name`, when the request carries it (not empty).
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    for header in headers.get_all(axum::http::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((key, value)) = pair.trim().split_once('=')
                && key == name
                && !value.is_empty()
            {
                return Some(value.to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_issuers_may_not_share_subjects() {
        let settings = |second_prefix: &str| -> AuthSettings {
            serde_json::from_value(serde_json::json!({ "issuers": [
                { "issuer": "https://a.example", "audiences": ["x"] },
                { "issuer": "https://b.example", "audiences": ["x"], "subject_prefix": second_prefix },
            ]}))
            .unwrap()
        };
        let Err(error) = Authenticator::new(settings("")) else {
            panic!("both issuers without a prefix must be refused")
        };
        assert!(error.contains("subject_prefix"), "{error}");
        assert!(Authenticator::new(settings("b:")).is_ok());
    }

    #[test]
    fn sessions_read_scopes_from_scope_and_scp_and_roles_from_the_named_claim() {
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "sub": "1", "scope": "read:orders  write:orders", "scp": ["admin"],
            "groups": ["user", "beta"], "roles": "ignored"
        }))
        .unwrap();
        let session = Session::from_claims("https://id.example", "groups", claims);
        assert_eq!(session.subject.as_deref(), Some("1"));
        assert_eq!(session.scopes, ["read:orders", "write:orders", "admin"]);
        assert_eq!(session.roles, ["user", "beta"]);
    }

    #[test]
    fn jwks_keep_signing_keys_only_with_the_algorithms_their_type_allows() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "symmetric"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "lying", "alg": "RS256"},
            {"kty": "what", "kid": "unknown"}
        ]});
        let keys = parse_jwks(&jwks);
        let kids: Vec<_> = keys.iter().map(|key| key.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["ed"]);
        assert_eq!(keys[0].algorithms, [Algorithm::EdDSA]);
    }

    /// A token verified once is taken on trust only while it is in time and the keys that
    /// verified it are still the issuer's.
    #[tokio::test]
    async fn verified_tokens_are_reused_only_in_time_and_under_the_same_keys() {
        let (pem, jwks) = polygraph_subgraph_core::claims::Signer::generate_pem();
        let signer = polygraph_subgraph_core::claims::Signer::from_pem(&pem).unwrap();
        let settings: AuthSettings = serde_json::from_value(serde_json::json!({
            "issuers": [{ "issuer": "polygraph-gateway", "audiences": ["polygraph"] }],
            "leeway_seconds": 0,
        }))
        .unwrap();
        let authenticator = Authenticator::new(settings).unwrap();
        let install = |jwks: &Value| {
            authenticator.issuers[0].keys.store(Arc::new(KeySet {
                keys: parse_jwks(jwks),
            }));
        };
        install(&jwks);
        let claims = serde_json::json!({ "sub": "7" });
        let token = signer.sign(
            "polygraph",
            claims.as_object().unwrap(),
            Duration::from_secs(2),
        );
        let first = authenticator.authenticate(&token).await.unwrap();
        let again = authenticator.authenticate(&token).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second time from what was verified"
        );
        // The key withdrawn: the token no longer verifies, remembered or not.
        install(&serde_json::json!({ "keys": [] }));
        assert!(authenticator.authenticate(&token).await.is_err());
        install(&jwks);
        assert!(authenticator.authenticate(&token).await.is_ok());
        // Past its expiry, a remembered token is refused like any other.
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let Err(error) = authenticator.authenticate(&token).await else {
            panic!("an expired token was taken on trust");
        };
        assert_eq!(error.message, "the token has expired");
    }

    #[test]
    fn tokens_come_from_bearer_headers_or_the_named_cookie() {
        use axum::http::{HeaderMap, HeaderValue, header};
        let mut headers = HeaderMap::new();
        assert_eq!(token_of(&headers, Some("jwt")), Ok(None));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; jwt=abc.def.ghi"),
        );
        assert_eq!(
            token_of(&headers, Some("jwt")),
            Ok(Some("abc.def.ghi".into()))
        );
        assert_eq!(token_of(&headers, None), Ok(None));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer x.y.z"),
        );
        assert_eq!(token_of(&headers, Some("jwt")), Ok(Some("x.y.z".into())));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYXNz"),
        );
        assert!(token_of(&headers, None).is_err());
    }
}
