//! Transports that stream a client's responses: GraphQL over WebSocket (`graphql-transport-ws`,
//! the `graphql-ws` package's protocol), GraphQL over Server-Sent Events (the `graphql-sse`
//! protocol's distinct-connections mode), and multipart HTTP subscriptions (Apollo's protocol,
//! `multipart/mixed;subscriptionSpec=1.0`).
//!
//! Each carries any operation: a query or mutation has one response, a subscription one per
//! event. A request refused before it runs gets the refusal: over HTTP as the ordinary JSON
//! response with its status, over WebSocket as an `error` message. A subscription that ends
//! with an error (its subgraph broke off, a slow client, a new supergraph) says so: an `error`
//! message, an SSE `next` event with only `errors`, a multipart part with `"payload":null`.
//! Streams show they are alive every `subscriptions.keepalive_ms`.
//!
//! Over WebSocket the caller signs in with the `connection_init` payload
//! (`{"Authorization":"Bearer …"}`, also under `headers`) or the upgrade request's
//! `Authorization` header; never with the sign-in cookie, so that another site's page cannot
//! open a connection as its visitor. A token that does not verify closes the connection with
//! 4403.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response as HttpResponse;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use polygraph_service::ws;

use crate::auth::Session;
use crate::gateway::{Options, Request, Response};
use crate::live::Live;
use crate::subscriptions::{Responses, Seat, Subscribed, is_ending};

/// How a client asks for its responses to be streamed over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streaming {
    /// `text/event-stream`.
    Sse,
    /// `multipart/mixed` with `subscriptionSpec`: for subscriptions.
    Multipart,
}

/// The streamed transport `Accept` asks for first, if any.
pub fn streaming(headers: &HeaderMap) -> Option<Streaming> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let media = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "text/event-stream" => return Some(Streaming::Sse),
            "multipart/mixed" => {
                let subscriptions = pieces.any(|parameter| {
                    let name = parameter.split('=').next().unwrap_or_default();
                    name.trim().eq_ignore_ascii_case("subscriptionspec")
                });
                if subscriptions {
                    return Some(Streaming::Multipart);
                }
            }
            _ => {}
        }
    }
    None
}

const MULTIPART: &str = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\"";
const SSE: &str = "text/event-stream; charset=utf-8";

/// A streamed HTTP response of `responses`: each written by `write`, `keepalive` written when
/// nothing else was for that long, `end` written last.
fn streamed(
    media: &'static str,
    responses: Responses,
    keepalive: Duration,
    write: fn(Response) -> Vec<u8>,
    (start, alive, end): (&'static [u8], &'static [u8], &'static [u8]),
) -> HttpResponse {
    enum Item {
        Response(Response),
        Alive,
    }
    let beats = tokio_stream_interval(keepalive).map(|()| Item::Alive);
    // The heartbeat stops when the responses end.
    let merged = futures::stream::select(
        responses
            .map(Item::Response)
            .map(Some)
            .chain(futures::stream::once(async { None })),
        beats.map(Some),
    )
    .take_while(|item| futures::future::ready(item.is_some()))
    .filter_map(futures::future::ready);
    let body = futures::stream::once(async move { Bytes::from_static(start) })
        .chain(merged.map(move |item| match item {
            Item::Response(response) => Bytes::from(write(response)),
            Item::Alive => Bytes::from_static(alive),
        }))
        .chain(futures::stream::once(
            async move { Bytes::from_static(end) },
        ))
        .map(Ok::<_, std::convert::Infallible>);
    let mut response = HttpResponse::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer (nginx) pass each event on at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Ticks every `period`, the first after one period.
fn tokio_stream_interval(period: Duration) -> BoxStream<'static, ()> {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::poll_fn(move |cx| interval.poll_tick(cx).map(|_| Some(()))).boxed()
}

/// An SSE `next` event per response, `complete` at the end (graphql-sse).
fn sse_event(response: Response) -> Vec<u8> {
    let body = response.into_bytes();
    let mut out = Vec::with_capacity(body.len() + 24);
    out.extend_from_slice(b"event: next\ndata: ");
    out.extend_from_slice(&body);
    out.extend_from_slice(b"\n\n");
    out
}

/// A multipart part per response: `{"payload":…}`, or `{"payload":null,"errors":[…]}` for
/// the errors that end a subscription.
fn multipart_part(response: Response) -> Vec<u8> {
    let ending = is_ending(&response);
    let errors = response
        .errors
        .iter()
        .map(crate::errors::GraphqlError::to_json)
        .collect::<Vec<_>>();
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"--graphql\r\ncontent-type: application/json; charset=utf-8\r\n\r\n");
    if ending {
        out.extend_from_slice(b"{\"payload\":null,\"errors\":");
        serde_json::to_writer(&mut out, &errors).expect("errors serialize");
        out.push(b'}');
    } else {
        out.extend_from_slice(b"{\"payload\":");
        out.extend_from_slice(&response.into_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The streamed HTTP response of `subscribed`, or its refusal (for the caller to answer as
/// JSON).
pub fn over_http(
    subscribed: Subscribed,
    streaming: Streaming,
    keepalive: Duration,
) -> Result<HttpResponse, Box<Response>> {
    let responses = match subscribed {
        Subscribed::Refused(response) => return Err(Box::new(response)),
        Subscribed::Streaming(responses) => responses,
    };
    Ok(match streaming {
        Streaming::Sse => streamed(
            SSE,
            responses,
            keepalive,
            sse_event,
            (b":\n\n", b":\n\n", b"event: complete\ndata:\n\n"),
        ),
        Streaming::Multipart => streamed(
            MULTIPART,
            responses,
            keepalive,
            multipart_part,
            (
                b"\r\n",
                b"--graphql\r\ncontent-type: application/json; charset=utf-8\r\n\r\n{}\r\n",
                b"--graphql--\r\n",
            ),
        ),
    })
}

/// WebSocket connections open now.
static SOCKETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A JSON error response.
fn refusal(status: StatusCode, message: &str, code: crate::errors::Code) -> HttpResponse {
    let refusal = Response::request_error(
        crate::gateway::Failure::BadRequest,
        vec![crate::errors::GraphqlError::new(message, code)],
    );
    let mut response = HttpResponse::new(Body::from(refusal.into_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Upgrades to GraphQL over WebSocket.
pub fn socket(live: Arc<Live>, upgrade: WebSocketUpgrade, headers: &HeaderMap) -> HttpResponse {
    let gateway = live.current();
    let settings = &gateway.settings().subscriptions;
    let Some(seat) = Seat::among(&SOCKETS, settings.max_connections) else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the gateway already holds {} WebSocket connections, the most it may (subscriptions.max_connections)",
                settings.max_connections
            ),
            crate::errors::Code::TooManySubscriptions,
        );
    };
    let keepalive = Duration::from_millis(settings.keepalive_ms.max(1));
    let limits = ws::Limits {
        init_timeout: Duration::from_millis(settings.init_timeout_ms),
        max_operations: settings.max_per_connection,
        keepalive,
        write_timeout: (keepalive * 2).max(Duration::from_secs(10)),
    };
    let handler = Arc::new(Sockets {
        live,
        authorization: headers.get(header::AUTHORIZATION).cloned(),
    });
    let mut response = upgrade
        .protocols([ws::PROTOCOL])
        .max_message_size(gateway.settings().max_body_bytes)
        .on_upgrade(move |socket| async move {
            ws::serve(
                socket,
                handler,
                limits,
                polygraph_service::serve::stopping(),
            )
            .await;
            drop(seat);
        });
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && !response
            .headers()
            .contains_key(header::SEC_WEBSOCKET_PROTOCOL)
    {
        // The client offered no subprotocol we speak.
        response = refusal(
            StatusCode::BAD_REQUEST,
            "offer the graphql-transport-ws subprotocol (Sec-WebSocket-Protocol)",
            crate::errors::Code::BadRequest,
        );
    }
    response
}

/// One WebSocket connection's operations.
struct Sockets {
    live: Arc<Live>,
    /// The upgrade request's `Authorization`, for a `connection_init` without one.
    authorization: Option<HeaderValue>,
}

/// The `Authorization` value a `connection_init` payload carries, under any of the names
/// clients use.
fn payload_authorization(payload: Option<&serde_json::Value>) -> Option<String> {
    let payload = payload?.as_object()?;
    let headers = payload
        .get("headers")
        .and_then(serde_json::Value::as_object);
    ["Authorization", "authorization"]
        .iter()
        .find_map(|name| {
            payload
                .get(*name)
                .or_else(|| headers.and_then(|h| h.get(*name)))
        })
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

impl ws::Handler for Sockets {
    type Connection = Option<Arc<Session>>;

    fn init(
        &self,
        payload: Option<serde_json::Value>,
    ) -> BoxFuture<'_, Result<Self::Connection, String>> {
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            match payload_authorization(payload.as_ref()) {
                Some(value) => {
                    let value = HeaderValue::from_str(&value)
                        .map_err(|_| "the Authorization value is not text".to_owned())?;
                    headers.insert(header::AUTHORIZATION, value);
                }
                None => {
                    if let Some(value) = &self.authorization {
                        headers.insert(header::AUTHORIZATION, value.clone());
                    }
                }
            }
            self.live
                .current()
                .authenticate(&headers)
                .await
                .map_err(|error| error.message)
        })
    }

    fn expires(&self, session: &Self::Connection) -> Option<std::time::SystemTime> {
        crate::subscriptions::expiry(session.as_deref())
    }

    fn subscribe(
        &self,
        session: Arc<Self::Connection>,
        payload: serde_json::Value,
    ) -> BoxFuture<'static, BoxStream<'static, ws::Event>> {
        let gateway = self.live.current();
        Box::pin(async move {
            if crate::subscriptions::expired(session.as_deref()) {
                let errors = serde_json::json!([{
                    "message": "the token expired: connect again with a fresh one",
                    "extensions": { "code": "UNAUTHENTICATED" },
                }]);
                let event = ws::Event::Error(errors.to_string());
                return futures::stream::once(async { event }).boxed();
            }
            let request: Request = match serde_json::from_value(payload) {
                Ok(request) => request,
                Err(error) => {
                    let errors = serde_json::json!([{
                        "message": format!("the subscribe payload is not a GraphQL request: {error}"),
                        "extensions": { "code": "BAD_REQUEST" },
                    }]);
                    let event = ws::Event::Error(errors.to_string());
                    return futures::stream::once(async { event }).boxed();
                }
            };
            let options = Options {
                credentials: session.is_some(),
                session: (*session).clone(),
                read_only: false,
                explain: false,
                streaming: true,
            };
            match gateway.subscribe(request, options).await {
                Subscribed::Refused(response) => {
                    let event = ws::Event::Error(errors_json(&response));
                    futures::stream::once(async { event }).boxed()
                }
                Subscribed::Streaming(responses) => responses
                    .map(|response| {
                        if is_ending(&response) {
                            ws::Event::Error(errors_json(&response))
                        } else {
                            ws::Event::Next(
                                String::from_utf8(response.into_bytes()).unwrap_or_default(),
                            )
                        }
                    })
                    .boxed(),
            }
        })
    }
}

/// A response's errors as a JSON array.
fn errors_json(response: &Response) -> String {
    let errors: Vec<_> = response
        .errors
        .iter()
        .map(crate::errors::GraphqlError::to_json)
        .collect();
    serde_json::to_string(&errors).expect("errors serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(accept: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        headers
    }

    #[test]
    fn streaming_is_asked_for_by_accept() {
        assert_eq!(
            streaming(&accepting("text/event-stream")),
            Some(Streaming::Sse)
        );
        assert_eq!(
            streaming(&accepting(
                "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\",application/json"
            )),
            Some(Streaming::Multipart)
        );
        // Incremental delivery (@defer) alone is not a subscription transport.
        assert_eq!(
            streaming(&accepting(
                "multipart/mixed;deferSpec=20220824, application/json"
            )),
            None
        );
        assert_eq!(streaming(&accepting("application/json")), None);
    }

    #[test]
    fn connection_init_payloads_carry_the_token_in_any_usual_place() {
        let token = |payload: serde_json::Value| payload_authorization(Some(&payload));
        assert_eq!(
            token(serde_json::json!({ "Authorization": "Bearer a" })).as_deref(),
            Some("Bearer a")
        );
        assert_eq!(
            token(serde_json::json!({ "headers": { "authorization": "Bearer b" } })).as_deref(),
            Some("Bearer b")
        );
        assert_eq!(token(serde_json::json!({ "other": 1 })), None);
    }
}
