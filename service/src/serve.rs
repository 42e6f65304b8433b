//! Serving an app over HTTP/1.1 and HTTP/2 (cleartext) as a platform expects: a bound on how
//! long a connection may take to send a request's headers (which also closes idle keep-alive
//! connections), a bound on requests in flight beyond which requests are shed with 503, and on
//! SIGTERM or Ctrl-C a graceful stop: the listener closes at once (new connections are
//! refused), requests in flight finish within a deadline, then the process moves on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tokio::net::TcpListener;

/// Bounds of a served app (the `server` settings of every service).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Milliseconds a connection has to send a request's headers, counted from when it starts
    /// waiting for one: a slow sender and an idle keep-alive connection are both closed.
    pub header_read_timeout_ms: u64,
    /// Requests answered at once; the next ones get 503 with `Retry-After`. 0: no bound.
    pub max_concurrent_requests: usize,
    /// Milliseconds requests in flight have to finish after SIGTERM before the process stops
    /// (keep it under the platform's grace period: Kubernetes gives 30 s).
    pub shutdown_grace_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 30_000,
            max_concurrent_requests: 2048,
            shutdown_grace_ms: 25_000,
        }
    }
}

impl Limits {
    /// `app` with requests beyond [`Limits::max_concurrent_requests`] shed: for the routes
    /// that do work, not for probes and metrics, which must answer under load.
    pub fn shed(&self, app: Router) -> Router {
        if self.max_concurrent_requests == 0 {
            return app;
        }
        let permits = Arc::new(tokio::sync::Semaphore::new(self.max_concurrent_requests));
        app.layer(axum::middleware::from_fn(move |request, next| {
            shed(permits.clone(), request, next)
        }))
    }
}

async fn shed(permits: Arc<tokio::sync::Semaphore>, request: Request, next: Next) -> Response {
    let Ok(_permit) = permits.try_acquire() else {
        crate::metrics().shed();
        let body = r#"{"errors":[{"message":"the server is answering as many requests as it may; retry shortly","extensions":{"code":"SERVICE_UNAVAILABLE"}}]}"#;
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

/// Serves `app` on `listener` until SIGTERM or Ctrl-C, then stops as the module says.
pub async fn serve(listener: TcpListener, app: Router, limits: &Limits) -> anyhow::Result<()> {
    serve_until(listener, app, limits, signalled()).await
}

/// Serves `app` on `listener` until `stop` completes, then stops as the module says.
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms.max(1)));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(256);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was taken: wait a
                    // moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service.clone())
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("stopping: no new connections; finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("requests in flight finished"),
        () = tokio::time::sleep(Duration::from_millis(limits.shutdown_grace_ms)) => tracing::warn!(
            milliseconds = limits.shutdown_grace_ms,
            "requests still in flight after the shutdown deadline were cut off"
        ),
    }
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn signalled() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
