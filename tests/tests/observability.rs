//! What a platform team sees of a running Polygraph: Prometheus scraping the gateway and a
//! subgraph (the real Prometheus server, read back through its HTTP query API), one
//! OpenTelemetry trace from the caller through the gateway and two subgraphs down to their
//! databases (spans received over OTLP/HTTP and over OTLP/gRPC by receivers here, decoded with
//! OpenTelemetry's own protobuf types), JSON log lines that carry the trace id, readiness that looks at subgraphs and databases, and a graceful stop on
//! SIGTERM under load. Real binaries: the
//! PostgreSQL and Redis subgraphs over the demo data, and the gateway over the demo supergraph.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::processes::{Running, free_port, spawn, subgraph, wait_healthy};
use common::repo_root;
use serde_json::{Value, json};

/// Users from PostgreSQL with their online features from Redis: two subgraphs, two steps.
const QUERY: &str = r#"query UserFeatures { users(where: {id: {_in: ["1", "2", "3"]}}, order_by: [{id: ASC}]) { id name onlineFeatures { segment } } }"#;

/// The PostgreSQL and Redis subgraphs and a gateway routing the demo supergraph's `postgres`
/// and `redis` to them (the other four are left unreachable); the processes and base URLs.
struct Services {
    /// The subgraphs', then the gateway's.
    processes: Vec<Running>,
    /// Where each serves `/metrics`: PostgreSQL's, Redis's, the gateway's.
    metrics: Vec<String>,
    gateway: String,
    postgres: String,
    redis: String,
    /// Where each process's log is (`gateway.log`, `postgres.log`, `redis.log`).
    dir: tempfile::TempDir,
}

async fn services(env: &[(&str, String)]) -> Services {
    services_with(env, &[]).await
}

/// [`services`], with `gateway_env` for the gateway alone (after `env`, so it wins).
async fn services_with(env: &[(&str, String)], gateway_env: &[(&str, String)]) -> Services {
    services_of(&["postgres", "redis"], env, gateway_env).await
}

/// The subgraphs `names` (the first two are [`Services::postgres`] and [`Services::redis`],
/// whatever they are) and a gateway routing the demo supergraph's to them.
async fn services_of(
    names: &[&str],
    env: &[(&str, String)],
    gateway_env: &[(&str, String)],
) -> Services {
    let dir = tempfile::tempdir().unwrap();
    let mut processes = Vec::new();
    let mut bases = Vec::new();
    // Each process serves /metrics on a port of its own, not on its public one.
    let mut metrics = Vec::new();
    for &name in names {
        let metrics_listen = format!("127.0.0.1:{}", free_port());
        metrics.push(format!("http://{metrics_listen}"));
        let (process, base) = subgraph(
            name,
            &repo_root().join(format!("config/{name}.yaml")),
            &[
                env,
                &[
                    ("OTEL_SERVICE_NAME", format!("subgraph-{name}")),
                    ("POLYGRAPH_METRICS_LISTEN", metrics_listen),
                ],
            ]
            .concat(),
            &dir.path().join(format!("{name}.log")),
        )
        .await;
        processes.push(process);
        bases.push(base);
    }
    let settings = dir.path().join("gateway.yaml");
    let urls = names
        .iter()
        .zip(&bases)
        .fold(String::new(), |mut urls, (name, base)| {
            use std::fmt::Write as _;
            let _ = writeln!(urls, "  {name}: {base}/graphql");
            urls
        });
    std::fs::write(
        &settings,
        format!(
            "subgraph_urls:\n{urls}authorization:\n  policies: {}\n",
            repo_root().join("policies").display()
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let metrics_listen = format!("127.0.0.1:{}", free_port());
    metrics.push(format!("http://{metrics_listen}"));
    let supergraph = repo_root().join("schema/supergraph.graphql");
    let mut gateway = spawn(
        &[
            "gateway",
            "--supergraph",
            supergraph.to_str().unwrap(),
            "--config",
            settings.to_str().unwrap(),
            "--listen",
            &listen,
        ],
        &[
            env,
            gateway_env,
            &[
                ("OTEL_SERVICE_NAME", "gateway".to_owned()),
                ("POLYGRAPH_METRICS_LISTEN", metrics_listen),
            ],
        ]
        .concat(),
        &dir.path().join("gateway.log"),
    );
    let base = format!("http://{listen}");
    wait_healthy(&base, &mut gateway, &dir.path().join("gateway.log")).await;
    processes.push(gateway);
    Services {
        metrics,
        processes,
        gateway: base,
        postgres: bases[0].clone(),
        redis: bases[1].clone(),
        dir,
    }
}

async fn ask(gateway: &str, traceparent: Option<&str>) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{gateway}/graphql"))
        .json(&json!({ "query": QUERY, "operationName": "UserFeatures" }));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["users"].as_array().unwrap().len(), 3, "{body}");
    body
}

#[tokio::test]
async fn readiness_names_what_does_not_answer() {
    let services = services(&[]).await;
    for subgraph in [&services.postgres, &services.redis] {
        let ready = reqwest::get(format!("{subgraph}/ready")).await.unwrap();
        assert_eq!(ready.status(), 200, "{subgraph}: its database answers");
    }
    // The demo supergraph's four other subgraphs are not running.
    let ready = reqwest::get(format!("{}/ready", services.gateway))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body, json!({ "status": "fail", "unreachable": 4 }));
    // Which ones, and why, is for the log.
    let log = std::fs::read_to_string(services.dir.path().join("gateway.log")).unwrap();
    for name in ["clickhouse", "elasticsearch", "mongodb", "neo4j"] {
        assert!(
            log.contains(&format!("subgraph={name}")),
            "{name} not named: {log}"
        );
    }
    // Liveness does not depend on any of that.
    let health = reqwest::get(format!("{}/health", services.gateway))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Debian's Prometheus, as `scripts/dev` unpacks it into the cache (or one on the PATH).
fn prometheus_binary() -> std::path::PathBuf {
    let cache = common::cache_dir();
    let unpacked = cache.join("prometheus/usr/bin/prometheus");
    if unpacked.exists() {
        return unpacked;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "Prometheus is not installed: `scripts/dev up` unpacks it into {}",
        cache.display()
    );
    String::from_utf8(found.stdout).unwrap().trim().into()
}

/// One number Prometheus answers for `query`, once it has one.
async fn prometheus_value(base: &str, query: &str, at_least: f64) -> f64 {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(response) = client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", query)])
            .send()
            .await
            && let Ok(body) = response.json::<Value>().await
        {
            if let Some(value) = body["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|text| text.parse::<f64>().ok())
                && value >= at_least
            {
                return value;
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("Prometheus never answered {query} with at least {at_least}: {last}");
}

#[tokio::test]
async fn prometheus_scrapes_request_counters_and_latency_histograms() {
    let services = services(&[]).await;
    for public in [&services.gateway, &services.postgres] {
        let metrics = reqwest::get(format!("{public}/metrics")).await.unwrap();
        assert_eq!(
            metrics.status(),
            404,
            "{public} serves metrics on its public port"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let host = |base: &str| base.trim_start_matches("http://").to_owned();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gateway\n    static_configs: [{{targets: ['{}']}}]\n  - job_name: postgres\n    static_configs: [{{targets: ['{}']}}]\n",
        host(&services.metrics[2]),
        host(&services.metrics[0])
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut prometheus = Running(
        Command::new(prometheus_binary())
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_mins(1);
    while reqwest::get(format!("{base}/-/ready"))
        .await
        .is_ok_and(|response| !response.status().is_success())
        || reqwest::get(format!("{base}/-/ready")).await.is_err()
    {
        if let Ok(Some(status)) = prometheus.0.try_wait() {
            panic!("prometheus exited with {status}");
        }
        assert!(Instant::now() < deadline, "Prometheus did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..20 {
        ask(&services.gateway, None).await;
    }
    let requests = prometheus_value(
        &base,
        r#"sum(polygraph_graphql_requests_total{job="gateway",operation="UserFeatures",outcome="ok"})"#,
        20.0,
    )
    .await;
    assert!(requests >= 20.0);
    // The latency histogram: every request in a bucket no wider than 30 s, and a median.
    prometheus_value(
        &base,
        r#"sum(polygraph_graphql_request_duration_seconds_bucket{job="gateway",operation="UserFeatures",le="30.0"})"#,
        20.0,
    )
    .await;
    let median = prometheus_value(
        &base,
        r#"histogram_quantile(0.5, sum by (le) (polygraph_graphql_request_duration_seconds_bucket{job="gateway"}))"#,
        0.0,
    )
    .await;
    assert!(median > 0.0 && median < 30.0, "{median}");
    // Each request fetched from PostgreSQL once: the gateway's fetch histogram and the
    // subgraph's own request counter and database round trips agree.
    prometheus_value(
        &base,
        r#"sum(polygraph_subgraph_fetch_duration_seconds_count{job="gateway",subgraph="postgres"})"#,
        20.0,
    )
    .await;
    prometheus_value(
        &base,
        r#"sum(polygraph_graphql_requests_total{job="postgres",outcome="ok"})"#,
        20.0,
    )
    .await;
    prometheus_value(
        &base,
        r#"sum(polygraph_database_round_trip_duration_seconds_count{job="postgres",system="postgresql"})"#,
        20.0,
    )
    .await;
    prometheus_value(
        &base,
        r#"sum(polygraph_database_pool_connections{job="postgres",state="max"})"#,
        1.0,
    )
    .await;
    prometheus_value(
        &base,
        r#"sum(polygraph_cache_lookups_total{job="gateway",cache="plan",result="hit"})"#,
        19.0,
    )
    .await;
}

type Spans = Arc<Mutex<Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)>>>;

/// Keeps every span of `request`, with its service's name.
fn keep(
    kept: &Spans,
    request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .and_then(|attribute| attribute.value.as_ref())
            .and_then(|value| match &value.value {
                Some(Any::StringValue(name)) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                kept.lock().unwrap().push((service.clone(), span));
            }
        }
    }
}

/// An OTLP/HTTP receiver on a free port: every span it is sent, with its service's name.
async fn receiver() -> (String, Spans) {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message as _;
    let spans: Spans = Arc::default();
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                keep(
                    &kept,
                    ExportTraceServiceRequest::decode(body).expect("an OTLP request"),
                );
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), spans)
}

/// The OTLP/gRPC trace service, keeping what it is sent.
struct GrpcReceiver(Spans);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for GrpcReceiver
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        keep(&self.0, request.into_inner());
        Ok(tonic::Response::new(
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::default(),
        ))
    }
}

/// An OTLP/gRPC receiver (tonic's server, HTTP/2) on a free port.
async fn grpc_receiver() -> (String, Spans) {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let spans: Spans = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(GrpcReceiver(spans.clone()));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(futures::stream::unfold(listener, |listener| async move {
                Some((listener.accept().await.map(|(stream, _)| stream), listener))
            }))
            .await
    });
    (format!("http://{address}"), spans)
}

/// A database span's `db.query.text` (empty without one).
fn query_text(span: &opentelemetry_proto::tonic::trace::v1::Span) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    span.attributes
        .iter()
        .find(|attribute| attribute.key == "db.query.text")
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value| match &value.value {
            Some(Any::StringValue(text)) => Some(text.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

#[tokio::test]
async fn one_trace_runs_from_the_caller_through_the_gateway_and_subgraphs_to_the_databases() {
    let (endpoint, spans) = receiver().await;
    one_trace(endpoint, "http/protobuf", &spans).await;
}

#[tokio::test]
async fn spans_travel_over_otlp_grpc_as_well() {
    let (endpoint, spans) = grpc_receiver().await;
    one_trace(endpoint, "grpc", &spans).await;
}

/// Sends one traced request through the gateway and both subgraphs, whose spans go to
/// `endpoint` over `protocol`, and checks the trace that arrives in `spans`.
async fn one_trace(endpoint: String, protocol: &str, spans: &Spans) {
    let services = services(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        ("OTEL_TRACES_SAMPLER_ARG", "1".to_owned()),
        // Spans are sent every second rather than every five.
        ("OTEL_BSP_SCHEDULE_DELAY", "1000".to_owned()),
    ])
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    ask(
        &services.gateway,
        Some(&format!("00-{trace_id}-{caller_span}-01")),
    )
    .await;
    // Gateway, PostgreSQL and Redis each send their spans within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let trace = loop {
        let trace: Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, span)| hex(&span.trace_id) == trace_id)
            .cloned()
            .collect();
        let has = |service: &str, name: &str| {
            trace
                .iter()
                .any(|(s, span)| s == service && span.name.starts_with(name))
        };
        if has("gateway", "graphql")
            && has("subgraph-postgres", "postgresql")
            && has("subgraph-redis", "redis")
        {
            break trace;
        }
        assert!(
            Instant::now() < deadline,
            "the trace never completed: {:#?}",
            trace
                .iter()
                .map(|(service, span)| format!("{service}: {}", span.name))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let by_id: HashMap<String, &(String, opentelemetry_proto::tonic::trace::v1::Span)> = trace
        .iter()
        .map(|entry| (hex(&entry.1.span_id), entry))
        .collect();
    let parent = |span: &opentelemetry_proto::tonic::trace::v1::Span| {
        by_id.get(&hex(&span.parent_span_id)).copied()
    };
    // The gateway's request span is the caller's child.
    let request = trace
        .iter()
        .find(|(service, span)| service == "gateway" && hex(&span.parent_span_id) == caller_span)
        .expect("the gateway's request span, child of the caller's span");
    assert_eq!(request.1.name, "graphql UserFeatures");
    for (subgraph, system) in [("postgres", "postgresql"), ("redis", "redis")] {
        let service = format!("subgraph-{subgraph}");
        // A database span in the subgraph; up its parents: the subgraph's request span, the
        // gateway's fetch of that subgraph, then the gateway's request span.
        let database = trace
            .iter()
            .find(|(s, span)| *s == service && span.name.starts_with(system))
            .unwrap_or_else(|| panic!("no {system} span"));
        let mut chain = vec![database];
        while let Some(up) = parent(&chain.last().unwrap().1) {
            chain.push(up);
        }
        let described: Vec<String> = chain
            .iter()
            .map(|(service, span)| format!("{service}: {}", span.name))
            .collect();
        let served = chain
            .iter()
            .position(|(s, span)| *s == service && span.name.starts_with("graphql"))
            .unwrap_or_else(|| {
                panic!("no {service} request span above its database span: {described:?}")
            });
        let fetch = chain
            .iter()
            .position(|(s, span)| s == "gateway" && span.name == format!("fetch {subgraph}"))
            .unwrap_or_else(|| panic!("no fetch of {subgraph} above: {described:?}"));
        assert_eq!(
            fetch,
            served + 1,
            "the subgraph's span is the fetch's child: {described:?}"
        );
        assert_eq!(
            hex(&chain.last().unwrap().1.span_id),
            hex(&request.1.span_id),
            "the chain ends at the gateway's request span: {described:?}"
        );
        // The statement's shape is there.
        assert!(
            !query_text(&database.1).is_empty(),
            "{system} span without db.query.text"
        );
    }
}

/// MongoDB's and Neo4j's subgraphs trace their round trips too (MongoDB's with the command's
/// shape, its values left out), and report round trips and the use of their pools: MongoDB's
/// connections, and Neo4j's driver threads.
#[tokio::test]
async fn mongodb_and_neo4j_trace_their_round_trips_and_report_their_pools() {
    let (endpoint, spans) = receiver().await;
    let services = services_of(
        &["mongodb", "neo4j"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_TRACES_SAMPLER_ARG", "1".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ],
        &[],
    )
    .await;
    let query = r#"query Reviews { reviews(where: {title: {_eq: "needle-4f1c"}}, limit: 2) { review_id } top: reviews(order_by: [{review_id: ASC}], limit: 2) { review_id product { id boughtTogether(limit: 1) { id } } } }"#;
    let (_, _, body) = common::federation::post(
        &format!("{}/graphql", services.gateway),
        &json!({ "query": query }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["top"].as_array().unwrap().len(), 2, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mongodb, neo4j) = loop {
        let texts = |service: &str, name: &str| -> Vec<String> {
            spans
                .lock()
                .unwrap()
                .iter()
                .filter(|(s, span)| s == service && span.name == name)
                .map(|(_, span)| query_text(span))
                .collect()
        };
        let (mongodb, neo4j) = (
            texts("subgraph-mongodb", "mongodb mongodb"),
            texts("subgraph-neo4j", "neo4j neo4j"),
        );
        if (!mongodb.is_empty() && !neo4j.is_empty()) || Instant::now() > deadline {
            break (mongodb, neo4j);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        mongodb.iter().any(|text| text.starts_with("find reviews") && text.contains(r#""title": {"$eq": ?}"#)),
        "a MongoDB span with the shape of the filter: {mongodb:?}"
    );
    assert!(
        mongodb.iter().all(|text| !text.contains("needle-4f1c")),
        "a value of the request in a MongoDB span: {mongodb:?}"
    );
    assert!(!neo4j.is_empty(), "no Neo4j span");
    for (metrics, subgraph) in services.metrics.iter().zip(["mongodb", "neo4j"]) {
        let text = reqwest::get(format!("{metrics}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |series: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {series} in {subgraph}'s metrics:\n{text}"))
        };
        let max = value(&format!(
            "polygraph_database_pool_connections{{subgraph=\"{subgraph}\",state=\"max\"}}"
        ));
        let idle = value(&format!(
            "polygraph_database_pool_connections{{subgraph=\"{subgraph}\",state=\"idle\"}}"
        ));
        let in_use = value(&format!(
            "polygraph_database_pool_connections{{subgraph=\"{subgraph}\",state=\"in_use\"}}"
        ));
        assert!(
            max >= 1.0 && in_use >= 0.0 && idle + in_use <= max,
            "{subgraph}: {text}"
        );
        if subgraph == "mongodb" {
            // The reads left their connections open in the pool, now idle.
            assert!(idle >= 1.0, "{subgraph}: no open connection: {text}");
        }
        // Both name their database system as they name themselves.
        let trips = value(&format!(
            "polygraph_database_round_trip_duration_seconds_count{{subgraph=\"{subgraph}\",system=\"{subgraph}\"}}"
        ));
        assert!(trips >= 1.0, "{subgraph}: {text}");
    }
}

/// A request the gateway does not sample leaves no span anywhere: its subgraph requests say
/// "not sampled" (with its trace id), so subgraphs that would trace every request of their
/// own do not start traces of their own for it.
#[tokio::test]
async fn a_request_the_gateway_does_not_sample_leaves_no_spans_anywhere() {
    let (endpoint, spans) = receiver().await;
    let services = services_with(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_TRACES_SAMPLER_ARG", "1".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ],
        &[("OTEL_TRACES_SAMPLER_ARG", "0".to_owned())],
    )
    .await;
    ask(&services.gateway, None).await;
    // A caller's "sampled" flag is not trusted at the edge.
    ask(
        &services.gateway,
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    )
    .await;
    // Spans would have been sent within 200 ms of ending; give them ten times that.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen: Vec<String> = spans
        .lock()
        .unwrap()
        .iter()
        .map(|(service, span)| format!("{service}: {}", span.name))
        .collect();
    assert!(seen.is_empty(), "spans of unsampled requests: {seen:?}");
}

/// The JSON log lines of the process that logged to `path`.
fn json_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// In JSON logs, each operation has one line naming it, its status, outcome, duration and the
/// subgraphs it fetched from, inside the request's span with its trace id; the subgraphs'
/// lines for the same request carry the same trace id, so one id finds them all. Sampled or
/// not: the trace id is there either way.
#[tokio::test]
async fn json_operation_lines_carry_the_trace_id_and_the_subgraphs_fetched_from() {
    let (endpoint, _spans) = receiver().await;
    // Traced but not sampled, then not traced at all.
    operation_lines_of_one_request(Some(endpoint), "0af7651916cd43dd8448eb211c80319c").await;
    operation_lines_of_one_request(None, "1bf7651916cd43dd8448eb211c80319d").await;
}

/// Sends one request with trace id `trace_id` through the gateway and two subgraphs (spans to
/// `endpoint`, the gateway sampling none) and checks their JSON operation lines.
async fn operation_lines_of_one_request(endpoint: Option<String>, trace_id: &str) {
    let mut env = vec![
        ("POLYGRAPH_LOG_FORMAT", "json".to_owned()),
        ("POLYGRAPH_LOG_OPERATIONS", "true".to_owned()),
    ];
    env.extend(endpoint.map(|endpoint| ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)));
    let services = services_with(&env, &[("OTEL_TRACES_SAMPLER_ARG", "0".to_owned())]).await;
    ask(
        &services.gateway,
        Some(&format!("00-{trace_id}-b7ad6b7169203331-01")),
    )
    .await;
    let operation_lines = |name: &str| -> Vec<Value> {
        json_lines(&services.dir.path().join(format!("{name}.log")))
            .into_iter()
            .filter(|line| {
                line["target"] == "polygraph::operations" && line["span"]["trace_id"] == trace_id
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let gateway = loop {
        let lines = operation_lines("gateway");
        if !lines.is_empty() || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        gateway.len(),
        1,
        "one operation line with the caller's trace id: {gateway:#?}\n{}",
        std::fs::read_to_string(services.dir.path().join("gateway.log")).unwrap_or_default()
    );
    let fields = &gateway[0]["fields"];
    assert_eq!(fields["message"], "operation", "{fields}");
    assert_eq!(fields["operation"], "UserFeatures", "{fields}");
    assert_eq!(fields["status"], 200, "{fields}");
    assert_eq!(fields["outcome"], "ok", "{fields}");
    assert_eq!(fields["subgraphs"], "postgres,redis", "{fields}");
    assert!(
        fields["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{fields}"
    );
    assert_eq!(gateway[0]["level"], "INFO");
    // Each subgraph logged its part of the request under the same trace id.
    for subgraph in ["postgres", "redis"] {
        let lines = operation_lines(subgraph);
        assert!(
            !lines.is_empty(),
            "no {subgraph} operation line with trace id {trace_id}: {}",
            std::fs::read_to_string(services.dir.path().join(format!("{subgraph}.log")))
                .unwrap_or_default()
        );
        assert_eq!(lines[0]["fields"]["status"], 200, "{}", lines[0]);
    }
}

/// What the load saw of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// 200 with data and no errors.
    Answered,
    /// The connection was refused: the request never reached the gateway.
    Refused,
    /// Anything else: an error status or body, or a connection broken after it was made.
    Broken,
}

async fn one_request(client: &reqwest::Client, gateway: &str) -> Seen {
    let sent = client
        .post(format!("{gateway}/graphql"))
        .json(&json!({ "query": QUERY, "operationName": "UserFeatures" }))
        .send()
        .await;
    match sent {
        Err(error) if error.is_connect() => Seen::Refused,
        Err(_) => Seen::Broken,
        Ok(response) if response.status() != 200 => Seen::Broken,
        Ok(response) => match response.json::<Value>().await {
            Ok(body) if body.get("errors").is_none() && body["data"]["users"].is_array() => {
                Seen::Answered
            }
            _ => Seen::Broken,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_every_accepted_request_and_refuses_new_connections() {
    let mut services = services(&[
        ("POLYGRAPH_LOG_OPERATIONS", "true".to_owned()),
        ("RUST_LOG", "warn,polygraph_service=info".to_owned()),
    ])
    .await;
    let gateway = services.gateway.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..16 {
        let (gateway, stop) = (gateway.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            // A new connection for every request: after SIGTERM, each one tests whether the
            // gateway still accepts connections.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.push(one_request(&client, &gateway).await);
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = services.processes.last().unwrap().0.id();
    let signalled = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = services.processes.last_mut().unwrap().0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not stop within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The load goes on a moment against the stopped gateway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    for task in load {
        seen.extend(task.await.unwrap());
    }
    assert!(status.success(), "the gateway's exit: {status}");
    let count = |kind: Seen| seen.iter().filter(|s| **s == kind).count();
    let answered = count(Seen::Answered);
    assert!(
        answered > 50,
        "only {answered} requests answered before the stop"
    );
    assert!(
        count(Seen::Refused) > 0,
        "no connection was refused after SIGTERM"
    );
    // Every request the gateway took in (one log line each, written as its answer is made)
    // reached its caller whole.
    let log = std::fs::read_to_string(services.dir.path().join("gateway.log")).unwrap();
    let taken = log
        .lines()
        .filter(|line| line.contains("polygraph::operations"))
        .count();
    assert_eq!(
        taken,
        answered,
        "requests the gateway answered ({taken}) vs. answers received ({answered}); broken: {}",
        count(Seen::Broken)
    );
    assert!(
        log.contains("finishing requests in flight") || log.contains("requests in flight finished"),
        "{log}"
    );
}
