//! Serving a subgraph: `POST`/`GET /graphql` for the gateway and for people, `GET /health`.
//!
//! A request's claims header (see [`crate::claims`]) is verified here, before any resolver
//! runs; a header that does not verify rejects the request with 401. The schema sits behind an
//! atomic pointer so a reload (after the database's schema changed) swaps it without dropping
//! requests in flight.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_graphql::dynamic::Schema;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
pub use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::claims::{HEADER, RequestClaims, Verifier};

/// The schema being served; `store` a new one to swap it in.
pub type SharedSchema = Arc<ArcSwap<Schema>>;

/// Shares `schema` for serving and swapping.
pub fn shared(schema: Schema) -> SharedSchema {
    Arc::new(ArcSwap::from_pointee(schema))
}

#[derive(Clone)]
struct AppState {
    schema: SharedSchema,
    verifier: Option<Arc<Verifier>>,
}

/// The subgraph's HTTP app, without a socket, so tests can drive it directly. Without a
/// verifier, claims headers are ignored (and row rules, which need claims, deny).
pub fn app(schema: SharedSchema, verifier: Option<Arc<Verifier>>) -> Router {
    Router::new()
        .route("/graphql", get(graphql).post(graphql))
        .route("/health", get(|| async { "ok" }))
        .with_state(AppState { schema, verifier })
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let claims = match (headers.get(HEADER), &state.verifier) {
        (Some(token), Some(verifier)) => {
            let outcome = token
                .to_str()
                .map_err(|_| "not text".to_owned())
                .and_then(|token| verifier.verify(token).map_err(|error| error.0));
            match outcome {
                Ok(claims) => Some(claims),
                Err(reason) => return unauthenticated(&format!("invalid claims header: {reason}")),
            }
        }
        _ => None,
    };
    let request = request.into_inner().data(RequestClaims(claims));
    let schema = state.schema.load_full();
    GraphQLResponse::from(schema.execute(request).await).into_response()
}

fn unauthenticated(message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": "UNAUTHENTICATED" } }]
    });
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Binds `listen` and serves `app` until Ctrl-C or SIGTERM.
pub async fn serve(app: Router, listen: SocketAddr, name: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow::anyhow!("binding {listen}: {error}"))?;
    tracing::info!(subgraph = name, %listen, "serving");
    eprintln!("{name} subgraph listening on http://{listen}/graphql");
    serve_on(listener, app).await
}

/// Serves `app` on a bound listener until Ctrl-C or SIGTERM.
pub async fn serve_on(listener: tokio::net::TcpListener, app: Router) -> anyhow::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
