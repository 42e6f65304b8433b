//! Cursor pagination, Relay-style: `reviews_connection(where, order_by, first, after)` returns
//! `{ edges { cursor node { … } } pageInfo { hasNextPage endCursor … } }`.
//!
//! A cursor is the document's values of the sort keys (the requested `order_by`, then `_id`),
//! kept as BSON (so an `Int64` stays one) and base64url-encoded. The next page is the documents
//! strictly after those values in that order: a keyset condition, correct when documents are
//! inserted or deleted between pages, unlike offsets.

use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};
use base64::Engine as _;
use futures::TryStreamExt as _;
use mongodb::bson::{Bson, Document, doc};
use polygraph_subgraph_core::claims::RequestClaims;
use polygraph_subgraph_core::filter;
use polygraph_subgraph_core::values::json_field;
use serde_json::json;

use crate::schema::{State, bad_input, batch, both, restriction, where_filter, window, within};

pub(crate) const PAGE_INFO: &str = "PageInfo";

/// The shared `PageInfo` type (shareable: other subgraphs define the same one).
pub(crate) fn page_info() -> Object {
    Object::new(PAGE_INFO)
        .shareable()
        .field(json_field(
            "hasNextPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            false,
        ))
        .field(json_field(
            "hasPreviousPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            false,
        ))
        .field(json_field(
            "startCursor",
            TypeRef::named(TypeRef::STRING),
            false,
        ))
        .field(json_field(
            "endCursor",
            TypeRef::named(TypeRef::STRING),
            false,
        ))
}

struct Edge {
    cursor: String,
    node: Document,
}

struct Connection {
    edges: Vec<Edge>,
    page_info: serde_json::Value,
}

/// `ReviewConnection` and `ReviewEdge`.
pub(crate) fn types(type_name: &str) -> Vec<Object> {
    vec![
        Object::new(format!("{type_name}Connection"))
            .field(Field::new(
                "edges",
                TypeRef::named_nn_list_nn(format!("{type_name}Edge")),
                |ctx| {
                    FieldFuture::Value(ctx.parent_value.downcast_ref::<Connection>().map(|c| {
                        FieldValue::list(c.edges.iter().map(|edge| FieldValue::borrowed_any(edge)))
                    }))
                },
            ))
            .field(Field::new(
                "pageInfo",
                TypeRef::named_nn(PAGE_INFO),
                |ctx| {
                    FieldFuture::Value(
                        ctx.parent_value
                            .downcast_ref::<Connection>()
                            .map(|c| FieldValue::borrowed_any(&c.page_info)),
                    )
                },
            )),
        Object::new(format!("{type_name}Edge"))
            .field(Field::new(
                "cursor",
                TypeRef::named_nn(TypeRef::STRING),
                |ctx| {
                    FieldFuture::Value(
                        ctx.parent_value
                            .downcast_ref::<Edge>()
                            .map(|edge| FieldValue::value(Value::String(edge.cursor.clone()))),
                    )
                },
            ))
            .field(Field::new("node", TypeRef::named_nn(type_name), |ctx| {
                FieldFuture::Value(
                    ctx.parent_value
                        .downcast_ref::<Edge>()
                        .map(|edge| FieldValue::borrowed_any(&edge.node)),
                )
            })),
    ]
}

/// The cursor of `document` under `sort`.
fn encode(sort: &Document, document: &Document) -> String {
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

fn decode(cursor: &str, keys: usize) -> Result<Vec<Bson>, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| "not a cursor")?;
    let values = Document::from_reader(bytes.as_slice()).map_err(|_| "not a cursor")?;
    if values.len() != keys {
        return Err("a cursor of another ordering".to_owned());
    }
    Ok(values.into_iter().map(|(_, value)| value).collect())
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

/// `reviews_connection(where, order_by, first, after)`.
pub(crate) fn field(state: &Arc<State>, collection: usize) -> Field {
    let model = &state.model;
    let spec = &model.collections[collection];
    let object = spec.object;
    let type_name = model.objects[object].type_name.clone();
    let state = state.clone();
    Field::new(
        format!("{}_connection", spec.list_field),
        TypeRef::named_nn(format!("{type_name}Connection")),
        move |ctx| {
            let state = state.clone();
            FieldFuture::new(async move {
                let model = &state.model;
                let arguments = ctx.args.as_index_map();
                let filter = both(
                    where_filter(model, object, arguments.get("where"))?,
                    restriction(model, collection, RequestClaims::of(&ctx))?,
                );
                let mut window_arguments = arguments.clone();
                window_arguments.shift_remove("first");
                let (sort, _, _) = window(model, object, &window_arguments)?;
                let first = filter::parse_count("first", arguments.get("first"), model.max_limit)
                    .map_err(|error| bad_input(error.to_string()))?
                    .unwrap_or(model.max_limit);
                let filter = match arguments.get("after") {
                    Some(Value::String(cursor)) => {
                        let values = decode(cursor, sort.len())
                            .map_err(|error| bad_input(format!("after: {error}")))?;
                        let after = after(&sort, &values);
                        both(filter, after)
                    }
                    _ => filter,
                };
                let read = async {
                    state
                        .database
                        .collection::<Document>(&model.collections[collection].collection)
                        .find(filter)
                        .sort(sort.clone())
                        .limit(first as i64 + 1)
                        .batch_size(batch(first + 1))
                        .max_time(model.operation_timeout)
                        .await?
                        .try_collect::<Vec<Document>>()
                        .await
                };
                let mut documents = within(model, read).await?;
                let has_next = documents.len() as u64 > first;
                documents.truncate(first as usize);
                let edges: Vec<Edge> = documents
                    .into_iter()
                    .map(|node| Edge { cursor: encode(&sort, &node), node })
                    .collect();
                let page_info = json!({
                    "hasNextPage": has_next,
                    "hasPreviousPage": arguments.get("after").is_some_and(|a| !matches!(a, Value::Null)),
                    "startCursor": edges.first().map(|e| e.cursor.clone()),
                    "endCursor": edges.last().map(|e| e.cursor.clone()),
                });
                Ok(Some(FieldValue::owned_any(Connection { edges, page_info })))
            })
        },
    )
    .argument(InputValue::new("where", TypeRef::named(filter::bool_exp_type(&type_name))))
    .argument(InputValue::new("order_by", TypeRef::named_nn_list(filter::order_by_type(&type_name))))
    .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
    .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
    .description(format!("{type_name} documents a page at a time, by cursor."))
}

#[cfg(test)]
mod tests {
    use super::*;

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
