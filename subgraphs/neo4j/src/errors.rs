//! The errors the relationships subgraph reports, each with its code; the server's own words
//! go to the log.

use polygraph_subgraph_core::engine::FieldError;

pub(crate) fn timed_out(timeout: std::time::Duration) -> FieldError {
    FieldError::new(format!(
        "the graph query ran past its {} ms limit",
        timeout.as_millis()
    ))
    .code("TIMEOUT")
}

pub(crate) fn busy() -> FieldError {
    FieldError::new("the graph database is busy; try again shortly").code("SERVICE_UNAVAILABLE")
}

pub(crate) fn database_error(error: &dyn std::fmt::Display) -> FieldError {
    tracing::warn!(%error, "Neo4j failed");
    FieldError::new("the graph database could not answer this request").code("DATABASE_ERROR")
}
