//! GraphQL over WebSocket with the `graphql-transport-ws` subprotocol (the protocol of the
//! `graphql-ws` package), served over axum's WebSocket: the gateway serves it to clients and
//! each subgraph to the gateway.
//!
//! The connection must begin with `connection_init` (within [`Limits::init_timeout`], else
//! close 4408), which the [`Handler`] accepts or refuses (4403). Each `subscribe` runs as its
//! own task until its stream ends (`complete`), it fails (`error`, and no `complete`), or the
//! client sends `complete`. An id in use is refused with 4409, a second `connection_init` with
//! 4429, a message that does not fit the protocol with 4400, a `subscribe` before the
//! acknowledgement with 4401. Past [`Limits::max_operations`] at once, a `subscribe` gets an
//! `error` and the connection stays. The server pings every [`Limits::keepalive`]; a client
//! that sends nothing (not even `pong`) for three of those is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::Value;

/// The subprotocol's name, for `Sec-WebSocket-Protocol`.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The protocol's close codes.
pub mod close {
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INIT: u16 = 4429;
    pub const INTERNAL: u16 = 4500;
    /// The server is going away (WebSocket's own code).
    pub const GOING_AWAY: u16 = 1001;
}

/// A message from the client, as the protocol defines it.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {
        #[serde(default)]
        payload: Option<Value>,
    },
    Subscribe {
        id: String,
        payload: Value,
    },
    Complete {
        id: String,
    },
}

/// One event of an operation: an execution result (`{"data":…,"errors":…}`) as JSON text, or
/// the errors (a JSON array) that end it.
#[derive(Debug)]
pub enum Event {
    Next(String),
    Error(String),
}

/// What a server does with a connection's messages.
pub trait Handler: Send + Sync + 'static {
    /// What one connection's operations share: who the client is.
    type Connection: Send + Sync + 'static;

    /// The connection, from `connection_init`'s payload; a refusal's text is the close reason
    /// (4403).
    fn init(&self, payload: Option<Value>) -> BoxFuture<'_, Result<Self::Connection, String>>;

    /// When the connection's credentials expire: it is closed then (4403).
    fn expires(&self, connection: &Self::Connection) -> Option<std::time::SystemTime> {
        let _ = connection;
        None
    }

    /// The events of one operation (`subscribe`'s payload); a stream that ends sends
    /// `complete`, one whose last event is [`Event::Error`] does not.
    fn subscribe(
        &self,
        connection: Arc<Self::Connection>,
        payload: Value,
    ) -> BoxFuture<'static, BoxStream<'static, Event>>;
}

/// What a connection may do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long the client has to send `connection_init`.
    pub init_timeout: Duration,
    /// Operations one connection may run at once.
    pub max_operations: usize,
    /// How often the server pings.
    pub keepalive: Duration,
    /// How long one message may take to be written: a client that reads nothing for that
    /// long is disconnected, so that it holds nothing.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            init_timeout: Duration::from_secs(3),
            max_operations: 100,
            keepalive: Duration::from_secs(12),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// A message for the client, from an operation's task: its id, the generation of that id (an
/// id completed and reused is a new operation, and the old one's last words are dropped).
struct Outgoing {
    id: Arc<str>,
    generation: u64,
    event: Option<Event>,
}

/// The text of a server message.
fn text(kind: &str, id: Option<&str>, payload: Option<&str>) -> Utf8Bytes {
    let mut out = String::with_capacity(48 + payload.map_or(0, str::len));
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(id) = id {
        out.push_str(",\"id\":");
        out.push_str(&Value::from(id).to_string());
    }
    if let Some(payload) = payload {
        out.push_str(",\"payload\":");
        out.push_str(payload);
    }
    out.push('}');
    Utf8Bytes::from(out)
}

/// A close frame; its reason cut to the 123 bytes a control frame has room for.
fn closing(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }))
}

/// One connection's state.
struct Connection<H: Handler> {
    handler: Arc<H>,
    limits: Limits,
    /// Set once `connection_init` is accepted.
    accepted: Option<Arc<H::Connection>>,
    init_seen: bool,
    /// Operations running, by id: their generation and task.
    running: HashMap<Arc<str>, (u64, tokio::task::AbortHandle)>,
    generation: u64,
    events: tokio::sync::mpsc::Sender<Outgoing>,
    /// When the credentials `connection_init` brought expire.
    expires: Option<tokio::time::Instant>,
}

/// Completes at `at`, never without one.
async fn expiry(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The instant `time` is at, now if it passed.
fn until(time: std::time::SystemTime) -> tokio::time::Instant {
    let left = time
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    tokio::time::Instant::now() + left
}

/// What a client message calls for: a reply, nothing, or closing the connection (with a
/// close frame, or without when the socket is gone).
enum Answer {
    Reply(Utf8Bytes),
    Nothing,
    Close(Option<Message>),
}

impl<H: Handler> Connection<H> {
    async fn on_message(&mut self, message: &str) -> Answer {
        let Ok(message) = serde_json::from_str::<ClientMessage>(message) else {
            return Answer::Close(Some(closing(
                close::BAD_REQUEST,
                "Invalid message received",
            )));
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.init_seen {
                    let reason = "Too many initialisation requests";
                    return Answer::Close(Some(closing(close::TOO_MANY_INIT, reason)));
                }
                self.init_seen = true;
                match self.handler.init(payload).await {
                    Ok(accepted) => {
                        self.expires = self.handler.expires(&accepted).map(until);
                        self.accepted = Some(Arc::new(accepted));
                    }
                    Err(reason) => return Answer::Close(Some(closing(close::FORBIDDEN, &reason))),
                }
                Answer::Reply(text("connection_ack", None, None))
            }
            ClientMessage::Ping { .. } => Answer::Reply(text("pong", None, None)),
            ClientMessage::Pong { .. } => Answer::Nothing,
            ClientMessage::Complete { id } => {
                if let Some((_, task)) = self.running.remove(id.as_str()) {
                    task.abort();
                }
                Answer::Nothing
            }
            ClientMessage::Subscribe { id, payload } => self.subscribe(id, payload),
        }
    }

    fn subscribe(&mut self, id: String, payload: Value) -> Answer {
        let Some(accepted) = &self.accepted else {
            return Answer::Close(Some(closing(close::UNAUTHORIZED, "Unauthorized")));
        };
        if self.running.contains_key(id.as_str()) {
            let reason = format!("Subscriber for {id} already exists");
            return Answer::Close(Some(closing(close::SUBSCRIBER_EXISTS, &reason)));
        }
        let most = self.limits.max_operations;
        if self.running.len() >= most {
            let errors = serde_json::json!([{
                "message": format!("this connection already runs {most} operations, the most it may"),
                "extensions": { "code": "TOO_MANY_SUBSCRIPTIONS" },
            }]);
            return Answer::Reply(text("error", Some(&id), Some(&errors.to_string())));
        }
        self.generation += 1;
        let id: Arc<str> = Arc::from(id);
        let task = tokio::spawn(operation(
            self.handler.subscribe(accepted.clone(), payload),
            self.events.clone(),
            id.clone(),
            self.generation,
        ));
        self.running
            .insert(id, (self.generation, task.abort_handle()));
        Answer::Nothing
    }

    /// The message for an operation's event, when the operation is still the one running
    /// under its id.
    fn on_event(&mut self, message: Outgoing) -> Option<Utf8Bytes> {
        let current = self
            .running
            .get(&message.id)
            .is_some_and(|(generation, _)| *generation == message.generation);
        if !current {
            return None;
        }
        Some(match message.event {
            Some(Event::Next(payload)) => text("next", Some(&message.id), Some(&payload)),
            Some(Event::Error(errors)) => {
                self.running.remove(&message.id);
                text("error", Some(&message.id), Some(&errors))
            }
            None => {
                self.running.remove(&message.id);
                text("complete", Some(&message.id), None)
            }
        })
    }
}

/// Serves one connection until either side closes it, or `shutdown` resolves (close 1001).
pub async fn serve<H: Handler>(
    socket: WebSocket,
    handler: Arc<H>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let (mut sink, mut incoming) = socket.split();
    let (events, mut outgoing) = tokio::sync::mpsc::channel::<Outgoing>(64);
    let mut connection = Connection {
        handler,
        limits,
        accepted: None,
        init_seen: false,
        running: HashMap::new(),
        generation: 0,
        events,
        expires: None,
    };
    let init_deadline = tokio::time::sleep(limits.init_timeout);
    tokio::pin!(init_deadline);
    tokio::pin!(shutdown);
    let mut keepalive = tokio::time::interval(limits.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.tick().await;
    let mut quiet_ticks = 0u32;
    let close = loop {
        let reply = tokio::select! {
            () = &mut shutdown => break Some(closing(close::GOING_AWAY, "the server is shutting down")),
            () = &mut init_deadline, if !connection.init_seen => {
                break Some(closing(close::INIT_TIMEOUT, "Connection initialisation timeout"));
            }
            () = expiry(connection.expires) => {
                break Some(closing(close::FORBIDDEN, "the token expired: connect again with a fresh one"));
            }
            _ = keepalive.tick() => {
                quiet_ticks += 1;
                if quiet_ticks > 3 {
                    break Some(closing(close::GOING_AWAY, "no answer to pings"));
                }
                connection.accepted.as_ref().map(|_| text("ping", None, None))
            }
            Some(message) = outgoing.recv() => connection.on_event(message),
            received = incoming.next() => {
                quiet_ticks = 0;
                let message = match received {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        break Some(closing(close::BAD_REQUEST, "binary messages are not part of the protocol"));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                };
                match connection.on_message(&message).await {
                    Answer::Reply(reply) => Some(reply),
                    Answer::Nothing => None,
                    Answer::Close(close) => break close,
                }
            }
        };
        if let Some(reply) = reply {
            let sent = tokio::time::timeout(limits.write_timeout, sink.send(Message::Text(reply)));
            if !matches!(sent.await, Ok(Ok(()))) {
                break None;
            }
        }
    };
    for (_, task) in connection.running.into_values() {
        task.abort();
    }
    if let Some(close) = close {
        let _ = tokio::time::timeout(limits.write_timeout, sink.send(close)).await;
    }
    let _ = tokio::time::timeout(limits.write_timeout, sink.close()).await;
}

/// Runs one operation, handing its events to the connection.
async fn operation(
    events: BoxFuture<'static, BoxStream<'static, Event>>,
    out: tokio::sync::mpsc::Sender<Outgoing>,
    id: Arc<str>,
    generation: u64,
) {
    let mut events = events.await;
    while let Some(event) = events.next().await {
        let ends = matches!(event, Event::Error(_));
        let message = Outgoing {
            id: id.clone(),
            generation,
            event: Some(event),
        };
        if out.send(message).await.is_err() || ends {
            return;
        }
    }
    let _ = out
        .send(Outgoing {
            id,
            generation,
            event: None,
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_read_by_their_type() {
        let subscribe: ClientMessage = serde_json::from_str(
            r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { a }"}}"#,
        )
        .unwrap();
        assert!(matches!(subscribe, ClientMessage::Subscribe { id, .. } if id == "1"));
        let init: ClientMessage = serde_json::from_str(r#"{"type":"connection_init"}"#).unwrap();
        assert!(matches!(
            init,
            ClientMessage::ConnectionInit { payload: None }
        ));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"next","id":"1"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe"}"#).is_err());
    }

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let Message::Close(Some(frame)) = closing(close::SUBSCRIBER_EXISTS, &"é".repeat(100))
        else {
            panic!("a close frame");
        };
        assert!(frame.reason.len() <= 123);
        assert!(frame.reason.as_str().chars().all(|c| c == 'é'));
    }

    #[test]
    fn server_messages_escape_their_ids() {
        assert_eq!(
            text("next", Some("a\"b"), Some("{\"data\":1}")).as_str(),
            r#"{"type":"next","id":"a\"b","payload":{"data":1}}"#
        );
        assert_eq!(
            text("connection_ack", None, None).as_str(),
            r#"{"type":"connection_ack"}"#
        );
    }
}
