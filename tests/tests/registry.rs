//! The schema registry from outside: the real `polygraph registry serve` over the embedded
//! file store and over a real PostgreSQL database, driven by the real `polygraph schema`
//! commands. Publish, fetch (with entity tags), check, a refused publish that leaves the
//! current version as it was, diff, list and rollback, and who may do which.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::polygraph_binary;
use common::scratch::ScratchDatabase;

const PUBLISH: &str = "ci-publisher-secret-0123456789";
const READ: &str = "gateway-reader-secret-0123456789";

const LINK: &str = r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key", "@shareable"])"#;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A registry process on a free port, over the file or the database given.
async fn start(store: &[(&str, &str)]) -> (Running, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(polygraph_binary());
    command
        .args([
            "registry",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("POLYGRAPH_REGISTRY_PUBLISH_TOKENS", format!("ci={PUBLISH}"))
        .env("POLYGRAPH_REGISTRY_READ_TOKENS", format!("gateway={READ}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in store {
        command.env(key, value);
    }
    let running = Running(command.spawn().unwrap());
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "the registry did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (running, url)
}

/// `polygraph schema ARGS…` against `registry` with `token`.
fn schema(registry: &str, token: &str, args: &[&str]) -> Output {
    Command::new(polygraph_binary())
        .arg("schema")
        .args(args)
        .env("POLYGRAPH_REGISTRY_URL", registry)
        .env("POLYGRAPH_REGISTRY_TOKEN", token)
        .output()
        .unwrap()
}

fn publish(registry: &str, token: &str, name: &str, sdl: &Path) -> Output {
    let url = format!("http://{name}.invalid/graphql");
    let file = sdl.to_str().unwrap();
    schema(
        registry,
        token,
        &["publish", "--name", name, "--url", &url, "--file", file],
    )
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn get(url: &str, token: Option<&str>, etag: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    request.send().await.unwrap()
}

/// The SDLs the round publishes, written to `dir`.
struct Sdls {
    accounts: std::path::PathBuf,
    reviews: std::path::PathBuf,
    clashing: std::path::PathBuf,
    without_email: std::path::PathBuf,
    with_age: std::path::PathBuf,
}

fn sdls(dir: &Path) -> Sdls {
    let write = |name: &str, sdl: String| {
        let path = dir.join(name);
        std::fs::write(&path, sdl).unwrap();
        path
    };
    let accounts = write(
        "accounts.graphql",
        format!(
            "{LINK}\ntype User @key(fields: \"id\") {{ id: ID! name: String email: String }}\ntype Query {{ me: User }}"
        ),
    );
    let reviews = write(
        "reviews.graphql",
        format!(
            "{LINK}\ntype User @key(fields: \"id\") {{ id: ID! reviews: [String!]! }}\ntype Query {{ top: [String!]! }}"
        ),
    );
    let clashing = write(
        "clashing.graphql",
        format!(
            "{LINK}\ntype User @key(fields: \"id\") {{ id: ID! name: String }}\ntype Query {{ top: [String!]! }}"
        ),
    );
    let without_email = write(
        "without-email.graphql",
        format!(
            "{LINK}\ntype User @key(fields: \"id\") {{ id: ID! name: String }}\ntype Query {{ me: User }}"
        ),
    );
    let with_age = write(
        "with-age.graphql",
        format!(
            "{LINK}\ntype User @key(fields: \"id\") {{ id: ID! name: String email: String age: Int }}\ntype Query {{ me: User }}"
        ),
    );

    Sdls {
        accounts,
        reviews,
        clashing,
        without_email,
        with_age,
    }
}

/// The whole round, on a registry at `registry` that has nothing yet.
async fn round(registry: &str, dir: &Path) {
    let sdls = sdls(dir);
    let supergraph = publish_fetch_and_refuse(registry, &sdls).await;
    history(registry, &sdls, &supergraph).await;
}

/// Two publishes, fetches with and without an entity tag, a failed check and a refused
/// publish; returns the supergraph of version 2.
async fn publish_fetch_and_refuse(registry: &str, sdls: &Sdls) -> String {
    let Sdls {
        accounts,
        reviews,
        clashing,
        without_email,
        ..
    } = sdls;
    // Nothing published: fetching says so.
    assert_eq!(
        get(&format!("{registry}/v1/supergraph"), Some(READ), None)
            .await
            .status(),
        404
    );

    let first = publish(registry, PUBLISH, "accounts", accounts);
    assert!(first.status.success(), "{}", text(&first));
    let second = publish(registry, PUBLISH, "reviews", reviews);
    assert!(second.status.success(), "{}", text(&second));

    // The supergraph has both, with an entity tag a poller can send back.
    let fetched = get(&format!("{registry}/v1/supergraph"), Some(READ), None).await;
    assert_eq!(fetched.status(), 200);
    let etag = fetched.headers()["etag"].to_str().unwrap().to_owned();
    let supergraph = fetched.text().await.unwrap();
    assert!(
        supergraph.contains(
            "ACCOUNTS @join__graph(name: \"accounts\", url: \"http://accounts.invalid/graphql\")"
        ),
        "{supergraph}"
    );
    assert!(
        supergraph.contains("reviews: [String!]! @join__field(graph: REVIEWS)"),
        "{supergraph}"
    );
    let again = get(
        &format!("{registry}/v1/supergraph"),
        Some(READ),
        Some(&etag),
    )
    .await;
    assert_eq!(again.status(), 304);
    let cli_fetch = schema(registry, READ, &["fetch"]);
    assert!(cli_fetch.status.success(), "{}", text(&cli_fetch));
    assert_eq!(String::from_utf8_lossy(&cli_fetch.stdout), supergraph);

    // A check of a breaking change names it and fails; it stores nothing.
    let check = schema(
        registry,
        READ,
        &[
            "check",
            "--name",
            "accounts",
            "--url",
            "http://accounts.invalid/graphql",
            "--file",
            without_email.to_str().unwrap(),
        ],
    );
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(text(&check).contains("User.email"), "{}", text(&check));
    // … unless no operation the clients send selects the field.
    let manifest = without_email.with_file_name("manifest.json");
    std::fs::write(&manifest, r#"{"names": "{ me { name } }"}"#).unwrap();
    let judged = schema(
        registry,
        READ,
        &[
            "check",
            "--name",
            "accounts",
            "--url",
            "http://accounts.invalid/graphql",
            "--file",
            without_email.to_str().unwrap(),
            "--operations",
            manifest.to_str().unwrap(),
        ],
    );
    assert_eq!(judged.status.code(), Some(0), "{}", text(&judged));
    assert!(
        text(&judged).contains("no recorded operation uses it"),
        "{}",
        text(&judged)
    );

    // A publish that does not compose is refused with the reason, and the version stays.
    let refused = publish(registry, PUBLISH, "reviews", clashing);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("INVALID_FIELD_SHARING"),
        "{}",
        text(&refused)
    );
    let after = get(
        &format!("{registry}/v1/supergraph"),
        Some(READ),
        Some(&etag),
    )
    .await;
    assert_eq!(
        after.status(),
        304,
        "a refused publish changed the supergraph"
    );

    supergraph
}

/// A safe addition and its diff, a rollback, the list of versions, and who may do what.
async fn history(registry: &str, sdls: &Sdls, supergraph: &str) {
    let with_age = &sdls.with_age;
    // An addition is safe; the diff between versions says so.
    let added = publish(registry, PUBLISH, "accounts", with_age);
    assert!(added.status.success(), "{}", text(&added));
    let diff = schema(registry, READ, &["diff", "--registry", registry, "2", "3"]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff));
    assert!(text(&diff).contains("User.age"), "{}", text(&diff));

    // Rolling back makes version 4 with version 2's subgraphs; history keeps all four.
    let rollback = schema(registry, PUBLISH, &["rollback", "2"]);
    assert!(rollback.status.success(), "{}", text(&rollback));
    let rolled = get(&format!("{registry}/v1/supergraph"), Some(READ), None).await;
    assert_eq!(rolled.headers()["x-polygraph-version"], "4");
    assert_eq!(rolled.text().await.unwrap(), supergraph);
    let list = schema(registry, READ, &["list", "--json"]);
    assert!(list.status.success(), "{}", text(&list));
    let versions: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let actions: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "rollback to 2",
            "publish accounts",
            "publish reviews",
            "publish accounts"
        ]
    );
    assert!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["author"] == "ci"),
        "{versions}"
    );
    assert_eq!(
        versions[0]["breaking"], 1,
        "rolling back removed User.age: {versions}"
    );
    assert_eq!(
        versions[3]["breaking"], 0,
        "the first version breaks nothing: {versions}"
    );

    // Who may do what: a read token cannot publish, nobody anonymous reads.
    let denied = publish(registry, READ, "accounts", with_age);
    assert_eq!(denied.status.code(), Some(2), "{}", text(&denied));
    assert!(text(&denied).contains("403"), "{}", text(&denied));
    assert_eq!(
        get(&format!("{registry}/v1/supergraph"), None, None)
            .await
            .status(),
        401
    );
    assert_eq!(
        get(
            &format!("{registry}/v1/supergraph"),
            Some("wrong-token-0123456789"),
            None
        )
        .await
        .status(),
        403
    );
}

#[tokio::test]
async fn the_embedded_file_store_keeps_versions_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.json");
    let store = [("POLYGRAPH_REGISTRY_FILE", file.to_str().unwrap())];
    let (running, registry) = start(&store).await;
    round(&registry, dir.path()).await;
    drop(running);
    let (_running, registry) = start(&store).await;
    let fetched = get(&format!("{registry}/v1/supergraph"), Some(READ), None).await;
    assert_eq!(fetched.headers()["x-polygraph-version"], "4");

    // A second registry on the same file would overwrite the first's history: it will not start.
    let second = Command::new(polygraph_binary())
        .args(["registry", "serve", "--listen", "127.0.0.1:0"])
        .env("POLYGRAPH_REGISTRY_FILE", &file)
        .env("POLYGRAPH_REGISTRY_PUBLISH_TOKENS", format!("ci={PUBLISH}"))
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        text(&second).contains("in use by another registry"),
        "{}",
        text(&second)
    );
}

#[tokio::test]
async fn postgresql_keeps_versions() {
    let scratch = ScratchDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (_running, registry) = start(&[("POLYGRAPH_REGISTRY_DATABASE_URL", &scratch.url)]).await;
    round(&registry, dir.path()).await;
    let pool = sqlx::PgPool::connect(&scratch.url).await.unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM polygraph_registry_versions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

/// Publishes of different subgraphs at the same time both land: each composes against the
/// version the other made, never against the one they both started from.
#[tokio::test]
async fn concurrent_publishes_keep_each_others_subgraphs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.json");
    let (_running, registry) = start(&[("POLYGRAPH_REGISTRY_FILE", file.to_str().unwrap())]).await;
    let client = reqwest::Client::new();
    let publishes = (0..6).map(|i| {
        let body = serde_json::json!({
            "name": format!("s{i}"),
            "url": format!("http://s{i}.invalid/graphql"),
            "sdl": format!("{LINK}\ntype Query {{ field{i}: Int }}"),
        });
        client
            .post(format!("{registry}/v1/publish"))
            .bearer_auth(PUBLISH)
            .json(&body)
            .send()
    });
    for response in futures::future::join_all(publishes).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    let supergraph = get(&format!("{registry}/v1/supergraph"), Some(READ), None)
        .await
        .text()
        .await
        .unwrap();
    for i in 0..6 {
        assert!(
            supergraph.contains(&format!("field{i}: Int")),
            "s{i} was lost:\n{supergraph}"
        );
    }
}

/// A published URL reaches every reader: credentials in it are refused.
#[tokio::test]
async fn urls_with_credentials_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.json");
    let (_running, registry) = start(&[("POLYGRAPH_REGISTRY_FILE", file.to_str().unwrap())]).await;
    let response = reqwest::Client::new()
        .post(format!("{registry}/v1/publish"))
        .bearer_auth(PUBLISH)
        .json(&serde_json::json!({
            "name": "a",
            "url": "http://user:secret@a.internal/graphql",
            "sdl": format!("{LINK}\ntype Query {{ a: Int }}"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(!response.text().await.unwrap().contains("secret"));
}

#[tokio::test]
async fn the_registry_will_not_start_without_a_publish_token() {
    let output = Command::new(polygraph_binary())
        .args(["registry", "serve", "--listen", "127.0.0.1:0"])
        .env_remove("POLYGRAPH_REGISTRY_PUBLISH_TOKENS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("publish"),
        "{}",
        text(&output)
    );
}
