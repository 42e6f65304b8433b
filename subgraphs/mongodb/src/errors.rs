//! Errors as the client sees them: the request's own mistakes as `BAD_USER_INPUT`, rejected
//! writes with the server's reason, everything else generic (the details go to the log).

use polygraph_subgraph_core::engine::FieldError;

use crate::model::Model;

pub(crate) fn bad_input(message: impl Into<String>) -> FieldError {
    FieldError::bad_input(message)
}

/// A database failure as the client sees it: the server's message for rejected writes (a
/// validator, a duplicate key), `TIMEOUT` when the server stopped a read at its time limit, a
/// generic message otherwise.
pub(crate) fn database_error(error: &mongodb::error::Error) -> FieldError {
    use mongodb::error::{ErrorKind, WriteFailure};
    tracing::warn!(%error, "MongoDB operation failed");
    let rejected = match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(write)) => Some(write.message.clone()),
        ErrorKind::InsertMany(insert) => insert
            .write_errors
            .as_ref()
            .and_then(|errors| errors.first())
            .map(|write| write.message.clone()),
        ErrorKind::Command(command) if command.code == 121 || command.code == 11000 => {
            Some(command.message.clone())
        }
        // MaxTimeMSExpired: the server stopped the read at its time limit.
        ErrorKind::Command(command) if command.code == 50 => {
            return FieldError::new("the database did not answer in time").code("TIMEOUT");
        }
        _ => None,
    };
    match rejected {
        Some(message) => bad_input(message),
        None => {
            FieldError::new("the database could not answer this request").code("DATABASE_ERROR")
        }
    }
}

/// The subgraph stopped waiting for a read at the model's operation timeout.
pub(crate) fn timed_out(model: &Model) -> FieldError {
    tracing::warn!(timeout = ?model.operation_timeout, "a MongoDB read ran out of time");
    FieldError::new(format!(
        "the database did not answer within {} ms",
        model.operation_timeout.as_millis()
    ))
    .code("TIMEOUT")
}
