//! Observing GraphQL requests as they are served: a span per request (continuing the caller's
//! trace), the request counter and latency histogram, requests in flight, and, when asked, one
//! log line per operation.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::metrics::{Outcome, metrics};
use crate::traces::{self, OPERATIONS_TARGET};

/// What a GraphQL handler tells the observer about its answer, as a response extension.
#[derive(Clone, Debug, Default)]
pub struct Answered {
    /// The operation's name, as the request gave it.
    pub operation: Option<String>,
    /// Whether the response carries errors.
    pub errors: bool,
}

/// Whether `name` is a GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`) of at most 64 characters.
pub fn is_operation_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes
            .next()
            .is_some_and(|first| first == b'_' || first.is_ascii_alphabetic())
        && bytes.all(|byte| byte == b'_' || byte.is_ascii_alphanumeric())
}

tokio::task_local! {
    /// The subgraphs the request being served has fetched from, for its operation log line.
    static TOUCHED: Arc<Mutex<Vec<String>>>;
}

/// Notes that the request being served fetched from `subgraph` (for its operation log line;
/// nothing when operations are not logged).
pub fn touched(subgraph: &str) {
    let _ = TOUCHED.try_with(|touched| {
        if let Ok(mut touched) = touched.lock()
            && !touched.iter().any(|seen| seen == subgraph)
        {
            touched.push(subgraph.to_owned());
        }
    });
}

/// Notes every subgraph of `subgraphs` as [`touched`].
pub fn touched_all(subgraphs: &[String]) {
    for subgraph in subgraphs {
        touched(subgraph);
    }
}

/// Runs `work` (a request, or work several requests share) with a list of its own of the
/// subgraphs it fetches from, and gives that list with its output (a sharer takes it as its own
/// with [`touched_all`]). Empty when operations are not logged.
pub async fn touching<F: std::future::Future>(work: F) -> (F::Output, Arc<[String]>) {
    if !traces::LOG_OPERATIONS.load(Ordering::Relaxed) {
        return (work.await, Arc::from([]));
    }
    let touched = Arc::new(Mutex::new(Vec::new()));
    let output = TOUCHED.scope(touched.clone(), work).await;
    let list = touched.lock().map(|list| list.clone()).unwrap_or_default();
    (output, list.into())
}

/// Marks a request that must not be sampled whatever its headers say (a subgraph's caller
/// whose claims token did not verify), as a request extension.
#[derive(Clone, Copy, Debug)]
pub struct NeverSample;

/// Middleware for a GraphQL route: the request's span, metrics and operation log line.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let _in_flight = metrics().in_flight();
    let mut decision = traces::decide(request.headers());
    if request.extensions().get::<NeverSample>().is_some() {
        decision.sampled = false;
    }
    let sampled = decision.sampled;
    let span = traces::request_span(sampled, || {
        tracing::info_span!(
            target: traces::REQUEST_TARGET,
            "graphql request",
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = %request.method(),
            url.path = %request.uri().path(),
            http.response.status_code = Empty,
            graphql.operation.name = Empty,
            trace_id = Empty,
        )
    });
    let work = touching(next.run(request).instrument(span.clone()));
    let (response, touched) = if sampled {
        if let Some(parent) = decision.parent {
            let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
        }
        traces::record_trace_id(&span);
        work.await
    } else {
        if !span.is_disabled() {
            span.record("trace_id", tracing::field::display(decision.trace_id));
        }
        // Tracing or not, the subgraphs learn the trace id (and that it is not sampled), so
        // their log lines carry the same id as this one's.
        traces::unsampled(decision.trace_id, work).await
    };
    let took = started.elapsed();
    let answered = response.extensions().get::<Answered>();
    let status = response.status().as_u16();
    let outcome = Outcome::of_status(status, answered.is_some_and(|a| a.errors));
    // A name the client sent is used only when it names an operation that ran, and only when
    // it is a GraphQL name of at most 64 characters: label values and span names stay small.
    let operation = answered
        .filter(|_| matches!(outcome, Outcome::Ok | Outcome::Errors))
        .and_then(|a| a.operation.as_deref())
        .filter(|name| is_operation_name(name));
    metrics().request(operation, outcome, took);
    if !span.is_disabled() {
        span.record("http.response.status_code", status);
        if let Some(name) = operation {
            span.record("graphql.operation.name", name);
            if sampled {
                traces::rename(&span, format!("graphql {name}"));
            }
        }
        if matches!(outcome, Outcome::Failed | Outcome::Errors) {
            span.record("otel.status_code", "ERROR");
        }
    }
    if traces::LOG_OPERATIONS.load(Ordering::Relaxed) {
        let mut subgraphs = touched.to_vec();
        subgraphs.sort_unstable();
        tracing::info!(
            target: OPERATIONS_TARGET,
            parent: &span,
            operation = operation.unwrap_or_default(),
            duration_ms = took.as_secs_f64() * 1000.0,
            status,
            outcome = outcome.as_str(),
            subgraphs = subgraphs.join(","),
            "operation"
        );
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn operation_names_are_short_graphql_names() {
        assert!(super::is_operation_name("UserFeatures"));
        assert!(super::is_operation_name("_q1"));
        assert!(!super::is_operation_name(""));
        assert!(!super::is_operation_name("1st"));
        assert!(!super::is_operation_name("a b"));
        assert!(!super::is_operation_name(&"a".repeat(65)));
    }
}
