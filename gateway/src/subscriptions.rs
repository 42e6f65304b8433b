//! Subscriptions: the gateway subscribes to the subgraph that owns the root field (see
//! `execute::subscribe`) and completes each event from the other subgraphs through the plan,
//! as it would a query's root fetch. Each subscription is one task feeding its client's
//! responses through a bounded queue: a client that does not read them fast enough gets
//! `SUBSCRIPTION_BUFFER_FULL` and the subscription ends, so memory stays bounded. It also
//! ends, with an error the client sees, when the subgraph's stream breaks off, the caller's
//! token expires, a newer supergraph serves (`SUBSCRIPTION_SCHEMA_RELOAD`) or the gateway
//! stops; and when the client goes away, the subgraph is told.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use futures::StreamExt as _;
use tokio::sync::mpsc;

use crate::auth::Session;
use crate::errors::{Code, GraphqlError};
use crate::execute::{CachePolicy, Upstream};
use crate::gateway::{Gateway, Planned, Response, Responses};

/// Subscriptions being served now, over every transport and supergraph.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// How many subscriptions are being served now.
pub fn active() -> usize {
    ACTIVE.load(Ordering::Relaxed)
}

/// What subscriptions may hold.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Subscriptions the gateway serves at once, over every transport.
    pub max_subscriptions: usize,
    /// Operations one WebSocket connection may run at once.
    pub max_per_connection: usize,
    /// Responses kept for a client that has not read them yet; one more ends the
    /// subscription with `SUBSCRIPTION_BUFFER_FULL`.
    pub buffer: usize,
    /// How often a stream that has nothing to say shows it is alive, in milliseconds: a
    /// WebSocket ping, an SSE comment, a multipart `{}` part.
    pub keepalive_ms: u64,
    /// How long a WebSocket client has to send `connection_init`, in milliseconds.
    pub init_timeout_ms: u64,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            max_subscriptions: 20_000,
            max_per_connection: 100,
            buffer: 64,
            keepalive_ms: 5_000,
            init_timeout_ms: 3_000,
        }
    }
}

/// One of the subscriptions the gateway may hold, given back when dropped.
#[derive(Debug)]
pub struct Seat(());

impl Seat {
    /// A seat, when fewer than `max` are taken.
    pub fn take(max: usize) -> Option<Self> {
        ACTIVE
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < max).then_some(active + 1)
            })
            .ok()
            .map(|_| Self(()))
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The last response of a subscription that ends for `code`.
fn ending(code: Code, message: impl Into<String>) -> Response {
    Response {
        data: None,
        errors: vec![GraphqlError::new(message.into(), code)],
        extensions: JsonMap::new(),
        failure: None,
        cache: CachePolicy::NoStore,
        types: Arc::default(),
    }
}

/// Whether the caller's token has expired (`exp`, in seconds since 1970).
fn expired(session: Option<&Session>) -> bool {
    let Some(exp) = session.and_then(|s| s.claims.get("exp")?.as_f64()) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    now >= exp
}

/// One subscription's task: what it needs to complete each event.
pub(crate) struct Feed {
    pub gateway: Arc<Gateway>,
    pub planned: Arc<Planned>,
    pub variables: Valid<JsonMap>,
    pub session: Option<Arc<Session>>,
    /// The first response's extensions (cost, plan).
    pub extensions: JsonMap,
    pub seat: Seat,
}

impl Feed {
    /// Completes each event of `upstream` into a response for `sender`, until the
    /// subscription ends.
    pub async fn run(mut self, mut upstream: Upstream, sender: mpsc::Sender<Response>) {
        let session = self.session.clone();
        let ending = loop {
            let event = tokio::select! {
                () = sender.closed() => break None,
                () = self.gateway.retired() => break Some(ending(
                    Code::SubscriptionSchemaReload,
                    "a new supergraph serves now: subscribe again",
                )),
                () = polygraph_service::serve::stopping() => break Some(ending(
                    Code::SubscriptionServerShutdown,
                    "the gateway is stopping: subscribe again",
                )),
                event = upstream.next() => event,
            };
            let body = match event {
                Ok(Some(body)) => body,
                Ok(None) => break None,
                Err(message) => break Some(ending(Code::SubrequestHttpError, message)),
            };
            if expired(session.as_deref()) {
                break Some(ending(
                    Code::Unauthenticated,
                    "the token expired: subscribe again with a fresh one",
                ));
            }
            let mut response = self
                .gateway
                .event_response(&self.planned, &self.variables, session.as_deref(), body)
                .await;
            response.extensions = std::mem::take(&mut self.extensions);
            match sender.try_send(response) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => break None,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    break Some(ending(
                        Code::SubscriptionBufferFull,
                        format!(
                            "the client did not read {} events in time (subscriptions.buffer): subscribe again",
                            sender.max_capacity()
                        ),
                    ));
                }
            }
        };
        upstream.stop().await;
        if let Some(ending) = ending {
            // Room for it once the client reads one more, however long that takes; not past
            // the client going away.
            tokio::select! {
                () = sender.closed() => {}
                _ = sender.send(ending) => {}
            }
        }
        drop(self.seat);
    }
}

/// The responses `receiver` gets, as a stream.
pub(crate) fn responses(mut receiver: mpsc::Receiver<Response>) -> Responses {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_bounded_and_given_back() {
        let base = active();
        let first = Seat::take(base + 2).expect("a seat is free");
        let second = Seat::take(base + 2).expect("a second seat is free");
        assert!(Seat::take(base + 2).is_none());
        drop(first);
        assert!(Seat::take(base + 2).is_some());
        drop(second);
    }

    #[test]
    fn a_token_past_its_exp_has_expired() {
        let session = |exp: f64| Session {
            subject: None,
            issuer: "test".to_owned(),
            principal: None,
            scopes: Vec::new(),
            roles: Vec::new(),
            claims: serde_json::json!({ "exp": exp })
                .as_object()
                .unwrap()
                .clone(),
        };
        assert!(expired(Some(&session(1.0))));
        assert!(!expired(Some(&session(4_000_000_000.0))));
        assert!(!expired(None));
    }
}
