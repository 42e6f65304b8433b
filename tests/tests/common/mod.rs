//! Helpers shared by the end-to-end tests: which demo spec the databases are expected to hold,
//! and where the servers are.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod corpus;
pub mod federation;
pub mod mongo;
pub mod oidc;
pub mod postgres;
pub mod processes;
pub mod redis;
pub mod scratch;

use polygraph_demo::{DemoSpec, Endpoints};

/// The spec the test command loaded: `POLYGRAPH_DEMO_SEED` / `POLYGRAPH_DEMO_SCALE`, or the
/// generator's defaults, exactly as `polygraph demo load` reads them.
pub fn expected_spec() -> DemoSpec {
    let read = |name: &str, default: u64| {
        std::env::var(name).ok().map_or(default, |value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value:?} is not a number"))
        })
    };
    let defaults = DemoSpec::default();
    DemoSpec {
        seed: read("POLYGRAPH_DEMO_SEED", defaults.seed),
        scale: read("POLYGRAPH_DEMO_SCALE", defaults.scale),
    }
}

pub fn endpoints() -> Endpoints {
    Endpoints::from_env()
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// Where `scripts/dev` keeps what it installs: `POLYGRAPH_CACHE`, or `~/.cache/polygraph`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("POLYGRAPH_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/polygraph"),
        PathBuf::from,
    )
}

/// A program of the virtualenv `scripts/dev up` makes in the cache (`venv-*/bin/NAME`).
pub fn venv_program(name: &str) -> PathBuf {
    let cache = cache_dir();
    std::fs::read_dir(&cache)
        .unwrap_or_else(|error| panic!("{}: {error}", cache.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin").join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing: `scripts/dev up` installs it into {}/venv-*",
                cache.display()
            )
        })
}

/// A hint appended to connection failures, so a missing server fails loudly and helpfully.
pub const SERVERS_HINT: &str =
    "is the server up? `scripts/dev up` starts it and `scripts/test` does so before testing";

/// The key the tests sign gateway claims tokens with, as the gateway would.
pub fn test_signer() -> &'static polygraph_subgraph_core::claims::Signer {
    static SIGNER: std::sync::OnceLock<polygraph_subgraph_core::claims::Signer> =
        std::sync::OnceLock::new();
    SIGNER.get_or_init(polygraph_subgraph_core::claims::Signer::generate)
}

/// A subgraph's trust in [`test_signer`]'s tokens for `audience`.
pub fn trusting(audience: &str) -> polygraph_subgraph_core::server::Trust {
    polygraph_subgraph_core::server::Trust {
        verifier: Some(
            polygraph_subgraph_core::claims::Verifier::new(&test_signer().jwks(), audience)
                .unwrap(),
        ),
        ..polygraph_subgraph_core::server::Trust::default()
    }
}

/// A gateway claims token for `audience` with `claims`, signed by [`test_signer`].
pub fn gateway_token(audience: &str, claims: &serde_json::Value) -> String {
    test_signer().sign(
        audience,
        claims.as_object().expect("claims are an object"),
        std::time::Duration::from_mins(1),
    )
}

/// The `polygraph` binary the workspace build produced (scripts/test builds it first).
pub fn polygraph_binary() -> PathBuf {
    workspace_binary("polygraph")
}

/// A binary of the workspace's debug build (scripts/test builds them all first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let binary = target.join("debug").join(name);
    assert!(
        binary.exists(),
        "{} is missing: build the workspace first (scripts/test does)",
        binary.display()
    );
    binary
}

/// Serves `app` on a free loopback port for the rest of the test; returns its address.
pub async fn serve(app: polygraph_subgraph_core::server::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(polygraph_subgraph_core::server::serve_on(listener, app));
    address
}

/// A subgraph served over HTTP, for tests of what the server adds to the schema: the prepared
/// path for query texts it has validated before.
#[allow(dead_code)]
pub struct HttpSubgraph {
    address: std::net::SocketAddr,
    shared: polygraph_subgraph_core::server::SharedSchema,
    client: reqwest::Client,
}

#[allow(dead_code)]
impl HttpSubgraph {
    pub async fn start(served: polygraph_subgraph_core::server::Served) -> Self {
        Self::with_trust(served, polygraph_subgraph_core::server::Trust::default()).await
    }

    /// Served with what it asks of callers (see `polygraph_subgraph_core::server::Trust`).
    pub async fn with_trust(
        served: polygraph_subgraph_core::server::Served,
        trust: polygraph_subgraph_core::server::Trust,
    ) -> Self {
        let shared = polygraph_subgraph_core::server::share(served);
        let address = serve(polygraph_subgraph_core::server::app(shared.clone(), trust)).await;
        Self {
            address,
            shared,
            client: reqwest::Client::new(),
        }
    }

    pub async fn post(&self, body: &serde_json::Value) -> serde_json::Value {
        self.exchange(body, None).await.2
    }

    /// Posts `body`, with a claims header if given; the status, the `Cache-Control` header
    /// and the body.
    pub async fn exchange(
        &self,
        body: &serde_json::Value,
        claims: Option<&str>,
    ) -> (u16, Option<String>, serde_json::Value) {
        let mut request = self
            .client
            .post(format!("http://{}/graphql", self.address))
            .json(body);
        if let Some(token) = claims {
            request = request.header(polygraph_subgraph_core::claims::HEADER, token);
        }
        let response = request.send().await.unwrap();
        let cache = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .map(|value| value.to_str().unwrap().to_owned());
        (
            response.status().as_u16(),
            cache,
            response.json().await.unwrap(),
        )
    }

    /// Query texts the server has parsed and validated so far.
    pub fn validations(&self) -> u64 {
        self.shared.load().validations()
    }

    /// Posts `body` twice: the first time its text is new and validated, the second time the
    /// kept document answers. Both answers, first sight first.
    pub async fn first_then_repeat(
        &self,
        body: &serde_json::Value,
    ) -> (serde_json::Value, serde_json::Value) {
        let before = self.validations();
        let first = self.post(body).await;
        assert!(first.get("errors").is_none(), "{first}");
        let validated = self.validations();
        let repeat = self.post(body).await;
        assert_eq!(
            self.validations(),
            validated,
            "a query text seen before is not validated again"
        );
        assert!(validated <= before + 1);
        (first, repeat)
    }
}

/// A request answered in process, as the subgraph's HTTP layer answers it; the whole response.
pub async fn answer(
    served: &polygraph_subgraph_core::server::Served,
    query: &str,
    operation_name: Option<&str>,
    variables: serde_json::Value,
) -> serde_json::Value {
    let variables = async_graphql::Variables::from_json(variables);
    served
        .execute(query, operation_name, &variables, None)
        .await
        .json()
}

/// Runs `tests/js/compose.mjs`; returns the supergraph or the composition errors.
pub fn compose(subgraphs: &[(&str, &std::path::Path)]) -> Result<String, String> {
    let script = repo_root().join("tests/js/compose.mjs");
    assert!(
        repo_root()
            .join("tests/js/node_modules/@theguild/federation-composition")
            .exists(),
        "tests/js/node_modules is missing: run `npm ci --prefix tests/js` (scripts/test does)"
    );
    let output = std::process::Command::new("node")
        .arg(script)
        .args(
            subgraphs
                .iter()
                .map(|(name, path)| format!("{name}={}", path.display())),
        )
        .output()
        .expect("node runs");
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
