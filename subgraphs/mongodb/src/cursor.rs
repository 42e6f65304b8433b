//! Cursors for Relay-style pages (`reviews_connection(where, order_by, first, after)`).
//!
//! A cursor is the document's values of the sort keys (the requested `order_by`, then `_id`),
//! kept as BSON (so an `Int64` stays one) and base64url-encoded. The next page is the documents
//! strictly after those values in that order: a keyset condition, correct when documents are
//! inserted or deleted between pages, unlike offsets.

use base64::Engine as _;
use mongodb::bson::{Bson, Document, doc};

/// The cursor of `document` under `sort`.
pub(crate) fn encode(sort: &Document, document: &Document) -> String {
    let mut values = Document::new();
    for (index, path) in sort.keys().enumerate() {
        values.insert(
            index.to_string(),
            document.get(path).cloned().unwrap_or(Bson::Null),
        );
    }
    let mut bytes = Vec::new();
    values.to_writer(&mut bytes).expect("a document serializes");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The longest cursor accepted: a few sort values, each a scalar.
const MAX_CURSOR: usize = 4096;

/// The sort values `cursor` carries, `keys` of them. Read as raw BSON, one level only: the
/// values of sort keys are scalars, and a document or array inside (which the recursive
/// decoder would follow as deep as the bytes nest) is not a cursor of ours.
pub(crate) fn decode(cursor: &str, keys: usize) -> Result<Vec<Bson>, String> {
    use mongodb::bson::RawDocument;
    use mongodb::bson::spec::ElementType;
    let not_a_cursor = || "not a cursor".to_owned();
    if cursor.len() > MAX_CURSOR {
        return Err(not_a_cursor());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| not_a_cursor())?;
    let raw = RawDocument::from_bytes(&bytes).map_err(|_| not_a_cursor())?;
    let mut values = Vec::new();
    for element in raw {
        let (_, value) = element.map_err(|_| not_a_cursor())?;
        if matches!(
            value.element_type(),
            ElementType::EmbeddedDocument
                | ElementType::Array
                | ElementType::JavaScriptCodeWithScope
        ) {
            return Err(not_a_cursor());
        }
        values.push(Bson::try_from(value).map_err(|_| not_a_cursor())?);
    }
    if values.len() != keys {
        return Err("a cursor of another ordering".to_owned());
    }
    Ok(values)
}

/// Documents strictly after `values` in `sort` order. MongoDB sorts nulls (and missing
/// fields) first ascending and last descending, and `$gt`/`$lt` never match them, so nulls get
/// their own clauses.
pub fn after(sort: &Document, values: &[Bson]) -> Document {
    let keys: Vec<(&String, bool)> = sort
        .iter()
        .map(|(path, direction)| (path, direction.as_i32() == Some(-1)))
        .collect();
    let mut disjuncts = Vec::new();
    for (position, (path, descending)) in keys.iter().enumerate() {
        let value = &values[position];
        let beyond = match (descending, value) {
            (false, Bson::Null) => doc! { *path: { "$ne": Bson::Null } },
            (false, value) => doc! { *path: { "$gt": value.clone() } },
            // Nothing sorts after null descending.
            (true, Bson::Null) => continue,
            (true, value) => {
                doc! { "$or": [{ *path: { "$lt": value.clone() } }, { *path: Bson::Null }] }
            }
        };
        let mut all: Vec<Document> = keys[..position]
            .iter()
            .zip(values)
            .map(|((path, _), value)| doc! { *path: { "$eq": value.clone() } })
            .collect();
        all.push(beyond);
        disjuncts.push(if all.len() == 1 {
            all.remove(0)
        } else {
            doc! { "$and": all }
        });
    }
    if disjuncts.is_empty() {
        doc! { "$nor": [{}] }
    } else {
        doc! { "$or": disjuncts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_cursors_are_refused_without_being_followed() {
        use base64::Engine as _;
        use mongodb::bson::{Bson, doc};
        let mut nested = doc! { "x": 1 };
        for _ in 0..100 {
            nested = doc! { "0": nested };
        }
        let mut bytes = Vec::new();
        nested.to_writer(&mut bytes).unwrap();
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(super::decode(&cursor, 1).unwrap_err(), "not a cursor");
        assert_eq!(
            super::decode(&"A".repeat(100_000), 1).unwrap_err(),
            "not a cursor"
        );
        let flat = super::encode(&doc! { "a": 1 }, &doc! { "a": Bson::Int64(7) });
        assert_eq!(super::decode(&flat, 1).unwrap(), vec![Bson::Int64(7)]);
    }

    #[test]
    fn cursors_round_trip_with_their_types() {
        let sort = doc! { "rating": -1, "_id": 1 };
        let document = doc! { "_id": 7_i64, "rating": 5_i32, "title": "x" };
        let cursor = encode(&sort, &document);
        assert_eq!(
            decode(&cursor, 2).unwrap(),
            vec![Bson::Int32(5), Bson::Int64(7)]
        );
        assert!(decode(&cursor, 3).is_err());
        assert!(decode("not base64!", 2).is_err());
    }

    #[test]
    fn keyset_conditions_handle_nulls() {
        let sort = doc! { "rating": -1, "_id": 1 };
        assert_eq!(
            after(&sort, &[Bson::Int32(5), Bson::Int64(7)]),
            doc! { "$or": [
                { "$or": [{ "rating": { "$lt": 5 } }, { "rating": Bson::Null }] },
                { "$and": [{ "rating": { "$eq": 5 } }, { "_id": { "$gt": 7_i64 } }] },
            ] }
        );
        // Descending, after a null: only ties on the null, by _id.
        assert_eq!(
            after(&sort, &[Bson::Null, Bson::Int64(7)]),
            doc! { "$or": [{ "$and": [{ "rating": { "$eq": Bson::Null } }, { "_id": { "$gt": 7_i64 } }] }] }
        );
    }
}
