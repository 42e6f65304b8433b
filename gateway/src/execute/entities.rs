//! Entity fetches' inputs and outputs: the representations of the objects a fetch extends,
//! projected from the data, and the entities it returns merged back into their places.

#[allow(clippy::wildcard_imports)]
use super::*;

/// An `_entities` fetch's representations, written as the JSON array the request sends.
pub(super) struct Representations {
    /// `[{…},{…}]`, each distinct representation once.
    pub(super) json: Vec<u8>,
    pub(super) count: usize,
    /// Where each representation is in `json`.
    pub(super) spans: Vec<(usize, usize)>,
}

/// The distinct representations of the objects at the fetch's path, written straight to JSON
/// (they are only ever sent), and for each object its path and which representation it sent.
pub(super) fn representations<'p>(
    supergraph: &Supergraph,
    data: Value<'_>,
    entity: &'p crate::plan::EntityFetch,
) -> (Representations, Sent<'p>) {
    let mut found = Vec::with_capacity(64);
    let mut sent = Sent::new();
    visit(supergraph, data, &entity.path, &mut sent, 0, &mut found);
    sent.places[0].end = sent.count();
    let mut json = Vec::with_capacity(64 * found.len() + 2);
    json.push(b'[');
    // Each distinct representation's span of `json`, found by hash; equal hashes are told
    // apart by comparing the bytes.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // The first span with a hash, and per span the next one with the same hash.
    let hasher = foldhash::fast::RandomState::default();
    let mut seen: HashMap<u64, usize, foldhash::fast::FixedState> = HashMap::default();
    let mut same_hash: Vec<usize> = Vec::new();
    // The names written at each level of the representation being written.
    let mut written: Vec<&str> = Vec::new();
    for (place, object) in found {
        if !entity.types.is_empty() && !entity.types.iter().any(|ty| is_a(supergraph, object, ty)) {
            continue;
        }
        if entity
            .key_fields
            .iter()
            .any(|key| object.get(key.as_str()).is_none_or(Value::is_null))
        {
            continue;
        }
        let mark = json.len();
        if !spans.is_empty() {
            json.push(b',');
        }
        let start = json.len();
        json.push(b'{');
        written.clear();
        if let Some(typename) = &entity.typename {
            json.extend_from_slice(b"\"__typename\":");
            crate::data::write_name(&mut json, typename.as_str());
            written.push("__typename");
        }
        write_projection(
            supergraph,
            object,
            &entity.representation,
            &mut written,
            0,
            &mut json,
        );
        json.push(b'}');
        let hash = std::hash::BuildHasher::hash_one(&hasher, &json[start..]);
        let mut candidate = seen.get(&hash).copied().unwrap_or(usize::MAX);
        while candidate != usize::MAX
            && json[spans[candidate].0..spans[candidate].1] != json[start..]
        {
            candidate = same_hash[candidate];
        }
        let index = if candidate == usize::MAX {
            let index = spans.len();
            same_hash.push(seen.insert(hash, index).unwrap_or(usize::MAX));
            spans.push((start, json.len()));
            index
        } else {
            json.truncate(mark);
            candidate
        };
        sent.places[place as usize].representation =
            u32::try_from(index).expect("fewer than 4 billion representations");
    }
    json.push(b']');
    let count = spans.len();
    (Representations { json, count, spans }, sent)
}

/// Writes the fields `items` name from `object` as `"name":value` members, after those
/// written since `written[base]` and each name once; nested selections are projected the same
/// way, on top of `written`.
pub(super) fn write_projection<'i>(
    supergraph: &Supergraph,
    object: Value<'_>,
    items: &'i [Item],
    written: &mut Vec<&'i str>,
    base: usize,
    out: &mut Vec<u8>,
) {
    // Replies list fields in the order they were asked, which is the order of `items`.
    let mut hint = 0;
    for item in items {
        match item {
            Item::Field {
                key, name, items, ..
            } => {
                if written[base..].contains(&name.as_str()) {
                    continue;
                }
                if written.len() > base {
                    out.push(b',');
                }
                written.push(name.as_str());
                crate::data::write_name(out, name.as_str());
                out.push(b':');
                let value = match object.get_near(key.as_str(), hint) {
                    Some((value, next)) => {
                        hint = next;
                        value
                    }
                    None => Value::Null,
                };
                if items.is_empty() {
                    value.write(out);
                } else {
                    write_projected(supergraph, value, items, written, out);
                }
            }
            Item::On { ty, items } => {
                if is_a(supergraph, object, ty) {
                    write_projection(supergraph, object, items, written, base, out);
                }
            }
        }
    }
}

pub(super) fn write_projected<'i>(
    supergraph: &Supergraph,
    value: Value<'_>,
    items: &'i [Item],
    written: &mut Vec<&'i str>,
    out: &mut Vec<u8>,
) {
    if value.is_object() {
        out.push(b'{');
        let base = written.len();
        write_projection(supergraph, value, items, written, base, out);
        written.truncate(base);
        out.push(b'}');
    } else if let Some(list) = value.items() {
        out.push(b'[');
        for (index, item) in list.enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_projected(supergraph, item, items, written, out);
        }
        out.push(b']');
    } else {
        value.write(out);
    }
}

/// Finds the objects at `path` below `value`, which is at `place`: the places on the way are
/// added to `sent`, and each object goes to `found` with its place.
pub(super) fn visit<'a, 'p>(
    supergraph: &Supergraph,
    value: Value<'a>,
    path: &'p [PathElem],
    sent: &mut Sent<'p>,
    place: u32,
    found: &mut Vec<(u32, Value<'a>)>,
) {
    let below = |sent: &mut Sent<'p>, step, value, path, found: &mut Vec<(u32, Value<'a>)>| {
        let child = sent.enter(place, step);
        visit(supergraph, value, path, sent, child, found);
        sent.leave(child, found.last().is_some_and(|&(at, _)| at == child));
    };
    if let Some(items) = value.items() {
        for (index, item) in items.enumerate() {
            below(sent, Step::Index(index), item, path, found);
        }
        return;
    }
    if !value.is_object() {
        return;
    }
    match path.split_first() {
        None => found.push((place, value)),
        Some((PathElem::Key(key), rest)) => {
            if let Some(child) = value.get(key.as_str()) {
                below(sent, Step::Key(key.as_str()), child, rest, found);
            }
        }
        Some((PathElem::Type(ty), rest)) => {
            if is_a(supergraph, value, ty) {
                visit(supergraph, value, rest, sent, place, found);
            }
        }
    }
}

/// Whether `object`'s `__typename` is `ty` or a type a fragment on `ty` applies to.
pub(super) fn is_a(supergraph: &Supergraph, object: Value<'_>, ty: &str) -> bool {
    object
        .typename()
        .is_some_and(|typename| operation::applies(&supergraph.schema, ty, &typename))
}

/// Merges into the data at `place` (`target`) and below it the answers for the objects there:
/// each step down is taken once for all the objects below it.
pub(super) fn merge_at<'r>(
    target: &mut Data<'r>,
    places: &[Place],
    place: usize,
    entities: &[DocValue<'r>],
) {
    let at = places[place];
    if let Some(&entity) = entities.get(at.representation as usize)
        && entity.is_object()
        && target.is_object()
    {
        target.merge(entity);
    }
    let mut child = place + 1;
    while child < at.end as usize {
        let below = match places[child].step {
            Step::Key(key) => target.field_mut(key),
            Step::Index(index) => target.item_mut(index),
        };
        if let Some(below) = below {
            merge_at(below, places, child, entities);
        }
        child = places[child].end as usize;
    }
}
