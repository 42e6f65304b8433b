//! Subgraph answers and failures as errors of the client's response: paths rewritten from the
//! fetch's to the client's, batched answers split back to their fetches.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The errors for a fetch that got no answer: one where each part of the response it would
/// have filled begins.
pub(super) fn failed(
    fetch: &Fetch,
    sent: Option<&Sent>,
    service: &str,
    reason: &str,
) -> Vec<GraphqlError> {
    let mut error = GraphqlError::new(
        format!("subgraph \"{service}\" failed: {reason}"),
        Code::SubrequestHttpError,
    );
    error.extensions.insert("service", JsonValue::from(service));
    error
        .extensions
        .insert("serviceName", JsonValue::from(service));
    at_places(fetch, sent, &error)
}

/// Most errors one failed fetch adds: past them, the `null`s speak for themselves.
const MOST_FAILURE_ERRORS: usize = 100;

/// Most of a subgraph reply's own errors taken in.
const MOST_REPLY_ERRORS: usize = 1000;

/// Longest error path taken from a subgraph: a longer one is placed where the fetch's objects
/// are instead (no operation nests that deep: `limits.max_depth` is far below).
const LONGEST_ERROR_PATH: usize = 256;

/// The codes a subgraph's error keeps when redacted (what clients act on), each with what
/// the redacted message says the subgraph did. Any other code becomes
/// `DOWNSTREAM_SERVICE_ERROR`, so that a subgraph can neither pass text through a code nor
/// pose as the gateway (`PERSISTED_QUERY_NOT_FOUND`, `INVALID_TOKEN`, …).
const KEPT_CODES: [(&str, &str); 9] = [
    ("BAD_USER_INPUT", "refused the request's input"),
    ("UNAUTHENTICATED", "needs a signed-in caller for this"),
    ("FORBIDDEN", "refused this to the caller"),
    ("NOT_FOUND", "found nothing here"),
    ("TIMEOUT", "ran out of time"),
    ("DATABASE_ERROR", "could not reach its data"),
    ("SERVICE_UNAVAILABLE", "could not reach its data"),
    ("INTERNAL_SERVER_ERROR", "could not resolve this"),
    ("DOWNSTREAM_SERVICE_ERROR", "could not resolve this"),
];

/// `error` at each field `fetch` would have filled: in every object it sent a representation
/// of (`fetch`'s field keys under each), or at a root fetch's root fields.
pub(super) fn at_places(
    fetch: &Fetch,
    sent: Option<&Sent>,
    error: &GraphqlError,
) -> Vec<GraphqlError> {
    let paths: Vec<Vec<Segment>> = match (sent, &fetch.entity) {
        (Some(sent), Some(entity)) if !entity.field_keys.is_empty() => {
            let per_object = entity.field_keys.len();
            sent.object_paths(MOST_FAILURE_ERRORS.div_ceil(per_object))
                .into_iter()
                .flat_map(|object| {
                    entity.field_keys.iter().map(move |key| {
                        let mut path = object.clone();
                        path.push(Segment::Key(key.clone()));
                        path
                    })
                })
                .take(MOST_FAILURE_ERRORS)
                .collect()
        }
        (Some(sent), _) => sent.object_paths(MOST_FAILURE_ERRORS),
        (None, _) => fetch
            .root_keys
            .iter()
            .map(|key| vec![Segment::Key(key.clone())])
            .collect(),
    };
    paths
        .into_iter()
        .map(|path| error.clone().at(path))
        .collect()
}

/// Takes a request's reply (or its failure) into the data and the errors, for each fetch the
/// request was sent for.
pub(super) fn take_in<'r>(
    plan: &QueryPlan,
    subgraphs: &Subgraphs,
    data: &mut Data<'r>,
    errors: &mut Vec<GraphqlError>,
    reply: &Result<&'r Reply, String>,
    fetches: Vec<(usize, Option<Sent<'_>>)>,
) {
    let batch = fetches.len();
    for (i, (index, sent)) in fetches.into_iter().enumerate() {
        let fetch = &plan.fetches[index];
        let service = &subgraphs.names[fetch.subgraph];
        let sent = sent.as_ref();
        match reply {
            Err(reason) => errors.extend(failed(fetch, sent, service, reason)),
            Ok(reply) => {
                let alias = (batch > 1).then_some((i, batch));
                let expose = subgraphs.expose_errors;
                absorb(data, errors, reply, alias, sent, (service, expose));
            }
        }
    }
}

/// Merges a subgraph's answer into the data: a root fetch's at the root, an entity fetch's
/// into every object that sent each representation; its errors re-pathed. In a batch
/// (`alias`: this fetch's place and the batch's size) the fetch's entities are under `_eN`,
/// and its errors are those whose path starts there (the first fetch's, those without).
/// Unless `expose` (of `(service, expose)`), the errors are [`redact`]ed.
pub(super) fn absorb<'r>(
    data: &mut Data<'r>,
    errors: &mut Vec<GraphqlError>,
    reply: &'r Reply,
    alias: Option<(usize, usize)>,
    sent: Option<&Sent>,
    (service, expose): (&str, bool),
) {
    let returned = reply.body.root().get("data");
    match sent {
        None => {
            if let Some(returned) = returned.filter(|returned| returned.is_object()) {
                data.merge(returned);
            }
        }
        Some(sent) => {
            let field = alias.map_or_else(|| "_entities".to_owned(), |(i, _)| format!("_e{i}"));
            let entities: Vec<DocValue<'r>> = returned
                .and_then(|returned| returned.get(field.as_str()))
                .map(|entities| entities.items().collect())
                .unwrap_or_default();
            merge_at(data, &sent.places, 0, &entities);
        }
    }
    if let Some(subgraph_errors) = reply.body.root().get("errors") {
        let first = sent.map(Sent::first_places);
        let sent = sent.zip(first.as_deref());
        // At most MOST_REPLY_ERRORS of them: a subgraph cannot make the response (or the
        // work of placing its errors) as large as it likes.
        for error in subgraph_errors.items().take(MOST_REPLY_ERRORS) {
            let error = error.to_value();
            if alias.is_some_and(|(i, batch)| batch_member(&error, batch) != i) {
                continue;
            }
            let error = repath(&error, sent, service);
            errors.push(if expose {
                error
            } else {
                redact(error, service)
            });
        }
    }
}

/// A subgraph's error as clients see it by default: its path, its code when it reads as one,
/// and a message that says only what kind of failure it was. The message and extensions it
/// came with go to the log, since they can hold SQL states, constraint names, validator
/// text or hosts (`Settings::expose_subgraph_errors` passes them on instead).
pub(super) fn redact(error: GraphqlError, service: &str) -> GraphqlError {
    let given = error.extensions.get("code").and_then(JsonValue::as_str);
    let (code, what) = KEPT_CODES
        .iter()
        .find(|(kept, _)| Some(*kept) == given)
        .copied()
        .unwrap_or((
            Code::DownstreamServiceError.as_str(),
            "could not resolve this",
        ));
    // Debug-formatted, so that nothing in them can forge log lines.
    tracing::warn!(
        service,
        %code,
        path = ?error.path,
        message = ?error.message,
        extensions = ?error.extensions,
        "a subgraph answered with an error (redacted for the client)"
    );
    let mut extensions = JsonMap::new();
    extensions.insert("code", JsonValue::from(code));
    extensions.insert("serviceName", JsonValue::from(service));
    GraphqlError {
        message: format!("subgraph \"{service}\" {what}"),
        path: error.path,
        locations: error.locations,
        extensions,
    }
}

/// Which of a batch's `batch` fetches an error belongs to: the one its path starts in (`_eN`),
/// the first when it has no such path.
pub(super) fn batch_member(error: &JsonValue, batch: usize) -> usize {
    error
        .get("path")
        .and_then(JsonValue::as_array)
        .and_then(|path| batch_alias(path.first()?.as_str()?))
        .filter(|&i| i < batch)
        .unwrap_or(0)
}

/// A subgraph's error, its path moved from `_entities.N…` (or a batch's `_eN.N…`) to where
/// object N is (`sent` with its [`Sent::first_places`]).
pub(super) fn repath(
    error: &JsonValue,
    sent: Option<(&Sent, &[u32])>,
    service: &str,
) -> GraphqlError {
    let JsonValue::Object(error) = error else {
        return GraphqlError::new(
            format!("subgraph \"{service}\" sent a malformed error"),
            Code::DownstreamServiceError,
        );
    };
    let message = error
        .get("message")
        .and_then(JsonValue::as_str)
        .unwrap_or("subgraph error")
        .to_owned();
    let mut extensions = match error.get("extensions") {
        Some(JsonValue::Object(extensions)) => extensions.clone(),
        _ => JsonMap::new(),
    };
    if !extensions.contains_key("code") {
        extensions.insert(
            "code",
            JsonValue::from(Code::DownstreamServiceError.as_str()),
        );
    }
    extensions.insert("serviceName", JsonValue::from(service));
    let path: Option<Vec<Segment>> = match error.get("path") {
        Some(JsonValue::Array(path)) if path.len() <= LONGEST_ERROR_PATH => {
            let segments: Vec<Segment> = path
                .iter()
                .filter_map(|segment| match segment {
                    JsonValue::String(key) => Name::new(key.as_str()).ok().map(Segment::Key),
                    JsonValue::Number(n) => n.as_u64().map(|n| Segment::Index(n as usize)),
                    _ => None,
                })
                .collect();
            match (sent, segments.as_slice()) {
                (Some((sent, first)), [Segment::Key(key), Segment::Index(n), rest @ ..])
                    if is_entities_field(key) =>
                {
                    sent.segments(Some(*n), Some(first)).map(|mut path| {
                        path.extend(rest.iter().cloned());
                        path
                    })
                }
                (Some((sent, _)), _) => sent.segments(None, None),
                (None, _) => Some(segments),
            }
        }
        _ => sent.and_then(|(sent, _)| sent.segments(None, None)),
    };
    GraphqlError {
        message,
        path,
        locations: Vec::new(),
        extensions,
    }
}

/// `_entities`, or a batch's alias of it (`_e0`, `_e1` …).
pub(super) fn is_entities_field(key: &str) -> bool {
    key == "_entities" || batch_alias(key).is_some()
}

/// N, when `key` is a batch's alias `_eN` of `_entities` (see [`batch_body`]).
pub(super) fn batch_alias(key: &str) -> Option<usize> {
    key.strip_prefix("_e")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}
