//! Parts dying: a subgraph process killed while clients keep asking, then started again; the
//! Redis, PostgreSQL and search servers behind their subgraphs stopped (as a crash would) and
//! started again, each a server of the test's own so the shared ones stay up. While a part is
//! down its fields are errors at their paths and everything else answers, no
//! request waits past the deadline, and once it is back answers are whole again within
//! seconds, with no restart of the gateway or the subgraph.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::federation::{Graph, start};
use serde_json::{Value, json};

/// A child process, killed when dropped (also when a test fails).
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The reviews subgraph in a process of its own, on `port`.
fn reviews_process(port: u16) -> Process {
    let child = Command::new(common::workspace_binary("federation-subgraphs"))
        .args(["--only", "reviews", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("federation-subgraphs starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the reviews subgraph did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Process(child)
}

const QUERY: &str = "{ user(id: \"1\") { name reviews { id } } topProducts { name } }";

/// How an answer to [`QUERY`] came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Everything there.
    Whole,
    /// Reviews missing: `user` null (its `reviews` is non-null) with errors at
    /// `user.reviews`, the products there.
    WithoutReviews,
}

fn outcome(body: &Value) -> Result<Outcome, String> {
    let products = body["data"]["topProducts"].as_array().map_or(0, Vec::len);
    if products != 5 {
        return Err(format!("the products are missing: {body}"));
    }
    if body.get("errors").is_none() {
        return if body["data"]["user"]["reviews"].as_array().map(Vec::len) == Some(3) {
            Ok(Outcome::Whole)
        } else {
            Err(format!("reviews missing without an error: {body}"))
        };
    }
    let errors = body["errors"].as_array().expect("errors are a list");
    let at_reviews = errors
        .iter()
        .all(|error| error["path"] == json!(["user", "reviews"]));
    if body["data"]["user"].is_null() && at_reviews {
        Ok(Outcome::WithoutReviews)
    } else {
        Err(format!("an unexpected answer: {body}"))
    }
}

/// When each request started, how long it took, how it came back.
type Seen = Vec<(Instant, Duration, Result<Outcome, String>)>;

/// Clients asking [`QUERY`] over and over until `stop`, each answer timed.
fn load(
    graph: &Graph,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Seen>> {
    (0..clients)
        .map(|_| {
            let (url, stop) = (graph.url.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = client
                        .post(&url)
                        .json(&json!({ "query": QUERY }))
                        .send()
                        .await;
                    let result = match answer {
                        Ok(response) if response.status() == 200 => {
                            let body: Value = response.json().await.expect("JSON");
                            outcome(&body)
                        }
                        Ok(response) => Err(format!("HTTP {}", response.status())),
                        Err(error) => Err(format!("no answer: {error}")),
                    };
                    seen.push((started, started.elapsed(), result));
                }
                seen
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subgraph_killed_under_load_costs_its_fields_until_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut reviews = reviews_process(port);
    let graph = start(|settings| {
        settings
            .subgraph_urls
            .insert("reviews".into(), format!("http://127.0.0.1:{port}/graphql"));
        settings.subgraph_timeout_ms = 1_000;
        settings.request_timeout_ms = 2_000;
        // Every request goes through to the subgraphs.
        settings.coalesce_requests = false;
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&graph, 4, &stop);

    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = Instant::now();
    reviews.kill();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let restarted = Instant::now();
    let mut reviews = reviews_process(port);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.unwrap());
    }
    reviews.kill();

    let mut counts = [0usize; 2];
    for (_, took, result) in &answers {
        assert!(
            *took < Duration::from_millis(2_500),
            "an answer took {took:?}"
        );
        match result {
            Ok(outcome) => counts[*outcome as usize] += 1,
            Err(problem) => panic!("{problem}"),
        }
    }
    let [whole, without] = counts;
    assert!(
        whole > 0 && without > 0,
        "whole {whole}, without reviews {without}"
    );
    // Before the kill every answer was whole; once the subgraph was down, none was.
    // Requests that started well after the kill and well before the restart (one that starts
    // just before may reach the new process with its second fetch).
    let down = |at: &Instant| {
        *at > killed + Duration::from_millis(300) && *at + Duration::from_millis(300) < restarted
    };
    assert!(
        answers
            .iter()
            .filter(|(at, ..)| *at + Duration::from_millis(50) < killed)
            .all(|(_, _, result)| result == &Ok(Outcome::Whole))
    );
    let whole_while_down: Vec<_> = answers
        .iter()
        .filter(|(at, _, result)| down(at) && result != &Ok(Outcome::WithoutReviews))
        .map(|(at, took, _)| (*at - killed, *took))
        .collect();
    assert!(
        whole_while_down.is_empty(),
        "{whole_while_down:?} after the kill"
    );
    // Back within seconds of the restart (milliseconds here), and whole from then on.
    let back = answers
        .iter()
        .filter(|(at, _, result)| *at > restarted && result == &Ok(Outcome::Whole))
        .map(|(at, ..)| *at)
        .min()
        .expect("whole answers after the restart");
    assert!(
        back < restarted + Duration::from_secs(5),
        "back after {:?}",
        back - restarted
    );
    eprintln!(
        "{whole} whole answers, {without} without reviews; whole again {:?} after the restart",
        back - restarted
    );
    assert!(
        answers
            .iter()
            .filter(|(at, ..)| *at > back + Duration::from_millis(100))
            .all(|(_, _, result)| result == &Ok(Outcome::Whole))
    );
}

/// While a database is down: `ask` answers `DATABASE_ERROR`, twice, each within 7 s, naming
/// no address.
async fn errors_while_down<F, Fut>(ask: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    for _ in 0..2 {
        let started = Instant::now();
        let answer = ask().await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(7), "answered after {took:?}");
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "DATABASE_ERROR",
            "{answer}"
        );
        let text = answer.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("6379"),
            "an address: {text}"
        );
    }
}

/// Once `what` is back: `ask` answers whole (`data` equal to `whole`) within 10 s, by itself.
async fn whole_again<F, Fut>(what: &str, ask: F, whole: &Value)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let back = Instant::now();
    loop {
        let answer = ask().await;
        if answer["data"] == *whole {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "still failing 10 s after {what} came back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "answering again {:?} after {what} came back",
        back.elapsed()
    );
}

/// The feature-store subgraph over a Redis of this test's own, with user 1's segment in it.
async fn feature_store(redis: &common::redis::OwnRedis) -> polygraph_subgraph_redis::Subgraph {
    write_segment(redis);
    let mut config =
        polygraph_subgraph_redis::Config::from_file(&common::repo_root().join("config/redis.yaml"))
            .unwrap();
    config.url = Some(redis.url());
    polygraph_subgraph_redis::Subgraph::start(&config)
        .await
        .expect("the Redis subgraph starts")
}

fn write_segment(redis: &common::redis::OwnRedis) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    redis::cmd("HSET")
        .arg("features:user:1")
        .arg("segment")
        .arg("loyal")
        .query::<()>(&mut connection)
        .unwrap();
}

async fn segment(subgraph: &polygraph_subgraph_redis::Subgraph) -> Value {
    subgraph
        .served()
        .execute(
            "{ _entities(representations: [{ __typename: \"User\", id: \"1\" }]) \
             { ... on User { onlineFeatures { segment } } } }",
            None,
            &async_graphql::Variables::default(),
            None,
        )
        .await
        .json()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_feature_store_answers_errors_while_redis_is_down_and_reconnects_by_itself() {
    let mut redis = common::redis::OwnRedis::start();
    let subgraph = feature_store(&redis).await;
    let whole = json!({ "_entities": [{ "onlineFeatures": { "segment": "loyal" } }] });
    assert_eq!(segment(&subgraph).await["data"], whole);
    redis.stop();
    errors_while_down(|| segment(&subgraph)).await;
    redis.restart();
    write_segment(&redis);
    whole_again("Redis", || segment(&subgraph), &whole).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_postgres_subgraph_answers_errors_while_postgres_is_down_and_reconnects_by_itself() {
    let postgres = common::postgres::OwnPostgres::start();
    let pool = sqlx::PgPool::connect(&postgres.url()).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
         INSERT INTO items VALUES (1, 'kettle'), (2, 'mug');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let config = polygraph_subgraph_postgres::Config::from_yaml(&format!(
        "url: {}\nschema: public\ntables:\n  items: {{ type: Item }}\n",
        postgres.url()
    ))
    .unwrap();
    let subgraph = polygraph_subgraph_postgres::Subgraph::start(&config)
        .await
        .expect("the PostgreSQL subgraph starts");
    let ask = || async {
        subgraph
            .served()
            .execute(
                "{ items(order_by: [{ id: ASC }]) { name } }",
                None,
                &async_graphql::Variables::default(),
                None,
            )
            .await
            .json()
    };
    let whole = json!({ "items": [{ "name": "kettle" }, { "name": "mug" }] });
    assert_eq!(ask().await["data"], whole);

    postgres.stop();
    errors_while_down(&ask).await;
    postgres.restart();
    whole_again("PostgreSQL", &ask, &whole).await;
}

/// A search server (osmem-server, as scripts/dev installs it) of this test's own, in memory.
struct OwnSearch {
    port: u16,
    process: Option<Process>,
}

impl OwnSearch {
    fn binary() -> std::path::PathBuf {
        let cache = std::env::var_os("POLYGRAPH_CACHE").map_or_else(
            || {
                let home = std::env::var_os("XDG_CACHE_HOME").map_or_else(
                    || std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"),
                    std::path::PathBuf::from,
                );
                home.join("polygraph")
            },
            std::path::PathBuf::from,
        );
        let pattern = cache.join("venv-*/lib/python*/site-packages/osmem_server/bin/osmem-server");
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("ls {} | tail -n 1", pattern.display()))
            .output()
            .expect("sh runs");
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        assert!(
            !path.is_empty(),
            "osmem-server is not installed under {}: run scripts/dev up",
            cache.display()
        );
        path.into()
    }

    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut search = Self {
            port,
            process: None,
        };
        search.restart();
        search
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new(Self::binary())
            .args([
                "-addr",
                &format!("127.0.0.1:{}", self.port),
                "-no-stdin-watch",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("osmem-server starts");
        self.process = Some(Process(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the search server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        self.process.take();
    }

    /// The `items` index with two documents (in memory: again after each restart).
    async fn fill(&self) {
        let client = reqwest::Client::new();
        let created = client
            .put(format!("{}/items", self.url()))
            .json(&json!({ "mappings": { "properties": {
                "sku": { "type": "long" }, "title": { "type": "text" } } } }))
            .send()
            .await
            .unwrap();
        assert!(
            created.status().is_success(),
            "{}",
            created.text().await.unwrap()
        );
        for (sku, title) in [(1, "kettle"), (2, "mug")] {
            let indexed = client
                .put(format!("{}/items/_doc/{sku}?refresh=true", self.url()))
                .json(&json!({ "sku": sku, "title": title }))
                .send()
                .await
                .unwrap();
            assert!(
                indexed.status().is_success(),
                "{}",
                indexed.text().await.unwrap()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_search_subgraph_answers_errors_while_the_server_is_down_and_reconnects_by_itself() {
    use polygraph_subgraph_elasticsearch::{Config, Subgraph};
    let mut search = OwnSearch::start();
    search.fill().await;
    let yaml = format!(
        "url: {}\nindices: {{ items: {{ type: Item, key: sku, field: searchItems }} }}",
        search.url()
    );
    let subgraph = Subgraph::start(&Config::from_yaml(&yaml).unwrap())
        .await
        .expect("the search subgraph starts");
    let ask = || async {
        subgraph
            .served()
            .execute(
                "{ _entities(representations: [{ __typename: \"Item\", sku: \"2\" }]) \
                 { ... on Item { title } } }",
                None,
                &async_graphql::Variables::default(),
                None,
            )
            .await
            .json()
    };
    let whole = json!({ "_entities": [{ "title": "mug" }] });
    assert_eq!(ask().await["data"], whole);

    search.stop();
    errors_while_down(&ask).await;
    search.restart();
    search.fill().await;
    whole_again("the search server", &ask, &whole).await;
}
