//! Serving a subgraph: `POST`/`GET /graphql` for the gateway and for people, `GET /health`.

use std::net::SocketAddr;

use async_graphql::dynamic::Schema;
use async_graphql_axum::GraphQL;
pub use axum::Router;
use axum::routing::{get, post_service};

/// The subgraph's HTTP app, without a socket, so tests can drive it directly.
pub fn app(schema: Schema) -> Router {
    let graphql = GraphQL::new(schema);
    Router::new()
        .route(
            "/graphql",
            post_service(graphql.clone()).get_service(graphql),
        )
        .route("/health", get(|| async { "ok" }))
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
