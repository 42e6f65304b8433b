//! The search server itself: requests counted, answers read as JSON, refusals of the request
//! told apart from failures.

use std::sync::Arc;

use elasticsearch::Elasticsearch;
use polygraph_subgraph_core::engine::FieldError;
use polygraph_subgraph_core::recorder::Recorder;
use serde_json::Value as Json;

use crate::model::Model;

/// The model, the client, and a count of requests.
pub(crate) struct Client {
    pub(crate) model: Arc<Model>,
    pub(crate) server: Elasticsearch,
    /// Requests sent to the server since start-up.
    pub(crate) requests: Arc<Recorder>,
}

impl Client {
    /// Sends a prepared request, counts it, and reads its JSON answer; server refusals of the
    /// request itself are `BAD_USER_INPUT`, anything else `DATABASE_ERROR`.
    pub(crate) async fn send(
        &self,
        describe: impl FnOnce() -> String,
        request: impl Future<
            Output = Result<elasticsearch::http::response::Response, elasticsearch::Error>,
        >,
    ) -> Result<Json, FieldError> {
        self.requests.note_with(describe);
        let response = self.requests.round_trip("search request", request).await;
        let response = response.map_err(|error| {
            tracing::warn!(%error, "search server unreachable");
            database_error("the search server could not be reached")
        })?;
        let status = response.status_code();
        let body: Json = response
            .json()
            .await
            .map_err(|_| database_error("the search server answered something other than JSON"))?;
        if status.is_client_error() {
            let reason = body["error"]["root_cause"][0]["reason"]
                .as_str()
                .or_else(|| body["error"]["reason"].as_str())
                .unwrap_or("the search server refused the request");
            return Err(FieldError::new(reason).code("BAD_USER_INPUT"));
        }
        if !status.is_success() {
            tracing::warn!(%status, %body, "search failed");
            return Err(database_error(
                "the search server could not answer this request",
            ));
        }
        Ok(body)
    }
}

fn database_error(message: &str) -> FieldError {
    FieldError::new(message).code("DATABASE_ERROR")
}
