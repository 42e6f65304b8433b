//! Claims the gateway vouches for: who the request is for (`sub`, roles, tenant …), carried to
//! subgraphs in one header as a short-lived HS256 JSON Web Token signed with a key the gateway
//! and the subgraph share. Subgraphs verify it and apply their row rules with its claims.
//!
//! A token is accepted only if its signature verifies with the shared key, it names the
//! gateway as issuer, and it has not expired (a little clock skew allowed). Anything else in
//! the header — a forged signature, another algorithm, an expired token, garbage — rejects the
//! request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

/// The header the gateway puts the token in.
pub const HEADER: &str = "x-polygraph-claims";
/// The issuer every token must name.
pub const ISSUER: &str = "polygraph-gateway";

/// Verified claims of one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// A claim's value by name (`sub`, `tenant`, …).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

/// The claims of the request being resolved: `None` when it carried no header.
#[derive(Clone, Debug, Default)]
pub struct RequestClaims(pub Option<Claims>);

/// Why a claims header was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid claims header: {0}")]
pub struct ClaimsError(pub String);

/// Verifies claims headers with the shared key.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Verifier { key: *** }")
    }
}

impl Verifier {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_aud = false;
        // A token the gateway dates in the future (`nbf`) is not good yet.
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ClaimsError> {
        jsonwebtoken::decode::<Map<String, Value>>(token.trim(), &self.key, &self.validation)
            .map(|data| Claims(data.claims))
            .map_err(|error| ClaimsError(error.to_string()))
    }
}

/// Signs `claims` for `ttl` with the shared key, as the gateway does.
pub fn sign(secret: &[u8], claims: &Map<String, Value>, ttl: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut claims = claims.clone();
    claims.insert("iss".into(), Value::from(ISSUER));
    claims.insert("iat".into(), Value::from(now.as_secs()));
    claims.insert("exp".into(), Value::from((now + ttl).as_secs()));
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of a JSON map cannot fail")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims() -> Map<String, Value> {
        json!({ "sub": "7", "roles": ["user"] })
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn signed_tokens_verify() {
        let token = sign(b"secret", &claims(), Duration::from_mins(1));
        let verified = Verifier::new(b"secret").verify(&token).unwrap();
        assert_eq!(verified.get("sub"), Some(&json!("7")));
    }

    #[test]
    fn forged_expired_and_foreign_tokens_fail() {
        let verifier = Verifier::new(b"secret");
        let forged = sign(b"another key", &claims(), Duration::from_mins(1));
        assert!(verifier.verify(&forged).is_err());

        let mut expired = claims();
        expired.insert("iss".into(), json!(ISSUER));
        expired.insert("exp".into(), json!(1_000_000));
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(verifier.verify(&expired).is_err());

        let mut foreign = claims();
        foreign.insert("iss".into(), json!("someone else"));
        foreign.insert("exp".into(), json!(u64::MAX / 2));
        let foreign = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &foreign,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(verifier.verify(&foreign).is_err());

        let mut early = claims();
        early.insert("iss".into(), json!(ISSUER));
        early.insert("exp".into(), json!(u64::MAX / 2));
        early.insert("nbf".into(), json!(u64::MAX / 4));
        let early = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &early,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(verifier.verify(&early).is_err(), "not valid before nbf");

        assert!(verifier.verify("not a token").is_err());
        // Tampering with the payload breaks the signature.
        let token = sign(b"secret", &claims(), Duration::from_mins(1));
        let mut parts: Vec<&str> = token.split('.').collect();
        let tampered_payload = { parts[1].chars().rev().collect::<String>() };
        parts[1] = &tampered_payload;
        assert!(verifier.verify(&parts.join(".")).is_err());
    }
}
