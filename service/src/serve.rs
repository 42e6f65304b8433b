//! Serving an app over HTTP/1.1 and HTTP/2 (cleartext) as a platform expects: a bound on how
//! long a connection may take to send a request's headers (which also closes idle keep-alive
//! connections), a bound on requests in flight beyond which requests are shed with 503, and on
//! SIGTERM or Ctrl-C a graceful stop: the listener closes at once (new connections are
//! refused), requests in flight finish within a deadline, then the process moves on.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tokio::net::TcpListener;

/// Bounds of a served app (the `server` settings of every service).
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(rename = "ServerLimits")]
pub struct Limits {
    /// Milliseconds a connection has to send a request's headers, counted from when it starts
    /// waiting for one: a slow sender and an idle keep-alive connection are both closed.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a request has to send its whole body once its headers are in (a slow
    /// sender would otherwise hold one of the requests in flight).
    pub body_read_timeout_ms: u64,
    /// Requests answered at once; the next ones get 503 with `Retry-After`. 0: no bound.
    pub max_concurrent_requests: usize,
    /// Connections open at once; more are closed as they arrive. 0: no bound.
    pub max_connections: usize,
    /// Where `/metrics` is served, apart from the service's own port (which then does not serve
    /// it): keep metrics off the public port. `POLYGRAPH_METRICS_LISTEN` overrides it.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Milliseconds requests in flight have to finish after SIGTERM before the process stops
    /// (keep it under the platform's grace period: Kubernetes gives 30 s).
    pub shutdown_grace_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 10_000,
            max_concurrent_requests: 2048,
            max_connections: 16_384,
            metrics_listen: None,
            shutdown_grace_ms: 25_000,
        }
    }
}

impl Limits {
    /// Where `/metrics` is served apart: `POLYGRAPH_METRICS_LISTEN`, else the setting.
    pub fn metrics_listen(&self) -> Option<std::net::SocketAddr> {
        std::env::var("POLYGRAPH_METRICS_LISTEN")
            .ok()
            .and_then(|address| address.trim().parse().ok())
            .or(self.metrics_listen)
    }

    /// `app` with `/metrics`, unless metrics are served on a listener of their own.
    pub fn with_metrics(&self, app: Router) -> Router {
        if self.metrics_listen().is_some() {
            app
        } else {
            app.route("/metrics", axum::routing::get(crate::metrics::handler))
        }
    }

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
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    if let Some(address) = limits.metrics_listen() {
        let metrics = TcpListener::bind(address)
            .await
            .map_err(|error| anyhow::anyhow!("cannot listen for metrics on {address}: {error}"))?;
        let app = Router::new().route("/metrics", axum::routing::get(crate::metrics::handler));
        tokio::spawn(async move { axum::serve(metrics, app).await });
    }
    let service = hyper_util::service::TowerToHyperService::new(app);
    // 0 means no bound, for both.
    let patience = match limits.header_read_timeout_ms {
        0 => Duration::from_secs(u64::from(u32::MAX)),
        milliseconds => Duration::from_millis(milliseconds),
    };
    let connections = Arc::new(tokio::sync::Semaphore::new(match limits.max_connections {
        0 => tokio::sync::Semaphore::MAX_PERMITS,
        most => most,
    }));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(patience);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(256);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(signalled());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was taken: wait a
                    // moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::debug!("closed a connection: as many are open as allowed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (builder, service, watcher) = (builder.clone(), service.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _permit = permit;
            // A connection that sends nothing is closed when the header-read time is up: the
            // protocol is told by the first bytes, and hyper's own timer starts after them.
            let mut first = [0u8; 1];
            match tokio::time::timeout(patience, stream.peek(&mut first)).await {
                Ok(Ok(read)) if read > 0 => {}
                _ => return,
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    stop_streams();
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

/// Whether the process is stopping, for what outlives a request: WebSocket connections and
/// streamed responses end (close 1001, an error event) instead of holding the stop up.
fn stopping_flag() -> &'static tokio::sync::watch::Sender<bool> {
    static STOPPING: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> =
        std::sync::OnceLock::new();
    STOPPING.get_or_init(|| tokio::sync::watch::Sender::new(false))
}

/// Tells every stream to end: the server is stopping.
pub fn stop_streams() {
    stopping_flag().send_replace(true);
}

/// Completes once the server is stopping.
pub async fn stopping() {
    let mut stopping = stopping_flag().subscribe();
    let _ = stopping.wait_for(|stopping| *stopping).await;
}

/// Completes on SIGTERM or Ctrl-C.
async fn signalled() {
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
