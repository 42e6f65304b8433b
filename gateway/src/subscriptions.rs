//! Subscriptions: the gateway subscribes to the subgraph that owns the root field (see
//! `execute::subscribe`) and completes each event from the other subgraphs through the plan,
//! as it would a query's root fetch. Identical subscriptions (same operation, variables and
//! caller) share one feed ([`crate::fanout`]): one subscription to the subgraph and one run
//! of the plan per event, broadcast to each subscriber through a bounded queue. A subscriber
//! that does not read fast enough gets `SUBSCRIPTION_BUFFER_FULL` and its subscription ends,
//! so memory stays bounded; one whose token expires gets `UNAUTHENTICATED`. A feed ends, with
//! an error every subscriber sees, when the subgraph's stream breaks off (after the
//! configured attempts to subscribe again), a newer supergraph serves
//! (`SUBSCRIPTION_SCHEMA_RELOAD`) or the gateway stops; when its last subscriber goes away,
//! the subgraph is told.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use futures::StreamExt as _;
use tokio::sync::broadcast;

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

/// A feed's task: what it needs to complete each event, for every identical subscription.
pub(crate) struct Feed {
    pub gateway: Arc<Gateway>,
    pub planned: Arc<Planned>,
    pub variables: Valid<JsonMap>,
    /// The first subscriber's session (the others' differ at most in when they expire).
    pub session: Option<Arc<Session>>,
    /// The subgraph subscribed to and the request it was sent, to subscribe again.
    pub root: (usize, bytes::Bytes),
    /// Its key and slot among the gateway's feeds, given up when it ends.
    pub key: Vec<u8>,
    pub slot: crate::fanout::Slot<Arc<Response>>,
}

impl Feed {
    /// Completes each event of `upstream` into a response for the subscribers, until the
    /// feed ends (the last one left, or with an error they all get).
    pub async fn run(self, mut upstream: Upstream, sender: broadcast::Sender<Arc<Response>>) {
        let (reason, ending) = self.feed(&mut upstream, &sender).await;
        polygraph_service::metrics().subscription_ended(reason);
        // New subscribers start a feed of their own from now on.
        self.gateway.feeds.forget(&self.key, &self.slot);
        if let Some(ending) = ending {
            let _ = sender.send(Arc::new(ending));
        }
        upstream.stop().await;
    }

    /// Feeds `sender` until the feed ends: why (for the metrics), and the error the
    /// subscribers get, if any.
    async fn feed(
        &self,
        upstream: &mut Upstream,
        sender: &broadcast::Sender<Arc<Response>>,
    ) -> (&'static str, Option<Response>) {
        let attempts = self.gateway.settings().subscriptions.resubscribe_attempts;
        let mut attempts_left = attempts;
        loop {
            let event = tokio::select! {
                () = sender.closed() => return ("clients_left", None),
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
            let response = self
                .gateway
                .event_response(
                    &self.planned,
                    &self.variables,
                    self.session.as_deref(),
                    body,
                )
                .await;
            if sender.send(Arc::new(response)).is_err() {
                return ("clients_left", None);
            }
            polygraph_service::metrics().subscription_event();
        }
    }

    /// The subscription made again after its subgraph's broke off, within
    /// `subscriptions.resubscribe_attempts` (waiting 250 ms, then twice as long each time, at
    /// most 5 s); `None` once they are spent or the subscribers have gone.
    async fn resubscribed(
        &self,
        attempts_left: &mut u32,
        sender: &broadcast::Sender<Arc<Response>>,
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

/// Whether `response` ends a subscription with errors and no data.
pub(crate) fn is_ending(response: &Response) -> bool {
    response.data.is_none() && !response.errors.is_empty()
}

/// One subscriber of a feed: its own session, place and first extensions.
struct Member {
    receiver: broadcast::Receiver<Arc<Response>>,
    session: Option<Arc<Session>>,
    /// The first response's extensions (cost, plan).
    extensions: Option<JsonMap>,
    _seat: Seat,
}

impl Drop for Member {
    fn drop(&mut self) {
        polygraph_service::metrics().subscription_left();
    }
}

/// A subscriber's responses from its feed: ended for it alone when its token expires or it
/// falls `subscriptions.buffer` events behind (`SUBSCRIPTION_BUFFER_FULL`).
fn member_responses(member: Member) -> Responses {
    use broadcast::error::RecvError;
    polygraph_service::metrics().subscription_started();
    futures::stream::unfold(Some(member), |member| async move {
        let mut member = member?;
        match member.receiver.recv().await {
            Ok(response) => {
                if expired(member.session.as_deref()) {
                    let message = "the token expired: subscribe again with a fresh one";
                    return Some((ending(Code::Unauthenticated, message), None));
                }
                let mut response = (*response).clone();
                if let Some(extensions) = member.extensions.take() {
                    response.extensions = extensions;
                }
                let last = is_ending(&response);
                Some((response, (!last).then_some(member)))
            }
            Err(RecvError::Lagged(missed)) => {
                let message = format!(
                    "the client did not read {missed} events in time (subscriptions.buffer): subscribe again"
                );
                Some((ending(Code::SubscriptionBufferFull, message), None))
            }
            Err(RecvError::Closed) => None,
        }
    })
    .boxed()
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
    /// Subscription feeds running: one per set of identical subscriptions.
    pub fn subscription_feeds(&self) -> usize {
        self.feeds.len()
    }

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
        let mut key = Vec::with_capacity(256);
        key.extend_from_slice(&(Arc::as_ptr(&ready.planned) as usize).to_le_bytes());
        serde_json::to_writer(
            &mut key,
            &crate::gateway::canonical(
                &serde_json::to_value(&*ready.variables).unwrap_or_default(),
            ),
        )
        .map_err(|_| Box::new(unplannable(&crate::plan::PlanError("variables".to_owned()))))?;
        key.push(0);
        crate::gateway::write_caller(&mut key, options.session.as_deref())
            .map_err(|_| Box::new(unplannable(&crate::plan::PlanError("claims".to_owned()))))?;
        let slot = self.feeds.slot(&key);
        let mut first = None;
        let started = slot
            .get_or_try_init(|| async {
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
                let (sender, receiver) = broadcast::channel(settings.buffer.max(1));
                first = Some(receiver);
                let feed = Feed {
                    gateway: self.clone(),
                    planned: ready.planned.clone(),
                    variables: ready.variables.clone(),
                    session: options.session.clone(),
                    root: (root, body.clone()),
                    key: key.clone(),
                    slot: slot.clone(),
                };
                tokio::spawn(feed.run(upstream, sender.clone()));
                Ok::<_, Box<Response>>(sender)
            })
            .await;
        let sender = match started {
            Ok(sender) => sender,
            Err(refused) => {
                self.feeds.forget(&key, &slot);
                return Err(refused);
            }
        };
        let receiver = first.unwrap_or_else(|| sender.subscribe());
        Ok(member_responses(Member {
            receiver,
            session: options.session,
            extensions: Some(ready.response.extensions),
            _seat: seat,
        }))
    }
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
