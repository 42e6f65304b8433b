//! Configuration files as a user meets them: `polygraph config schema` describes every file
//! the repository ships (checked with Python's `jsonschema`, the validator
//! `kubernetes-validate` brings), `polygraph config check` names the key and line of what is
//! wrong, and `${NAME}` and `POLYGRAPH_GATEWAY__…` overrides change what a running gateway does.

mod common;

use std::process::{Command, Output};

use common::processes::{free_port, spawn, wait_healthy};
use common::repo_root;

/// The gateway and a subgraph per database.
fn services() -> impl Iterator<Item = &'static str> {
    std::iter::once("gateway").chain(polygraph_demo::load::DATABASES)
}

fn polygraph(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(common::polygraph_binary());
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn every_shipped_file_matches_its_schema_and_checks_clean() {
    let scratch = tempfile::tempdir().unwrap();
    for service in services() {
        let schema = polygraph(&["config", "schema", service], &[]);
        assert!(schema.status.success(), "{schema:?}");
        let schema_file = scratch.path().join(format!("{service}.json"));
        std::fs::write(&schema_file, &schema.stdout).unwrap();
        for file in [
            format!("config/{service}.yaml"),
            format!("k8s/base/config/{service}.yaml"),
        ] {
            let path = repo_root().join(&file);
            let checked = polygraph(&["config", "check", service, path.to_str().unwrap()], &[]);
            assert!(
                checked.status.success(),
                "{file}: {}",
                String::from_utf8_lossy(&checked.stderr)
            );
            // The same file against the published schema, by an independent validator.
            let validated = Command::new(common::venv_program("python"))
                .args([
                    "-c",
                    "import json, sys, yaml, jsonschema\n\
                     schema = json.load(open(sys.argv[1]))\n\
                     jsonschema.Draft202012Validator.check_schema(schema)\n\
                     jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(open(sys.argv[2])) or {})",
                ])
                .arg(&schema_file)
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                validated.status.success(),
                "{file} does not match `polygraph config schema {service}`: {}",
                String::from_utf8_lossy(&validated.stderr)
            );
        }
    }
}

#[test]
fn the_schema_rejects_what_the_service_rejects() {
    let scratch = tempfile::tempdir().unwrap();
    let schema_file = scratch.path().join("gateway.json");
    std::fs::write(
        &schema_file,
        polygraph(&["config", "schema", "gateway"], &[]).stdout,
    )
    .unwrap();
    for bad in [
        "limits:\n  max_dept: 3\n",
        "limits:\n  max_depth: deep\n",
        "introspection: sometimes\n",
    ] {
        let file = scratch.path().join("bad.yaml");
        std::fs::write(&file, bad).unwrap();
        let checked = polygraph(&["config", "check", "gateway", file.to_str().unwrap()], &[]);
        assert!(!checked.status.success(), "{bad}");
        let validated = Command::new(common::venv_program("python"))
            .args([
                "-c",
                "import json, sys, yaml, jsonschema\n\
                 jsonschema.validate(yaml.safe_load(open(sys.argv[2])), json.load(open(sys.argv[1])))",
            ])
            .arg(&schema_file)
            .arg(&file)
            .output()
            .unwrap();
        assert!(!validated.status.success(), "the schema accepts {bad:?}");
    }
}

#[test]
fn check_names_the_file_line_key_and_variable() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("gateway.yaml");
    std::fs::write(
        &file,
        "# limits\nlimits:\n  max_depth: deep\nredis:\n  url: ${POLYGRAPH_TEST_REDIS:-redis://x}\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let checked = polygraph(&["config", "check", "gateway", path], &[]);
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success());
    assert!(
        said.contains(&format!("{path}:3:")) && said.contains("`limits.max_depth`"),
        "{said}"
    );

    std::fs::write(&file, "redis:\n  url: ${POLYGRAPH_TEST_UNSET}\n").unwrap();
    let unset = polygraph(&["config", "check", "gateway", path], &[]);
    let said = String::from_utf8_lossy(&unset.stderr);
    assert!(
        said.contains(&format!("{path}:2:")) && said.contains("POLYGRAPH_TEST_UNSET"),
        "{said}"
    );
    let set = polygraph(
        &["config", "check", "gateway", path],
        &[("POLYGRAPH_TEST_UNSET", "redis://cache:6379/1")],
    );
    assert!(set.status.success(), "{set:?}");

    let overridden = polygraph(
        &[
            "config",
            "check",
            "postgres",
            repo_root().join("config/postgres.yaml").to_str().unwrap(),
        ],
        &[(
            "POLYGRAPH_SUBGRAPH__SERVER__MAX_CONCURRENT_REQUESTS",
            "many",
        )],
    );
    let said = String::from_utf8_lossy(&overridden.stderr);
    assert!(
        said.contains("POLYGRAPH_SUBGRAPH__SERVER__MAX_CONCURRENT_REQUESTS")
            && said.contains("`server.max_concurrent_requests`"),
        "{said}"
    );
}

/// Overrides reach the running gateway, with no file at all: its policies folder and a depth
/// limit that refuses a query the default would allow.
#[tokio::test]
async fn an_environment_override_changes_the_running_gateway() {
    let scratch = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let log = scratch.path().join("gateway.log");
    let supergraph = repo_root().join("schema/supergraph.graphql");
    let mut gateway = spawn(
        &[
            "gateway",
            "--supergraph",
            supergraph.to_str().unwrap(),
            "--listen",
            &listen,
        ],
        &[
            ("POLYGRAPH_GATEWAY__LIMITS__MAX_DEPTH", "1".to_owned()),
            (
                "POLYGRAPH_GATEWAY__AUTHORIZATION__POLICIES",
                repo_root().join("policies").display().to_string(),
            ),
        ],
        &log,
    );
    let base = format!("http://{listen}");
    wait_healthy(&base, &mut gateway, &log).await;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&serde_json::json!({
            "query": r#"{ users(where: {id: {_in: ["1"]}}) { id onlineFeatures { segment } } }"#
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("deeper than 1 levels (limits.max_depth)")
            && answer.get("data").is_none_or(serde_json::Value::is_null),
        "{answer:#}"
    );
}
