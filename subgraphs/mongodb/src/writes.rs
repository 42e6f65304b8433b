//! The generated mutations' writes: `insert_reviews(objects)`, `insert_reviews_one(object)`,
//! `update_reviews(where, _set)`, `update_reviews_by_pk(key, _set)`, `delete_reviews(where)`,
//! `delete_reviews_by_pk(key)`. A document is only ever written with the fields the schema
//! declares (`$set` keys come from the model, never from request strings), only where the
//! caller's row rule lets it, and the collection's validator has the last word.

use async_graphql::{Name, Value};
use futures::TryStreamExt as _;
use indexmap::IndexMap;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::config::Write;
use polygraph_subgraph_core::engine::FieldError;

use crate::convert::to_bson;
use crate::errors::{bad_input, database_error};
use crate::model::{FieldModel, Model, Shape, Storage};
use crate::store::{Store, both};

/// What a mutation did: how many documents a many-document mutation affected and the
/// documents as they are afterwards (as they were, for deletes), or the one document a
/// `…_one`/`…_by_pk` mutation wrote, if any.
pub(crate) enum Written {
    Many {
        affected: u64,
        documents: Vec<Document>,
    },
    One(Option<Document>),
}

/// A generated mutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Insert,
    InsertOne,
    Update,
    UpdateByKey,
    Delete,
    DeleteByKey,
}

impl Kind {
    /// In the order the schema lists them.
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Insert,
        Kind::InsertOne,
        Kind::Update,
        Kind::UpdateByKey,
        Kind::Delete,
        Kind::DeleteByKey,
    ];

    pub(crate) fn write(self) -> Write {
        match self {
            Kind::Insert | Kind::InsertOne => Write::Insert,
            Kind::Update | Kind::UpdateByKey => Write::Update,
            Kind::Delete | Kind::DeleteByKey => Write::Delete,
        }
    }

    /// The field's name, for a collection listed as `list`.
    pub(crate) fn field_name(self, list: &str) -> String {
        match self {
            Kind::Insert => format!("insert_{list}"),
            Kind::InsertOne => format!("insert_{list}_one"),
            Kind::Update => format!("update_{list}"),
            Kind::UpdateByKey => format!("update_{list}_by_pk"),
            Kind::Delete => format!("delete_{list}"),
            Kind::DeleteByKey => format!("delete_{list}_by_pk"),
        }
    }

    /// Whether it answers with a mutation response (else with one document or null).
    pub(crate) fn many(self) -> bool {
        matches!(self, Kind::Insert | Kind::Update | Kind::Delete)
    }
}

/// A typed input value as a document of `objects[object]`.
fn input_document(model: &Model, object: usize, value: &Value) -> Result<Document, FieldError> {
    let Value::Object(entries) = value else {
        return Err(bad_input("expected an input object"));
    };
    let object = &model.objects[object];
    let mut document = Document::new();
    for (name, value) in entries {
        let field = object
            .field(name.as_str())
            .filter(|field| !matches!(field.shape, Shape::Reference(_)))
            .ok_or_else(|| bad_input(format!("{} has no field {name}", object.type_name)))?;
        let one = |value: &Value| -> Result<Bson, FieldError> {
            match field.shape {
                _ if matches!(value, Value::Null) => Ok(Bson::Null),
                Shape::Scalar { storage, .. } => to_bson(value, storage)
                    .map_err(|error| bad_input(format!("{name}: {}", error.0))),
                Shape::Object(nested) => input_document(model, nested, value).map(Bson::Document),
                Shape::Reference(_) => unreachable!("filtered above"),
            }
        };
        let bson = match value {
            Value::List(items) if field.list => {
                Bson::Array(items.iter().map(one).collect::<Result<_, FieldError>>()?)
            }
            value => one(value)?,
        };
        document.insert(field.path.clone(), bson);
    }
    Ok(document)
}

/// Runs mutation `kind` on `collection` with the field's `arguments`, for a caller with
/// `claims`: writes reach only the documents the caller may see and must leave them there.
pub(crate) async fn run(
    store: &Store,
    collection: usize,
    kind: Kind,
    arguments: &IndexMap<Name, Value>,
    claims: Option<&Claims>,
) -> Result<Written, FieldError> {
    let model = &store.model;
    let spec = &model.collections[collection];
    let handle = store.database.collection::<Document>(&spec.collection);
    let lookup = || -> Result<Document, FieldError> {
        let field = &model.objects[spec.object].fields[spec.lookup];
        let storage = field.scalar().expect("lookups are scalars").0;
        let key = arguments.get(field.name.as_str()).unwrap_or(&Value::Null);
        let key = to_bson(key, storage).map_err(|error| bad_input(error.0))?;
        Ok(doc! { field.path.clone(): { "$eq": key } })
    };
    let set = || -> Result<Document, FieldError> {
        let set = input_document(
            model,
            spec.object,
            arguments.get("_set").unwrap_or(&Value::Null),
        )?;
        if set.is_empty() {
            return Err(bad_input("_set names no field"));
        }
        Ok(set)
    };
    let fail = |error: mongodb::error::Error| database_error(&error);
    // What the caller may see; writes reach only those documents and must leave them there.
    let within = store.restriction(collection, claims)?;
    let admit = |value: &Value, complete: bool| admit(model, collection, claims, value, complete);
    let written = match kind {
        Kind::Insert | Kind::InsertOne => {
            let values: Vec<&Value> =
                match (kind, arguments.get("objects"), arguments.get("object")) {
                    (Kind::Insert, Some(Value::List(items)), _) => items.iter().collect(),
                    (Kind::InsertOne, _, Some(item)) => vec![item],
                    _ => return Err(bad_input("nothing to insert")),
                };
            let mut documents = values
                .into_iter()
                .map(|value| {
                    admit(value, true)?;
                    input_document(model, spec.object, value)
                })
                .collect::<Result<Vec<_>, FieldError>>()?;
            if documents.is_empty() {
                return Ok(Written::Many {
                    affected: 0,
                    documents,
                });
            }
            // Ordered: the first rejected document stops the rest, and the error says which.
            let inserted = handle.insert_many(&documents).await.map_err(fail)?;
            for (index, id) in inserted.inserted_ids {
                documents[index].entry("_id".to_owned()).or_insert(id);
            }
            if kind.many() {
                Written::Many {
                    affected: documents.len() as u64,
                    documents,
                }
            } else {
                Written::One(documents.pop())
            }
        }
        Kind::UpdateByKey => {
            admit(arguments.get("_set").unwrap_or(&Value::Null), false)?;
            Written::One(
                handle
                    .find_one_and_update(both(lookup()?, within), doc! { "$set": set()? })
                    .return_document(ReturnDocument::After)
                    .await
                    .map_err(fail)?,
            )
        }
        Kind::DeleteByKey => Written::One(
            handle
                .find_one_and_delete(both(lookup()?, within))
                .await
                .map_err(fail)?,
        ),
        Kind::Update | Kind::Delete => {
            let filter = both(
                store.where_filter(spec.object, arguments.get("where"))?,
                within,
            );
            let set = if matches!(kind, Kind::Update) {
                admit(arguments.get("_set").unwrap_or(&Value::Null), false)?;
                Some(set()?)
            } else {
                None
            };
            update_or_delete(&handle, filter, set).await.map_err(fail)?
        }
    };
    Ok(written)
}

/// Refuses a written document (an insert's object, `complete`, or an update's `_set`) that would
/// put it outside the collection's row rule for these claims.
fn admit(
    model: &Model,
    collection: usize,
    claims: Option<&Claims>,
    value: &Value,
    complete: bool,
) -> Result<(), FieldError> {
    let spec = &model.collections[collection];
    let (Some(rule), Some(claims)) = (&spec.rule, claims) else {
        return Ok(());
    };
    let object = &model.objects[spec.object];
    let written = |field: &str| match value {
        Value::Object(entries) => entries.get(field),
        _ => None,
    };
    let integral = |field: &str| {
        object
            .field(field)
            .and_then(FieldModel::scalar)
            .is_some_and(|(storage, _)| matches!(storage, Storage::Int | Storage::Long))
    };
    rule.admits(claims, complete, written, integral)
        .map_err(|message| FieldError::new(message).code("FORBIDDEN"))
}

/// Updates (with `set`) or deletes the documents matching `filter`, returning them as they are
/// afterwards (or were, for a delete).
async fn update_or_delete(
    handle: &mongodb::Collection<Document>,
    filter: Document,
    set: Option<Document>,
) -> mongodb::error::Result<Written> {
    let matched: Vec<Document> = handle
        .find(filter.clone())
        .sort(doc! { "_id": 1 })
        .await?
        .try_collect()
        .await?;
    let ids: Vec<Bson> = matched
        .iter()
        .filter_map(|d| d.get("_id").cloned())
        .collect();
    // Written and read back only while they still match: a document changed in between (moved
    // out of the caller's row rule, say) is left alone.
    let by_ids = doc! { "$and": [{ "_id": { "$in": ids } }, filter] };
    Ok(if let Some(set) = set {
        let updated = handle
            .update_many(by_ids.clone(), doc! { "$set": set })
            .await?;
        let documents: Vec<Document> = handle
            .find(by_ids)
            .sort(doc! { "_id": 1 })
            .await?
            .try_collect()
            .await?;
        Written::Many {
            affected: updated.matched_count,
            documents,
        }
    } else {
        let deleted = handle.delete_many(by_ids).await?;
        Written::Many {
            affected: deleted.deleted_count,
            documents: matched,
        }
    })
}
