//! Sending fetches: one HTTP request per subgraph call, identical calls in flight shared,
//! the claims token signed and cached per caller, and the answer read with its cache policy.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Each subgraph's URL (an override where settings give one), parsed.
fn urls(
    supergraph: &Supergraph,
    overrides: &HashMap<String, String>,
) -> Vec<Result<reqwest::Url, String>> {
    supergraph
        .subgraphs
        .iter()
        .map(|s| {
            let url = overrides.get(&s.name).unwrap_or(&s.url);
            reqwest::Url::parse(url).map_err(|error| format!("invalid URL {url:?}: {error}"))
        })
        .collect()
}

impl Subgraphs {
    pub fn new(
        supergraph: &Supergraph,
        timeout: Duration,
        overrides: &HashMap<String, String>,
        signing: ClaimsSigning,
    ) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client with default TLS settings builds");
        Self {
            signing: Arc::new(signing),
            client,
            urls: Vec::new(),
            names: Vec::new(),
            timeout,
            max_reply_bytes: usize::MAX,
            expose_errors: false,
            in_flight: Arc::default(),
            hasher: foldhash::fast::RandomState::default(),
            entities: None,
            readiness: Arc::default(),
        }
        .for_supergraph(supergraph, overrides)
    }

    /// The same signing, client and limits for another supergraph's subgraphs.
    #[must_use]
    pub fn for_supergraph(
        &self,
        supergraph: &Supergraph,
        overrides: &HashMap<String, String>,
    ) -> Self {
        Self {
            urls: urls(supergraph, overrides),
            names: supergraph
                .subgraphs
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            in_flight: Arc::default(),
            entities: None,
            readiness: Arc::default(),
            ..self.clone()
        }
    }

    /// Replies longer than `bytes` are refused as they arrive.
    #[must_use]
    pub fn with_max_reply_bytes(mut self, bytes: usize) -> Self {
        self.max_reply_bytes = bytes;
        self
    }

    /// Subgraphs' error messages and extensions, and the causes of failed requests, reach
    /// clients as they are (see `Settings::expose_subgraph_errors`).
    #[must_use]
    pub fn with_exposed_errors(mut self, expose: bool) -> Self {
        self.expose_errors = expose;
        self
    }

    /// A failure's text for the client: `safe`, with `detail` only when errors are exposed.
    /// The detail is logged either way.
    pub(super) fn failure(&self, subgraph: usize, safe: &str, detail: &str) -> String {
        tracing::warn!(subgraph = %self.names[subgraph], %detail, "subgraph request failed: {safe}");
        if self.expose_errors {
            format!("{safe}: {detail}")
        } else {
            safe.to_owned()
        }
    }

    /// The names of the subgraphs that do not answer HTTP within 2 s (any status below 500
    /// counts as an answer: a subgraph may refuse a bare GET); asked at most every 2 s, callers
    /// meanwhile given the last answer.
    pub async fn unreachable(&self) -> Vec<String> {
        let mut last = self.readiness.lock().await;
        if let Some((asked, unreachable)) = &*last
            && asked.elapsed() < Duration::from_secs(2)
        {
            return unreachable.clone();
        }
        let unreachable = self.probe().await;
        *last = Some((std::time::Instant::now(), unreachable.clone()));
        unreachable
    }

    async fn probe(&self) -> Vec<String> {
        let probes = self
            .urls
            .iter()
            .zip(&self.names)
            .map(|(url, name)| async move {
                let answered = match url {
                    Ok(url) => self
                        .client
                        .get(url.clone())
                        .timeout(Duration::from_secs(2))
                        .send()
                        .await
                        .map_err(|error| root_cause(&error))
                        .and_then(|reply| {
                            if reply.status().is_server_error() {
                                Err(format!("answered HTTP {}", reply.status()))
                            } else {
                                Ok(())
                            }
                        }),
                    Err(detail) => Err(detail.clone()),
                };
                answered.err().map(|detail| {
                    tracing::warn!(subgraph = %name, %detail, "subgraph not ready");
                    name.clone()
                })
            });
        futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Entity fetches go through `cache` (when it is on).
    #[must_use]
    pub fn with_entity_cache(mut self, cache: Arc<crate::entity_cache::EntityCache>) -> Self {
        self.entities = cache.enabled().then_some(cache);
        self
    }

    /// Sends a batch of entity fetches: through the entity cache when it is on.
    pub(super) fn dispatch<'a>(
        &'a self,
        supergraph: &'a Supergraph,
        plan: &'a QueryPlan,
        variables: &'a JsonMap,
        caller: &'a Caller,
        subgraph: usize,
        batch: Vec<Ready<'a>>,
    ) -> BoxFuture<'a, Returned<'a>> {
        if self.entities.is_some() {
            return super::cached::send_batch_cached(
                self, supergraph, plan, variables, caller, subgraph, batch,
            );
        }
        let parts: Vec<(usize, &[u8])> = batch
            .iter()
            .map(|ready| (ready.index, ready.representations.json.as_slice()))
            .collect();
        let outgoing = self.outgoing(subgraph, batch_body(plan, &parts, variables), caller);
        self.send_batch(subgraph, outgoing, batch)
    }

    /// The public keys of the gateway's claims tokens, as a JWKS.
    pub fn claims_jwks(&self) -> serde_json::Value {
        self.signing.signer.jwks()
    }

    /// The claims subgraphs get for `session`.
    pub fn caller(&self, session: Option<&crate::auth::Session>) -> Caller {
        self.signing.caller(session)
    }

    pub(super) fn outgoing(&self, subgraph: usize, body: Bytes, caller: &Caller) -> Outgoing {
        Outgoing {
            body,
            token: self.signing.token(caller, subgraph, &self.names[subgraph]),
        }
    }

    /// Sends a query request, or joins an identical one already in flight. Requests are
    /// identical when subgraph, body and claims token are, so two callers' requests are never
    /// merged. Entries are found by a hash and then compared whole, so that a collision never
    /// shares an answer.
    pub(super) async fn send_shared(&self, subgraph: usize, outgoing: Outgoing) -> Answer {
        use futures::FutureExt as _;
        // Joining another request's fetch still touches the subgraph, for this one's log.
        polygraph_service::http::touched(&self.names[subgraph]);
        let key = (
            subgraph,
            std::hash::BuildHasher::hash_one(
                &self.hasher,
                (&outgoing.body[..], outgoing.token.as_bytes()),
            ),
        );
        let joined = {
            let mut in_flight = self.in_flight.lock().expect("not poisoned");
            match in_flight.get(&key) {
                Some((sent, answer)) if *sent == outgoing => Some((answer.clone(), false)),
                // Another request with the same hash: sent on its own.
                Some(_) => None,
                None => {
                    let this = self.clone();
                    let sent = outgoing.clone();
                    let answer = async move { this.send(subgraph, sent).await.map(Arc::new) }
                        .boxed()
                        .shared();
                    in_flight.insert(key, (outgoing.clone(), answer.clone()));
                    Some((answer, true))
                }
            }
        };
        let Some((answer, leader)) = joined else {
            return self.send(subgraph, outgoing).await.map(Arc::new);
        };
        // The request that started it takes the entry out when it ends, however it ends.
        let _leader = leader.then(|| Leaving {
            in_flight: &self.in_flight,
            key,
        });
        answer.await
    }

    /// Sends one fetch's request; shared with identical ones in flight when `share`.
    pub(super) fn send_fetch<'a>(
        &'a self,
        index: usize,
        fetch: &'a Fetch,
        body: Bytes,
        sent: Option<Sent<'a>>,
        caller: &'a Caller,
        share: bool,
    ) -> BoxFuture<'a, Returned<'a>> {
        let outgoing = self.outgoing(fetch.subgraph, body, caller);
        if share
            && self
                .entities
                .as_ref()
                .is_some_and(|cache| cache.caches_roots())
        {
            return super::cached::send_root_cached(self, index, fetch, outgoing, sent, caller);
        }
        async move {
            let answer = if share {
                self.send_shared(fetch.subgraph, outgoing).await
            } else {
                self.send(fetch.subgraph, outgoing).await.map(Arc::new)
            };
            Returned {
                fetches: vec![(index, sent)],
                answer,
            }
        }
        .boxed()
    }

    /// Sends a batch of entity fetches to `subgraph` as one request.
    pub(super) fn send_batch<'a>(
        &'a self,
        subgraph: usize,
        outgoing: Outgoing,
        batch: Vec<Ready<'a>>,
    ) -> BoxFuture<'a, Returned<'a>> {
        // The representations are in the body already.
        let fetches = batch
            .into_iter()
            .map(|ready| (ready.index, Some(ready.sent)))
            .collect();
        async move {
            let answer = self.send_shared(subgraph, outgoing).await;
            Returned { fetches, answer }
        }
        .boxed()
    }

    pub(super) async fn send(&self, subgraph: usize, outgoing: Outgoing) -> Result<Reply, String> {
        use tracing::Instrument as _;
        let name = &self.names[subgraph];
        polygraph_service::http::touched(name);
        let span = tracing::info_span!(
            "subgraph fetch",
            otel.kind = "client",
            otel.name = %format_args!("fetch {name}"),
            otel.status_code = tracing::field::Empty,
            subgraph.name = %name,
        );
        let started = std::time::Instant::now();
        let sent = self
            .exchange(subgraph, outgoing, &span)
            .instrument(span.clone())
            .await;
        let metrics = polygraph_service::metrics();
        metrics.fetch(name, started.elapsed());
        sent.map_err(|(kind, message)| {
            metrics.fetch_error(name, kind);
            span.record("otel.status_code", "ERROR");
            message
        })
    }

    /// [`Subgraphs::send`] without its span and metrics; a failure's kind (`unreachable`,
    /// `timeout`, `status`, `invalid`) with its message.
    async fn exchange(
        &self,
        subgraph: usize,
        outgoing: Outgoing,
        span: &tracing::Span,
    ) -> Result<Reply, (&'static str, String)> {
        let url = self.urls[subgraph].clone().map_err(|detail| {
            (
                "unreachable",
                self.failure(subgraph, "is misconfigured", &detail),
            )
        })?;
        let Outgoing { body, token } = outgoing;
        let mut context = reqwest::header::HeaderMap::new();
        // Also when the span is disabled: an unsampled request still says so to the subgraph.
        polygraph_service::traces::propagate(span, &mut context);
        let response = self
            .client
            .post(url)
            .headers(context)
            .header("content-type", "application/json")
            .header(polygraph_subgraph_core::claims::HEADER, &*token)
            .header(
                "accept",
                "application/graphql-response+json, application/json",
            )
            .timeout(self.timeout)
            .body(body)
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    (
                        "timeout",
                        format!("timed out after {} ms", self.timeout.as_millis()),
                    )
                } else {
                    (
                        "unreachable",
                        self.failure(subgraph, "unreachable", &root_cause(&error)),
                    )
                }
            })?;
        let status = response.status();
        let cache = CachePolicy::of_header(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|value| value.to_str().ok()),
        );
        let bytes = self
            .read_reply(response)
            .await
            .map_err(|failure| match failure {
                Unread::TooLong(text) => ("invalid", text),
                Unread::Broken(detail) => (
                    "unreachable",
                    self.failure(subgraph, "the reply broke off", &detail),
                ),
            })?;
        match Doc::parse(bytes) {
            Ok(body)
                if body.root().get("data").is_some() || body.root().get("errors").is_some() =>
            {
                Ok(Reply { body, cache })
            }
            _ if !status.is_success() => Err(("status", format!("answered HTTP {status}"))),
            _ => Err((
                "invalid",
                "answered something that is not a GraphQL response".to_owned(),
            )),
        }
    }
}

impl Subgraphs {
    /// The reply's body, refused as soon as it is longer than `max_reply_bytes` (by its
    /// `Content-Length`, or as it arrives).
    async fn read_reply(&self, mut response: reqwest::Response) -> Result<Bytes, Unread> {
        let max = self.max_reply_bytes;
        let too_long = || {
            Unread::TooLong(format!(
                "answered more than {max} bytes (limits.max_subgraph_reply_bytes)"
            ))
        };
        if response
            .content_length()
            .is_some_and(|length| length > max as u64)
        {
            return Err(too_long());
        }
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| Unread::Broken(root_cause(&error)))?
        {
            total += chunk.len();
            if total > max {
                return Err(too_long());
            }
            chunks.push(chunk);
        }
        Ok(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().expect("one chunk"),
            _ => Bytes::from(chunks.concat()),
        })
    }
}

/// Why a reply was not read: too long (safe to say as it is), or broken off (with a cause
/// that may name hosts).
enum Unread {
    TooLong(String),
    Broken(String),
}

pub(super) fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
