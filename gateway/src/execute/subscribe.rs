//! Subscribing to a subgraph: one WebSocket per subscription (`graphql-transport-ws`), its
//! upgrade request carrying the caller's claims token as any fetch does. Each `next` is an
//! event, the root fetch's reply for one run of the rest of the plan; an `error` is a last
//! event with those errors; a connection that closes without `complete` is a failure.

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::transport::root_cause;
#[allow(clippy::wildcard_imports)]
use super::*;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long connecting and the protocol's handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// How long a subgraph may send nothing, not even a ping (ours ping every 12 s), before its
/// subscription counts as broken off.
const SILENCE: Duration = Duration::from_secs(40);

/// A subscription's events from its subgraph.
pub struct Upstream {
    socket: Socket,
    subgraph: String,
    /// The subgraph ended the subscription (`complete`, or after an `error`).
    ended: bool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("subgraph", &self.subgraph)
            .finish_non_exhaustive()
    }
}

/// A server message of `graphql-transport-ws`.
#[derive(serde::Deserialize)]
struct ServerMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    payload: Option<&'a serde_json::value::RawValue>,
}

impl Upstream {
    /// The next event (an execution result as JSON), `Ok(None)` once the subgraph has ended
    /// the subscription, or why it broke off (a message for clients; the detail is logged).
    pub async fn next(&mut self) -> Result<Option<Bytes>, String> {
        use futures::SinkExt as _;
        while !self.ended {
            let Ok(received) = tokio::time::timeout(SILENCE, self.socket.next()).await else {
                return Err(self.broke("sent nothing, not even a ping, for 40 s"));
            };
            let message = match received {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => {
                    return Err(self.broke("sent a binary message"));
                }
                Some(Ok(Message::Close(frame))) => {
                    let why =
                        frame.map_or_else(String::new, |f| format!("{} {}", f.code, f.reason));
                    return Err(self.broke(&format!("closed the connection ({why})")));
                }
                Some(Err(error)) => return Err(self.broke(&root_cause(&error))),
                None => return Err(self.broke("closed the connection")),
            };
            let Ok(parsed) = serde_json::from_str::<ServerMessage>(message.as_str()) else {
                return Err(self.broke("sent a message outside the protocol"));
            };
            match parsed.kind.as_ref() {
                "next" => {
                    let payload = parsed.payload.map_or("null", |p| p.get());
                    return Ok(Some(Bytes::copy_from_slice(payload.as_bytes())));
                }
                "error" => {
                    self.ended = true;
                    let errors = parsed.payload.map_or("[]", |p| p.get());
                    let body = format!("{{\"data\":null,\"errors\":{errors}}}");
                    return Ok(Some(Bytes::from(body)));
                }
                "complete" => self.ended = true,
                "ping" => {
                    let pong = Message::Text(r#"{"type":"pong"}"#.into());
                    if let Err(error) = self.socket.send(pong).await {
                        return Err(self.broke(&root_cause(&error)));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Ends the subscription at the subgraph (`complete`, then close), as far as it listens.
    pub async fn stop(mut self) {
        use futures::SinkExt as _;
        if !self.ended {
            let complete = Message::Text(r#"{"type":"complete","id":"1"}"#.into());
            let _ = tokio::time::timeout(HANDSHAKE, self.socket.send(complete)).await;
        }
        let _ = tokio::time::timeout(HANDSHAKE, self.socket.close(None)).await;
    }

    fn broke(&mut self, detail: &str) -> String {
        self.ended = true;
        tracing::warn!(subgraph = %self.subgraph, %detail, "a subgraph subscription broke off");
        format!("the subscription to subgraph {} broke off", self.subgraph)
    }
}

impl Subgraphs {
    /// Subscribes to `subgraph` with the root fetch's request `body`, as `caller`.
    pub async fn subscribe(
        &self,
        subgraph: usize,
        body: Bytes,
        caller: &Caller,
    ) -> Result<Upstream, String> {
        let name = &self.names[subgraph];
        polygraph_service::http::touched(name);
        let failed = |safe: &str, detail: &str| self.failure(subgraph, safe, detail);
        let mut url = self.urls[subgraph]
            .clone()
            .map_err(|detail| failed("is misconfigured", &detail))?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| failed("is misconfigured", "no WebSocket URL"))?;
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|error| failed("is misconfigured", &error.to_string()))?;
        let token = self.signing.token(caller, subgraph, name);
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            reqwest::header::HeaderValue::from_static(polygraph_service::ws::PROTOCOL),
        );
        if let Ok(token) = reqwest::header::HeaderValue::from_str(&token) {
            headers.insert(polygraph_subgraph_core::claims::HEADER, token);
        }
        let handshake = async {
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .max_message_size(Some(self.max_reply_bytes))
                .max_frame_size(Some(self.max_reply_bytes));
            let (mut socket, _) =
                tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                    .await
                    .map_err(|error| root_cause(&error))?;
            handshake(&mut socket, &body).await?;
            Ok::<_, String>(socket)
        };
        let socket = match tokio::time::timeout(HANDSHAKE, handshake).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(detail)) => return Err(failed("cannot subscribe", &detail)),
            Err(_) => return Err(failed("cannot subscribe", "no answer within 5 s")),
        };
        Ok(Upstream {
            socket,
            subgraph: name.clone(),
            ended: false,
        })
    }

    /// The root fetch at `index` answered by a subscription's `event`, not sent.
    pub(super) fn given<'p>(
        &self,
        index: usize,
        fetch: &Fetch,
        event: Option<Bytes>,
    ) -> BoxFuture<'p, Returned<'p>> {
        let answer = event.map_or_else(
            || Err("no event".to_owned()),
            |body| self.event_reply(fetch.subgraph, body),
        );
        let returned = Returned {
            fetches: vec![(index, None)],
            answer,
        };
        futures::future::ready(returned).boxed()
    }

    /// A subscription event as the root fetch's reply.
    fn event_reply(&self, subgraph: usize, body: Bytes) -> Answer {
        match Doc::parse(body) {
            Ok(body)
                if body.root().get("data").is_some() || body.root().get("errors").is_some() =>
            {
                Ok(Arc::new(Reply {
                    body,
                    cache: CachePolicy::NoStore,
                }))
            }
            _ => Err(self.failure(
                subgraph,
                "sent an event that is not a GraphQL response",
                "the event is not a GraphQL response",
            )),
        }
    }
}

/// `connection_init` until `connection_ack`, then `subscribe`.
async fn handshake(socket: &mut Socket, body: &[u8]) -> Result<(), String> {
    use futures::SinkExt as _;
    let send = |text: String| Message::Text(text.into());
    socket
        .send(send(r#"{"type":"connection_init"}"#.to_owned()))
        .await
        .map_err(|error| root_cause(&error))?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let kind = serde_json::from_str::<ServerMessage>(text.as_str())
                    .map(|m| m.kind.into_owned())
                    .unwrap_or_default();
                match kind.as_str() {
                    "connection_ack" => break,
                    "ping" => socket
                        .send(send(r#"{"type":"pong"}"#.to_owned()))
                        .await
                        .map_err(|error| root_cause(&error))?,
                    _ => return Err(format!("answered {kind:?} to connection_init")),
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map_or_else(String::new, |f| format!("{} {}", f.code, f.reason));
                return Err(format!("closed the connection ({why})"));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(root_cause(&error)),
            None => return Err("closed the connection".to_owned()),
        }
    }
    let payload = std::str::from_utf8(body).map_err(|error| error.to_string())?;
    let subscribe = format!(r#"{{"type":"subscribe","id":"1","payload":{payload}}}"#);
    socket
        .send(send(subscribe))
        .await
        .map_err(|error| root_cause(&error))
}
