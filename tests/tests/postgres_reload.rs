//! The PostgreSQL subgraph picks up schema changes on SIGHUP, without a restart, and keeps
//! serving the old schema when a reload fails. Runs the real `polygraph` binary against a
//! scratch database.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::polygraph_binary;
use common::scratch::ScratchDatabase;
use serde_json::{Value, json};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn query(client: &reqwest::Client, url: &str, query: &str) -> Value {
    client
        .post(url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn sighup_reloads_the_schema_from_the_database() {
    let scratch = ScratchDatabase::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "tables: {}\n").unwrap();
    let child = Command::new(polygraph_binary())
        .args(["subgraph", "postgres", "--config"])
        .arg(config.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("POLYGRAPH_POSTGRES_URL", &scratch.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let url = format!("http://127.0.0.1:{port}/graphql");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the subgraph did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let before = query(&client, &url, "{ widgets { id } }").await;
    assert!(
        before["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("widgets"),
        "{before}"
    );

    let pool = sqlx::PgPool::connect(&scratch.url).await.unwrap();
    sqlx::query("CREATE TABLE widgets (id bigint PRIMARY KEY, label text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO widgets VALUES (1, 'sprocket')")
        .execute(&pool)
        .await
        .unwrap();

    let pid = running.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = query(&client, &url, "{ widgets { id label } }").await;
        if after.get("errors").is_none() {
            assert_eq!(
                after,
                json!({ "data": { "widgets": [{ "id": "1", "label": "sprocket" }] } })
            );
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {after}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old tables still answer after the swap.
    let users = query(&client, &url, "{ users_aggregate { count } }").await;
    assert_eq!(
        users,
        json!({ "data": { "users_aggregate": { "count": 0 } } })
    );

    drop(running);
    pool.close().await;
    scratch.drop().await;
}
