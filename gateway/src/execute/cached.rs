//! A batch of `_entities` fetches through the entity cache: every representation looked up at
//! once, only the misses sent, the answer put back together as if the subgraph had sent all
//! of it (so that it merges like any other), and the entities it brought kept.

#[allow(clippy::wildcard_imports)]
use super::*;

use crate::entity_cache::{Claim, Claimed, EntityCache, Entry, key_field_names, key_hash};

/// What one representation is cached under: `None` when it cannot be (no type or key).
fn entity_key(
    cache: &EntityCache,
    supergraph: &Supergraph,
    subgraph: (usize, &str),
    selection: &str,
    representation: &[u8],
    scope: &str,
) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(representation).ok()?;
    let type_name = object.get("__typename")?.as_str()?;
    // The subgraph's key the planner used: the one whose fields the representation holds.
    let fields: serde_json::Map<String, serde_json::Value> = supergraph
        .types
        .get(type_name)?
        .iter()
        .filter(|placement| placement.subgraph == subgraph.0)
        .filter_map(|placement| placement.key.as_deref())
        .find_map(|key| {
            key_field_names(key)
                .map(|name| Some((name.to_owned(), object.get(name)?.clone())))
                .collect::<Option<_>>()
        })?;
    Some(cache.key(
        type_name,
        &key_hash(&fields),
        subgraph.1,
        selection,
        representation,
        scope,
    ))
}

/// How long `cache` keeps what a subgraph answered under `policy` (seconds, private), if at
/// all.
fn ttl_for(cache: &EntityCache, policy: CachePolicy) -> Option<(u64, bool)> {
    cache.ttl(match policy {
        CachePolicy::MaxAge { seconds, private } => Some((seconds, private)),
        _ => None,
    })
}

/// The policy an answer built with `entry` may be cached under: its own, or none at all for
/// an entity handed over without a TTL (0 seconds).
fn policy_of(entry: &Entry) -> CachePolicy {
    if entry.seconds == 0 {
        CachePolicy::NoStore
    } else {
        CachePolicy::MaxAge {
            seconds: entry.seconds,
            private: entry.private,
        }
    }
}

/// The scope entries are kept under: shared by anonymous callers, else the caller's claims.
fn scope(caller: &Caller) -> String {
    if caller.claims.is_empty() {
        "public".to_owned()
    } else {
        caller.text.to_string()
    }
}

/// Sends a query's root fetch through the cache: its whole reply kept per subgraph, request
/// body (operation and variables) and caller scope, for as long as the subgraph allows, and
/// dropped by any invalidation.
pub(super) fn send_root_cached<'a>(
    subgraphs: &'a Subgraphs,
    index: usize,
    fetch: &'a Fetch,
    outgoing: Outgoing,
    sent: Option<Sent<'a>>,
    caller: &'a Caller,
) -> BoxFuture<'a, Returned<'a>> {
    async move {
        let cache = subgraphs
            .entities
            .as_deref()
            .expect("root fetches come here only with the entity cache on");
        let name = subgraphs.names[fetch.subgraph].as_str();
        let key = cache.root_key(name, &outgoing.body, &scope(caller));
        let generation = cache.generation();
        let kept = cache.get_root(&key).await;
        if let Some(entry) = kept
            && let Ok(body) = Doc::parse(entry.json.clone())
        {
            let reply = Reply {
                body,
                cache: policy_of(&entry),
            };
            return Returned {
                fetches: vec![(index, sent)],
                answer: Ok(Arc::new(reply)),
            };
        }
        let answer = subgraphs.send_shared(fetch.subgraph, outgoing).await;
        // Nothing is kept from a fetch an invalidation overtook: it may predate the write.
        if let Ok(reply) = &answer
            && cache.generation() == generation
            && reply.body.root().get("errors").is_none()
            && let Some((seconds, private)) = ttl_for(cache, reply.cache)
        {
            let json = reply.body.text().clone();
            let entry = Entry {
                json,
                seconds,
                private,
            };
            cache.put_many(vec![(key, entry)]).await;
        }
        Returned {
            fetches: vec![(index, sent)],
            answer,
        }
    }
    .boxed()
}

/// One fetch of the batch: its representations' keys, what the cache held, and where each
/// miss went in the request sent.
struct Looked {
    keys: Vec<Option<String>>,
    found: Vec<Option<Entry>>,
    /// The representations sent, by index into this fetch's.
    misses: Vec<usize>,
    /// Misses another request is fetching now: neither found nor sent.
    waiting: Vec<usize>,
}

/// A wait for another request's fetch of the entity at `(fetch, representation)`.
type Wait = (usize, usize, tokio::sync::oneshot::Receiver<Option<Entry>>);

/// Sends `batch` to `subgraph`, asking only for what `cache` does not hold for `caller`, and
/// not for what another request is fetching now (it waits for that instead).
pub(super) fn send_batch_cached<'a>(
    subgraphs: &'a Subgraphs,
    supergraph: &'a Supergraph,
    plan: &'a QueryPlan,
    variables: &'a JsonMap,
    caller: &'a Caller,
    subgraph: usize,
    batch: Vec<Ready<'a>>,
) -> BoxFuture<'a, Returned<'a>> {
    async move {
        let cache = subgraphs
            .entities
            .as_deref()
            .expect("batches come here only with the entity cache on");
        let send = BatchRequest {
            subgraphs,
            plan,
            variables,
            caller,
            subgraph,
            batch: &batch,
        };
        let generation = cache.generation();
        let mut looked = send.look_up(cache, supergraph).await;
        let mut claimed = cache.claims();
        let waits = claim(cache, &mut looked, &mut claimed);
        let mut answer = send
            .answer(cache, &mut looked, (claimed, generation), waits)
            .await;
        if answer.is_none() {
            // A request this one waited for failed to bring an entity: fetch it here, without
            // waiting for anyone.
            let generation = cache.generation();
            let mut looked = send.look_up(cache, supergraph).await;
            answer = send
                .answer(cache, &mut looked, (cache.claims(), generation), Vec::new())
                .await;
        }
        Returned {
            fetches: batch
                .into_iter()
                .map(|ready| (ready.index, Some(ready.sent)))
                .collect(),
            answer: answer.expect("a fetch that waits for no one answers"),
        }
    }
    .boxed()
}

/// Claims each miss: those no request is fetching stay misses (and are `claimed`), the others
/// are waited for.
fn claim(cache: &EntityCache, looked: &mut [Looked], claimed: &mut Claimed<'_>) -> Vec<Wait> {
    let mut waits = Vec::new();
    for (i, fetch) in looked.iter_mut().enumerate() {
        let Looked {
            keys,
            misses,
            waiting,
            ..
        } = fetch;
        misses.retain(|&j| {
            let Some(key) = &keys[j] else {
                return true;
            };
            match cache.claim(key) {
                Claim::Mine => {
                    claimed.push(key.clone());
                    true
                }
                Claim::Wait(receiver) => {
                    waiting.push(j);
                    waits.push((i, j, receiver));
                    false
                }
            }
        });
    }
    waits
}

/// One batch's request, as [`send_batch_cached`] sends it.
struct BatchRequest<'s, 'a> {
    subgraphs: &'s Subgraphs,
    plan: &'s QueryPlan,
    variables: &'s JsonMap,
    caller: &'s Caller,
    subgraph: usize,
    batch: &'s [Ready<'a>],
}

impl BatchRequest<'_, '_> {
    /// Every representation's key, and what the cache holds for it.
    async fn look_up(&self, cache: &EntityCache, supergraph: &Supergraph) -> Vec<Looked> {
        let name = self.subgraphs.names[self.subgraph].as_str();
        let scope = scope(self.caller);
        let mut keys = Vec::new();
        let mut sizes = Vec::new();
        for ready in self.batch {
            let selection = &self.plan.fetches[ready.index].operation;
            let json = &ready.representations.json;
            sizes.push(ready.representations.spans.len());
            keys.extend(ready.representations.spans.iter().map(|&(start, end)| {
                entity_key(
                    cache,
                    supergraph,
                    (self.subgraph, name),
                    selection,
                    &json[start..end],
                    &scope,
                )
            }));
        }
        let wanted: Vec<String> = keys.iter().flatten().cloned().collect();
        let mut held = cache.get_many(&wanted).await.into_iter();
        let mut looked = Vec::with_capacity(self.batch.len());
        let mut keys = keys.into_iter();
        for size in sizes {
            let keys: Vec<Option<String>> = keys.by_ref().take(size).collect();
            let found: Vec<Option<Entry>> = keys
                .iter()
                .map(|key| key.as_ref().and_then(|_| held.next().flatten()))
                .collect();
            let misses = (0..size).filter(|&i| found[i].is_none()).collect();
            looked.push(Looked {
                keys,
                found,
                misses,
                waiting: Vec::new(),
            });
        }
        looked
    }

    /// Sends the misses; keeps what they brought and hands it to the requests waiting for it;
    /// then waits for the misses other requests are fetching. `None` when one of those
    /// brought nothing.
    async fn answer(
        &self,
        cache: &EntityCache,
        looked: &mut [Looked],
        (claimed, generation): (Claimed<'_>, u64),
        waits: Vec<Wait>,
    ) -> Option<Result<Arc<Reply>, String>> {
        let reply = match fetch_misses(self, looked).await {
            Ok(reply) => reply,
            Err(reason) => return Some(Err(reason)),
        };
        let (mut body, mut policy, mut fetched) =
            reassemble(cache, self.batch, looked, reply.as_deref());
        if cache.generation() != generation {
            // An invalidation overtook the fetch: what it brought may predate the write, so
            // nothing is kept or handed on (waiters fetch again).
            fetched.clear();
        }
        claimed.settle(&fetched);
        fetched.retain(|(_, entry)| entry.seconds > 0);
        cache.put_many(fetched).await;
        if !waits.is_empty() {
            for (i, j, receiver) in waits {
                looked[i].found[j] = Some(receiver.await.ok().flatten()?);
                looked[i].waiting.retain(|&w| w != j);
            }
            (body, policy, _) = reassemble(cache, self.batch, looked, reply.as_deref());
        }
        Some(Ok(Arc::new(Reply {
            body,
            cache: policy,
        })))
    }
}

/// Sends the fetches' misses as one request (`None` when the cache held everything).
async fn fetch_misses(
    send: &BatchRequest<'_, '_>,
    looked: &[Looked],
) -> Result<Option<Arc<Reply>>, String> {
    let batch = send.batch;
    let mut sending: Vec<(usize, Vec<u8>)> = Vec::new();
    for (ready, looked) in batch.iter().zip(looked) {
        if looked.misses.is_empty() {
            continue;
        }
        let json = &ready.representations.json;
        let mut only = Vec::with_capacity(json.len());
        only.push(b'[');
        for (n, &i) in looked.misses.iter().enumerate() {
            if n > 0 {
                only.push(b',');
            }
            let (start, end) = ready.representations.spans[i];
            only.extend_from_slice(&json[start..end]);
        }
        only.push(b']');
        sending.push((ready.index, only));
    }
    if sending.is_empty() {
        return Ok(None);
    }
    let parts: Vec<(usize, &[u8])> = sending
        .iter()
        .map(|(index, json)| (*index, json.as_slice()))
        .collect();
    let body = batch_body(send.plan, &parts, send.variables);
    let outgoing = send.subgraphs.outgoing(send.subgraph, body, send.caller);
    send.subgraphs
        .send_shared(send.subgraph, outgoing)
        .await
        .map(Some)
}

/// The answer as if every representation had been sent: per fetch (`_entities` alone, `_eN`
/// in a batch) the kept entities and the subgraph's, its errors re-pathed to match; with the
/// entities fetched without errors (those without a TTL have 0 seconds: handed to waiters,
/// not kept).
fn reassemble(
    cache: &EntityCache,
    batch: &[Ready<'_>],
    looked: &[Looked],
    reply: Option<&Reply>,
) -> (Doc, CachePolicy, Vec<(String, Entry)>) {
    let sent_fetches = looked.iter().filter(|l| !l.misses.is_empty()).count();
    let alias_of = |i: usize, count: usize| {
        if count > 1 {
            format!("_e{i}")
        } else {
            "_entities".to_owned()
        }
    };
    let mut policy = reply.map_or(CachePolicy::Unrestricted, |reply| reply.cache);
    let ttl = reply.and_then(|reply| ttl_for(cache, reply.cache));
    let data = reply.and_then(|reply| reply.body.root().get("data"));
    let mut kept = Vec::new();
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"data\":{");
    // Which alias each fetch's misses were sent under, and where its entities go.
    let mut sent_as = Vec::with_capacity(batch.len());
    let mut position = 0;
    for (i, looked) in looked.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &alias_of(i, batch.len())).expect("serializes");
        out.extend_from_slice(b":[");
        let returned: Vec<DocValue> = if looked.misses.is_empty() {
            sent_as.push(None);
            Vec::new()
        } else {
            let alias = alias_of(position, sent_fetches);
            position += 1;
            let items = data
                .and_then(|data| data.get(&alias))
                .map(|entities| entities.items().collect())
                .unwrap_or_default();
            sent_as.push(Some(alias));
            items
        };
        let mut next_miss = 0;
        for (j, found) in looked.found.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            if looked.waiting.contains(&j) {
                // Not here yet: this pass only collects what to keep.
                out.extend_from_slice(b"null");
                continue;
            }
            if let Some(entry) = found {
                out.extend_from_slice(&entry.json);
                policy = policy.restrict(policy_of(entry));
                continue;
            }
            let value = returned.get(next_miss).copied();
            next_miss += 1;
            match value {
                Some(value) => {
                    let start = out.len();
                    value.write(&mut out);
                    // Entities without a TTL are collected too, with none, for the requests
                    // waiting for them; only the others are kept.
                    if let (true, Some(key)) = (value.is_object(), &looked.keys[j]) {
                        let (seconds, private) = ttl.unwrap_or((0, true));
                        kept.push((
                            key.clone(),
                            Entry {
                                json: Bytes::copy_from_slice(&out[start..]),
                                seconds,
                                private,
                            },
                        ));
                    }
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b']');
    }
    out.push(b'}');
    let failed = write_errors(&mut out, reply, batch.len(), looked, &sent_as);
    out.push(b'}');
    // An entity with an error in it is not kept.
    kept.retain(|(key, _)| {
        !failed
            .iter()
            .any(|&(i, j)| looked[i].keys[j].as_ref() == Some(key))
    });
    let doc = Doc::parse(Bytes::from(out)).expect("the reassembled answer is JSON");
    (doc, policy, kept)
}

/// Writes the reply's errors (`,"errors":[…]`), re-pathed as if everything had been sent;
/// returns the entities they are about.
fn write_errors(
    out: &mut Vec<u8>,
    reply: Option<&Reply>,
    batch: usize,
    looked: &[Looked],
    sent_as: &[Option<String>],
) -> Vec<(usize, usize)> {
    let mut failed = Vec::new();
    let Some(errors) = reply.and_then(|reply| reply.body.root().get("errors")) else {
        return failed;
    };
    out.extend_from_slice(b",\"errors\":[");
    for (n, error) in errors.items().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let mut error = error.to_value();
        repath_miss(&mut error, batch, looked, sent_as, &mut failed);
        serde_json::to_writer(&mut *out, &error).expect("serializes");
    }
    out.push(b']');
    failed
}

/// Points an error of the request sent (`[alias, m, …]`, `m` among the misses) at the same
/// entity in the answer as if everything had been sent; notes which entity it was.
fn repath_miss(
    error: &mut JsonValue,
    batch: usize,
    looked: &[Looked],
    sent_as: &[Option<String>],
    failed: &mut Vec<(usize, usize)>,
) {
    let Some(path) = error.get_mut("path").and_then(JsonValue::as_array_mut) else {
        return;
    };
    let (Some(alias), Some(m)) = (
        path.first().and_then(JsonValue::as_str).map(str::to_owned),
        path.get(1).and_then(JsonValue::as_u64),
    ) else {
        return;
    };
    let Some(i) = sent_as
        .iter()
        .position(|sent| sent.as_deref() == Some(alias.as_str()))
    else {
        return;
    };
    let Some(&j) = usize::try_from(m)
        .ok()
        .and_then(|m| looked[i].misses.get(m))
    else {
        return;
    };
    failed.push((i, j));
    path[0] = JsonValue::from(if batch > 1 {
        format!("_e{i}")
    } else {
        "_entities".to_owned()
    });
    path[1] = JsonValue::from(j as u64);
}
