//! Helpers shared by the end-to-end tests: which demo spec the databases are expected to hold,
//! and where the servers are.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod federation;
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

/// A hint appended to connection failures, so a missing server fails loudly and helpfully.
pub const SERVERS_HINT: &str =
    "is the server up? `scripts/dev up` starts it and `scripts/test` does so before testing";

/// The `polygraph` binary the workspace build produced (scripts/test builds it first).
pub fn polygraph_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let binary = target.join("debug/polygraph");
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
