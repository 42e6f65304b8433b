//! Identical work in flight at the same time done once: the first caller with a key runs it,
//! and callers with an equal key that arrive before it finishes get a copy of its result.
//! Keys are compared whole, never by hash alone.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

/// A result, with the subgraphs its work fetched from (for each caller's operation log).
type Touched<V> = (V, Arc<[String]>);

pub struct Coalescer<K, V: Clone> {
    in_flight: Mutex<HashMap<K, Shared<BoxFuture<'static, Touched<V>>>>>,
    /// Callers that got another's result.
    joined: AtomicU64,
}

impl<K, V: Clone> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
            joined: AtomicU64::new(0),
        }
    }
}

/// Takes the leader's key out of the map when it finishes or is dropped: later callers start
/// afresh, and callers already joined keep the work going through their own copies.
struct Leaving<'a, K: Hash + Eq, V: Clone> {
    coalescer: &'a Coalescer<K, V>,
    key: Option<K>,
}

impl<K: Hash + Eq, V: Clone> Drop for Leaving<'_, K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Ok(mut in_flight) = self.coalescer.in_flight.lock()
        {
            in_flight.remove(&key);
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> Coalescer<K, V> {
    /// The result of the work for `key`: `work`'s, or that of an equal key's work in flight.
    pub async fn run(&self, key: K, work: impl FnOnce() -> BoxFuture<'static, V>) -> V {
        let (shared, leaving) = {
            let mut in_flight = self.in_flight.lock().expect("not poisoned");
            if let Some(shared) = in_flight.get(&key) {
                self.joined.fetch_add(1, Ordering::Relaxed);
                (shared.clone(), None)
            } else {
                let shared = polygraph_service::http::touching(work()).boxed().shared();
                in_flight.insert(key.clone(), shared.clone());
                (shared, Some(key))
            }
        };
        let _leaving = Leaving {
            coalescer: self,
            key: leaving,
        };
        let (value, touched) = shared.await;
        // Every caller's log names what the work it shared fetched from.
        polygraph_service::http::touched_all(&touched);
        value
    }

    /// How many callers so far got another caller's result.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }
}

/// Everything a query's answer over HTTP depends on besides the supergraph: the request as
/// sent (the body, or a GET's query string), the media type answered, the credentials it
/// carries (the caller, so that two callers never share) and the explain header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ask {
    get: bool,
    media: &'static str,
    /// Every `Authorization` header, joined.
    authorization: Option<Bytes>,
    /// Every `Cookie` header, joined: the sign-in cookie may be in any of them.
    cookie: Option<Bytes>,
    explain: Option<HeaderValue>,
    request: Bytes,
}

/// Every value of header `name`, joined by newlines (which no header value holds).
fn all_of(headers: &HeaderMap, name: header::HeaderName) -> Option<Bytes> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut joined = Vec::new();
    for value in values {
        joined.extend_from_slice(value.as_bytes());
        joined.push(b'\n');
    }
    Some(Bytes::from(joined))
}

impl Ask {
    /// Whether the request carries credentials (a token or a cookie).
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some() || self.cookie.is_some()
    }

    /// Feeds how the answer is presented to `hasher`: its media type and whether the plan is
    /// attached (the same answer for GET and POST, whatever the text's spacing).
    pub fn hash_presentation(&self, hasher: &mut impl sha2::Digest) {
        for part in [
            Some(self.media.as_bytes()),
            self.explain.as_ref().map(HeaderValue::as_bytes),
        ] {
            let part = part.unwrap_or_default();
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }

    pub fn new(
        get: bool,
        media: &'static str,
        headers: &HeaderMap,
        explain_header: &str,
        request: Bytes,
    ) -> Self {
        Self {
            get,
            media,
            authorization: all_of(headers, header::AUTHORIZATION),
            cookie: all_of(headers, header::COOKIE),
            explain: headers.get(explain_header).cloned(),
            request,
        }
    }
}

/// An answer as written, to give each request that asked for it.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// How long it may be kept, and by whom.
    pub policy: crate::execute::CachePolicy,
    /// The object, interface and union types its operation selects.
    pub types: Arc<BTreeSet<String>>,
    /// Whether the body carries GraphQL errors.
    pub errors: bool,
}

impl Answer {
    pub fn into_http(self) -> axum::response::Response {
        let mut response = axum::response::Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn equal_keys_in_flight_share_one_run_and_later_ones_run_again() {
        let coalescer: Arc<Coalescer<String, usize>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut callers = Vec::new();
        for _ in 0..10 {
            let (coalescer, runs, gate) = (coalescer.clone(), runs.clone(), gate.clone());
            callers.push(tokio::spawn(async move {
                coalescer
                    .run("same".to_owned(), move || {
                        async move {
                            gate.notified().await;
                            runs.fetch_add(1, Ordering::SeqCst) + 1
                        }
                        .boxed()
                    })
                    .await
            }));
        }
        while coalescer.joined() < 9 {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 1);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Finished work is not kept: the same key runs again.
        let again = coalescer
            .run("same".to_owned(), || async { 7 }.boxed())
            .await;
        assert_eq!(again, 7);
        let other = coalescer
            .run("other".to_owned(), || async { 8 }.boxed())
            .await;
        assert_eq!(other, 8);
        assert_eq!(coalescer.joined(), 9);
    }

    #[tokio::test]
    async fn a_leader_that_goes_away_leaves_nothing_behind() {
        let coalescer: Coalescer<u8, u8> = Coalescer::default();
        let pending = coalescer.run(1, || futures::future::pending().boxed());
        // Polled once (registering the key), then dropped.
        assert!(futures::poll!(Box::pin(pending)).is_pending());
        assert!(coalescer.in_flight.lock().unwrap().is_empty());
        assert_eq!(coalescer.run(1, || async { 2 }.boxed()).await, 2);
    }
}
