//! Logs and traces: the process's `tracing` subscriber (text or JSON lines on stderr, with the
//! trace id of the span an event is in), OpenTelemetry spans exported over OTLP (HTTP with
//! protobuf, or gRPC) with head sampling, and W3C trace context read from requests and written
//! to the requests a process sends.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one readable line per event.
    #[default]
    Text,
    /// For log pipelines: one JSON object per line, with the span's fields and trace id.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("log format {other:?}: use text or json")),
        }
    }
}

/// How spans travel to the collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies (`/v1/traces`), port 4318 by convention.
    #[default]
    HttpProtobuf,
    /// OTLP/gRPC, port 4317 by convention.
    Grpc,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "http/protobuf" | "http" => Ok(Self::HttpProtobuf),
            "grpc" => Ok(Self::Grpc),
            other => Err(format!(
                "OTLP protocol {other:?}: use http/protobuf or grpc"
            )),
        }
    }
}

/// What a process logs and where its spans go.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The `service.name` of its spans (`polygraph-gateway`, `polygraph-subgraph-postgres`).
    pub service: String,
    pub log_format: LogFormat,
    /// `tracing` directives for log lines (as `RUST_LOG`); `None`: warnings and errors.
    pub log_filter: Option<String>,
    /// One info line per GraphQL operation (name, duration, status, outcome, the subgraphs it
    /// fetched from).
    pub log_operations: bool,
    /// Where to send spans; `None`: no tracing. For HTTP, the base URL (`/v1/traces` is
    /// added) or the full traces URL.
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: Protocol,
    /// The share of traces kept, from 0 to 1, decided where a trace enters.
    pub sampling: f64,
    /// Whether a caller's `traceparent` decides sampling (and its `tracestate` is kept): yes
    /// for services only the gateway calls, no at the edge, where callers are anyone (their
    /// trace id is still continued, for correlation).
    pub trust_callers: bool,
}

impl Settings {
    /// Logs warnings in text, no traces.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            log_format: LogFormat::Text,
            log_filter: None,
            log_operations: false,
            otlp_endpoint: None,
            otlp_protocol: Protocol::HttpProtobuf,
            sampling: 1.0,
            trust_callers: true,
        }
    }
}

impl Settings {
    /// From the environment, as OpenTelemetry's SDKs read it: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// or `OTEL_EXPORTER_OTLP_ENDPOINT` (no tracing without one), `OTEL_EXPORTER_OTLP_PROTOCOL`
    /// (`http/protobuf` or `grpc`), `OTEL_TRACES_SAMPLER_ARG` (the share of traces kept, 1
    /// by default), `OTEL_SERVICE_NAME`; and `RUST_LOG` (log directives),
    /// `POLYGRAPH_LOG_FORMAT` (`text` or `json`), `POLYGRAPH_LOG_OPERATIONS` (`true`: a line
    /// per operation).
    pub fn from_env(service: &str) -> anyhow::Result<Self> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        let mut settings =
            Self::new(var("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_owned()));
        settings.log_filter = var("RUST_LOG");
        if let Some(format) = var("POLYGRAPH_LOG_FORMAT") {
            settings.log_format = format.trim().parse().map_err(anyhow::Error::msg)?;
        }
        settings.log_operations = var("POLYGRAPH_LOG_OPERATIONS")
            .is_some_and(|value| matches!(value.trim(), "1" | "true" | "yes" | "on"));
        settings.otlp_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if let Some(protocol) = var("OTEL_EXPORTER_OTLP_PROTOCOL") {
            settings.otlp_protocol = protocol.trim().parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(trust) = var("POLYGRAPH_TRACE_TRUST_CALLERS") {
            settings.trust_callers = matches!(trust.trim(), "1" | "true" | "yes" | "on");
        }
        if let Some(ratio) = var("OTEL_TRACES_SAMPLER_ARG") {
            settings.sampling = ratio.trim().parse().map_err(|_| {
                anyhow::anyhow!("OTEL_TRACES_SAMPLER_ARG={ratio:?} is not a share between 0 and 1")
            })?;
        }
        Ok(settings)
    }
}

/// Keeps the span exporter running; dropping it sends the spans still buffered.
#[derive(Debug, Default)]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("sending the last spans failed: {error}");
        }
    }
}

/// The target of the one line per operation.
pub const OPERATIONS_TARGET: &str = "polygraph::operations";

/// Installs the process's subscriber. Must run inside a Tokio runtime when spans go over gRPC.
pub fn init(settings: &Settings) -> anyhow::Result<Guard> {
    use tracing_subscriber::EnvFilter;
    let mut directives = settings
        .log_filter
        .clone()
        .unwrap_or_else(|| "warn".to_owned());
    if settings.log_operations {
        directives.push(',');
        directives.push_str(OPERATIONS_TARGET);
        directives.push_str("=info");
    }
    // The request span is always in the log's view, so that every line logged while serving a
    // request carries its fields and trace id (it prints nothing of its own).
    directives.push(',');
    directives.push_str(REQUEST_TARGET);
    directives.push_str("=info");
    let filter = EnvFilter::try_new(&directives)
        .map_err(|error| anyhow::anyhow!("log filter {directives:?}: {error}"))?;
    let lines = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    LOG_OPERATIONS.store(
        settings.log_operations,
        std::sync::atomic::Ordering::Relaxed,
    );
    TRUST_CALLERS.store(settings.trust_callers, std::sync::atomic::Ordering::Relaxed);
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let (spans, provider) = match &settings.otlp_endpoint {
        Some(endpoint) => {
            let provider = provider(settings, endpoint)?;
            let tracer = provider.tracer("polygraph");
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                // The static half settles most call sites once (another crate's debug events
                // are never asked about again); the dynamic half runs only for ours.
                .with_filter(tracing_subscriber::filter::FilterExt::and(
                    tracing_subscriber::filter::filter_fn(ours),
                    tracing_subscriber::filter::dynamic_filter_fn(traced),
                ));
            SAMPLING_RATIO.store(
                settings.sampling.to_bits(),
                std::sync::atomic::Ordering::Relaxed,
            );
            TRACING.store(true, std::sync::atomic::Ordering::Relaxed);
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .try_init()
        .map_err(|error| anyhow::anyhow!("a log subscriber is already installed: {error}"))?;
    Ok(Guard { provider })
}

fn provider(settings: &Settings, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    if !(0.0..=1.0).contains(&settings.sampling) {
        anyhow::bail!(
            "trace sampling {} is not a share between 0 and 1",
            settings.sampling
        );
    }
    let exporter = match settings.otlp_protocol {
        Protocol::HttpProtobuf => {
            let url = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
                endpoint.to_owned()
            } else {
                format!("{}/v1/traces", endpoint.trim_end_matches('/'))
            };
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(url)
                .with_timeout(Duration::from_secs(10))
                .with_headers(std::collections::HashMap::new())
                .build()?
        }
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(10))
            .build()?,
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampling {
            trust_callers: settings.trust_callers,
        })
        .with_resource(resource)
        .build())
}

/// Head sampling, decided where a trace enters: by the request middleware ([`decide`]), whose
/// span exists for OpenTelemetry only when the request is sampled ([`traced`]). A span whose
/// parent is in this process, or (when callers are trusted) in the caller, follows its parent's
/// decision; any other span got past the filter, so it is kept.
#[derive(Clone, Debug)]
struct Sampling {
    trust_callers: bool,
}

impl opentelemetry_sdk::trace::ShouldSample for Sampling {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        _trace_id: opentelemetry::trace::TraceId,
        _name: &str,
        _span_kind: &opentelemetry::trace::SpanKind,
        _attributes: &[opentelemetry::KeyValue],
        _links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        use opentelemetry::trace::TraceContextExt as _;
        use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult};
        let parent = parent_context
            .map(|context| context.span().span_context().clone())
            .filter(opentelemetry::trace::SpanContext::is_valid);
        match parent {
            Some(parent) if !parent.is_remote() || self.trust_callers => SamplingResult {
                decision: if parent.is_sampled() {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                },
                attributes: Vec::new(),
                trace_state: parent.trace_state().clone(),
            },
            _ => SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: opentelemetry::trace::TraceState::default(),
            },
        }
    }
}

/// Whether each operation gets its log line (see [`Settings::log_operations`]).
pub(crate) static LOG_OPERATIONS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
/// Whether callers' trace context is trusted (see [`Settings::trust_callers`]).
static TRUST_CALLERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
/// Whether spans are exported at all (an OTLP endpoint is set).
static TRACING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The share of new traces kept, as `f64` bits.
static SAMPLING_RATIO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The name of the span [`crate::http::observe`] opens for each request.
pub(crate) const REQUEST_SPAN: &str = "graphql request";
/// Its target.
pub(crate) const REQUEST_TARGET: &str = "polygraph::request";

thread_local! {
    /// Whether the request span about to be opened on this thread is sampled.
    static REQUEST_SAMPLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

tokio::task_local! {
    /// The trace of a request that is not sampled: its subgraph requests still carry it, marked
    /// not sampled, so that the subgraphs do not start traces of their own.
    static UNSAMPLED: opentelemetry::trace::TraceId;
}

/// Which spans and events become OpenTelemetry spans: a request span when its request is
/// sampled, and anything inside a span that is. Nothing else: a request that is not sampled
/// costs no span at all (at 1% sampling, that is what keeps tracing cheap).
fn traced<S>(
    metadata: &tracing::Metadata<'_>,
    context: &tracing_subscriber::layer::Context<'_, S>,
) -> bool
where
    S: tracing::Subscriber + for<'lookup> tracing_subscriber::registry::LookupSpan<'lookup>,
{
    if !ours(metadata) {
        return false;
    }
    if metadata.is_span() && metadata.name() == REQUEST_SPAN {
        return REQUEST_SAMPLED.with(std::cell::Cell::get);
    }
    context
        .current_span()
        .id()
        .is_some_and(|current| context.span(current).is_some())
}

/// Spans and events of Polygraph's own crates at info level or above: the only ones that can
/// become OpenTelemetry spans.
fn ours(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target().starts_with("polygraph") && *metadata.level() <= tracing::Level::INFO
}

/// How one request is traced, decided as it arrives.
pub(crate) struct Decision {
    /// Whether its spans are kept.
    pub sampled: bool,
    /// Its trace id: the caller's, or a new one.
    pub trace_id: opentelemetry::trace::TraceId,
    /// The caller's span, to continue from (its `tracestate` and sampling flag dropped when
    /// callers are not trusted).
    pub parent: Option<opentelemetry::Context>,
}

/// Decides whether a request is sampled: a trusted caller's `traceparent` says so; otherwise
/// the configured share of requests is, by a draw of this process's own (never by an id the
/// caller chose, which could force every request to be traced). Not sampled when spans go
/// nowhere; the trace id is there all the same, for log lines.
pub(crate) fn decide(headers: &axum::http::HeaderMap) -> Decision {
    use opentelemetry::trace::TraceContextExt as _;
    use std::sync::atomic::Ordering::Relaxed;
    let tracing = TRACING.load(Relaxed);
    let remote = headers
        .contains_key("traceparent")
        .then(|| {
            opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
            })
            .span()
            .span_context()
            .clone()
        })
        .filter(opentelemetry::trace::SpanContext::is_valid);
    let trust = TRUST_CALLERS.load(Relaxed);
    let trace_id = remote.as_ref().map_or_else(
        || opentelemetry::trace::TraceId::from(rand::random::<u128>()),
        opentelemetry::trace::SpanContext::trace_id,
    );
    let ratio = f64::from_bits(SAMPLING_RATIO.load(Relaxed));
    let sampled = tracing
        && match &remote {
            Some(remote) if trust => remote.is_sampled(),
            // An untrusted caller chooses its trace id, so the id must not decide: a draw of our own.
            Some(_) => in_share(
                opentelemetry::trace::TraceId::from(rand::random::<u128>()),
                ratio,
            ),
            None => in_share(trace_id, ratio),
        };
    let parent = remote.map(|remote| {
        let remote = if trust {
            remote
        } else {
            opentelemetry::trace::SpanContext::new(
                remote.trace_id(),
                remote.span_id(),
                remote.trace_flags(),
                true,
                opentelemetry::trace::TraceState::default(),
            )
        };
        opentelemetry::Context::new().with_remote_span_context(remote)
    });
    Decision {
        sampled,
        trace_id,
        parent,
    }
}

/// Whether `trace_id` is among the `ratio` share of trace ids kept (its low 63 bits below the
/// ratio's share of them, so every service deciding on the same id agrees).
fn in_share(trace_id: opentelemetry::trace::TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().expect("8 bytes")) >> 1;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    low < bound
}

/// Opens the request span with `open`, for OpenTelemetry only if `sampled`.
pub(crate) fn request_span(sampled: bool, open: impl FnOnce() -> tracing::Span) -> tracing::Span {
    REQUEST_SAMPLED.with(|cell| cell.set(sampled));
    let span = open();
    REQUEST_SAMPLED.with(|cell| cell.set(false));
    span
}

/// Runs `work` (a request that is not sampled) with `trace_id` as its trace, for the
/// `traceparent` its subgraph requests carry.
pub(crate) async fn unsampled<F: std::future::Future>(
    trace_id: opentelemetry::trace::TraceId,
    work: F,
) -> F::Output {
    UNSAMPLED.scope(trace_id, work).await
}

/// Writes `span`'s trace context into the headers of a request about to be sent.
/// In a request that is not sampled, the header says so (flags `00`), with the request's
/// trace id, so that the receiver does not sample it either.
pub fn propagate(span: &tracing::Span, headers: &mut axum::http::HeaderMap) {
    use opentelemetry::trace::TraceContextExt as _;
    if let Ok(trace_id) = UNSAMPLED.try_with(|trace_id| *trace_id) {
        let span_id = opentelemetry::trace::SpanId::from(rand::random::<u64>().max(1));
        let value = format!("00-{trace_id}-{span_id}-00");
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            headers.insert("traceparent", value);
        }
        return;
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return;
    }
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
    });
}

/// Puts the span's trace id in its `trace_id` field, for log lines written inside it.
pub fn record_trace_id(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt as _;
    let context = span.context();
    let trace_id = context.span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Renames `span` once its OpenTelemetry span exists (`otel.name` is read only at its start).
pub fn rename(span: &tracing::Span, name: String) {
    use opentelemetry::trace::TraceContextExt as _;
    span.context().span().update_name(name);
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceId;

    #[test]
    fn a_share_of_trace_ids_is_kept_and_the_same_id_always_decides_alike() {
        let kept = (0..10_000u128)
            .map(|n| TraceId::from(n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)))
            .filter(|id| super::in_share(*id, 0.1))
            .count();
        assert!((800..1200).contains(&kept), "{kept} of 10000 kept at 10%");
        let id = TraceId::from(0x0123_4567_89ab_cdef_0123_4567_89ab_cdefu128);
        assert_eq!(super::in_share(id, 0.3), super::in_share(id, 0.3));
        assert!(super::in_share(id, 1.0));
        assert!(!super::in_share(id, 0.0));
        assert!(!super::in_share(TraceId::from(u128::MAX), 0.999));
    }
}
