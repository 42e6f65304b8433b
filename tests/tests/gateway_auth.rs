//! Security at the edge, end to end: tokens from the real OpenID provider `scripts/dev up oidc`
//! runs (oidc-provider, client credentials), the gateway checking them against the provider's
//! JWKS found by discovery, the demo supergraph with security directives and Rego policies,
//! and the PostgreSQL subgraph trusting only the gateway's signed claims.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::oidc::{issuer, token};
use common::{endpoints, repo_root, serve};
use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::supergraph::Supergraph;
use polygraph_subgraph_core::claims::{HEADER, Signer, Verifier};
use polygraph_subgraph_core::server::{self, Trust};
use serde_json::{Value, json};

async fn alice() -> String {
    token("alice", "polygraph-demo-secret-alice").await
}

async fn admin() -> String {
    token("admin", "polygraph-demo-secret-admin").await
}

/// The demo supergraph with security directives added: `users_by_pk` needs a token and a
/// user's email the `admin` scope; `update_products` has the demo's own `shop.admin.write`
/// policy (policies/shop/admin.rego).
fn secured_supergraph() -> String {
    use polygraph_testkit::security::{Spec, apply, link};
    let sdl = std::fs::read_to_string(repo_root().join("schema/supergraph.graphql")).unwrap();
    let mut sdl = link(&sdl, &[Spec::Authenticated, Spec::RequiresScopes]);
    apply(&mut sdl, "  users_by_pk(", " @authenticated");
    apply(
        &mut sdl,
        "  email: String! @join__field(graph: POSTGRES)",
        " @requiresScopes(scopes: [[\"admin\"]])",
    );
    assert!(
        sdl.contains(
            "update_products(where: ProductBoolExp!, _set: ProductSetInput!): ProductMutationResponse! @join__field(graph: POSTGRES) @policy(policies: [[\"shop.admin.write\"]])"
        ),
        "the demo's own config guards update_products with its policy"
    );
    sdl
}

struct Stack {
    url: String,
    subgraph_url: String,
    client: reqwest::Client,
    signer_jwks: Value,
    gateway: Arc<Gateway>,
    _dir: tempfile::TempDir,
}

async fn start_stack(adjust: impl FnOnce(&mut Settings)) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let (pem, jwks) = Signer::generate_pem();
    std::fs::write(dir.path().join("gateway.pem"), pem).unwrap();

    let mut config =
        polygraph_subgraph_postgres::Config::from_file(&repo_root().join("config/postgres.yaml"))
            .unwrap();
    config.tables["orders"].rule = Some("user_id = claims.sub".into());
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let postgres = polygraph_subgraph_postgres::Subgraph::with_pool(&config, pool)
        .await
        .unwrap();
    let trust = Trust {
        verifier: Some(Verifier::new(&jwks, "postgres").unwrap()),
        require_gateway_token: true,
        ..Trust::default()
    };
    let subgraph = serve(server::app(server::share(postgres.served()), trust)).await;

    let yaml = format!(
        "authentication:\n  issuers: [{{ issuer: '{}', audiences: [polygraph] }}]\n  leeway_seconds: 0\n  unknown_kid_refresh_seconds: 1\nauthorization: {{ policies: '{}' }}\nclaims: {{ signing_key_file: '{}' }}\n",
        issuer(),
        repo_root().join("policies").display(),
        dir.path().join("gateway.pem").display(),
    );
    let mut settings: Settings = serde_yaml::from_str(&yaml).unwrap();
    settings
        .subgraph_urls
        .insert("postgres".into(), format!("http://{subgraph}/graphql"));
    adjust(&mut settings);
    let gateway = Arc::new(
        Gateway::new(Supergraph::parse(&secured_supergraph()).unwrap(), settings).unwrap(),
    );
    gateway.start().await;
    let address = serve(polygraph_gateway::http::app(gateway.clone())).await;
    Stack {
        url: format!("http://{address}/graphql"),
        subgraph_url: format!("http://{subgraph}/graphql"),
        client: reqwest::Client::new(),
        signer_jwks: jwks,
        gateway,
        _dir: dir,
    }
}

impl Stack {
    async fn post(&self, query: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.post(&self.url).json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|error| {
            error["extensions"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

async fn product_name(stack: &Stack) -> String {
    let (_, body) = stack
        .post(r#"{ products(where: {id: {_eq: "1"}}) { name } }"#, None)
        .await;
    body["data"]["products"][0]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

#[tokio::test]
async fn anonymous_and_unauthorized_writes_change_nothing() {
    let stack = start_stack(|_| {}).await;
    let before = product_name(&stack).await;
    let update = r#"mutation { update_products(where: {id: {_eq: "1"}}, _set: {name: "changed by anonymous"}) { affected_rows } }"#;
    let (status, body) = stack.post(update, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(codes(&body), ["UNAUTHENTICATED"]);
    assert!(body.get("data").is_none(), "{body}");

    // Signed in, but the policy wants an administrator.
    let (status, body) = stack.post(update, Some(&alice().await)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(codes(&body), ["UNAUTHORIZED_FIELD_OR_TYPE"]);
    assert_eq!(body["errors"][0]["path"], json!(["update_products"]));
    assert_eq!(product_name(&stack).await, before, "nothing was written");

    // The administrator may, but not with an empty `where`.
    let admin = admin().await;
    let everything = format!(
        r#"mutation {{ update_products(where: {{}}, _set: {{name: "{before}"}}) {{ affected_rows }} }}"#
    );
    let (_, body) = stack.post(&everything, Some(&admin)).await;
    assert_eq!(codes(&body), ["UNAUTHORIZED_FIELD_OR_TYPE"], "{body}");
    let same = format!(
        r#"mutation {{ update_products(where: {{id: {{_eq: "1"}}}}, _set: {{name: "{before}"}}) {{ affected_rows }} }}"#
    );
    let (status, body) = stack.post(&same, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["update_products"]["affected_rows"], 1,
        "{body}"
    );

    // The demo's order policy: users place orders for themselves only, in every form.
    let alice = alice().await;
    // Counted in the database: through the gateway the orders' row rule would hide them.
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let orders_of_bob = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders WHERE user_id = 2")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = orders_of_bob().await;
    for placing in [
        r#"mutation { insert_orders_one(object: {user_id: "2", status: "pending", total: 1}) { id } }"#,
        r#"mutation { insert_orders(objects: [{user_id: "1", status: "pending", total: 1}, {user_id: "2", status: "pending", total: 1}]) { affected_rows } }"#,
    ] {
        let (status, body) = stack.post(placing, Some(&alice)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(codes(&body), ["UNAUTHORIZED_FIELD_OR_TYPE"], "{body}");
    }
    assert_eq!(orders_of_bob().await, before, "nothing was written");
}

#[tokio::test]
async fn each_caller_sees_exactly_what_the_directives_allow() {
    let stack = start_stack(|_| {}).await;
    let query = r#"{ products(limit: 1) { id } users_by_pk(id: "1") { id email } }"#;

    let (status, body) = stack.post(query, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["products"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"]["users_by_pk"], Value::Null);
    assert_eq!(codes(&body), ["UNAUTHORIZED_FIELD_OR_TYPE"]);
    assert_eq!(body["errors"][0]["path"], json!(["users_by_pk"]));

    // Alice is signed in but lacks the admin scope: the user is there, the email is not (it is
    // non-null, so the user becomes null with the error at the email).
    let (_, body) = stack.post(query, Some(&alice().await)).await;
    assert_eq!(codes(&body), ["UNAUTHORIZED_FIELD_OR_TYPE"], "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["users_by_pk", "email"]));
    assert_eq!(body["data"]["users_by_pk"], Value::Null);

    let (_, body) = stack.post(query, Some(&admin().await)).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(
        body["data"]["users_by_pk"]["email"]
            .as_str()
            .unwrap()
            .contains('@')
    );

    // Aliases and fragments reach the same field and are denied alike.
    let sneaky = r#"{ u: users_by_pk(id: "1") { ...F } } fragment F on User { id mail: email }"#;
    let (_, body) = stack.post(sneaky, Some(&alice().await)).await;
    assert_eq!(body["errors"][0]["path"], json!(["u", "mail"]), "{body}");
    assert_eq!(body["data"]["u"], Value::Null);
}

#[tokio::test]
async fn row_rules_hold_through_the_gateway_for_each_caller() {
    let stack = start_stack(|_| {}).await;
    let query = "{ orders(limit: 500) { user_id } }";
    let (_, body) = stack.post(query, Some(&alice().await)).await;
    let orders = body["data"]["orders"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(!orders.is_empty(), "{body}");
    assert!(orders.iter().all(|order| order["user_id"] == "1"), "{body}");

    let bob = token("bob", "polygraph-demo-secret-bob").await;
    let (_, body) = stack.post(query, Some(&bob)).await;
    let orders = body["data"]["orders"].as_array().unwrap();
    assert!(orders.iter().all(|order| order["user_id"] == "2"), "{body}");

    // Anonymous: the gateway's claims name nobody, so no row of the ruled table matches.
    let (_, body) = stack.post(query, None).await;
    assert_eq!(body["data"]["orders"], json!([]), "{body}");
}

/// `header.payload.signature` of a token, with one part replaced.
fn with_part(token: &str, index: usize, part: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    part.clone_into(&mut parts[index]);
    parts.join(".")
}

fn encode(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_tokens_are_refused_with_401() {
    let stack = start_stack(|_| {}).await;
    let good = alice().await;
    let parts: Vec<&str> = good.split('.').collect();
    let payload = decode(parts[1]);
    let mut attacks: Vec<(&str, String)> = Vec::new();

    attacks.push((
        "alg none",
        format!(
            "{}.{}.",
            encode(&json!({"alg": "none", "typ": "JWT"})),
            parts[1]
        ),
    ));
    // HS256 with the issuer's published key as the secret: algorithm confusion.
    let jwks: Value = reqwest::get(format!("{}/jwks", issuer()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(jwks.to_string().as_bytes()),
    )
    .unwrap();
    attacks.push(("HS256 with the public key", confused));
    let mut richer = payload.clone();
    richer["sub"] = json!("2");
    attacks.push(("tampered payload", with_part(&good, 1, &encode(&richer))));
    let mut header = decode(parts[0]);
    header["kid"] = json!("a-key-nobody-published");
    attacks.push(("unknown kid", with_part(&good, 0, &encode(&header))));
    let mut foreign = payload.clone();
    foreign["iss"] = json!("http://127.0.0.1:1");
    attacks.push(("wrong issuer", with_part(&good, 1, &encode(&foreign))));
    attacks.push(("garbage", "not.a.token".to_owned()));
    let short = token("short-lived", "polygraph-demo-secret-short").await;
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    attacks.push(("expired", short));

    for (name, token) in &attacks {
        let (status, body) = stack
            .post("{ products(limit: 1) { id } }", Some(token))
            .await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(codes(&body), ["INVALID_TOKEN"], "{name}: {body}");
        assert!(body.get("data").is_none(), "{name}: {body}");
    }

    // A gateway that expects another audience refuses the provider's real tokens.
    let elsewhere = start_stack(|settings: &mut Settings| {
        settings.authentication.issuers[0].audiences = vec!["another-api".into()];
    })
    .await;
    let (status, body) = elsewhere
        .post("{ products(limit: 1) { id } }", Some(&good))
        .await;
    assert_eq!(status, 401, "wrong audience: {body}");

    // The real token still works.
    let (status, body) = stack
        .post("{ products(limit: 1) { id } }", Some(&good))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_subgraph_is_no_back_door() {
    let stack = start_stack(|_| {}).await;
    let client = reqwest::Client::new();
    let ask = |token: Option<String>| {
        let mut request = client
            .post(&stack.subgraph_url)
            .json(&json!({ "query": "{ products(limit: 1) { id } }" }));
        if let Some(token) = token {
            request = request.header(HEADER, token);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, body) = ask(None).await;
    assert_eq!(status, 401, "no gateway token: {body}");
    // A client's own token, or a gateway token for another subgraph, is no gateway token.
    let (status, _) = ask(Some(alice().await)).await;
    assert_eq!(status, 401);
    let forged = Signer::generate().sign(
        "postgres",
        json!({"sub": "1"}).as_object().unwrap(),
        std::time::Duration::from_mins(1),
    );
    let (status, _) = ask(Some(forged)).await;
    assert_eq!(status, 401);
    assert_eq!(stack.signer_jwks["keys"][0]["kty"], "OKP");

    // A client-sent claims header through the gateway is not forwarded: alice stays alice.
    let (_, body) = stack
        .client
        .post(&stack.url)
        .bearer_auth(alice().await)
        .header(HEADER, "forged")
        .json(&json!({ "query": "{ orders(limit: 50) { user_id } }" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|body| (0, body))
        .unwrap();
    let orders = body["data"]["orders"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(orders.iter().all(|order| order["user_id"] == "1"), "{body}");
}

#[test]
fn a_supergraph_with_an_unknown_security_spec_does_not_load() {
    let sdl = secured_supergraph().replace(
        "https://specs.apollo.dev/policy/v0.1",
        "https://specs.example.com/rowsecurity/v0.1",
    );
    let error = Supergraph::parse(&sdl).unwrap_err().to_string();
    assert!(
        error.contains("https://specs.example.com/rowsecurity/v0.1"),
        "{error}"
    );
}

/// POSTs `query` (with `token`) and returns the `x-polygraph-cache` header and the body.
async fn cached(stack: &Stack, query: &str, token: Option<&str>) -> (Option<String>, Value) {
    let mut request = stack
        .client
        .post(&stack.url)
        .json(&json!({ "query": query }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let marker = response
        .headers()
        .get("x-polygraph-cache")
        .map(|value| value.to_str().unwrap().to_owned());
    (marker, response.json().await.unwrap())
}

async fn invalidate(stack: &Stack, body: &Value, token: Option<&str>) -> (u16, Value) {
    let url = stack.url.replace("/graphql", "/admin/cache/invalidate");
    let mut request = stack.client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn answers_are_cached_in_redis_per_principal_and_dropped_by_writes_and_admins() {
    let mut redis = common::redis::OwnRedis::start();
    let url = redis.url();
    let caching = |settings: &mut Settings| {
        settings.redis.url = Some(url.clone());
        settings.response_cache.enabled = true;
        settings.response_cache.private = true;
        settings.cache_admin = polygraph_gateway::gateway::Access::Scope("admin".into());
    };
    let stack = start_stack(caching).await;
    let products = r#"{ products(where: {id: {_eq: "1"}}) { id name } }"#;
    let (marker, first) = cached(&stack, products, None).await;
    assert_eq!(marker.as_deref(), Some("miss"), "{first}");
    let (marker, again) = cached(&stack, products, None).await;
    assert_eq!((marker.as_deref(), &again), (Some("hit"), &first));
    // Keyed by the operation, not its text: other spacing, a comment, or GET, find it too.
    let respaced = "# the first product\n{products(where:{id:{_eq:\"1\"}}){id,name}}";
    let (marker, same) = cached(&stack, respaced, None).await;
    assert_eq!((marker.as_deref(), &same), (Some("hit"), &first));
    let by_get = stack
        .client
        .get(&stack.url)
        .query(&[("query", products)])
        .send()
        .await
        .unwrap();
    assert_eq!(by_get.headers()["x-polygraph-cache"], "hit");
    assert_eq!(by_get.json::<Value>().await.unwrap(), first);
    // Another replica on the same Redis has it too.
    let replica = start_stack(caching).await;
    let (marker, shared) = cached(&replica, products, None).await;
    assert_eq!((marker.as_deref(), &shared), (Some("hit"), &first));

    // Each principal's rows under its own key: never another's.
    let orders = "{ orders(limit: 3, order_by: {id: ASC}) { id user_id } }";
    let (alice, admin) = (alice().await, admin().await);
    let bob = token("bob", "polygraph-demo-secret-bob").await;
    let (marker, alices) = cached(&stack, orders, Some(&alice)).await;
    assert_eq!(marker.as_deref(), Some("miss"), "{alices}");
    let (marker, bobs) = cached(&stack, orders, Some(&bob)).await;
    assert_eq!(marker.as_deref(), Some("miss"), "{bobs}");
    assert_eq!(alices["data"]["orders"][0]["user_id"], "1", "{alices}");
    assert_eq!(bobs["data"]["orders"][0]["user_id"], "2", "{bobs}");
    assert_eq!(
        cached(&stack, orders, Some(&alice)).await,
        (Some("hit".into()), alices.clone())
    );
    // A fresh token for the same caller finds it too.
    let alice_again = token("alice", "polygraph-demo-secret-alice").await;
    assert_eq!(
        cached(&stack, orders, Some(&alice_again)).await,
        (Some("hit".into()), alices.clone())
    );
    assert_eq!(
        cached(&stack, orders, Some(&bob)).await,
        (Some("hit".into()), bobs)
    );
    // Anonymous callers do not get the signed-in callers' answers.
    let (marker, anonymous) = cached(&stack, orders, None).await;
    assert_ne!(marker.as_deref(), Some("hit"), "{anonymous}");

    // A write through the gateway drops the answers holding what it returns.
    let name = first["data"]["products"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let same = format!(
        r#"mutation {{ update_products(where: {{id: {{_eq: "1"}}}}, _set: {{name: "{name}"}}) {{ affected_rows returning {{ id }} }} }}"#
    );
    let (status, body) = stack.post(&same, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    let (marker, _) = cached(&stack, products, None).await;
    assert_eq!(marker.as_deref(), Some("miss"), "the write dropped it");

    // The admin endpoint: not for anonymous callers or callers without the scope.
    let (status, _) = invalidate(&stack, &json!({ "type": "Product" }), None).await;
    assert_eq!(status, 401);
    let (status, _) = invalidate(&stack, &json!({ "type": "Product" }), Some(&alice)).await;
    assert_eq!(status, 403);
    let (status, body) = invalidate(&stack, &json!({ "type": "Product" }), Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["dropped"].as_u64().unwrap() >= 1, "{body}");
    let (marker, _) = cached(&replica, products, None).await;
    assert_eq!(marker.as_deref(), Some("miss"), "dropped in Redis too");
    let (status, _) = invalidate(&stack, &json!({}), Some(&admin)).await;
    assert_eq!(status, 200);
    let (marker, _) = cached(&stack, orders, Some(&alice)).await;
    assert_eq!(marker.as_deref(), Some("miss"), "everything was dropped");

    // Redis down: the same answers, from memory or the subgraphs; nothing reaches the client.
    redis.stop();
    for _ in 0..3 {
        let (_, body) = cached(&stack, products, None).await;
        assert_eq!(body, first);
        let (_, body) = cached(&replica, orders, Some(&alice)).await;
        assert_eq!(body, alices);
    }
}

#[tokio::test]
async fn a_cached_answer_lives_no_longer_than_its_ttl() {
    let redis = common::redis::OwnRedis::start();
    let url = redis.url();
    let stack = start_stack(|settings| {
        settings.redis.url = Some(url);
        settings.response_cache.enabled = true;
        settings.response_cache.max_ttl_seconds = 1;
    })
    .await;
    let products = r#"{ products(where: {id: {_eq: "2"}}) { id name } }"#;
    assert_eq!(
        cached(&stack, products, None).await.0.as_deref(),
        Some("miss")
    );
    assert_eq!(
        cached(&stack, products, None).await.0.as_deref(),
        Some("hit")
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        cached(&stack, products, None).await.0.as_deref(),
        Some("miss")
    );
}

/// The entity cache keeps root fetches per caller too: alice's and bob's orders (rows the
/// subgraph filters by `claims.sub`) are kept apart, and each repeat gets the caller's own.
#[tokio::test]
async fn root_fetches_are_kept_per_principal() {
    let redis = common::redis::OwnRedis::start();
    let url = redis.url();
    let stack = start_stack(|settings| {
        settings.redis.url = Some(url);
        settings.entity_cache.enabled = true;
        settings.entity_cache.default_ttl_seconds = Some(60);
    })
    .await;
    let orders = "{ orders(limit: 3, order_by: {id: ASC}) { id user_id } }";
    let (alice, bob) = (
        alice().await,
        token("bob", "polygraph-demo-secret-bob").await,
    );
    let (_, alices) = cached(&stack, orders, Some(&alice)).await;
    let (_, bobs) = cached(&stack, orders, Some(&bob)).await;
    assert_eq!(alices["data"]["orders"][0]["user_id"], "1", "{alices}");
    assert_eq!(bobs["data"]["orders"][0]["user_id"], "2", "{bobs}");
    for _ in 0..2 {
        assert_eq!(cached(&stack, orders, Some(&bob)).await.1, bobs);
        assert_eq!(cached(&stack, orders, Some(&alice)).await.1, alices);
    }
    let (_, anonymous) = cached(&stack, orders, None).await;
    assert_ne!(anonymous, alices);
    assert_ne!(anonymous, bobs);
    // Kept once per caller and found on every repeat.
    assert_eq!(stack.gateway.entities().root_counts(), (4, 3));
}

/// `polygraph cache invalidate` drops a type, or one entity of it, through the admin endpoint
/// with the admin's token; a key that is not a JSON object is refused before anything is sent.
/// (Two worker threads: the CLI runs as a blocking child process while the gateway answers it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_invalidates_by_type_and_key() {
    let redis = common::redis::OwnRedis::start();
    let url = redis.url();
    let stack = start_stack(|settings| {
        settings.redis.url = Some(url);
        settings.response_cache.enabled = true;
        // The dev provider's admin has the `admin` scope.
        settings.cache_admin = polygraph_gateway::gateway::Access::Scope("admin".into());
    })
    .await;
    let products = r#"{ products(where: {id: {_eq: "3"}}) { id name } }"#;
    let admin = admin().await;
    let gateway = stack.url.trim_end_matches("/graphql").to_owned();
    let cli = |extra: &[&str]| {
        let output = std::process::Command::new(common::polygraph_binary())
            .args([
                "cache",
                "invalidate",
                "--gateway",
                &gateway,
                "--token",
                &admin,
            ])
            .args(extra)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for extra in [
        &["--type", "Product"][..],
        &["--type", "Product", "--key", r#"{"id": "3"}"#][..],
    ] {
        assert_eq!(
            cached(&stack, products, None).await.0.as_deref(),
            Some("miss")
        );
        assert_eq!(
            cached(&stack, products, None).await.0.as_deref(),
            Some("hit")
        );
        let (ok, out, err) = cli(extra);
        assert!(ok, "{extra:?}: {out} {err}");
        let answer: Value = serde_json::from_str(&out).unwrap();
        assert!(answer["dropped"].as_u64().unwrap() >= 1, "{answer}");
    }
    let (ok, _, err) = cli(&["--type", "Product", "--key", "3"]);
    assert!(!ok);
    assert!(err.contains("--key must be a JSON object"), "{err}");
    let (ok, _, _) = cli(&["--key", r#"{"id": "3"}"#]);
    assert!(!ok, "a key needs a type");
}
