//! The harness of the subgraph fuzz targets: one of our database subgraphs, built from the
//! demo's configuration and the catalog its database gave (`fuzz/introspection/`, kept equal
//! to the live one by `gateway_databases::the_fuzz_targets_know_the_demo_databases`), its client pointed
//! at a port where nothing listens. Each input becomes one HTTP request to the subgraph's own
//! app: a generated operation (a query or a mutation, with hostile argument values), an
//! `_entities` query with hostile representations, or plain bytes as the query and its
//! variables; with no claims, claims the gateway signed (hostile values too), or a forged
//! header. Everything up to the database runs: body and claims checks, validation, variable
//! coercion, row rules, cursors, and the translation into the database's statement, which
//! then fails to connect. Oracles: no panic, no hang, a JSON answer, and no refusal of a
//! generated operation as invalid. `POLYGRAPH_FUZZ_ECHO=1` prints each request and answer.

use std::time::Duration;

use apollo_compiler::{Name, Schema};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use polygraph_subgraph_core::claims::{HEADER, Signer, Verifier};
use polygraph_subgraph_core::server::{self, Served, Trust};
use polygraph_testkit::operations::{Entropy, FromBytes, Shape, generate, generate_entities};
use serde_json::{Map, Value, json};
use tower::ServiceExt as _;

/// Where the subgraphs' clients point: a loopback port nothing listens on, so every
/// statement fails to connect at once.
pub const NOWHERE: &str = "127.0.0.1:9";

/// A subgraph under fuzzing.
pub struct Harness {
    name: &'static str,
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    /// The subgraph's schema, for generating operations.
    schema: Schema,
    /// Its entity types and their key fields.
    entities: Vec<(Name, Vec<String>)>,
    signer: Signer,
}

/// The repository's root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the subgraph `name`'s database said about itself, as `fuzz/introspection/` keeps it.
pub fn introspection<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = root().join(format!("fuzz/introspection/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The demo's configuration file of the subgraph `name`.
pub fn config(name: &str) -> std::path::PathBuf {
    root().join(format!("config/{name}.yaml"))
}

impl Harness {
    /// The harness of the subgraph `name` (its audience in the supergraph), built on a runtime
    /// of its own by `build` (which gets [`NOWHERE`]'s address).
    pub fn new<F>(name: &'static str, build: impl FnOnce() -> F) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<(Served, String)>>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (served, federation_sdl) = runtime
            .block_on(build())
            .unwrap_or_else(|error| panic!("building the {name} subgraph: {error:#}"));
        let plain_sdl = served.schema.sdl();
        let signer = Signer::generate();
        let trust = Trust {
            verifier: Some(Verifier::new(&signer.jwks(), name).expect("a fresh key verifies")),
            ..Trust::default()
        };
        let app = server::app(server::share(served), trust);
        let schema = match Schema::builder()
            .adopt_orphan_extensions()
            .parse(&plain_sdl, "subgraph.graphql")
            .build()
        {
            Ok(schema) => schema,
            Err(with_errors) => with_errors.partial,
        };
        let entities = entity_keys(&federation_sdl);
        assert!(
            !entities.is_empty() || !schema.types.contains_key("_Entity"),
            "the {name} subgraph's entities have no keys in its SDL"
        );
        Self {
            name,
            runtime,
            app,
            schema,
            entities,
            signer,
        }
    }

    /// One input: one request, its answer checked.
    pub fn run(&self, data: &[u8]) {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        let (claims, rest) = rest.split_first().map_or((0, rest), |(c, r)| (*c, r));
        let shape = Shape {
            depth: 4,
            width: 4,
            fields: 30,
            twins: false,
            mutation: mode & 0x10 != 0,
            hostile: true,
        };
        let mut entropy = FromBytes(rest);
        let (body, generated) = match mode % 3 {
            0 => {
                let operation = generate(&self.schema, &mut entropy, shape);
                (
                    json!({ "query": operation.query, "variables": operation.variables }),
                    Some(operation.query),
                )
            }
            1 if !self.entities.is_empty() => {
                let (body, query) = self.entities_request(&mut entropy, shape);
                (body, Some(query))
            }
            _ => (plain(rest), None),
        };
        let header = match claims % 3 {
            0 => None,
            1 => Some(self.signer.sign(
                self.name,
                &hostile_claims(&mut FromBytes(rest)),
                Duration::from_secs(60),
            )),
            // A forged header: what HTTP can carry of the bytes.
            _ => Some(
                rest.iter()
                    .take(256)
                    .filter(|byte| (b' '..=b'~').contains(*byte))
                    .map(|&byte| char::from(byte))
                    .collect(),
            ),
        };
        let (status, answer) = self.runtime.block_on(self.send(&body, header));
        if std::env::var_os("POLYGRAPH_FUZZ_ECHO").is_some() {
            eprintln!("{body}\n=> {status} {}\n", String::from_utf8_lossy(&answer));
        }
        let answer: Value = serde_json::from_slice(&answer).unwrap_or_else(|error| {
            panic!(
                "{} answered {status} with no JSON ({error}): {}",
                self.name,
                String::from_utf8_lossy(&answer)
            )
        });
        // async-graphql's validation errors carry neither a path nor a code; every error of
        // ours has a code.
        let refused = answer["errors"].as_array().is_some_and(|errors| {
            errors
                .iter()
                .any(|error| error.get("path").is_none() && error["extensions"]["code"].is_null())
        });
        if let Some(query) = generated.filter(|_| refused) {
            panic!(
                "{} refused a generated operation as invalid:\n{query}\n{answer}",
                self.name
            );
        }
    }

    /// An `_entities` query on some of the subgraph's entity types, with representations
    /// made of hostile key values.
    fn entities_request(&self, entropy: &mut FromBytes<'_>, shape: Shape) -> (Value, String) {
        let count = 1 + (entropy.next_u64() as usize % self.entities.len().min(3));
        let start = entropy.next_u64() as usize;
        let types: Vec<Name> = (0..count)
            .map(|at| self.entities[(start + at) % self.entities.len()].0.clone())
            .collect();
        let mut representations = Vec::new();
        for _ in 0..1 + entropy.next_u64() % 4 {
            let (ty, keys) = &self.entities[entropy.next_u64() as usize % self.entities.len()];
            let mut representation = Map::new();
            representation.insert("__typename".into(), Value::from(ty.as_str()));
            for key in keys {
                if entropy.next_u64() % 8 != 7 {
                    representation.insert(key.clone(), hostile_value(entropy));
                }
            }
            if entropy.next_u64() % 8 == 7 {
                representation.insert("$where".into(), hostile_value(entropy));
            }
            representations.push(Value::Object(representation));
        }
        let mut operation = generate_entities(&self.schema, &types, entropy, shape);
        operation
            .variables
            .insert("representations".into(), Value::Array(representations));
        (
            json!({ "query": operation.query, "variables": operation.variables }),
            operation.query,
        )
    }

    async fn send(&self, body: &Value, claims: Option<String>) -> (StatusCode, Vec<u8>) {
        let mut request = Request::post("/graphql").header("content-type", "application/json");
        if let Some(claims) = claims {
            request = request.header(HEADER, claims);
        }
        let request = request
            .body(Body::from(body.to_string()))
            .expect("a request");
        let answer = tokio::time::timeout(Duration::from_secs(20), self.app.clone().oneshot(request))
            .await
            .unwrap_or_else(|_| panic!("{} hung on {body}", self.name))
            .expect("the app is infallible");
        let status = answer.status();
        let bytes = axum::body::to_bytes(answer.into_body(), 64 << 20)
            .await
            .expect("an answer body within 64 MiB");
        (status, bytes.to_vec())
    }
}

/// The query text and the variables of plain bytes: the text up to a NUL byte, the variables
/// (JSON, or nothing) after it.
fn plain(bytes: &[u8]) -> Value {
    let (query, variables) = match bytes.iter().position(|&byte| byte == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let variables: Value = serde_json::from_slice(variables).unwrap_or(Value::Null);
    json!({ "query": String::from_utf8_lossy(query), "variables": variables })
}

/// A JSON value a representation's key or a claim should not be.
fn hostile_value(entropy: &mut dyn Entropy) -> Value {
    match entropy.next_u64() % 14 {
        0 => json!("1"),
        1 => json!(7),
        2 => json!(-1),
        3 => json!(1e308),
        4 => json!(u64::MAX),
        5 => json!(null),
        6 => json!(true),
        7 => json!(["1", 2]),
        8 => json!({ "$gt": "" }),
        9 => json!("' OR '1'='1"),
        10 => json!("\u{0}"),
        11 => json!("eyJpZCI6MX0"),
        12 => json!("x".repeat(10_000)),
        _ => json!(""),
    }
}

/// Claims as the gateway might sign them, with hostile values: who (`sub`), their roles and
/// the rows a rule could match on.
fn hostile_claims(entropy: &mut dyn Entropy) -> Map<String, Value> {
    let mut claims = Map::new();
    for name in ["sub", "roles", "tenant", "user_id", "regions"] {
        if entropy.next_u64() % 3 != 0 {
            claims.insert(name.into(), hostile_value(entropy));
        }
    }
    claims
}

/// Each `@key` of the federation SDL's object types: the type and its key's top-level fields.
fn entity_keys(sdl: &str) -> Vec<(Name, Vec<String>)> {
    let schema = match Schema::builder()
        .adopt_orphan_extensions()
        .parse(sdl, "federation.graphql")
        .build()
    {
        Ok(schema) => schema,
        Err(with_errors) => with_errors.partial,
    };
    let mut entities = Vec::new();
    for (name, ty) in &schema.types {
        let apollo_compiler::schema::ExtendedType::Object(object) = ty else {
            continue;
        };
        for key in object.directives.get_all("key") {
            let Some(fields) = key
                .specified_argument_by_name("fields")
                .and_then(|value| value.as_str())
            else {
                continue;
            };
            let mut depth = 0usize;
            let mut top = Vec::new();
            for token in fields.replace('{', " { ").replace('}', " } ").split_whitespace() {
                match token {
                    "{" => depth += 1,
                    "}" => depth = depth.saturating_sub(1),
                    field if depth == 0 => top.push(field.to_owned()),
                    _ => {}
                }
            }
            entities.push((name.clone(), top));
        }
    }
    entities
}

/// A subgraph fuzz target: the harness of the subgraph `$name`, built once by `$build` (a
/// closure making its `Served` and federation SDL), and each input run through it.
#[macro_export]
macro_rules! subgraph_target {
    ($name:literal, $build:expr) => {
        fn harness() -> &'static $crate::Harness {
            static HARNESS: std::sync::OnceLock<$crate::Harness> = std::sync::OnceLock::new();
            HARNESS.get_or_init(|| $crate::Harness::new($name, $build))
        }

        libfuzzer_sys::fuzz_target!(|data: &[u8]| harness().run(data));
    };
}
