//! The dev OpenID provider `scripts/dev up oidc` runs: where it is and its tokens.

use serde_json::Value;

/// The provider's issuer URL.
pub fn issuer() -> String {
    std::env::var("POLYGRAPH_OIDC_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:54080".into())
}

/// A token for a demo identity, from the provider's token endpoint (found by discovery).
pub async fn token(identity: &str, secret: &str) -> String {
    let client = reqwest::Client::new();
    let discovery: Value = client
        .get(format!("{}/.well-known/openid-configuration", issuer()))
        .send()
        .await
        .unwrap_or_else(|error| {
            panic!("the OpenID provider is down ({error}); scripts/dev up oidc")
        })
        .json()
        .await
        .unwrap();
    let endpoint = discovery["token_endpoint"].as_str().unwrap();
    let answer: Value = client
        .post(endpoint)
        .basic_auth(identity, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "scope",
                "read:orders write:orders read:features write:features admin",
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token for {identity}: {answer}"))
        .to_owned()
}
