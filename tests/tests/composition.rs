//! The database subgraphs' SDLs compose into a supergraph with The Guild's federation
//! composition (npm), alone and beside another subgraph that extends its entities; the
//! checked-in SDL and supergraph in `schema/` are current.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::{compose, endpoints, repo_root};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::guard::Guard;
use polygraph_subgraph_postgres::{Config, Subgraph};

/// The demo's PostgreSQL config without its extensions of MongoDB's `Review`, whose owner
/// these compositions leave out.
fn config_alone() -> Config {
    let mut config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    config.extends.clear();
    config
}

async fn postgres_sdl() -> String {
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    Subgraph::with_pool(&config_alone(), pool)
        .await
        .unwrap()
        .sdl()
}

/// The demo's subgraphs, in the order the supergraph composes them (the order the demo loads
/// their databases).
use polygraph_demo::load::DATABASES as SUBGRAPHS;

#[tokio::test]
async fn composes_alone_and_with_a_subgraph_extending_its_entities() {
    let dir = tempfile::tempdir().unwrap();
    let postgres = dir.path().join("postgres.graphql");
    std::fs::write(&postgres, postgres_sdl().await).unwrap();
    let supergraph = compose(&[("postgres", &postgres)]).unwrap();
    assert!(
        supergraph.contains("@join__type(graph: POSTGRES, key: \"id\")"),
        "{supergraph}"
    );

    let features = dir.path().join("features.graphql");
    std::fs::write(
        &features,
        r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
           type User @key(fields: "id") { id: ID! clickRate7d: Float }
           type Product @key(fields: "id") { id: ID! popularity: Float }
           type Query { trendingProducts: [Product!]! }"#,
    )
    .unwrap();
    let supergraph = compose(&[("postgres", &postgres), ("features", &features)]).unwrap();
    assert!(
        supergraph.contains("@join__type(graph: FEATURES, key: \"id\")"),
        "{supergraph}"
    );
    assert!(
        supergraph.contains("clickRate7d: Float @join__field(graph: FEATURES)"),
        "{supergraph}"
    );

    // A subgraph whose key field disagrees in type does not compose: the check is real.
    let broken = dir.path().join("broken.graphql");
    std::fs::write(
        &broken,
        r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
           type User @key(fields: "id") { id: Int! score: Float }"#,
    )
    .unwrap();
    assert!(compose(&[("postgres", &postgres), ("broken", &broken)]).is_err());
}

#[tokio::test]
async fn checked_in_schemas_are_current() {
    let root = repo_root();
    for name in SUBGRAPHS {
        // The SDL as `polygraph subgraph NAME --print-sdl` prints it from the running database.
        let output = Command::new(common::polygraph_binary())
            .args(["subgraph", name, "--config"])
            .arg(root.join(format!("config/{name}.yaml")))
            .arg("--print-sdl")
            .output()
            .expect("polygraph runs");
        assert!(
            output.status.success(),
            "{name} --print-sdl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let path = format!("schema/subgraphs/{name}.graphql");
        let checked_in = std::fs::read_to_string(root.join(&path)).unwrap();
        assert!(
            checked_in.as_bytes() == output.stdout.as_slice(),
            "{path} is stale; regenerate it as schema/README.md says"
        );
    }
    let paths: Vec<(&str, std::path::PathBuf)> = SUBGRAPHS
        .into_iter()
        .map(|name| (name, root.join(format!("schema/subgraphs/{name}.graphql"))))
        .collect();
    let subgraphs: Vec<(&str, &Path)> = paths.iter().map(|(n, p)| (*n, p.as_path())).collect();
    let supergraph = compose(&subgraphs).unwrap();
    let checked_in = std::fs::read_to_string(root.join("schema/supergraph.graphql")).unwrap();
    assert!(
        checked_in == supergraph,
        "schema/supergraph.graphql is stale; regenerate it as schema/README.md says"
    );
}

/// The guards `configured_directives_reach_the_sdl_and_compose` configures, in the SDL: a
/// guarded column cannot be filtered, sorted or aggregated by (its values would show), a
/// guarded table's aggregates carry its guard, and the link imports the directives.
fn guards_hold_in(sdl: &str) {
    let block = |start: &str| {
        let from = sdl
            .find(start)
            .unwrap_or_else(|| panic!("{start} in {sdl}"));
        let end = from + sdl[from..].find('}').unwrap();
        sdl[from..end].to_owned()
    };
    for derived in [
        "input UserBoolExp",
        "input UserOrderBy",
        "type UserMaxFields",
    ] {
        assert!(!block(derived).contains("email"), "{}", block(derived));
    }
    assert!(
        sdl.contains("type UserAggregate @cacheControl(maxAge: 60, scope: PRIVATE) @authenticated"),
        "{sdl}"
    );
    // Guards: the link is raised to the Federation version that defines them all.
    assert!(
        sdl.contains("url: \"https://specs.apollo.dev/federation/v2.6\""),
        "{sdl}"
    );
    assert!(sdl.contains("\"@authenticated\", \"@policy\""), "{sdl}");
    assert!(
        sdl.contains("update_products(where: ProductBoolExp!, _set: ProductSetInput!): ProductMutationResponse! @policy(policies: [[\"shop.admin.write\"]])"),
        "{sdl}"
    );
}

#[tokio::test]
async fn configured_directives_reach_the_sdl_and_compose() {
    let mut config = config_alone();
    let users = &mut config.tables["users"];
    users.tags = vec!["crm".into()];
    users.columns.insert(
        "email".into(),
        polygraph_subgraph_postgres::config::Directives {
            inaccessible: true,
            tags: vec!["pii".into()],
            shareable: false,
            cache: Some(CacheHint {
                max_age: Some(10),
                ..Default::default()
            }),
            guard: Guard {
                requires_scopes: vec![vec!["admin".into()]],
                ..Guard::default()
            },
        },
    );
    users.guard.authenticated = true;
    users.cache = Some(CacheHint {
        max_age: Some(60),
        ..Default::default()
    });
    config.tables["products"].columns.insert(
        "name".into(),
        polygraph_subgraph_postgres::config::Directives {
            shareable: true,
            ..Default::default()
        },
    );
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let sdl = Subgraph::with_pool(&config, pool).await.unwrap().sdl();
    // Applied directives come before federation's.
    assert!(
        sdl.contains("email: String! @cacheControl(maxAge: 10) @requiresScopes(scopes: [[\"admin\"]]) @inaccessible @tag(name: \"pii\")"),
        "{sdl}"
    );
    guards_hold_in(&sdl);
    assert!(sdl.contains("name: String! @shareable"), "{sdl}");
    assert!(
        sdl.contains(
            "type User @cacheControl(maxAge: 60, scope: PRIVATE) @authenticated @key(fields: \"id\") @tag(name: \"crm\")"
        ),
        "{sdl}"
    );
    assert!(
        sdl.contains(polygraph_subgraph_core::cache::DIRECTIVE_DEFINITION),
        "{sdl}"
    );
    assert!(sdl.contains("enum CacheControlScope"), "{sdl}");

    let dir = tempfile::tempdir().unwrap();
    let postgres = dir.path().join("postgres.graphql");
    std::fs::write(&postgres, &sdl).unwrap();
    let catalog = dir.path().join("catalog.graphql");
    std::fs::write(
        &catalog,
        r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@shareable"])
           type Product @key(fields: "id") { id: ID! name: String! @shareable }"#,
    )
    .unwrap();
    let supergraph = compose(&[("postgres", &postgres), ("catalog", &catalog)]).unwrap();
    assert!(supergraph.contains("@inaccessible"), "{supergraph}");
    for composed in [
        "@link(url: \"https://specs.apollo.dev/policy/v0.1\", for: SECURITY)",
        "@requiresScopes(scopes: [[\"admin\"]])",
        "@policy(policies: [[\"shop.admin.write\"]])",
        "type User @join__type(graph: POSTGRES, key: \"id\") @tag(name: \"crm\") @authenticated",
    ] {
        assert!(supergraph.contains(composed), "{composed} in {supergraph}");
    }
    // The gateway loads what the composer wrote, directives and all.
    polygraph_gateway::supergraph::Supergraph::parse(&supergraph).unwrap();

    // Without @shareable on our side, two subgraphs resolving Product.name do not compose.
    config.tables["products"].columns.clear();
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    std::fs::write(
        &postgres,
        Subgraph::with_pool(&config, pool).await.unwrap().sdl(),
    )
    .unwrap();
    assert!(compose(&[("postgres", &postgres), ("catalog", &catalog)]).is_err());
}

#[tokio::test]
async fn unknown_configured_columns_are_errors() {
    let mut config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    config.tables["users"].columns.insert(
        "nope".into(),
        polygraph_subgraph_postgres::config::Directives::default(),
    );
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let error = Subgraph::with_pool(&config, pool).await.err().unwrap();
    assert!(format!("{error:#}").contains("\"nope\""), "{error:#}");
}

/// The benchmark subgraphs' SDL files are what their code serves, and the supergraph the
/// gateway tests and the load benchmark use is their composition: for our data set and for
/// the public gateways benchmark's shape.
#[test]
fn the_benchmark_supergraphs_are_current() {
    use polygraph_testkit::federation::{NAMES, Shape, shaped};
    for (shape, flag, folder) in [
        (Shape::Ours, "ours", "bench/federation"),
        (Shape::Public, "public", "bench/federation-public"),
    ] {
        let folder = repo_root().join(folder);
        let mut subgraphs = Vec::new();
        for name in NAMES {
            let path = folder.join(format!("{name}.graphql"));
            let served = shaped(shape, name).unwrap().sdl();
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                served,
                "{} is stale: federation-subgraphs --shape {flag} --print-sdl {name} > {}",
                path.display(),
                path.display()
            );
            subgraphs.push((name, path));
        }
        let borrowed: Vec<(&str, &Path)> =
            subgraphs.iter().map(|(n, p)| (*n, p.as_path())).collect();
        let supergraph = compose(&borrowed).unwrap();
        assert_eq!(
            std::fs::read_to_string(folder.join("supergraph.graphql")).unwrap(),
            supergraph,
            "{}/supergraph.graphql is stale: recompose it with tests/js/compose.mjs",
            folder.display()
        );
    }
}

/// Each gateway plan fixture's supergraph is the composition of the subgraph SDLs beside it.
#[test]
fn the_gateway_plan_fixtures_are_current() {
    let fixtures = repo_root().join("gateway/tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let folder = entry.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        let mut subgraphs: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "supergraph.graphql")
            .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
            .collect();
        subgraphs.sort();
        let borrowed: Vec<(&str, &Path)> = subgraphs
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_path()))
            .collect();
        let supergraph = compose(&borrowed).unwrap();
        assert_eq!(
            std::fs::read_to_string(folder.join("supergraph.graphql")).unwrap(),
            supergraph,
            "{} is stale: run gateway/tests/fixtures/compose.sh",
            folder.display()
        );
        checked += 1;
    }
    assert!(checked >= 8, "found {checked} fixtures");
}

/// Kubernetes' copies of the gateway's settings and supergraph (kustomize reads only files under
/// its base) are the repository's, and the settings load.
#[test]
fn the_kubernetes_gateway_config_is_current() {
    for (original, copy) in [
        ("config/gateway.yaml", "k8s/base/config/gateway.yaml"),
        (
            "schema/supergraph.graphql",
            "k8s/base/config/supergraph.graphql",
        ),
        (
            "policies/shop/admin.rego",
            "k8s/base/policies/shop/admin.rego",
        ),
        (
            "policies/shop/orders.rego",
            "k8s/base/policies/shop/orders.rego",
        ),
        (
            "policies/shop/reviews.rego",
            "k8s/base/policies/shop/reviews.rego",
        ),
    ] {
        assert_eq!(
            std::fs::read_to_string(repo_root().join(original)).unwrap(),
            std::fs::read_to_string(repo_root().join(copy)).unwrap(),
            "{copy} is stale: cp {original} {copy}"
        );
    }
    let settings: polygraph_gateway::gateway::Settings = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("config/gateway.yaml")).unwrap(),
    )
    .expect("config/gateway.yaml is valid gateway settings");
    for name in ["postgres", "mongodb", "elasticsearch"] {
        assert!(
            settings.subgraph_urls.contains_key(name),
            "{name} has no URL"
        );
    }
    // Deployed, the gateway signs with a key its subgraphs know, and they answer only it;
    // the schema and plans are not for anonymous callers.
    assert!(settings.claims.signing_key_file.is_some());
    assert_eq!(
        settings.introspection,
        polygraph_gateway::gateway::Access::Authenticated
    );
    assert_eq!(
        settings.explain,
        polygraph_gateway::gateway::Access::Authenticated
    );
    let compose = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    assert!(compose.contains("POLYGRAPH_REQUIRE_GATEWAY_TOKEN: \"true\""));
    for name in &SUBGRAPHS {
        let deployment =
            std::fs::read_to_string(repo_root().join(format!("k8s/base/{name}-subgraph.yaml")))
                .unwrap();
        assert!(
            deployment.contains("POLYGRAPH_REQUIRE_GATEWAY_TOKEN, value: \"true\""),
            "k8s/base/{name}-subgraph.yaml answers callers other than the gateway"
        );
        assert!(
            compose.contains(&format!(
                "./config/{name}.yaml:/etc/polygraph/{name}.yaml:ro\", \"gateway-jwks:"
            )),
            "docker-compose.yml's {name}-subgraph has no gateway key"
        );
    }
    assert_eq!(
        compose.matches("environment: *subgraph-env").count(),
        SUBGRAPHS.len()
    );
    // The private key is in one volume, mounted by the key maker and the gateway only.
    assert_eq!(compose.matches("gateway-keys:/").count(), 2, "{compose}");
    // The subgraphs' Kubernetes configs are the demo's but for comments and the address.
    let settings_of = |path: &str| -> Vec<String> {
        std::fs::read_to_string(repo_root().join(path))
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with('#') && !line.starts_with("listen:"))
            .map(ToOwned::to_owned)
            .collect()
    };
    for name in &SUBGRAPHS {
        assert_eq!(
            settings_of(&format!("config/{name}.yaml")),
            settings_of(&format!("k8s/base/config/{name}.yaml")),
            "k8s/base/config/{name}.yaml differs from config/{name}.yaml"
        );
    }
}

/// `extends` gives another subgraph's entity fields here: the entity's other matched fields
/// are `@external` and the fields `@requires` them; with the owner, it composes.
#[tokio::test]
async fn extensions_of_other_subgraphs_entities_compose_with_their_owner() {
    let pool = sqlx::PgPool::connect(&endpoints().postgres).await.unwrap();
    let config = Config::from_file(&repo_root().join("config/postgres.yaml")).unwrap();
    let sdl = Subgraph::with_pool(&config, pool.clone())
        .await
        .unwrap()
        .sdl();
    assert!(sdl.contains("user_id: ID! @external"), "{sdl}");
    assert!(sdl.contains("@requires(fields: \"user_id\")"), "{sdl}");
    let dir = tempfile::tempdir().unwrap();
    let postgres = dir.path().join("postgres.graphql");
    std::fs::write(&postgres, &sdl).unwrap();
    // Alone, nothing resolves the external fields.
    assert!(compose(&[("postgres", &postgres)]).is_err());
    let owner = dir.path().join("reviews.graphql");
    std::fs::write(
        &owner,
        r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])
           type Review @key(fields: "review_id") { review_id: ID! user_id: ID! product_id: ID! title: String! }
           type Query { reviews: [Review!]! }"#,
    )
    .unwrap();
    let supergraph = compose(&[("postgres", &postgres), ("reviews", &owner)]).unwrap();
    assert!(
        supergraph.contains("@join__field(graph: POSTGRES, requires: \"user_id\")"),
        "{supergraph}"
    );

    // Extensions name exposed tables and columns.
    for (table, column) in [("nope", "user_id"), ("orders", "nope")] {
        let mut bad = config.clone();
        let field = &mut bad.extends["Review"].fields["author_orders"];
        field.table = table.to_owned();
        field.column = column.to_owned();
        let error = Subgraph::with_pool(&bad, pool.clone()).await.err().unwrap();
        assert!(
            format!("{error:#}").contains("extends.Review.fields.author_orders"),
            "{error:#}"
        );
    }
}

/// `polygraph schema diff` over supergraphs, as a CI pipeline would run it: exit 0 and no
/// change for the same supergraph, 1 with the removed field's coordinate for a breaking one,
/// 2 for a file that cannot be read.
#[test]
fn schema_diff_reports_breaking_changes_by_exit_code() {
    let binary = common::polygraph_binary();
    let current = repo_root().join("schema/supergraph.graphql");
    let run = |new: &std::path::Path| {
        std::process::Command::new(&binary)
            .args(["schema", "diff", "--json"])
            .arg(&current)
            .arg(new)
            .output()
            .unwrap()
    };
    let same = run(&current);
    assert_eq!(same.status.code(), Some(0));
    assert!(
        same.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );

    let text = std::fs::read_to_string(&current).unwrap();
    assert!(
        text.contains("\n  popularity: Float"),
        "the demo's products have a popularity"
    );
    let candidate =
        std::env::temp_dir().join(format!("polygraph-diff-{}.graphql", std::process::id()));
    std::fs::write(
        &candidate,
        text.replace("\n  popularity: Float", "\n  popularity_v2: Float"),
    )
    .unwrap();
    let breaking = run(&candidate);
    let _ = std::fs::remove_file(&candidate);
    assert_eq!(breaking.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(breaking.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|change| change["coordinate"] == "Product.popularity"
                && change["severity"] == "breaking"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|change| change["coordinate"] == "Product.popularity_v2"
                && change["severity"] == "safe"),
        "{lines:?}"
    );

    let missing = run(std::path::Path::new("/nonexistent/supergraph.graphql"));
    assert_eq!(missing.status.code(), Some(2));
}

/// The failing cases our composer is tested on (`schema/tests/failing/`) fail with The Guild's
/// too, with the same error code: the corpus names real composition errors, not ours alone.
#[test]
fn the_failing_cases_fail_the_same_way_in_the_reference_composer() {
    let dir = repo_root().join("schema/tests/failing");
    let work = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text
            .lines()
            .find_map(|line| line.strip_prefix("# expect: "))
            .and_then(|expect| expect.split_whitespace().next())
            .unwrap();
        let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
        let mut current = String::new();
        for line in text.lines().chain(["# subgraph: (end)"]) {
            if let Some(name) = line.strip_prefix("# subgraph: ") {
                if let Some((_, file)) = files.last() {
                    std::fs::write(file, &current).unwrap();
                }
                current.clear();
                let file = work.path().join(format!("{checked}-{name}.graphql"));
                files.push((name.to_owned(), file));
            } else {
                current.push_str(line);
                current.push('\n');
            }
        }
        files.pop();
        let subgraphs: Vec<(&str, &Path)> = files
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_path()))
            .collect();
        let errors = compose(&subgraphs).expect_err(&path.display().to_string());
        // graphql-js throws on syntax errors before composition has a code to give.
        let expected = if code == "INVALID_GRAPHQL" {
            "Syntax Error"
        } else {
            code
        };
        assert!(
            errors.contains(expected),
            "{}: expected {expected}, The Guild's composer said:\n{errors}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} cases");
}

/// A child process, killed when the test ends however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `polygraph compose` as the README runs it: the PostgreSQL subgraph asked for its SDL over
/// HTTP, the other five read from files, the supergraph written with the real URL; a subgraph
/// that clashes exits 1 with the error's code, and a config that cannot be read exits 2.
#[tokio::test]
async fn polygraph_compose_reads_running_subgraphs_and_files() {
    let root = repo_root();
    let binary = common::polygraph_binary();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _running = Running(
        Command::new(&binary)
            .args(["subgraph", "postgres", "--config"])
            .arg(root.join("config/postgres.yaml"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/graphql");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the subgraph did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = format!("subgraphs:\n  - name: postgres\n    url: {url}\n");
    for name in &SUBGRAPHS[1..] {
        let file = root.join(format!("schema/subgraphs/{name}.graphql"));
        let _ = writeln!(
            yaml,
            "  - name: {name}\n    url: http://{name}.internal/graphql\n    file: {}",
            file.display()
        );
    }
    let config = dir.path().join("subgraphs.yaml");
    std::fs::write(&config, &yaml).unwrap();
    let out = dir.path().join("supergraph.graphql");
    let composed = Command::new(&binary)
        .arg("compose")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        composed.status.success(),
        "{}",
        String::from_utf8_lossy(&composed.stderr)
    );
    let supergraph = std::fs::read_to_string(&out).unwrap();
    assert!(
        supergraph.contains(&format!(
            "POSTGRES @join__graph(name: \"postgres\", url: \"{url}\")"
        )),
        "{supergraph}"
    );
    assert!(supergraph.contains("url: \"http://redis.internal/graphql\""));

    // A subgraph that defines the demo's Product.name without sharing it does not compose.
    let clash = dir.path().join("clash.graphql");
    std::fs::write(
        &clash,
        r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
           type Product @key(fields: "id") { id: ID! name: String! }"#,
    )
    .unwrap();
    let _ = writeln!(
        yaml,
        "  - name: clash\n    url: http://clash.internal/graphql\n    file: {}",
        clash.display()
    );
    std::fs::write(&config, &yaml).unwrap();
    let refused = Command::new(&binary)
        .args(["compose", "--json"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let errors: Vec<serde_json::Value> = String::from_utf8(refused.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e["code"] == "INVALID_FIELD_SHARING" && e["coordinate"] == "Product.name"),
        "{errors:?}"
    );
}

#[test]
fn polygraph_compose_exits_2_when_it_cannot_read_its_input() {
    let unreadable = Command::new(common::polygraph_binary())
        .args(["compose", "/nonexistent/subgraphs.yaml"])
        .output()
        .unwrap();
    assert_eq!(unreadable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreadable.stderr).contains("subgraphs.yaml"));
}

/// `polygraph schema diff --operations`: a removed field that no recorded operation selects is
/// safe for those clients (exit 0, said why); one an operation selects stays breaking (exit 1);
/// a manifest with an operation that does not validate today is an error (exit 2).
#[test]
fn schema_diff_judges_breaking_changes_by_recorded_operations() {
    let binary = common::polygraph_binary();
    let dir = tempfile::tempdir().unwrap();
    let current = repo_root().join("schema/supergraph.graphql");
    let candidate = dir.path().join("candidate.graphql");
    let text = std::fs::read_to_string(&current).unwrap();
    std::fs::write(
        &candidate,
        text.replace("\n  popularity: Float", "\n  popularity_v2: Float"),
    )
    .unwrap();
    let run = |operations: &serde_json::Value| {
        let manifest = dir.path().join("manifest.json");
        std::fs::write(&manifest, operations.to_string()).unwrap();
        Command::new(&binary)
            .args(["schema", "diff", "--json", "--operations"])
            .arg(&manifest)
            .arg(&current)
            .arg(&candidate)
            .output()
            .unwrap()
    };
    let lines = |output: &std::process::Output| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let popularity = |changes: &[serde_json::Value]| {
        changes
            .iter()
            .find(|c| c["coordinate"] == "Product.popularity")
            .cloned()
            .unwrap_or_else(|| panic!("{changes:?}"))
    };

    let unused = run(&serde_json::json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{ "id": "a", "name": "Names", "type": "query",
                         "body": "query Names { products(limit: 3) { name price } }" }],
    }));
    assert_eq!(
        unused.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&unused.stderr)
    );
    let change = popularity(&lines(&unused));
    assert_eq!(change["severity"], "safe");
    assert!(
        change["message"]
            .as_str()
            .unwrap()
            .contains("no recorded operation uses it")
    );

    let used =
        run(&serde_json::json!({ "b": "{ products_by_pk(id: \"1\") { name popularity } }" }));
    assert_eq!(used.status.code(), Some(1));
    assert_eq!(popularity(&lines(&used))["severity"], "breaking");

    let invalid = run(&serde_json::json!({ "c": "{ products { nope } }" }));
    assert_eq!(invalid.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("recorded operation c"));
}
