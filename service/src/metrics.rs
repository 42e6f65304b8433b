//! The metrics a Polygraph process keeps, served as Prometheus text (the `OpenMetrics` format) at `/metrics`.
//!
//! One set per process ([`metrics`]): the gateway fills the request, fetch, cache, reload,
//! sign-in and policy families; a subgraph the request and database families. Label values
//! that come from clients (operation names) are bounded: the first [`MAX_OPERATION_NAMES`]
//! distinct names are kept, later ones are counted under `other`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Distinct operation names kept as label values; later names are counted as `other`.
pub const MAX_OPERATION_NAMES: usize = 256;

/// Latency buckets for a gateway's range: from half a millisecond to the 30 s a request may
/// take at most.
const SECONDS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    30.0,
];

fn latency() -> Histogram {
    Histogram::new(SECONDS)
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

/// How a GraphQL request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Data and no errors.
    Ok,
    /// Executed, with errors in the response.
    Errors,
    /// Refused before execution: malformed, invalid, too costly (4xx but 401/403).
    Invalid,
    /// Refused for its credentials or by authorization (401, 403).
    Denied,
    /// Shed for load, or failed on the server side (5xx).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Errors => "errors",
            Self::Invalid => "invalid",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }

    /// The outcome an HTTP status tells, when the body's errors are not known.
    pub fn of_status(status: u16, errors: bool) -> Self {
        match status {
            401 | 403 => Self::Denied,
            400..=499 => Self::Invalid,
            500.. => Self::Failed,
            _ if errors => Self::Errors,
            _ => Self::Ok,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubgraphLabels {
    subgraph: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchErrorLabels {
    subgraph: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatabaseLabels {
    subgraph: &'static str,
    system: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    subgraph: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Work run just before the metrics are written, to read gauges that are cheaper to read
/// than to keep up to date (a pool's connections).
type Sampler = Box<dyn Fn(&Metrics) + Send + Sync>;

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Latencies<RequestLabels>,
    in_flight: Gauge,
    shed: Counter,
    fetch_seconds: Latencies<SubgraphLabels>,
    fetch_errors: Family<FetchErrorLabels, Counter>,
    cache: Family<CacheLabels, Counter>,
    database_seconds: Latencies<DatabaseLabels>,
    database_errors: Family<DatabaseLabels, Counter>,
    pool: Family<PoolLabels, Gauge>,
    reloads: Family<ResultLabels, Counter>,
    key_refreshes: Family<ResultLabels, Counter>,
    denials: Counter,
    subscriptions: Gauge,
    subscription_events: Counter,
    subscription_ends: Family<ResultLabels, Counter>,
    operations: RwLock<HashSet<String>>,
    samplers: Mutex<Vec<Sampler>>,
    /// Off: the hot paths (requests, fetches, caches, round trips) record nothing.
    enabled: AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    #[allow(clippy::too_many_lines)]
    fn new() -> Self {
        let mut registry = Registry::with_prefix("polygraph");
        let requests = Family::default();
        registry.register(
            "graphql_requests",
            "GraphQL requests answered, by operation name and outcome",
            requests.clone(),
        );
        let request_seconds: Latencies<RequestLabels> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "graphql_request_duration",
            "Time from a request's arrival to its answer, by operation name and outcome",
            Unit::Seconds,
            request_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "graphql_requests_in_flight",
            "GraphQL requests being answered now",
            in_flight.clone(),
        );
        let shed = Counter::default();
        registry.register(
            "requests_shed",
            "Requests refused with 503 because as many as allowed were in flight",
            shed.clone(),
        );
        let fetch_seconds: Latencies<SubgraphLabels> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "subgraph_fetch_duration",
            "Time of each HTTP request to a subgraph, by subgraph",
            Unit::Seconds,
            fetch_seconds.clone(),
        );
        let fetch_errors = Family::default();
        registry.register(
            "subgraph_fetch_errors",
            "Subgraph requests that failed, by subgraph and kind (unreachable, timeout, status, invalid)",
            fetch_errors.clone(),
        );
        let cache = Family::default();
        registry.register(
            "cache_lookups",
            "Cache lookups by cache (document, plan, response, entity, root, persisted) and result (hit, miss)",
            cache.clone(),
        );
        let database_seconds: Latencies<DatabaseLabels> = Family::new_with_constructor(latency);
        registry.register_with_unit(
            "database_round_trip_duration",
            "Time of each round trip from a subgraph to its database",
            Unit::Seconds,
            database_seconds.clone(),
        );
        let database_errors = Family::default();
        registry.register(
            "database_round_trip_errors",
            "Round trips to a database that failed",
            database_errors.clone(),
        );
        let pool = Family::default();
        registry.register(
            "database_pool_connections",
            "A subgraph's database connections by state (idle, in_use, max)",
            pool.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "supergraph_reloads",
            "Supergraph changes seen, by result (served, refused)",
            reloads.clone(),
        );
        let key_refreshes = Family::default();
        registry.register(
            "jwks_refreshes",
            "Fetches of an identity provider's signing keys, by result (ok, failed)",
            key_refreshes.clone(),
        );
        let denials = Counter::default();
        registry.register(
            "policy_denials",
            "Requests with fields refused by @authenticated, @requiresScopes or @policy",
            denials.clone(),
        );
        let subscriptions = Gauge::default();
        registry.register(
            "subscriptions",
            "Subscriptions being served",
            subscriptions.clone(),
        );
        let subscription_events = Counter::default();
        registry.register(
            "subscription_events",
            "Subscription events completed (once per feed, however many identical subscriptions share it)",
            subscription_events.clone(),
        );
        let subscription_ends = Family::default();
        registry.register(
            "subscription_ends",
            "Subscription feeds (one per set of identical subscriptions) ended, by why (completed, clients_left, schema_reload, shutdown, subgraph_error)",
            subscription_ends.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            in_flight,
            shed,
            fetch_seconds,
            fetch_errors,
            cache,
            database_seconds,
            database_errors,
            pool,
            reloads,
            key_refreshes,
            denials,
            subscriptions,
            subscription_events,
            subscription_ends,
            operations: RwLock::default(),
            samplers: Mutex::default(),
            enabled: AtomicBool::new(true),
        }
    }

    /// Turns recording on or off (`POLYGRAPH_METRICS=false`: for measuring what metrics cost).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    fn on(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The label value for an operation name: the name itself while fewer than
    /// [`MAX_OPERATION_NAMES`] are known, `other` after; empty for an anonymous operation.
    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|name| !name.is_empty()) else {
            return String::new();
        };
        if let Ok(known) = self.operations.read() {
            if known.contains(name) {
                return name.to_owned();
            }
            if known.len() >= MAX_OPERATION_NAMES {
                return "other".to_owned();
            }
        }
        let Ok(mut known) = self.operations.write() else {
            return "other".to_owned();
        };
        if known.contains(name) || known.len() < MAX_OPERATION_NAMES {
            known.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// One GraphQL request answered.
    pub fn request(&self, operation: Option<&str>, outcome: Outcome, took: Duration) {
        if !self.on() {
            return;
        }
        let labels = RequestLabels {
            operation: self.operation_label(operation),
            outcome: outcome.as_str(),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A request is being answered until the returned guard drops.
    pub fn in_flight(&self) -> InFlight {
        if !self.on() {
            return InFlight(None);
        }
        self.in_flight.inc();
        InFlight(Some(self.in_flight.clone()))
    }

    /// A request refused because too many were in flight.
    pub fn shed(&self) {
        self.shed.inc();
    }

    /// One HTTP request to a subgraph answered (whatever the answer).
    pub fn fetch(&self, subgraph: &str, took: Duration) {
        if !self.on() {
            return;
        }
        let labels = SubgraphLabels {
            subgraph: subgraph.to_owned(),
        };
        self.fetch_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// One HTTP request to a subgraph failed: `kind` is unreachable, timeout, status or invalid.
    pub fn fetch_error(&self, subgraph: &str, kind: &'static str) {
        if !self.on() {
            return;
        }
        let labels = FetchErrorLabels {
            subgraph: subgraph.to_owned(),
            kind,
        };
        self.fetch_errors.get_or_create(&labels).inc();
    }

    /// One cache lookup.
    pub fn cache(&self, cache: &'static str, hit: bool) {
        if !self.on() {
            return;
        }
        let result = if hit { "hit" } else { "miss" };
        self.cache
            .get_or_create(&CacheLabels { cache, result })
            .inc();
    }

    /// Lookups of many keys at once: `hits` found, `misses` not.
    pub fn cache_counts(&self, cache: &'static str, hits: u64, misses: u64) {
        if !self.on() {
            return;
        }
        for (result, count) in [("hit", hits), ("miss", misses)] {
            if count > 0 {
                self.cache
                    .get_or_create(&CacheLabels { cache, result })
                    .inc_by(count);
            }
        }
    }

    /// One round trip from subgraph `subgraph` to its database, of system `system`.
    pub fn round_trip(
        &self,
        subgraph: &'static str,
        system: &'static str,
        took: Duration,
        ok: bool,
    ) {
        if !self.on() {
            return;
        }
        let labels = DatabaseLabels { subgraph, system };
        self.database_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if !ok {
            self.database_errors.get_or_create(&labels).inc();
        }
    }

    /// A subgraph's pool has `idle` and `in_use` connections of at most `max`.
    pub fn pool(&self, subgraph: &'static str, idle: u64, in_use: u64, max: u64) {
        for (state, value) in [("idle", idle), ("in_use", in_use), ("max", max)] {
            self.pool
                .get_or_create(&PoolLabels { subgraph, state })
                .set(value as i64);
        }
    }

    /// A supergraph change was served (or refused: it did not load).
    pub fn reload(&self, served: bool) {
        let result = if served { "served" } else { "refused" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// An identity provider's keys were fetched (or the fetch failed).
    pub fn key_refresh(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.key_refreshes
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Fields or a request refused by an authorization directive.
    pub fn denied(&self) {
        self.denials.inc();
    }

    /// A subscription started.
    pub fn subscription_started(&self) {
        self.subscriptions.inc();
    }

    /// A subscription event reached its client's queue.
    pub fn subscription_event(&self) {
        self.subscription_events.inc();
    }

    /// A subscriber left (its subscription ended or it went away).
    pub fn subscription_left(&self) {
        self.subscriptions.dec();
    }

    /// A subscription feed (shared by identical subscriptions) ended, for `result`.
    pub fn subscription_ended(&self, result: &'static str) {
        self.subscription_ends
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Runs `sample` each time the metrics are written.
    pub fn sample_on_scrape(&self, sample: impl Fn(&Metrics) + Send + Sync + 'static) {
        if let Ok(mut samplers) = self.samplers.lock() {
            samplers.push(Box::new(sample));
        }
    }

    /// The metrics as `OpenMetrics` text.
    pub fn encode(&self) -> String {
        if let Ok(samplers) = self.samplers.lock() {
            for sample in samplers.iter() {
                sample(self);
            }
        }
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

/// Counts a request in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Option<Gauge>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

/// The media type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
#[allow(clippy::unused_async)] // an axum handler
pub async fn handler() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics().encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded() {
        let metrics = Metrics::new();
        for i in 0..MAX_OPERATION_NAMES {
            assert_eq!(
                metrics.operation_label(Some(&format!("Op{i}"))),
                format!("Op{i}")
            );
        }
        assert_eq!(metrics.operation_label(Some("Op0")), "Op0");
        assert_eq!(metrics.operation_label(Some("OneTooMany")), "other");
        assert_eq!(metrics.operation_label(None), "");
    }

    #[test]
    fn requests_are_written_as_openmetrics() {
        let metrics = Metrics::new();
        metrics.request(Some("Shop"), Outcome::Ok, Duration::from_millis(3));
        metrics.round_trip("postgres", "postgresql", Duration::from_micros(700), false);
        let text = metrics.encode();
        assert!(
            text.contains("polygraph_graphql_requests_total{operation=\"Shop\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "polygraph_graphql_request_duration_seconds_bucket{le=\"0.005\",operation=\"Shop\",outcome=\"ok\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("polygraph_database_round_trip_errors_total{subgraph=\"postgres\",system=\"postgresql\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn outcomes_follow_status() {
        assert_eq!(Outcome::of_status(200, false), Outcome::Ok);
        assert_eq!(Outcome::of_status(200, true), Outcome::Errors);
        assert_eq!(Outcome::of_status(401, false), Outcome::Denied);
        assert_eq!(Outcome::of_status(413, false), Outcome::Invalid);
        assert_eq!(Outcome::of_status(503, false), Outcome::Failed);
    }
}
