//! The gateway's own costs, each beside its floor in the same run:
//! - planning the deep benchmark query cold (lower, plan) and from the plan cache, against
//!   apollo-compiler parsing and validating it (what any gateway pays first);
//! - a whole request through the gateway over the four benchmark subgraphs on loopback, against
//!   the plan's biggest subgraph fetch sent directly with the same HTTP client;
//! - what sign-in and authorization add: the same request over HTTP to a gateway that verifies
//!   a bearer token (Ed25519, keys from a JWKS URL) and checks `@authenticated` and `@policy`
//!   (a Rego rule) on fields the query selects hundreds of times, against a gateway without
//!   either, both with cached plans, requests interleaved.
//!
//! Prints `ratio` lines: gateway time over floor time.

/// mimalloc, as the `polygraph` binary uses: planning and execution are measured
/// with the allocator the served process has.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apollo_compiler::ExecutableDocument;
use apollo_compiler::response::JsonMap;
use criterion::{Criterion, criterion_group, criterion_main};
use polygraph_gateway::gateway::{Gateway, Options, Request, Settings};
use polygraph_gateway::supergraph::Supergraph;
use polygraph_testkit::federation::{NAMES, subgraph};

const QUERY: &str = include_str!("../load/query.graphql");
const SUPERGRAPH: &str = include_str!("../federation/supergraph.graphql");

fn time<F: FnMut()>(iterations: u32, mut work: F) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        work();
    }
    started.elapsed() / iterations
}

fn planning(c: &mut Criterion) {
    let supergraph = Supergraph::parse(SUPERGRAPH).unwrap();
    let api = supergraph.api_schema.clone();
    let mut group = c.benchmark_group("plan_deep_query");
    group.bench_function("parse_and_validate (floor)", |b| {
        b.iter(|| ExecutableDocument::parse_and_validate(&api, QUERY, "q.graphql").unwrap());
    });
    let document = ExecutableDocument::parse_and_validate(&api, QUERY, "q.graphql").unwrap();
    let operation = document.operations.get(None).unwrap().clone();
    group.bench_function("lower_and_plan (cold)", |b| {
        b.iter(|| {
            let normalized = polygraph_gateway::operation::normalize(
                &supergraph.schema,
                &document,
                &operation,
                &JsonMap::new(),
            );
            polygraph_gateway::plan::plan(&supergraph, &normalized).unwrap()
        });
    });
    let gateway =
        Gateway::new(Supergraph::parse(SUPERGRAPH).unwrap(), Settings::default()).unwrap();
    gateway.explain(QUERY, None).unwrap();
    group.bench_function("cached", |b| {
        b.iter(|| gateway.explain(QUERY, None).unwrap());
    });
    group.finish();

    let floor = time(200, || {
        ExecutableDocument::parse_and_validate(&api, QUERY, "q.graphql").unwrap();
    });
    let cold = time(200, || {
        let normalized = polygraph_gateway::operation::normalize(
            &supergraph.schema,
            &document,
            &operation,
            &JsonMap::new(),
        );
        polygraph_gateway::plan::plan(&supergraph, &normalized).unwrap();
    });
    println!(
        "ratio plan_deep_query/cold over parse_and_validate: {:.2}",
        cold.as_secs_f64() / floor.as_secs_f64()
    );
}

/// The runtime requests run on: two workers, as the machine has two cores.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The four benchmark subgraphs on loopback: their URLs by name.
async fn spawn_subgraphs() -> HashMap<String, String> {
    let mut urls = HashMap::new();
    for name in NAMES {
        let address = subgraph(name)
            .unwrap()
            .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        urls.insert(name.to_owned(), format!("http://{address}/graphql"));
    }
    urls
}

fn execution(c: &mut Criterion) {
    let runtime = runtime();
    let (gateway, fetches) = runtime.block_on(async {
        let settings = Settings {
            subgraph_urls: spawn_subgraphs().await,
            ..Settings::default()
        };
        let urls = settings.subgraph_urls.clone();
        let gateway =
            Arc::new(Gateway::new(Supergraph::parse(SUPERGRAPH).unwrap(), settings).unwrap());
        // The floor: the plan's biggest fetch (every user's nested reviews) sent directly.
        let reviews = urls["reviews"].clone();
        (gateway, reviews)
    });
    let client = reqwest::Client::new();
    let representations: Vec<serde_json::Value> = (1..=10)
        .map(|i| serde_json::json!({ "__typename": "User", "id": i.to_string() }))
        .collect();
    let direct_body = serde_json::json!({
        "query": "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { reviews { id body product { upc reviews { id body author { id username reviews { id body product { upc __typename } } __typename } } __typename } } } } }",
        "variables": { "representations": representations }
    });
    let mut group = c.benchmark_group("execute_deep_query");
    group.bench_function("gateway", |b| {
        b.to_async(&runtime).iter(|| {
            let gateway = gateway.clone();
            async move {
                let request = Request {
                    query: Some(QUERY.to_owned()),
                    ..Request::default()
                };
                let response = gateway.execute(request, Options::default()).await;
                assert!(response.errors.is_empty());
                response
            }
        });
    });
    group.bench_function("biggest fetch direct (floor)", |b| {
        b.to_async(&runtime).iter(|| {
            let client = client.clone();
            let body = direct_body.clone();
            let url = fetches.clone();
            async move {
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
            }
        });
    });
    group.finish();
}

/// The benchmark supergraph with sign-in required for users and a policy on `Query.users` and
/// `Product.price` (which `shippingEstimate` requires, so it is checked there too).
fn guarded_supergraph() -> String {
    use polygraph_testkit::security::{Spec, apply, link};
    let mut sdl = link(SUPERGRAPH, &[Spec::Authenticated, Spec::Policy]);
    apply(
        &mut sdl,
        "type User @join__type(graph: ACCOUNTS, key: \"id\")",
        " @authenticated",
    );
    apply(
        &mut sdl,
        "  users: [User!]! @join__field(graph: ACCOUNTS)",
        POLICY,
    );
    apply(&mut sdl, "  price: Int", POLICY);
    sdl
}

const POLICY: &str = " @policy(policies: [[\"bench.read\"]])";

const REGO: &str = "package bench\n\nimport rego.v1\n\ndefault read := false\n\nread if {\n\tinput.session.sub != null\n\t\"reader\" in input.session.roles\n}\n";

/// Latencies at the 50th and 99th percentiles of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// Three gateways over the same subgraphs: without sign-in or policies, with sign-in only,
/// and with both (policies in `folder`); and a token the last two accept.
struct Stacks {
    open: String,
    signed_in: String,
    guarded: String,
    token: String,
}

async fn auth_stacks(folder: &std::path::Path) -> Stacks {
    // The identity provider's keys, served as a JWKS; tokens signed with the private half.
    let (pem, jwks) = polygraph_subgraph_core::claims::Signer::generate_pem();
    let signer = polygraph_subgraph_core::claims::Signer::from_pem(&pem).unwrap();
    let claims = serde_json::json!({ "sub": "reader-1", "roles": ["reader"], "scope": "read" });
    let token = signer.sign(
        "polygraph",
        claims.as_object().unwrap(),
        Duration::from_hours(1),
    );
    let keys = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let jwks_url = format!("http://{}/jwks", serve(keys).await);
    let urls = spawn_subgraphs().await;
    let open = Settings {
        subgraph_urls: urls.clone(),
        ..Settings::default()
    };
    let mut guarded: Settings = serde_yaml::from_str(&format!(
        "authentication: {{ issuers: [{{ issuer: polygraph-gateway, jwks_url: '{jwks_url}', audiences: [polygraph] }}] }}\nauthorization: {{ policies: '{}' }}\n",
        folder.display()
    ))
    .unwrap();
    guarded.subgraph_urls = urls;
    let signed_in =
        Arc::new(Gateway::new(Supergraph::parse(SUPERGRAPH).unwrap(), guarded.clone()).unwrap());
    let open = Arc::new(Gateway::new(Supergraph::parse(SUPERGRAPH).unwrap(), open).unwrap());
    let guarded =
        Arc::new(Gateway::new(Supergraph::parse(&guarded_supergraph()).unwrap(), guarded).unwrap());
    signed_in.start().await;
    guarded.start().await;
    let at = |gateway: Arc<Gateway>| async move {
        let address = serve(polygraph_gateway::http::app(gateway)).await;
        format!("http://{address}/graphql")
    };
    Stacks {
        open: at(open).await,
        signed_in: at(signed_in).await,
        guarded: at(guarded).await,
        token,
    }
}

fn auth_overhead(c: &mut Criterion) {
    let runtime = runtime();
    let folder =
        std::env::temp_dir().join(format!("polygraph-bench-policies-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("bench.rego"), REGO).unwrap();
    let Stacks {
        open,
        signed_in,
        guarded,
        token,
    } = runtime.block_on(auth_stacks(&folder));
    let client = reqwest::Client::new();
    let body = serde_json::json!({ "query": QUERY }).to_string();
    let send = |url: &str, token: Option<&str>| {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().bytes().await.unwrap() }
    };
    // Both answer the whole query, the guarded one only because the token allows it.
    runtime.block_on(async {
        let anonymous = send(&guarded, None).await;
        let anonymous = String::from_utf8_lossy(&anonymous);
        assert!(
            anonymous.contains("UNAUTHORIZED_FIELD_OR_TYPE"),
            "{anonymous}"
        );
        let (open, guarded) = (send(&open, None).await, send(&guarded, Some(&token)).await);
        assert_eq!(open, guarded, "{}", String::from_utf8_lossy(&guarded));
    });

    let mut group = c.benchmark_group("auth_overhead");
    group.bench_function("without auth (floor)", |b| {
        b.to_async(&runtime).iter(|| send(&open, None));
    });
    group.bench_function("token and policies", |b| {
        b.to_async(&runtime).iter(|| send(&guarded, Some(&token)));
    });
    group.finish();

    // Percentiles over interleaved requests, so every side sees the same machine, each side
    // in each place of the round in turn (a request right after another pays differently).
    let sides = [
        (&open, None),
        (&signed_in, Some(&token)),
        (&guarded, Some(&token)),
    ];
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    runtime.block_on(async {
        for round in 0..3000 {
            for turn in 0..3 {
                let side = (round + turn) % 3;
                let (url, token) = sides[side];
                let started = Instant::now();
                send(url, token.map(String::as_str)).await;
                samples[side].push(started.elapsed());
            }
        }
    });
    let [without, signed, with] = samples;
    let (without_p50, without_p99) = percentiles(without);
    let (signed_p50, signed_p99) = percentiles(signed);
    let (with_p50, with_p99) = percentiles(with);
    println!(
        "ratio auth_overhead/p50 sign-in only over without: {:.3} (p99 {:.3})",
        signed_p50.as_secs_f64() / without_p50.as_secs_f64(),
        signed_p99.as_secs_f64() / without_p99.as_secs_f64()
    );
    println!(
        "auth_overhead p50: {with_p50:?} with, {without_p50:?} without; p99: {with_p99:?} with, {without_p99:?} without"
    );
    println!(
        "ratio auth_overhead/p50 with over without: {:.3}",
        with_p50.as_secs_f64() / without_p50.as_secs_f64()
    );
    println!(
        "ratio auth_overhead/p99 with over without: {:.3}",
        with_p99.as_secs_f64() / without_p99.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&folder);
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

criterion_group!(benches, planning, execution, auth_overhead);
criterion_main!(benches);
