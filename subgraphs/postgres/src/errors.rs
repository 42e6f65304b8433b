//! Errors as the client sees them: the request's own mistakes with their reason and code,
//! database failures as a generic message (the details, SQL state included, go to the log).

use polygraph_subgraph_core::engine::FieldError;

use crate::translate::{ErrorKind, TranslateError};

/// An error in the request, safe to show: `BAD_USER_INPUT`, `UNAUTHENTICATED` where a row
/// rule needs claims the request lacks, `FORBIDDEN` where a write would leave the rule.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(bad_input)`
pub(crate) fn bad_input(error: TranslateError) -> FieldError {
    let code = match error.kind {
        ErrorKind::Input => "BAD_USER_INPUT",
        ErrorKind::Unauthenticated => "UNAUTHENTICATED",
        ErrorKind::Forbidden => "FORBIDDEN",
    };
    FieldError::new(error.message).code(code)
}

/// `message` as a `BAD_USER_INPUT` error.
pub(crate) fn input(message: impl Into<String>) -> FieldError {
    FieldError::bad_input(message)
}

/// A database failure: logged in full, shown to the client without internals.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(database_error)`
pub(crate) fn database_error(error: sqlx::Error) -> FieldError {
    if let sqlx::Error::Database(database) = &error {
        let code = database.code().unwrap_or_default();
        // Integrity violations (class 23: unique, foreign key, not null, check) and data
        // exceptions (class 22: a value out of range for its column) are the client's to fix,
        // and PostgreSQL's message names only the constraint or the value: shown as it is.
        if code.starts_with("23") || code.starts_with("22") {
            tracing::info!(sqlstate = %code, constraint = ?database.constraint(), %error, "a write was refused");
            return FieldError::bad_input(database.message());
        }
        // query_canceled: the statement ran past the configured statement_timeout.
        if code == "57014" {
            tracing::warn!(%error, "a PostgreSQL statement ran out of time");
            return FieldError::new("the database did not answer in time").code("TIMEOUT");
        }
    }
    tracing::error!(%error, "PostgreSQL query failed");
    let message = match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            "the database is unavailable"
        }
        _ => "the database could not answer this request",
    };
    FieldError::new(message).code("DATABASE_ERROR")
}
