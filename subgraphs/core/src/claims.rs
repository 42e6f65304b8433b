//! Claims the gateway vouches for: who the request is for (`sub`, roles, scopes, tenant …),
//! carried to each subgraph in one header as a short-lived JSON Web Token.
//!
//! The gateway signs with an Ed25519 key only it holds (`EdDSA`), and names the subgraph the
//! token is for in `aud`: subgraphs hold the public key only, so none of them can mint a token
//! another accepts, and a token sent to one subgraph is refused by every other. A token is
//! accepted only if its signature verifies with a key of the gateway's JWKS, it names the
//! gateway as issuer and this subgraph as audience, and it is within its validity (a little
//! clock skew allowed). Anything else in the header — a forged signature, another algorithm,
//! another audience, an expired token, garbage — rejects the request.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
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

    /// Whether the claims name someone (`sub`): anonymous requests carry claims without one.
    pub fn has_subject(&self) -> bool {
        self.get("sub").is_some_and(|sub| !sub.is_null())
    }
}

/// The claims of the request being resolved: `None` when it carried no header.
#[derive(Clone, Debug, Default)]
pub struct RequestClaims(pub Option<Claims>);

impl RequestClaims {
    /// The verified claims of the request a resolver is answering, if it carried any.
    pub fn of<'a>(ctx: &async_graphql::dynamic::ResolverContext<'a>) -> Option<&'a Claims> {
        ctx.ctx
            .data_opt::<RequestClaims>()
            .and_then(|claims| claims.0.as_ref())
    }
}

/// Why a claims header or key was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ClaimsError(pub String);

/// Verifies claims headers with the gateway's public keys, for one subgraph.
pub struct Verifier {
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Verifier {{ keys: {} }}", self.keys.len())
    }
}

impl Verifier {
    /// A verifier of tokens for `audience` (this subgraph's name in the supergraph), signed by
    /// one of the Ed25519 keys of `jwks` (a JWKS document).
    pub fn new(jwks: &Value, audience: &str) -> Result<Self, ClaimsError> {
        let mut keys = Vec::new();
        for key in jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| ClaimsError("the gateway's JWKS has no \"keys\" list".into()))?
        {
            let field = |name: &str| key.get(name).and_then(Value::as_str);
            if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
                continue;
            }
            let Some(x) = field("x") else { continue };
            let decoding = DecodingKey::from_ed_components(x)
                .map_err(|error| ClaimsError(format!("a key of the gateway's JWKS: {error}")))?;
            keys.push((field("kid").map(str::to_owned), decoding));
        }
        if keys.is_empty() {
            return Err(ClaimsError(
                "the gateway's JWKS has no Ed25519 signing key".into(),
            ));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // A token the gateway dates in the future (`nbf`) is not good yet.
        validation.validate_nbf = true;
        validation.leeway = 5;
        Ok(Self { keys, validation })
    }

    /// A verifier from a JWKS file, as `polygraph keys generate` writes it.
    pub fn from_file(path: &Path, audience: &str) -> Result<Self, ClaimsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ClaimsError(format!("reading {}: {error}", path.display())))?;
        let jwks: Value = serde_json::from_str(&text)
            .map_err(|error| ClaimsError(format!("{} is not JSON: {error}", path.display())))?;
        Self::new(&jwks, audience)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ClaimsError> {
        let token = token.trim();
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ClaimsError("not a signed JWT".into()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(ClaimsError(format!("{:?} is not accepted", header.alg)));
        }
        let mut last = ClaimsError("no key of the gateway verifies it".into());
        for (kid, key) in &self.keys {
            if header.kid.is_some() && header.kid != *kid {
                continue;
            }
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation) {
                Ok(data) => return Ok(Claims(data.claims)),
                Err(error) => last = ClaimsError(error.to_string()),
            }
        }
        Err(last)
    }
}

/// The gateway's signing key: an Ed25519 key pair, kept as PKCS#8.
pub struct Signer {
    key: EncodingKey,
    kid: String,
    /// The public key, base64url (the JWK's `x`).
    public: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Signer {{ kid: {} }}", self.kid)
    }
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

impl Signer {
    /// A new random key pair.
    pub fn generate() -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let document = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("the system's random source works");
        Self::from_pkcs8(document.as_ref()).expect("a key just generated is valid")
    }

    /// The key pair in PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, ClaimsError> {
        use aws_lc_rs::signature::KeyPair as _;
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(der)
            .map_err(|_| ClaimsError("not an Ed25519 private key in PKCS#8".into()))?;
        let public =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        // The key id is the start of the public key's hash: stable across restarts.
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public.as_bytes());
        let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12]);
        Ok(Self {
            key: EncodingKey::from_ed_der(der),
            kid,
            public,
        })
    }

    /// The key pair from a PEM file (`PRIVATE KEY`, PKCS#8).
    pub fn from_pem(text: &str) -> Result<Self, ClaimsError> {
        let body = text
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|rest| rest.trim_end().strip_suffix(PEM_END))
            .ok_or_else(|| ClaimsError("expected a PEM PRIVATE KEY".into()))?;
        let body: String = body.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| ClaimsError("the PEM body is not base64".into()))?;
        Self::from_pkcs8(&der)
    }

    /// A new key pair as PEM, and its public JWKS, as `polygraph keys generate` writes them.
    pub fn generate_pem() -> (String, Value) {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let document = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("the system's random source works");
        let encoded = base64::engine::general_purpose::STANDARD.encode(document.as_ref());
        let mut pem = String::from(PEM_BEGIN);
        pem.push('\n');
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        let signer = Self::from_pkcs8(document.as_ref()).expect("a key just generated is valid");
        (pem, signer.jwks())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS, for subgraphs to verify with.
    pub fn jwks(&self) -> Value {
        serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": self.public, "kid": self.kid,
            "alg": "EdDSA", "use": "sig"
        }]})
    }

    /// Signs `claims` for the subgraph `audience`, valid for `ttl`.
    pub fn sign(&self, audience: &str, claims: &Map<String, Value>, ttl: Duration) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut claims = claims.clone();
        claims.insert("iss".into(), Value::from(ISSUER));
        claims.insert("aud".into(), Value::from(audience));
        claims.insert("iat".into(), Value::from(now.as_secs()));
        claims.insert("exp".into(), Value::from((now + ttl).as_secs()));
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .expect("EdDSA signing of a JSON map cannot fail")
    }
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
    fn signed_tokens_verify_for_their_audience_only() {
        let signer = Signer::generate();
        let token = signer.sign("postgres", &claims(), Duration::from_mins(1));
        let verified = Verifier::new(&signer.jwks(), "postgres")
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(verified.get("sub"), Some(&json!("7")));
        assert!(verified.has_subject());
        let other = Verifier::new(&signer.jwks(), "mongodb").unwrap();
        assert!(
            other.verify(&token).is_err(),
            "replayed to another subgraph"
        );
    }

    #[test]
    fn pem_round_trips_and_keeps_its_key_id() {
        let (pem, jwks) = Signer::generate_pem();
        let signer = Signer::from_pem(&pem).unwrap();
        assert_eq!(signer.jwks(), jwks);
        let token = signer.sign("redis", &claims(), Duration::from_mins(1));
        assert!(
            Verifier::new(&jwks, "redis")
                .unwrap()
                .verify(&token)
                .is_ok()
        );
        assert!(
            Signer::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
    }

    #[test]
    fn forged_expired_foreign_and_symmetric_tokens_fail() {
        let signer = Signer::generate();
        let verifier = Verifier::new(&signer.jwks(), "postgres").unwrap();
        let forged = Signer::generate().sign("postgres", &claims(), Duration::from_mins(1));
        assert!(verifier.verify(&forged).is_err());

        let sign_raw = |claims: Value| {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(signer.kid().to_owned());
            jsonwebtoken::encode(&header, &claims, &signer.key).unwrap()
        };
        let expired =
            sign_raw(json!({ "sub": "7", "iss": ISSUER, "aud": "postgres", "exp": 1_000_000 }));
        assert!(verifier.verify(&expired).is_err());
        let foreign = sign_raw(
            json!({ "sub": "7", "iss": "someone else", "aud": "postgres", "exp": u64::MAX / 2 }),
        );
        assert!(verifier.verify(&foreign).is_err());
        let early = sign_raw(json!({
            "sub": "7", "iss": ISSUER, "aud": "postgres", "exp": u64::MAX / 2, "nbf": u64::MAX / 4
        }));
        assert!(verifier.verify(&early).is_err(), "not valid before nbf");
        let no_audience = sign_raw(json!({ "sub": "7", "iss": ISSUER, "exp": u64::MAX / 2 }));
        assert!(verifier.verify(&no_audience).is_err());

        // HS256 signed with the public key's bytes, the classic algorithm confusion.
        let public = signer.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({ "sub": "7", "iss": ISSUER, "aud": "postgres", "exp": u64::MAX / 2 }),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert!(verifier.verify(&confused).is_err());
        assert!(verifier.verify("not a token").is_err());

        // Tampering with the payload breaks the signature.
        let token = signer.sign("postgres", &claims(), Duration::from_mins(1));
        let mut parts: Vec<&str> = token.split('.').collect();
        let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            json!({ "sub": "1", "iss": ISSUER, "aud": "postgres", "exp": u64::MAX / 2 })
                .to_string(),
        );
        parts[1] = &tampered;
        assert!(verifier.verify(&parts.join(".")).is_err());
    }
}
