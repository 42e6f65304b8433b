//! Many subscriptions on one gateway, and how fast a change reaches them: opens `SUBSCRIPTIONS`
//! subscriptions (`products_changed`, over WebSocket, `PER_CONNECTION` to a connection), waits
//! until a warm-up change has reached every one, then changes product 1 in PostgreSQL `EVENTS`
//! times, `INTERVAL_MS` apart, and times each delivery from the write's commit. Memory is read
//! from `/proc` for the processes named in `PIDS` (`gateway=123,postgres=456`): before the
//! subscriptions are opened and once they all have had the warm-up.
//!
//! `subscriptions-load WS_URL POSTGRES_URL [SUBSCRIPTIONS] [PER_CONNECTION] [EVENTS] [INTERVAL_MS]`
//! prints one JSON object.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const QUERY: &str = "subscription { products_changed { id name price } }";

/// What every connection's reader shares.
struct Shared {
    /// When the last write committed, and which write it was (0 is the warm-up).
    written: std::sync::Mutex<(Instant, u64)>,
    /// Deliveries per write.
    delivered: Vec<AtomicU64>,
    /// Latencies of measured deliveries, in microseconds.
    latencies: Mutex<Vec<u64>>,
    /// Deliveries that were errors.
    errors: AtomicU64,
}

fn arg<T: std::str::FromStr>(args: &[String], index: usize, default: T) -> T {
    args.get(index)
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of each named process, in KiB.
fn rss(pids: &[(String, u32)]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (name, pid) in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        out.insert(name.clone(), kib.into());
    }
    out.into()
}

async fn connection(url: String, first: usize, count: usize, shared: Arc<Shared>) {
    let mut request = url.as_str().into_client_request().expect("a WebSocket URL");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("a header value"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the gateway accepts the connection");
    let text = |value: serde_json::Value| Message::Text(value.to_string().into());
    socket
        .send(text(serde_json::json!({ "type": "connection_init" })))
        .await
        .expect("sent");
    for id in first..first + count {
        socket
            .send(text(serde_json::json!({
                "id": id.to_string(), "type": "subscribe", "payload": { "query": QUERY }
            })))
            .await
            .expect("sent");
    }
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(body) = message else {
            continue;
        };
        let arrived = Instant::now();
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body.as_str()) else {
            continue;
        };
        match value["type"].as_str() {
            Some("next") if value["payload"].get("errors").is_none() => {
                let (at, write) = *shared.written.lock().expect("not poisoned");
                if let Some(counter) = shared.delivered.get(usize::try_from(write).unwrap_or(0)) {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                if write > 0 {
                    let micros = u64::try_from(arrived.duration_since(at).as_micros()).unwrap_or(0);
                    shared.latencies.lock().await.push(micros);
                }
            }
            Some("ping") => {
                let _ = socket
                    .send(text(serde_json::json!({ "type": "pong" })))
                    .await;
            }
            Some("next" | "error") => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

async fn write(pool: &sqlx::PgPool, shared: &Shared, number: u64) {
    // The write counts from its commit: the change is announced then.
    let mut transaction = pool.begin().await.expect("a transaction");
    sqlx::query("UPDATE products SET name = name WHERE id = 1")
        .execute(&mut *transaction)
        .await
        .expect("the update runs");
    transaction.commit().await.expect("it commits");
    *shared.written.lock().expect("not poisoned") = (Instant::now(), number);
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    #[allow(clippy::cast_precision_loss)]
    let millis = sorted[index] as f64 / 1000.0;
    millis
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(postgres)) = (args.get(1).cloned(), args.get(2).cloned()) else {
        eprintln!(
            "usage: subscriptions-load WS_URL POSTGRES_URL [SUBSCRIPTIONS] [PER_CONNECTION] [EVENTS] [INTERVAL_MS]"
        );
        std::process::exit(2);
    };
    let total: usize = arg(&args, 3, 10_000);
    let per_connection: usize = arg(&args, 4, 100).max(1);
    let events: u64 = arg(&args, 5, 10);
    let interval = Duration::from_millis(arg(&args, 6, 3_000));
    let pids: Vec<(String, u32)> = std::env::var("PIDS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| {
            let (name, pid) = pair.split_once('=')?;
            Some((name.to_owned(), pid.parse().ok()?))
        })
        .collect();
    let pool = sqlx::PgPool::connect(&postgres).await.expect("PostgreSQL");
    let shared = Arc::new(Shared {
        written: std::sync::Mutex::new((Instant::now(), 0)),
        delivered: (0..=events).map(|_| AtomicU64::new(0)).collect(),
        latencies: Mutex::new(Vec::new()),
        errors: AtomicU64::new(0),
    });
    let before = rss(&pids);
    let opened = Instant::now();
    let mut first = 0;
    while first < total {
        let count = per_connection.min(total - first);
        tokio::spawn(connection(url.clone(), first, count, shared.clone()));
        first += count;
    }
    // The warm-up: written again until every subscription has had it (each is subscribed).
    let warm = loop {
        write(&pool, &shared, 0).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let reached = shared.delivered[0].load(Ordering::Relaxed);
        if reached >= total as u64 || opened.elapsed() > Duration::from_mins(3) {
            break reached;
        }
        shared.delivered[0].store(0, Ordering::Relaxed);
    };
    let ready_after = opened.elapsed();
    tokio::time::sleep(interval).await;
    let during = rss(&pids);
    for number in 1..=events {
        write(&pool, &shared, number).await;
        tokio::time::sleep(interval).await;
    }
    let mut latencies = std::mem::take(&mut *shared.latencies.lock().await);
    latencies.sort_unstable();
    let delivered: u64 = shared.delivered[1..]
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .sum();
    let report = serde_json::json!({
        "subscriptions": total,
        "per_connection": per_connection,
        "warm_up_reached": warm,
        "all_subscribed_after_s": ready_after.as_secs_f64(),
        "events": events,
        "deliveries": delivered,
        "expected_deliveries": events * total as u64,
        "errors": shared.errors.load(Ordering::Relaxed),
        "latency_ms": {
            "p50": percentile(&latencies, 0.50),
            "p99": percentile(&latencies, 0.99),
            "max": percentile(&latencies, 1.0),
        },
        "rss_kib_before": before,
        "rss_kib_with_subscriptions": during,
    });
    println!("{report}");
    std::process::exit(0);
}
