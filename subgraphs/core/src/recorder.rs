//! Counting what a subgraph sends its database, and, when asked, keeping the text of each
//! statement: the corpus tests snapshot what every request runs. Each round trip is also
//! timed into the process's metrics and traced as a client span that names the statement's
//! shape (its text with parameters bound separately, never their values).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tracing::Instrument as _;

/// Statements sent so far, and their texts while recording.
#[derive(Debug, Default)]
pub struct Recorder {
    /// The subgraph and its database system (`postgresql`, `redis`, ...), for metrics.
    subgraph: &'static str,
    system: &'static str,
    count: AtomicU64,
    recording: AtomicBool,
    recorded: Mutex<Vec<String>>,
}

impl Recorder {
    /// A recorder for subgraph `subgraph` over a database of `system` (as OpenTelemetry's
    /// `db.system.name` spells it).
    pub fn new(subgraph: &'static str, system: &'static str) -> Self {
        Self {
            subgraph,
            system,
            ..Self::default()
        }
    }

    /// Runs one round trip to the database: timed into the metrics, and traced as a `db` span
    /// whose `db.query.text` is `shape` (written only when the span is recorded).
    pub async fn round_trip<T, E>(
        &self,
        shape: &str,
        trip: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let span = span(self.system, self.subgraph, &shape);
        let started = Instant::now();
        let result = trip.instrument(span.clone()).await;
        polygraph_service::metrics().round_trip(
            self.subgraph,
            self.system,
            started.elapsed(),
            result.is_ok(),
        );
        ended(&span, result)
    }

    /// A round trip that took `took` and ended `ok`, timed by the driver (no span).
    pub fn timed(&self, took: std::time::Duration, ok: bool) {
        polygraph_service::metrics().round_trip(self.subgraph, self.system, took, ok);
    }

    /// Counts one statement; keeps `text` while recording.
    pub fn note(&self, text: &str) {
        self.note_with(|| text.to_owned());
    }

    /// Counts one statement; keeps the text `describe` writes while recording (and only
    /// then writes it).
    pub fn note_with(&self, describe: impl FnOnce() -> String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.recording.load(Ordering::Relaxed)
            && let Ok(mut recorded) = self.recorded.lock()
        {
            recorded.push(describe());
        }
    }

    /// Statements counted since start-up.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// From now on, keeps the text of every statement until [`Recorder::recorded`] takes it.
    pub fn record(&self) {
        self.recording.store(true, Ordering::Relaxed);
    }

    /// The texts kept since the last call, sorted: statements of one request may run at the
    /// same time, in either order.
    pub fn recorded(&self) -> Vec<String> {
        let mut taken = self
            .recorded
            .lock()
            .map(|mut recorded| std::mem::take(&mut *recorded))
            .unwrap_or_default();
        taken.sort();
        taken
    }
}

/// A client span for one round trip of subgraph `subgraph` to its database of `system`, whose
/// `db.query.text` is `shape`: the statement with every value left out (bound parameters, or
/// `?` in their place). `shape` is written only when the span is recorded, so a lazy
/// [`std::fmt::Display`] costs nothing on a request that is not traced.
pub fn span(system: &str, subgraph: &str, shape: &dyn std::fmt::Display) -> tracing::Span {
    tracing::info_span!(
        "db",
        otel.kind = "client",
        otel.name = %format_args!("{system} {subgraph}"),
        otel.status_code = tracing::field::Empty,
        db.system.name = system,
        db.query.text = %shape,
    )
}

/// Marks `span` failed when `result` is an error; gives `result` back.
pub fn ended<T, E>(span: &tracing::Span, result: Result<T, E>) -> Result<T, E> {
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_always_and_keeps_texts_only_while_recording() {
        let recorder = super::Recorder::default();
        recorder.note("SELECT 2");
        assert_eq!(recorder.count(), 1);
        assert!(recorder.recorded().is_empty());
        recorder.record();
        recorder.note("SELECT 2");
        recorder.note("SELECT 1");
        assert_eq!(recorder.count(), 3);
        assert_eq!(recorder.recorded(), ["SELECT 1", "SELECT 2"]);
        assert!(recorder.recorded().is_empty(), "taken once");
    }
}
