//! The errors the feature store reports, each with its code; Redis's own words go to the log.

use polygraph_subgraph_core::engine::FieldError;

pub(crate) fn forbidden(message: impl Into<String>) -> FieldError {
    FieldError::new(message).code("FORBIDDEN")
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(database_error)`
pub(crate) fn database_error(error: redis::RedisError) -> FieldError {
    tracing::warn!(%error, "Redis failed");
    FieldError::new("the feature store could not answer this request").code("DATABASE_ERROR")
}
