//! The errors the analytics subgraph reports, each with its code; ClickHouse's own words go to
//! the log.

use polygraph_subgraph_core::engine::FieldError;

pub(crate) fn database_error(error: &dyn std::fmt::Display) -> FieldError {
    tracing::warn!(%error, "ClickHouse failed");
    FieldError::new("the analytics database could not answer this request").code("DATABASE_ERROR")
}
