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
use crate::gateway::{Failure, Gateway, Options, Planned, Request, Response, unplannable};

/// Subscriptions being served now, over every transport and supergraph.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// How many subscriptions are being served now.
pub fn active() -> usize {
    ACTIVE.load(Ordering::Relaxed)
}

/// How long a subscription that ends with an error waits for its client to take that error.
const LAST_WORD: std::time::Duration = std::time::Duration::from_secs(10);

/// One of a bounded number of places (subscriptions, connections), given back when dropped.
#[derive(Debug)]
pub struct Seat(&'static AtomicUsize);

impl Seat {
    /// A subscription's seat, when fewer than `max` are taken.
    pub fn take(max: usize) -> Option<Self> {
        Self::among(&ACTIVE, max)
    }

    /// A seat counted by `taken`, when fewer than `max` are.
    pub fn among(taken: &'static AtomicUsize, max: usize) -> Option<Self> {
        taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < max).then_some(active + 1)
            })
            .ok()
            .map(|_| Self(taken))
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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

/// When the caller's token expires (`exp`), if it says.
pub(crate) fn expiry(session: Option<&Session>) -> Option<std::time::SystemTime> {
    let exp = session?.claims.get("exp")?.as_f64()?;
    let exp = std::time::Duration::try_from_secs_f64(exp.max(0.0)).ok()?;
    std::time::UNIX_EPOCH.checked_add(exp)
}

/// Whether the caller's token has expired.
pub(crate) fn expired(session: Option<&Session>) -> bool {
    expiry(session).is_some_and(|exp| std::time::SystemTime::now() >= exp)
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
    /// The subgraph subscribed to and the request it was sent, to subscribe again.
    pub root: (usize, bytes::Bytes),
}

impl Feed {
    /// Completes each event of `upstream` into a response for `sender`, until the
    /// subscription ends.
    pub async fn run(mut self, mut upstream: Upstream, sender: mpsc::Sender<Response>) {
        let metrics = polygraph_service::metrics();
        metrics.subscription_started();
        let (reason, ending) = self.feed(&mut upstream, &sender).await;
        metrics.subscription_ended(reason);
        upstream.stop().await;
        drop(self.seat);
        if let Some(ending) = ending {
            // Room for it once the client reads one more; not past the client going away, or
            // a client that reads nothing more.
            tokio::select! {
                () = sender.closed() => {}
                () = tokio::time::sleep(LAST_WORD) => {}
                _ = sender.send(ending) => {}
            }
        }
    }

    /// Feeds `sender` until the subscription ends: why (for the metrics), and the error the
    /// client gets, if any.
    async fn feed(
        &mut self,
        upstream: &mut Upstream,
        sender: &mpsc::Sender<Response>,
    ) -> (&'static str, Option<Response>) {
        let session = self.session.clone();
        let attempts = self.gateway.settings().subscriptions.resubscribe_attempts;
        let mut attempts_left = attempts;
        loop {
            let event = tokio::select! {
                () = sender.closed() => return ("client_left", None),
                () = self.gateway.retired() => return ("schema_reload", Some(ending(
                    Code::SubscriptionSchemaReload,
                    "a new supergraph serves now: subscribe again",
                ))),
                () = polygraph_service::serve::stopping() => return ("shutdown", Some(ending(
                    Code::SubscriptionServerShutdown,
                    "the gateway is stopping: subscribe again",
                ))),
                event = upstream.next() => event,
            };
            let body = match event {
                Ok(Some(body)) => {
                    attempts_left = attempts;
                    body
                }
                Ok(None) => return ("completed", None),
                Err(message) => {
                    let Some(again) = self.resubscribed(&mut attempts_left, sender).await else {
                        let error = ending(Code::SubrequestHttpError, message);
                        return ("subgraph_error", Some(error));
                    };
                    *upstream = again;
                    continue;
                }
            };
            if expired(session.as_deref()) {
                let error = ending(
                    Code::Unauthenticated,
                    "the token expired: subscribe again with a fresh one",
                );
                return ("token_expired", Some(error));
            }
            let mut response = self
                .gateway
                .event_response(&self.planned, &self.variables, session.as_deref(), body)
                .await;
            response.extensions = std::mem::take(&mut self.extensions);
            match sender.try_send(response) {
                Ok(()) => polygraph_service::metrics().subscription_event(),
                Err(mpsc::error::TrySendError::Closed(_)) => return ("client_left", None),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let message = format!(
                        "the client did not read {} events in time (subscriptions.buffer): subscribe again",
                        sender.max_capacity()
                    );
                    let error = ending(Code::SubscriptionBufferFull, message);
                    return ("buffer_full", Some(error));
                }
            }
        }
    }

    /// The subscription made again after its subgraph's broke off, within
    /// `subscriptions.resubscribe_attempts` (waiting 250 ms, then twice as long each time, at
    /// most 5 s); `None` once they are spent or the client has gone.
    async fn resubscribed(
        &self,
        attempts_left: &mut u32,
        sender: &mpsc::Sender<Response>,
    ) -> Option<Upstream> {
        let mut wait = std::time::Duration::from_millis(250);
        while *attempts_left > 0 {
            *attempts_left -= 1;
            tokio::select! {
                () = sender.closed() => return None,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(std::time::Duration::from_secs(5));
            let caller = self.gateway.subgraphs.caller(self.session.as_deref());
            let (subgraph, body) = &self.root;
            if let Ok(again) = self
                .gateway
                .subgraphs
                .subscribe(*subgraph, body.clone(), &caller)
                .await
            {
                tracing::info!("resubscribed to a subgraph after its subscription broke off");
                return Some(again);
            }
        }
        None
    }
}

/// One client operation's responses, for transports that stream them.
pub type Responses = futures::stream::BoxStream<'static, Response>;

/// What [`Gateway::subscribe`] gives a streaming transport.
pub enum Subscribed {
    /// Refused before it ran: one response, with its [`Failure`].
    Refused(Response),
    /// Its responses: one for a query or mutation, one per event for a subscription.
    Streaming(Responses),
}

impl std::fmt::Debug for Subscribed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(response) => f.debug_tuple("Refused").field(response).finish(),
            Self::Streaming(_) => f.write_str("Streaming"),
        }
    }
}

impl Gateway {
    /// A subscription's responses: one per event of the subgraph that owns its root field,
    /// each completed from the other subgraphs through the plan. Anything else has one
    /// response; a request refused before it runs (a subscription that cannot start) has its
    /// refusal instead.
    pub async fn subscribe(self: &Arc<Self>, mut request: Request, options: Options) -> Subscribed {
        use futures::StreamExt as _;
        if let Err(refused) = self.resolve(&mut request).await {
            return Subscribed::Refused(*refused);
        }
        if self.operation_type(&mut request)
            != Some(apollo_compiler::ast::OperationType::Subscription)
        {
            let response = self.execute(request, options).await;
            if response.failure.is_some() {
                return Subscribed::Refused(response);
            }
            return Subscribed::Streaming(futures::stream::once(async { response }).boxed());
        }
        match self.start_subscription(request, options).await {
            Ok(responses) => Subscribed::Streaming(responses),
            Err(refused) => Subscribed::Refused(*refused),
        }
    }

    async fn start_subscription(
        self: &Arc<Self>,
        mut request: Request,
        options: Options,
    ) -> Result<Responses, Box<Response>> {
        let ready = self.ready(&mut request, &options).await?;
        let settings = &self.settings().subscriptions;
        let Some(seat) = Seat::take(settings.max_subscriptions) else {
            return Err(Box::new(Response::request_error(
                Failure::BadRequest,
                vec![GraphqlError::new(
                    format!(
                        "the gateway already serves {} subscriptions, the most it may (subscriptions.max_subscriptions)",
                        settings.max_subscriptions
                    ),
                    Code::TooManySubscriptions,
                )],
            )));
        };
        let plan = ready
            .planned
            .plan
            .as_ref()
            .expect("a ready operation has a plan");
        let (root, body) = plan
            .fetches
            .first()
            .filter(|fetch| fetch.entity.is_none())
            .and_then(|fetch| {
                crate::execute::root_body(&self.supergraph, fetch, &ready.variables)
                    .map(|body| (fetch.subgraph, body))
            })
            .ok_or_else(|| {
                Box::new(unplannable(&crate::plan::PlanError(
                    "no subgraph subscription".to_owned(),
                )))
            })?;
        let caller = self.subgraphs.caller(options.session.as_deref());
        let upstream = self
            .subgraphs
            .subscribe(root, body.clone(), &caller)
            .await
            .map_err(|message| {
                Box::new(Response::request_error(
                    Failure::BadRequest,
                    vec![GraphqlError::new(message, Code::SubrequestHttpError)],
                ))
            })?;
        let (sender, receiver) = tokio::sync::mpsc::channel(settings.buffer.max(1));
        let feed = Feed {
            gateway: self.clone(),
            planned: ready.planned,
            variables: ready.variables,
            session: options.session,
            extensions: ready.response.extensions,
            seat,
            root: (root, body),
        };
        tokio::spawn(feed.run(upstream, sender));
        Ok(responses(receiver))
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
