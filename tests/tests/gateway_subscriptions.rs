//! Subscriptions through the gateway, over the real servers: the PostgreSQL subgraph (a
//! `polygraph subgraph` process) sends each change of a `changes: true` table, from the
//! trigger it installs; the gateway completes every event from MongoDB through the plan; real
//! client libraries receive it over WebSocket (graphql-ws), Server-Sent Events (graphql-sse)
//! and multipart HTTP (Apollo Client). A write to PostgreSQL causes each event.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::processes::{Running, subgraph};
use common::{endpoints, repo_root, serve};
use futures::{SinkExt as _, StreamExt as _};
use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::live::Live;
use polygraph_gateway::supergraph::Supergraph;
use polygraph_subgraph_core::server;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const PRODUCT: &str = "subscription { products_changed { id name reviews(limit: 2) { rating } } }";

struct Stack {
    /// `http://…/graphql`.
    url: String,
    /// The PostgreSQL subgraph's `http://…`.
    postgres_base: String,
    live: Arc<Live>,
    pool: sqlx::PgPool,
    postgres: Running,
    _redis_listener: AbortOnDrop,
    logs: tempfile::TempDir,
}

impl Stack {
    fn ws_url(&self) -> String {
        self.url.replacen("http://", "ws://", 1)
    }

    /// Touches product `id` (no value changes) every 200 ms until `until` completes: each
    /// touch is a change its subscribers hear of.
    async fn touching<T>(&self, id: i64, until: impl std::future::Future<Output = T>) -> T {
        let pool = self.pool.clone();
        let writer = tokio::spawn(async move {
            loop {
                sqlx::query("UPDATE products SET name = name WHERE id = $1")
                    .bind(id)
                    .execute(&pool)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let result = until.await;
        writer.abort();
        result
    }
}

/// The PostgreSQL subgraph as a process and MongoDB's in process, and the gateway over the
/// checked-in supergraph, with `adjust`ed settings.
async fn stack(adjust: impl FnOnce(&mut Settings)) -> Stack {
    let root = repo_root();
    let logs = tempfile::tempdir().unwrap();
    let (postgres, base) = subgraph(
        "postgres",
        &root.join("config/postgres.yaml"),
        &[("POLYGRAPH_POSTGRES_URL", endpoints().postgres)],
        &logs.path().join("postgres.log"),
    )
    .await;
    let mongodb = polygraph_subgraph_mongodb::Subgraph::start(
        &polygraph_subgraph_mongodb::Config::from_file(&root.join("config/mongodb.yaml")).unwrap(),
    )
    .await
    .unwrap();
    let mongodb = serve(server::app(
        server::share(mongodb.served()),
        server::Trust::default(),
    ))
    .await;
    let redis = polygraph_subgraph_redis::Subgraph::start(
        &polygraph_subgraph_redis::Config::from_file(&root.join("config/redis.yaml")).unwrap(),
    )
    .await
    .unwrap();
    let redis_listener = tokio::spawn(redis.changes_listener());
    let redis = serve(server::app(
        server::share(redis.served()),
        server::Trust::default(),
    ))
    .await;
    let mut settings = Settings::default();
    settings.authorization.policies = Some(root.join("policies"));
    settings
        .subgraph_urls
        .insert("redis".to_owned(), format!("http://{redis}/graphql"));
    settings
        .subgraph_urls
        .insert("postgres".to_owned(), format!("{base}/graphql"));
    settings
        .subgraph_urls
        .insert("mongodb".to_owned(), format!("http://{mongodb}/graphql"));
    adjust(&mut settings);
    let sdl = std::fs::read_to_string(root.join("schema/supergraph.graphql")).unwrap();
    let gateway = Arc::new(Gateway::new(Supergraph::parse(&sdl).unwrap(), settings).unwrap());
    gateway.start().await;
    let live = Live::new(gateway, &sdl);
    let address = serve(polygraph_gateway::http::app_live(live.clone())).await;
    Stack {
        url: format!("http://{address}/graphql"),
        postgres_base: base,
        live,
        pool: sqlx::PgPool::connect(&endpoints().postgres).await.unwrap(),
        postgres,
        _redis_listener: AbortOnDrop(redis_listener),
        logs,
    }
}

/// A task stopped with the test.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket to the gateway offering graphql-transport-ws.
async fn socket(stack: &Stack) -> Socket {
    socket_to(&stack.ws_url()).await
}

async fn socket_to(url: &str) -> Socket {
    socket_with(url, None).await
}

/// A WebSocket to `url`, with a gateway claims token when given.
async fn socket_with(url: &str, claims: Option<&str>) -> Socket {
    let mut request = url.into_client_request().unwrap();
    if let Some(claims) = claims {
        request.headers_mut().insert(
            polygraph_subgraph_core::claims::HEADER,
            claims.parse().unwrap(),
        );
    }
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// Starts operation `id` running `query`.
async fn subscribe(socket: &mut Socket, id: &str, query: &str) {
    let message = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    send(socket, message).await;
}

/// The next protocol message (pings answered on the way), or the close frame's code.
async fn receive(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a message within 20 s");
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                if value["type"] == "ping" {
                    send(socket, json!({ "type": "pong" })).await;
                    continue;
                }
                return Ok(value);
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map_or(0, |f| u16::from(f.code))),
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a close frame: {other:?}"),
        }
    }
}

/// The next event of `field` for the object with `id`, skipping the others' (tests running
/// beside this one change other rows of the same tables).
async fn event_of(socket: &mut Socket, field: &str, id: &str) -> Value {
    loop {
        let message = receive(socket).await.unwrap();
        let other = message["type"] == "next"
            && message["payload"]["data"][field]["id"]
                .as_str()
                .is_some_and(|other| other != id);
        if !other {
            return message;
        }
    }
}

/// The next message that is not an event (an error, a completion, the close code).
async fn not_an_event(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let message = receive(socket).await?;
        if message["type"] != "next" {
            return Ok(message);
        }
    }
}

/// A connection subscribed to `PRODUCT` as `id`, once a touch of `product` has reached it.
async fn subscribed(stack: &Stack, id: &str, product: i64) -> Socket {
    let mut socket = initialized(stack).await;
    subscribe(&mut socket, id, PRODUCT).await;
    let first = stack
        .touching(
            product,
            event_of(&mut socket, "products_changed", &product.to_string()),
        )
        .await;
    assert_eq!(first["type"], "next", "{first}");
    socket
}

async fn initialized(stack: &Stack) -> Socket {
    let mut socket = socket(stack).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    socket
}

#[tokio::test]
async fn a_postgres_write_reaches_a_websocket_subscriber_completed_from_mongodb() {
    let stack = stack(|_| {}).await;
    let mut socket = initialized(&stack).await;
    subscribe(&mut socket, "a", PRODUCT).await;
    let event = stack
        .touching(3, event_of(&mut socket, "products_changed", "3"))
        .await;
    assert_eq!(event["type"], "next", "{event}");
    assert_eq!(event["id"], "a");
    let product = &event["payload"]["data"]["products_changed"];
    assert_eq!(product["id"], "3", "{event}");
    assert!(product["name"].is_string(), "{event}");
    // Reviews come from MongoDB: the gateway ran the rest of the plan for the event.
    assert!(product["reviews"].is_array(), "{event}");
    assert!(event["payload"].get("errors").is_none(), "{event}");
    // `complete` from the client ends it; the same id may then start again.
    send(&mut socket, json!({ "id": "a", "type": "complete" })).await;
    send(
        &mut socket,
        json!({ "id": "a", "type": "subscribe", "payload": { "query": "{ products(limit: 1) { id } }" } }),
    )
    .await;
    let next = receive(&mut socket).await.unwrap();
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["payload"]["data"]["products"][0]["id"], "1");
    assert_eq!(receive(&mut socket).await.unwrap()["type"], "complete");
}

#[tokio::test]
async fn identical_subscriptions_share_one_feed_and_each_gets_every_event() {
    let stack = stack(|_| {}).await;
    let mut sockets = Vec::new();
    for id in ["s1", "s2", "s3"] {
        sockets.push(subscribed(&stack, id, 9).await);
    }
    assert_eq!(stack.live.current().subscription_feeds(), 1);
    // The same query for one product more is another feed.
    let mut other = initialized(&stack).await;
    let query = "subscription { products_changed { id name reviews(limit: 1) { rating } } }";
    subscribe(&mut other, "o", query).await;
    let touched = stack.touching(9, async {
        let mut events = Vec::new();
        for socket in &mut sockets {
            events.push(event_of(socket, "products_changed", "9").await);
        }
        events.push(event_of(&mut other, "products_changed", "9").await);
        events
    });
    let events = touched.await;
    assert!(
        events.iter().all(|event| event["type"] == "next"),
        "{events:?}"
    );
    assert_eq!(stack.live.current().subscription_feeds(), 2);
    // A feed ends with its last subscriber.
    drop(sockets);
    drop(other);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stack.live.current().subscription_feeds() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the feeds did not end"
        );
        stack
            .touching(9, tokio::time::sleep(Duration::from_millis(300)))
            .await;
    }
}

#[tokio::test]
async fn the_websocket_protocol_is_enforced_with_its_close_codes() {
    let stack = stack(|settings| settings.subscriptions.init_timeout_ms = 300).await;
    // Subscribing before connection_init: 4401.
    let mut early = socket(&stack).await;
    subscribe(&mut early, "1", PRODUCT).await;
    assert_eq!(receive(&mut early).await, Err(4401));
    // A message outside the protocol: 4400.
    let mut garbled = socket(&stack).await;
    send(&mut garbled, json!({ "type": "hello" })).await;
    assert_eq!(receive(&mut garbled).await, Err(4400));
    // No connection_init in time: 4408.
    let mut silent = socket(&stack).await;
    assert_eq!(receive(&mut silent).await, Err(4408));
    // Two subscriptions with one id: 4409.
    let mut twice = initialized(&stack).await;
    for _ in 0..2 {
        subscribe(&mut twice, "x", PRODUCT).await;
    }
    assert_eq!(not_an_event(&mut twice).await, Err(4409));
    // An invalid operation is an `error` for that id, and the connection stays.
    let mut invalid = initialized(&stack).await;
    send(
        &mut invalid,
        json!({ "id": "v", "type": "subscribe", "payload": { "query": "subscription { nope }" } }),
    )
    .await;
    let error = receive(&mut invalid).await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "v");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    send(&mut invalid, json!({ "type": "ping" })).await;
    assert_eq!(receive(&mut invalid).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn a_bad_token_closes_the_connection_and_anonymous_writes_are_refused() {
    let stack = stack(|settings| {
        let issuer = format!(
            "{{ issuer: '{}', audiences: [polygraph] }}",
            common::oidc::issuer()
        );
        settings.authentication.issuers = vec![serde_yaml::from_str(&issuer).unwrap()];
    })
    .await;
    let mut forged = socket(&stack).await;
    send(
        &mut forged,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not-a-token" } }),
    )
    .await;
    assert_eq!(receive(&mut forged).await, Err(4403));
    let mut anonymous = initialized(&stack).await;
    send(
        &mut anonymous,
        json!({ "id": "w", "type": "subscribe", "payload": {
            "query": "mutation { update_products_by_pk(id: 1, _set: {name: \"x\"}) { id } }"
        } }),
    )
    .await;
    let refused = receive(&mut anonymous).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn a_subgraph_socket_answers_subscriptions_only() {
    let stack = stack(|_| {}).await;
    let url = format!(
        "{}/graphql",
        stack.postgres_base.replacen("http://", "ws://", 1)
    );
    let mut socket = socket_to(&url).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    send(
        &mut socket,
        json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ products(limit: 1) { id } }" } }),
    )
    .await;
    let refused = receive(&mut socket).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn a_subgraph_that_requires_the_gateways_token_refuses_an_unsigned_socket() {
    let subgraph = common::mongo::demo().await;
    let trust = server::Trust {
        require_gateway_token: true,
        ..common::trusting("mongodb")
    };
    let address = serve(server::app(server::share(subgraph.served()), trust)).await;
    let url = format!("ws://{address}/graphql");
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("the upgrade should be refused with a status: {refused:?}");
    };
    assert_eq!(response.status(), 401);
    // With the gateway's signed claims, the same socket opens.
    let claims = common::gateway_token("mongodb", &json!({ "sub": "a" }));
    let mut socket = socket_with(&url, Some(&claims)).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
}

#[tokio::test]
async fn a_new_supergraph_ends_subscriptions_with_an_error() {
    let stack = stack(|_| {}).await;
    let mut socket = subscribed(&stack, "r", 4).await;
    let sdl = std::fs::read_to_string(repo_root().join("schema/supergraph.graphql")).unwrap();
    assert!(stack.live.replace(&format!("{sdl}\n# reloaded\n")).unwrap());
    let ended = not_an_event(&mut socket).await.unwrap();
    assert_eq!(ended["type"], "error", "{ended}");
    assert_eq!(
        ended["payload"][0]["extensions"]["code"],
        "SUBSCRIPTION_SCHEMA_RELOAD"
    );
}

#[tokio::test]
async fn a_subgraph_that_goes_away_ends_the_subscription_with_an_error() {
    let mut stack = stack(|_| {}).await;
    let mut socket = subscribed(&stack, "g", 5).await;
    stack.postgres.0.kill().unwrap();
    let ended = not_an_event(&mut socket).await.unwrap();
    assert_eq!(ended["type"], "error", "{ended}");
    assert_eq!(
        ended["payload"][0]["extensions"]["code"],
        "SUBREQUEST_HTTP_ERROR"
    );
    assert!(
        ended["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("postgres"),
        "{ended}"
    );
}

#[tokio::test]
async fn the_gateway_resubscribes_to_a_subgraph_that_comes_back_when_configured() {
    let mut stack = stack(|settings| settings.subscriptions.resubscribe_attempts = 40).await;
    let mut socket = subscribed(&stack, "b", 8).await;
    // The subgraph goes away and comes back on its address.
    stack.postgres.0.kill().unwrap();
    let _ = stack.postgres.0.wait();
    let listen = stack.postgres_base.trim_start_matches("http://").to_owned();
    let log = stack.logs.path().join("postgres-again.log");
    let config = repo_root().join("config/postgres.yaml");
    let mut again = common::processes::spawn(
        &[
            "subgraph",
            "postgres",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &listen,
        ],
        &[("POLYGRAPH_POSTGRES_URL", endpoints().postgres)],
        &log,
    );
    common::processes::wait_healthy(&stack.postgres_base, &mut again, &log).await;
    stack.postgres = again;
    let next = stack
        .touching(8, event_of(&mut socket, "products_changed", "8"))
        .await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["payload"]["data"]["products_changed"]["id"], "8");
}

#[tokio::test]
async fn subscriptions_over_plain_json_are_refused_with_the_transports_to_use() {
    let stack = stack(|_| {}).await;
    let (status, _, body) =
        common::federation::post(&stack.url, &json!({ "query": PRODUCT })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        common::federation::codes(&body),
        ["SUBSCRIPTION_TRANSPORT_UNSUPPORTED"]
    );
}

/// Runs `tests/js/subscribe.mjs` with `transport` while product 6 is touched: the first event
/// its client library received.
async fn client_event(stack: &Stack, transport: &str, url: &str) -> Value {
    let script = repo_root().join("tests/js/subscribe.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .args([transport, url, PRODUCT, r#""id":"6""#])
        .output();
    let output = stack.touching(6, run).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{transport}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    printed["event"].clone()
}

fn assert_product_event(event: &Value, transport: &str) {
    let product = &event["data"]["products_changed"];
    assert_eq!(product["id"], "6", "{transport}: {event}");
    assert!(product["reviews"].is_array(), "{transport}: {event}");
}

#[tokio::test]
async fn graphql_ws_receives_events() {
    let stack = stack(|_| {}).await;
    let event = client_event(&stack, "graphql-ws", &stack.ws_url()).await;
    assert_product_event(&event, "graphql-ws");
}

#[tokio::test]
async fn graphql_sse_receives_events() {
    let stack = stack(|_| {}).await;
    let event = client_event(&stack, "graphql-sse", &stack.url).await;
    assert_product_event(&event, "graphql-sse");
}

#[tokio::test]
async fn apollo_client_receives_events_over_multipart_http() {
    let stack = stack(|_| {}).await;
    let event = client_event(&stack, "apollo", &stack.url).await;
    assert_product_event(&event, "apollo");
}

#[tokio::test]
async fn mongodb_change_streams_reach_subscribers_as_their_rules_allow() {
    use mongodb::bson::doc;
    let scratch = common::mongo::Scratch::with(vec![
        doc! { "item_id": "seed", "owner": "nobody", "name": "seed" },
    ])
    .await;
    let subgraph = scratch
        .subgraph(
            "{ items: { type: Item, key: item_id, rule: owner = claims.sub, changes: true } }",
        )
        .await;
    let listener = tokio::spawn(subgraph.changes_listener());
    let address = serve(server::app(
        server::share(subgraph.served()),
        common::trusting("mongodb"),
    ))
    .await;
    let claims = common::gateway_token("mongodb", &json!({ "sub": "a" }));
    let mut socket = socket_with(&format!("ws://{address}/graphql"), Some(&claims)).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        receive(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    send(
        &mut socket,
        json!({ "id": "m", "type": "subscribe", "payload": {
            "query": "subscription { items_changed { item_id owner } }"
        } }),
    )
    .await;
    // Each round writes one of b's items, then one of a's: only a's may reach a.
    let items = scratch
        .database
        .collection::<mongodb::bson::Document>("items");
    let writer = tokio::spawn(async move {
        for round in 0.. {
            for owner in ["b", "a"] {
                let item =
                    doc! { "item_id": format!("{owner}-{round}"), "owner": owner, "name": "x" };
                items.insert_one(item).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let event = receive(&mut socket).await.unwrap();
    writer.abort();
    listener.abort();
    assert_eq!(event["type"], "next", "{event}");
    let item = &event["payload"]["data"]["items_changed"];
    assert_eq!(item["owner"], "a", "{event}");
    assert!(
        item["item_id"].as_str().unwrap().starts_with("a-"),
        "{event}"
    );
    scratch.drop().await;
}

#[tokio::test]
async fn a_feature_write_in_redis_reaches_subscribers_with_the_users_postgres_fields() {
    let stack = stack(|_| {}).await;
    let mut socket = initialized(&stack).await;
    send(
        &mut socket,
        json!({ "id": "f", "type": "subscribe", "payload": {
            "query": "subscription { user_online_changed { id name onlineFeatures { segment } } }"
        } }),
    )
    .await;
    // Each touch writes user 7's segment as it is: a keyspace notification, no change of data.
    let client = redis::Client::open(endpoints().redis.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let segment: String = redis::cmd("HGET")
        .arg("features:user:7")
        .arg("segment")
        .query_async(&mut redis)
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        loop {
            let _: () = redis::cmd("HSET")
                .arg("features:user:7")
                .arg("segment")
                .arg(&segment)
                .query_async(&mut redis)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let event = event_of(&mut socket, "user_online_changed", "7").await;
    writer.abort();
    assert_eq!(event["type"], "next", "{event}");
    let user = &event["payload"]["data"]["user_online_changed"];
    assert_eq!(user["id"], "7", "{event}");
    // The name comes from PostgreSQL, the segment from Redis.
    assert!(user["name"].is_string(), "{event}");
    assert!(user["onlineFeatures"]["segment"].is_string(), "{event}");
}
