//! Running a plan: fetches start as soon as the fetches they wait for are merged, run
//! concurrently, and merge their answers into one data tree of references into the replies
//! ([`crate::data`]); entity fetches send each distinct representation once and merge the
//! answer into every object it came from. Subgraph errors come back with paths into the
//! client's response.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apollo_compiler::Name;
use apollo_compiler::response::{JsonMap, JsonValue};
use bytes::Bytes;
use elsa::sync::FrozenVec;
use std::fmt::Write as _;

use futures::FutureExt as _;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;

use crate::data::{Data, Value};
use crate::errors::{Code, GraphqlError, Segment};
use crate::json::{Doc, DocValue};
use crate::operation;
use crate::plan::{Fetch, Item, PathElem, QueryPlan};
use crate::supergraph::Supergraph;

mod cached;
mod entities;
mod replies;
mod subscribe;
mod transport;

pub use subscribe::Upstream;

#[allow(clippy::wildcard_imports)]
use entities::*;
#[allow(clippy::wildcard_imports)]
use replies::*;

/// The claims tokens the gateway signs for subgraphs: one per caller and subgraph, reused
/// while it has more than half its lifetime left.
pub struct ClaimsSigning {
    signer: polygraph_subgraph_core::claims::Signer,
    ttl: Duration,
    /// Claims of the caller's token passed on beyond `sub`, `roles` and `scope`.
    forward: Vec<String>,
    tokens: std::sync::Mutex<TokenCache>,
}

impl std::fmt::Debug for ClaimsSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimsSigning")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// Who a request's subgraph fetches are for: the claims the gateway vouches for.
#[derive(Debug)]
pub struct Caller {
    claims: serde_json::Map<String, serde_json::Value>,
    /// The claims as text: requests with equal claims share tokens.
    text: Arc<str>,
}

/// Signed tokens by caller (the claims' text, compared whole) and subgraph, with the time until
/// which they are reused.
type TokenCache = HashMap<(Arc<str>, usize), (Arc<str>, std::time::Instant)>;

/// Most tokens kept; past this, the cache starts over.
const TOKENS_KEPT: usize = 10_000;

impl ClaimsSigning {
    pub fn new(
        signer: polygraph_subgraph_core::claims::Signer,
        ttl: Duration,
        forward: Vec<String>,
    ) -> Self {
        Self {
            signer,
            ttl,
            forward,
            tokens: std::sync::Mutex::default(),
        }
    }

    /// The claims subgraphs get for `session` (none but the gateway's own for anonymous
    /// requests).
    pub fn caller(&self, session: Option<&crate::auth::Session>) -> Caller {
        let mut claims = serde_json::Map::new();
        if let Some(session) = session {
            if let Some(subject) = &session.principal {
                claims.insert("sub".into(), subject.clone().into());
            }
            claims.insert("roles".into(), session.roles.clone().into());
            claims.insert("scope".into(), session.scopes.join(" ").into());
            claims.insert("principal_iss".into(), session.issuer.clone().into());
            for name in &self.forward {
                if let Some(value) = session.claims.get(name)
                    && !claims.contains_key(name)
                {
                    claims.insert(name.clone(), value.clone());
                }
            }
        }
        let text = serde_json::Value::Object(claims.clone()).to_string().into();
        Caller { claims, text }
    }

    /// A token for `caller` to `subgraph` (its name `audience`).
    fn token(&self, caller: &Caller, subgraph: usize, audience: &str) -> Arc<str> {
        let now = std::time::Instant::now();
        let key = (caller.text.clone(), subgraph);
        if let Ok(tokens) = self.tokens.lock()
            && let Some((token, fresh_until)) = tokens.get(&key)
            && *fresh_until > now
        {
            return token.clone();
        }
        let token: Arc<str> = self.signer.sign(audience, &caller.claims, self.ttl).into();
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= TOKENS_KEPT {
                tokens.clear();
            }
            tokens.insert(key, (token.clone(), now + self.ttl / 2));
        }
        token
    }
}

/// How the gateway talks to subgraphs.
#[derive(Clone, Debug)]
pub struct Subgraphs {
    signing: Arc<ClaimsSigning>,
    client: reqwest::Client,
    /// Each subgraph's URL, parsed once (or why it does not parse, said when it is used).
    urls: Vec<Result<reqwest::Url, String>>,
    names: Vec<String>,
    timeout: Duration,
    /// Largest reply read, in bytes.
    max_reply_bytes: usize,
    /// Whether subgraphs' error details reach clients (see [`Subgraphs::with_exposed_errors`]).
    expose_errors: bool,
    /// Query requests on their way, by subgraph and body: an identical request made while one
    /// is in flight waits for that one's answer instead of being sent again.
    in_flight: Arc<std::sync::Mutex<InFlightMap>>,
    hasher: foldhash::fast::RandomState,
    /// Entities kept from `_entities` answers, when the entity cache is on.
    entities: Option<Arc<crate::entity_cache::EntityCache>>,
    /// When subgraphs were last asked whether they answer, and which did not.
    readiness: Readiness,
}

/// When subgraphs were last asked whether they answer, and the names of those that did not.
type Readiness = Arc<tokio::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>>;

/// Removes an in-flight entry when the request that made it is done or dropped.
struct Leaving<'a> {
    in_flight: &'a std::sync::Mutex<InFlightMap>,
    key: (usize, u64),
}

/// A request to a subgraph: its body and the claims token that goes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outgoing {
    body: Bytes,
    token: Arc<str>,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&self.key);
        }
    }
}

/// A subgraph's response: its body, and how long its `Cache-Control` header lets it be kept.
struct Reply {
    body: Doc,
    cache: CachePolicy,
}

/// A subgraph answer that several waiters share.
type Answer = Result<Arc<Reply>, String>;

/// How long a response may be cached, from the `Cache-Control` headers of the subgraph
/// responses it was built from: the least `max-age` of them, private if any was; not at all
/// if any said `no-store`, `no-cache` or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachePolicy {
    /// Nothing restricted it yet (no subgraph was asked).
    Unrestricted,
    MaxAge {
        seconds: u64,
        private: bool,
    },
    NoStore,
}

impl CachePolicy {
    /// The policy a subgraph's `Cache-Control` header states.
    pub fn of_header(value: Option<&str>) -> Self {
        let Some(value) = value else {
            return Self::NoStore;
        };
        let mut seconds = None;
        let mut private = false;
        for directive in value.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            match directive.split_once('=') {
                Some(("max-age", number)) => seconds = number.trim().parse::<u64>().ok(),
                _ if directive == "private" => private = true,
                _ if directive == "no-store" || directive == "no-cache" => return Self::NoStore,
                _ => {}
            }
        }
        match seconds {
            Some(seconds) if seconds > 0 => Self::MaxAge { seconds, private },
            _ => Self::NoStore,
        }
    }

    /// The stricter of the two.
    #[must_use]
    pub fn restrict(self, other: Self) -> Self {
        match (self, other) {
            (Self::NoStore, _) | (_, Self::NoStore) => Self::NoStore,
            (Self::Unrestricted, policy) | (policy, Self::Unrestricted) => policy,
            (
                Self::MaxAge { seconds, private },
                Self::MaxAge {
                    seconds: other_seconds,
                    private: other_private,
                },
            ) => Self::MaxAge {
                seconds: seconds.min(other_seconds),
                private: private || other_private,
            },
        }
    }

    /// The `Cache-Control` header for a response with this policy: `max-age=N, public` (or
    /// `private`), or `no-store` when it may not be kept.
    pub fn header(self) -> String {
        match self {
            Self::MaxAge { seconds, private } => format!(
                "max-age={seconds}, {}",
                if private { "private" } else { "public" }
            ),
            Self::Unrestricted | Self::NoStore => "no-store".to_owned(),
        }
    }
}
type InFlight = futures::future::Shared<futures::future::BoxFuture<'static, Answer>>;

/// Requests in flight by subgraph and hash of body and token, with what they sent: requests
/// for different callers are never shared.
type InFlightMap = HashMap<(usize, u64), (Outgoing, InFlight)>;

/// What a run of a plan leaves: the response's `data` as JSON, the errors on the way, and how
/// long the subgraphs' responses may be cached.
pub struct Outcome {
    pub data: Vec<u8>,
    pub errors: Vec<GraphqlError>,
    pub cache: CachePolicy,
}

/// One step of a path in the data, its key borrowed from the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// What an entity fetch sent: the places it found objects at, as a tree of steps from the
/// root (each place once, however many objects are below it), and per object which
/// representation it sent.
struct Sent<'p> {
    /// Depth first: a place, then the places below it. The first is the root.
    places: Vec<Place<'p>>,
}

/// A place in the data that an entity fetch found objects at or below.
#[derive(Clone, Copy, Debug)]
struct Place<'p> {
    /// The step from the parent (nothing for the root).
    step: Step<'p>,
    parent: u32,
    /// The place after this one and the places below it.
    end: u32,
    /// The representation the object here sent, or [`NOTHING`].
    representation: u32,
}

/// No place, no representation.
const NOTHING: u32 = u32::MAX;

impl<'p> Sent<'p> {
    fn new() -> Self {
        let mut places = Vec::with_capacity(64);
        places.push(Place {
            step: Step::Index(0),
            parent: NOTHING,
            end: 1,
            representation: NOTHING,
        });
        Self { places }
    }

    /// Adds the place one `step` below `parent`.
    fn enter(&mut self, parent: u32, step: Step<'p>) -> u32 {
        let place = self.count();
        self.places.push(Place {
            step,
            parent,
            end: NOTHING,
            representation: NOTHING,
        });
        place
    }

    /// Ends `place`: it is dropped again when no object was found at or below it.
    fn leave(&mut self, place: u32, found_here: bool) {
        if !found_here && self.count() == place + 1 {
            self.places.pop();
        } else {
            let end = self.count();
            self.places[place as usize].end = end;
        }
    }

    fn count(&self) -> u32 {
        u32::try_from(self.places.len()).expect("fewer than 4 billion places")
    }

    /// The steps from the root to `place`.
    fn path(&self, mut place: u32) -> Vec<Step<'p>> {
        let mut steps = Vec::new();
        // Only the root, place 0, has no parent.
        while place != 0 {
            let at = self.places[place as usize];
            steps.push(at.step);
            place = at.parent;
        }
        steps.reverse();
        steps
    }

    /// For each representation, the first place that sent it (`NOTHING` for none): read once
    /// per reply with errors, so that each error finds its place without a scan.
    fn first_places(&self) -> Vec<u32> {
        let mut first: Vec<u32> = Vec::new();
        for (at, place) in self.places.iter().enumerate() {
            if place.representation == NOTHING {
                continue;
            }
            let representation = place.representation as usize;
            if first.len() <= representation {
                first.resize(representation + 1, NOTHING);
            }
            if first[representation] == NOTHING {
                first[representation] = u32::try_from(at).expect("fewer than 4 billion places");
            }
        }
        first
    }

    /// Where the objects that sent a representation are, the first `most` of them.
    fn object_paths(&self, most: usize) -> Vec<Vec<Segment>> {
        (0..self.places.len())
            .filter(|&at| self.places[at].representation != NOTHING)
            .take(most)
            .map(|at| self.segments_at(u32::try_from(at).expect("fewer than 4 billion places")))
            .collect()
    }

    fn segments_at(&self, place: u32) -> Vec<Segment> {
        self.path(place)
            .into_iter()
            .map(|step| match step {
                Step::Key(key) => Segment::Key(Name::new_unchecked(key)),
                Step::Index(index) => Segment::Index(index),
            })
            .collect()
    }

    /// Where the first object that sent `representation` (any object, when `None`) is;
    /// `first` from [`Self::first_places`] finds it directly.
    fn segments(
        &self,
        representation: Option<usize>,
        first: Option<&[u32]>,
    ) -> Option<Vec<Segment>> {
        let place = if let (Some(wanted), Some(first)) = (representation, first) {
            *first.get(wanted).filter(|&&at| at != NOTHING)?
        } else {
            let place = self.places.iter().position(|place| {
                place.representation != NOTHING
                    && representation.is_none_or(|wanted| wanted == place.representation as usize)
            })?;
            u32::try_from(place).expect("fewer than 4 billion places")
        };
        Some(self.segments_at(place))
    }
}

/// Fetches sent in one request, and its answer.
struct Returned<'p> {
    /// Each fetch's index and, for an entity fetch, what it sent; more than one when entity
    /// fetches were batched, each under its alias `_eN`.
    fetches: Vec<(usize, Option<Sent<'p>>)>,
    answer: Answer,
}

/// What one run may use.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// When fetches still running are given up.
    pub deadline: tokio::time::Instant,
    /// Most entity representations all the run's fetches may send.
    pub max_representations: usize,
}

/// One request's run of a plan.
pub struct Inputs<'a> {
    pub plan: &'a QueryPlan,
    /// The request's coerced variables.
    pub variables: &'a JsonMap,
    pub session: Option<&'a crate::auth::Session>,
    /// The answers to the operation's introspection fields, added to the data.
    pub introspection: Option<JsonMap>,
    pub bounds: Bounds,
    /// The root fetch's reply, already in: a subscription's event (the first fetch is not
    /// sent).
    pub event: Option<Bytes>,
}

/// Runs a plan, and has `write` write the response's `data` from what it put together.
pub async fn run(
    supergraph: &Supergraph,
    subgraphs: &Subgraphs,
    inputs: Inputs<'_>,
    write: impl FnOnce(Value<'_>, &mut Vec<GraphqlError>) -> Vec<u8>,
) -> Outcome {
    let (plan, variables, bounds, mut event) =
        (inputs.plan, inputs.variables, inputs.bounds, inputs.event);
    let caller = subgraphs.caller(inputs.session);
    // Representations the run may still send; past them fetches are not sent.
    let mut allowance = Allowance::of(bounds.max_representations);
    let count = plan.fetches.len();
    // The replies the data refers to, kept until the response is written.
    let replies: FrozenVec<Arc<Reply>> = FrozenVec::new();
    let mut data = Data::empty_object();
    let mut errors = Vec::new();
    let mut started = vec![false; count];
    let mut done = vec![false; count];
    let mut running = FuturesUnordered::new();
    let mut cache = CachePolicy::Unrestricted;
    // Queries send the `_entities` fetches that become ready together, to one subgraph, as one
    // request; mutations keep one request per fetch, in order.
    let batching = plan.kind != apollo_compiler::ast::OperationType::Mutation;
    loop {
        // Start every fetch whose inputs are in; one with nothing to send is done at once,
        // which may let others start.
        let mut progressed = true;
        while progressed {
            progressed = false;
            let mut batches: Vec<(usize, Vec<Ready>)> = Vec::new();
            for index in 0..count {
                let fetch = &plan.fetches[index];
                if started[index] || !fetch.after.iter().all(|&a| done[a]) {
                    continue;
                }
                started[index] = true;
                let ready = match &fetch.entity {
                    Some(entity) if batching => {
                        let (representations, sent) =
                            representations(supergraph, data.value(), entity);
                        let count = representations.count;
                        if count == 0 || !spend(&mut allowance, count, &mut errors, fetch, &sent) {
                            done[index] = true;
                            progressed = true;
                            continue;
                        }
                        Ready {
                            index,
                            representations,
                            sent,
                        }
                    }
                    None if index == 0 && event.is_some() => {
                        running.push(subgraphs.given(index, fetch, event.take()));
                        continue;
                    }
                    _ => {
                        let Some((body, sent, count)) =
                            request(supergraph, data.value(), fetch, variables)
                        else {
                            done[index] = true;
                            progressed = true;
                            continue;
                        };
                        if let Some(sent) = &sent
                            && !spend(&mut allowance, count, &mut errors, fetch, sent)
                        {
                            done[index] = true;
                            progressed = true;
                            continue;
                        }
                        running.push(
                            subgraphs.send_fetch(index, fetch, body, sent, &caller, batching),
                        );
                        continue;
                    }
                };
                match batches.iter_mut().find(|(to, _)| *to == fetch.subgraph) {
                    Some((_, batch)) => batch.push(ready),
                    None => batches.push((fetch.subgraph, vec![ready])),
                }
            }
            for (to, batch) in batches {
                running.push(subgraphs.dispatch(supergraph, plan, variables, &caller, to, batch));
            }
        }
        // Out of time, every fetch still running (or yet to start) is given up.
        let Ok(next) = tokio::time::timeout_at(bounds.deadline, running.next()).await else {
            errors.extend(timed_out(plan, subgraphs, &started, &done));
            break;
        };
        let Some(returned) = next else { break };
        for &(index, _) in &returned.fetches {
            done[index] = true;
        }
        let reply = returned.answer.map(|reply| replies.push_get(reply));
        cache = cache.restrict(reply.as_ref().map_or(CachePolicy::NoStore, |r| r.cache));
        let fetches = returned.fetches;
        take_in(plan, subgraphs, &mut data, &mut errors, &reply, fetches);
    }
    if let Some(introspection) = inputs.introspection {
        with_introspection(&replies, &mut data, introspection);
    }
    let data = write(data.value(), &mut errors);
    Outcome {
        data,
        errors,
        cache,
    }
}

/// Adds the answers to the operation's introspection fields to `data`.
fn with_introspection<'r>(
    replies: &'r FrozenVec<Arc<Reply>>,
    data: &mut Data<'r>,
    introspection: JsonMap,
) {
    let reply = replies.push_get(Arc::new(Reply {
        body: Doc::of(&JsonValue::Object(introspection)),
        cache: CachePolicy::Unrestricted,
    }));
    data.merge(reply.body.root());
}

/// The entity representations a run may still send.
struct Allowance {
    left: usize,
    max: usize,
}

impl Allowance {
    fn of(max: usize) -> Self {
        Self { left: max, max }
    }
}

/// Takes `count` representations from what the run may still send; when that is not enough,
/// the fetch is not sent and `errors` say why where its data would have been.
fn spend(
    allowance: &mut Allowance,
    count: usize,
    errors: &mut Vec<GraphqlError>,
    fetch: &Fetch,
    sent: &Sent,
) -> bool {
    if let Some(left) = allowance.left.checked_sub(count) {
        allowance.left = left;
        return true;
    }
    let error = GraphqlError::new(
        format!(
            "the request would send more than {} entity representations (limits.max_entity_representations)",
            allowance.max
        ),
        Code::MaxRepresentationsExceeded,
    );
    errors.extend(at_places(fetch, Some(sent), &error));
    false
}

/// The errors for the fetches the deadline cut off: at the root fields of a root fetch; an
/// entity fetch's (whose places its request holds) without a path.
fn timed_out(
    plan: &QueryPlan,
    subgraphs: &Subgraphs,
    started: &[bool],
    done: &[bool],
) -> Vec<GraphqlError> {
    let mut errors = Vec::new();
    for (index, fetch) in plan.fetches.iter().enumerate() {
        if done[index] || (!started[index] && fetch.entity.is_some()) {
            continue;
        }
        let service = &subgraphs.names[fetch.subgraph];
        let mut error = GraphqlError::new(
            format!(
                "the request ran out of time waiting for subgraph \"{service}\" (request_timeout_ms)"
            ),
            Code::GatewayTimeout,
        );
        error
            .extensions
            .insert("service", JsonValue::from(service.as_str()));
        error
            .extensions
            .insert("serviceName", JsonValue::from(service.as_str()));
        match fetch.entity {
            Some(_) => errors.push(error),
            None => errors.extend(at_places(fetch, None, &error)),
        }
    }
    errors
}

/// An `_entities` fetch ready to send: its representations and what they stand for.
struct Ready<'p> {
    index: usize,
    representations: Representations,
    sent: Sent<'p>,
}

/// The name of the `i`th fetch's representations variable in a batch (and, with `_e`, of its
/// `_entities` alias).
fn batch_variable(i: usize) -> String {
    format!("polygraphRepresentations{i}")
}

/// One request for several `_entities` fetches to one subgraph: each under its own alias
/// (`_e0`, `_e1` …) with its own representations variable; the client variables they use are
/// declared once. A single fetch is sent as planned.
fn batch_body(plan: &QueryPlan, batch: &[(usize, &[u8])], variables: &JsonMap) -> Bytes {
    let mut body = Vec::with_capacity(256);
    if let [(only, representations)] = batch {
        let fetch = &plan.fetches[*only];
        body.extend_from_slice(b"{\"query\":");
        serde_json::to_writer(&mut body, &fetch.operation).expect("strings serialize");
        body.extend_from_slice(b",\"variables\":{");
        let first = write_variables(&mut body, &fetch.variables, variables, true);
        if !first {
            body.push(b',');
        }
        body.extend_from_slice(b"\"representations\":");
        body.extend_from_slice(representations);
        body.extend_from_slice(b"}}");
        return Bytes::from(body);
    }
    let mut declarations: Vec<String> = Vec::new();
    let mut used: Vec<&Name> = Vec::new();
    let mut fields = String::new();
    for (i, (index, _)) in batch.iter().enumerate() {
        let fetch = &plan.fetches[*index];
        let entity = fetch.entity.as_ref().expect("batches hold entity fetches");
        declarations.push(format!("${}: [_Any!]!", batch_variable(i)));
        for declaration in &entity.declarations {
            if !declarations.contains(declaration) {
                declarations.push(declaration.clone());
            }
        }
        for name in &fetch.variables {
            if !used.contains(&name) {
                used.push(name);
            }
        }
        let _ = write!(
            fields,
            " _e{i}: _entities(representations: ${}){}",
            batch_variable(i),
            entity.selection
        );
    }
    let operation = format!("query({}) {{{fields} }}", declarations.join(", "));
    body.extend_from_slice(b"{\"query\":");
    serde_json::to_writer(&mut body, &operation).expect("strings serialize");
    body.extend_from_slice(b",\"variables\":{");
    let used: Vec<Name> = used.into_iter().cloned().collect();
    let mut first = write_variables(&mut body, &used, variables, true);
    for (i, (_, representations)) in batch.iter().enumerate() {
        if !first {
            body.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut body, &batch_variable(i)).expect("serializes");
        body.push(b':');
        body.extend_from_slice(representations);
    }
    body.extend_from_slice(b"}}");
    Bytes::from(body)
}

/// Writes `"name":value` for each of `names` the request has; returns whether none was
/// written (and none before, when `first`).
fn write_variables(
    body: &mut Vec<u8>,
    names: &[Name],
    variables: &JsonMap,
    mut first: bool,
) -> bool {
    for name in names {
        if let Some(value) = variables.get(name.as_str()) {
            if !first {
                body.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *body, name.as_str()).expect("serializes");
            body.push(b':');
            serde_json::to_writer(&mut *body, value).expect("serializes");
        }
    }
    first
}

/// The body of a root `fetch`'s request (a subscription's, for its subscribe message).
pub fn root_body(supergraph: &Supergraph, fetch: &Fetch, variables: &JsonMap) -> Option<Bytes> {
    let data = Data::empty_object();
    request(supergraph, data.value(), fetch, variables).map(|(body, _, _)| body)
}

/// The body of `fetch`'s request, written directly: the query text, the variables it uses
/// and, for an entity fetch, the representations of the objects now at its path (`None` when
/// there are none).
fn request<'p>(
    supergraph: &Supergraph,
    data: Value<'_>,
    fetch: &'p Fetch,
    variables: &JsonMap,
) -> Option<(Bytes, Option<Sent<'p>>, usize)> {
    let mut body = Vec::with_capacity(fetch.operation.len() + 64);
    body.extend_from_slice(b"{\"query\":");
    serde_json::to_writer(&mut body, &fetch.operation).expect("strings serialize");
    body.extend_from_slice(b",\"variables\":{");
    let first = write_variables(&mut body, &fetch.variables, variables, true);
    let mut count = 0;
    let sent = match &fetch.entity {
        Some(entity) => {
            let (representations, sent) = representations(supergraph, data, entity);
            count = representations.count;
            if representations.count == 0 {
                return None;
            }
            if !first {
                body.push(b',');
            }
            body.extend_from_slice(b"\"representations\":");
            body.extend_from_slice(&representations.json);
            Some(sent)
        }
        None => None,
    };
    body.extend_from_slice(b"}}");
    Some((Bytes::from(body), sent, count))
}

#[cfg(test)]
mod tests {
    use super::{CachePolicy, Step, representations};
    use crate::data::Data;
    use crate::supergraph::Supergraph;

    #[test]
    fn objects_left_out_of_an_entity_fetch_do_not_change_the_others_paths() {
        let sdl = include_str!("../../bench/federation/supergraph.graphql");
        let supergraph = Supergraph::parse(sdl).unwrap();
        let prepared = crate::prepare::prepare(
            &supergraph.api_schema,
            "{ topProducts { upc shippingEstimate } }",
        )
        .unwrap();
        let operation = prepared.operation(None).unwrap();
        let normalized = crate::operation::normalize(
            &supergraph.schema,
            &prepared.document,
            operation,
            &apollo_compiler::response::JsonMap::new(),
        );
        let plan = crate::plan::plan(&supergraph, &normalized).unwrap();
        let entity = plan
            .fetches
            .iter()
            .find_map(|fetch| fetch.entity.as_ref())
            .expect("an entity fetch for shippingEstimate");
        // The first product has no key: it is not sent, and the others keep their own paths.
        let reply = crate::json::Doc::parse(bytes::Bytes::from_static(
            br#"{"topProducts": [
                {"__typename": "Product", "upc": null, "price": 1, "weight": 1},
                {"__typename": "Product", "upc": "2", "price": 2, "weight": 2},
                {"__typename": "Product", "upc": "2", "price": 2, "weight": 2},
                {"__typename": "Product", "upc": "3", "price": 3, "weight": 3}
            ]}"#,
        ))
        .unwrap();
        let mut data = Data::empty_object();
        data.merge(reply.root());
        let (sent_json, sent) = representations(&supergraph, data.value(), entity);
        assert_eq!(sent_json.count, 2);
        let paths: Vec<(Vec<Step>, u32)> = sent
            .places
            .iter()
            .enumerate()
            .filter(|(_, place)| place.representation != super::NOTHING)
            .map(|(at, place)| (sent.path(at as u32), place.representation))
            .collect();
        let at = |index| vec![Step::Key("topProducts"), Step::Index(index)];
        assert_eq!(paths, vec![(at(1), 0), (at(2), 0), (at(3), 1)]);
    }

    fn max_age(seconds: u64, private: bool) -> CachePolicy {
        CachePolicy::MaxAge { seconds, private }
    }

    #[test]
    fn subgraph_cache_headers_are_read() {
        let cases = [
            (Some("max-age=60, public"), max_age(60, false)),
            (Some("private, max-age=30"), max_age(30, true)),
            (Some("Max-Age=5"), max_age(5, false)),
            (Some("max-age=0, public"), CachePolicy::NoStore),
            (Some("no-store"), CachePolicy::NoStore),
            (Some("max-age=60, no-cache"), CachePolicy::NoStore),
            (Some("public"), CachePolicy::NoStore),
            (Some("max-age=soon"), CachePolicy::NoStore),
            (None, CachePolicy::NoStore),
        ];
        for (header, expected) in cases {
            assert_eq!(CachePolicy::of_header(header), expected, "{header:?}");
        }
    }

    #[test]
    fn the_strictest_policy_wins() {
        let unrestricted = CachePolicy::Unrestricted;
        assert_eq!(
            unrestricted.restrict(max_age(60, false)),
            max_age(60, false)
        );
        assert_eq!(
            max_age(60, false).restrict(max_age(30, true)),
            max_age(30, true)
        );
        assert_eq!(
            max_age(10, true).restrict(max_age(30, false)),
            max_age(10, true)
        );
        assert_eq!(
            max_age(10, false).restrict(CachePolicy::NoStore),
            CachePolicy::NoStore
        );
        assert_eq!(unrestricted.header(), "no-store");
        assert_eq!(max_age(30, true).header(), "max-age=30, private");
    }
}
