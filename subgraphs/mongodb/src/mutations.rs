//! Mutations per collection: `insert_reviews(objects)`, `insert_reviews_one(object)`,
//! `update_reviews(where, _set)`, `update_reviews_by_pk(key, _set)`, `delete_reviews(where)`,
//! `delete_reviews_by_pk(key)`. Inputs are typed from the collection's schema, so a document
//! is only ever written with the fields the schema declares (`$set` keys come from the model,
//! never from request strings); the collection's validator has the last word.

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, Type, TypeRef,
};
use async_graphql::{ErrorExtensions as _, Value};
use futures::TryStreamExt as _;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use polygraph_subgraph_core::claims::{Claims, RequestClaims};
use polygraph_subgraph_core::config::Write;
use polygraph_subgraph_core::filter;

use crate::convert::to_bson;
use crate::model::{FieldModel, Model, Shape, Storage};
use crate::schema::{State, bad_input, both, database_error, restriction, where_filter};

/// What a many-document mutation did.
struct Outcome {
    affected: u64,
    documents: Vec<Document>,
}

fn input_type_name(type_name: &str) -> String {
    format!("{type_name}Input")
}

/// The input types and mutation fields of one collection.
pub(crate) fn for_collection(state: &Arc<State>, collection: usize) -> (Vec<Type>, Vec<Field>) {
    (types(&state.model, collection), fields(state, collection))
}

/// Inputs for the collection's documents (and their nested documents), and the response type.
fn types(model: &Model, collection: usize) -> Vec<Type> {
    let spec = &model.collections[collection];
    let name = &model.objects[spec.object].type_name;
    let mut types = Vec::new();
    // Nested documents' inputs, reachable from this collection's type.
    let mut pending = vec![spec.object];
    while let Some(index) = pending.pop() {
        for field in &model.objects[index].fields {
            if let Shape::Object(nested) = field.shape {
                pending.push(nested);
                types.push(Type::from(input_object(
                    model,
                    nested,
                    &input_type_name(&model.objects[nested].type_name),
                    false,
                )));
            }
        }
    }
    types.push(Type::from(input_object(
        model,
        spec.object,
        &format!("{name}InsertInput"),
        false,
    )));
    types.push(Type::from(input_object(
        model,
        spec.object,
        &format!("{name}SetInput"),
        true,
    )));
    let response = format!("{name}MutationResponse");
    types.push(Type::from(
        Object::new(&response)
            .description(format!("The {name} documents a mutation affected."))
            .field(Field::new(
                "affected_rows",
                TypeRef::named_nn(TypeRef::INT),
                |ctx| {
                    FieldFuture::Value(
                        outcome(&ctx).map(|o| FieldValue::value(Value::from(o.affected))),
                    )
                },
            ))
            .field(Field::new(
                "returning",
                TypeRef::named_nn_list_nn(name),
                |ctx| {
                    FieldFuture::Value(outcome(&ctx).map(|o| {
                        FieldValue::list(o.documents.iter().map(|d| FieldValue::borrowed_any(d)))
                    }))
                },
            )),
    ));
    types
}

/// The collection's mutation fields: those its config allows.
fn fields(state: &Arc<State>, collection: usize) -> Vec<Field> {
    let model = &state.model;
    let spec = &model.collections[collection];
    let object = &model.objects[spec.object];
    let name = &object.type_name;
    let list = &spec.list_field;
    let lookup = &object.fields[spec.lookup];
    let lookup_type = lookup
        .scalar()
        .expect("lookups are scalars")
        .1
        .graphql_name();
    let response = || TypeRef::named_nn(format!("{name}MutationResponse"));
    let one = || TypeRef::named(name);
    let field = |kind: Kind, field_name: String, ty: TypeRef| {
        mutation(state, collection, kind, &field_name, ty)
    };
    let filter = || InputValue::new("where", TypeRef::named_nn(filter::bool_exp_type(name)));
    let set = || InputValue::new("_set", TypeRef::named_nn(format!("{name}SetInput")));
    let key = || InputValue::new(&lookup.name, TypeRef::named_nn(lookup_type));
    let insert = format!("{name}InsertInput");
    [
        field(Kind::Insert, format!("insert_{list}"), response()).argument(InputValue::new(
            "objects",
            TypeRef::named_nn_list_nn(&insert),
        )),
        field(Kind::InsertOne, format!("insert_{list}_one"), one())
            .argument(InputValue::new("object", TypeRef::named_nn(&insert))),
        field(Kind::Update, format!("update_{list}"), response())
            .argument(filter())
            .argument(set()),
        field(Kind::UpdateByKey, format!("update_{list}_by_pk"), one())
            .argument(key())
            .argument(set()),
        field(Kind::Delete, format!("delete_{list}"), response()).argument(filter()),
        field(Kind::DeleteByKey, format!("delete_{list}_by_pk"), one()).argument(key()),
    ]
    .into_iter()
    .zip(Kind::ALL)
    .filter(|(_, kind)| spec.mutations.allows(kind.write()))
    .map(|(field, _)| field)
    .collect()
}

fn outcome<'a>(ctx: &ResolverContext<'a>) -> Option<&'a Outcome> {
    ctx.parent_value.downcast_ref::<Outcome>()
}

/// An input with a field per stored field (references excluded: their stored field is there).
/// Insert inputs require what the schema requires (but `_id`, generated when absent); set
/// inputs require nothing and cannot change `_id`.
fn input_object(model: &Model, object: usize, name: &str, set: bool) -> InputObject {
    let mut input = InputObject::new(name);
    for field in &model.objects[object].fields {
        let type_name = match &field.shape {
            Shape::Scalar { kind, .. } => kind.graphql_name().to_owned(),
            Shape::Object(nested) => input_type_name(&model.objects[*nested].type_name),
            Shape::Reference(_) => continue,
        };
        if set && field.path == "_id" {
            continue;
        }
        let required = !set && !field.nullable && field.path != "_id";
        let ty = match (field.list, required) {
            (true, true) => TypeRef::named_nn_list_nn(type_name),
            (true, false) => TypeRef::named_nn_list(type_name),
            (false, true) => TypeRef::named_nn(type_name),
            (false, false) => TypeRef::named(type_name),
        };
        input = input.field(InputValue::new(&field.name, ty));
    }
    input
}

/// A typed input value as a document of `objects[object]`.
fn input_document(model: &Model, object: usize, value: &Value) -> async_graphql::Result<Document> {
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
        let one = |value: &Value| -> async_graphql::Result<Bson> {
            match field.shape {
                _ if matches!(value, Value::Null) => Ok(Bson::Null),
                Shape::Scalar { storage, .. } => to_bson(value, storage)
                    .map_err(|error| bad_input(format!("{name}: {}", error.0))),
                Shape::Object(nested) => input_document(model, nested, value).map(Bson::Document),
                Shape::Reference(_) => unreachable!("filtered above"),
            }
        };
        let bson = match value {
            Value::List(items) if field.list => Bson::Array(
                items
                    .iter()
                    .map(one)
                    .collect::<async_graphql::Result<_>>()?,
            ),
            value => one(value)?,
        };
        document.insert(field.path.clone(), bson);
    }
    Ok(document)
}

#[derive(Clone, Copy)]
enum Kind {
    Insert,
    InsertOne,
    Update,
    UpdateByKey,
    Delete,
    DeleteByKey,
}

impl Kind {
    /// In the order `fields` makes them.
    const ALL: [Kind; 6] = [
        Kind::Insert,
        Kind::InsertOne,
        Kind::Update,
        Kind::UpdateByKey,
        Kind::Delete,
        Kind::DeleteByKey,
    ];

    fn write(self) -> Write {
        match self {
            Kind::Insert | Kind::InsertOne => Write::Insert,
            Kind::Update | Kind::UpdateByKey => Write::Update,
            Kind::Delete | Kind::DeleteByKey => Write::Delete,
        }
    }
}

fn mutation(state: &Arc<State>, collection: usize, kind: Kind, name: &str, ty: TypeRef) -> Field {
    let guard = state.model.collections[collection]
        .writes
        .of(kind.write())
        .directives();
    let state = state.clone();
    let field = Field::new(name, ty, move |ctx| {
        let state = state.clone();
        FieldFuture::new(async move { run(&state, collection, kind, &ctx).await })
    });
    guard.into_iter().fold(field, Field::directive)
}

async fn run<'a>(
    state: &State,
    collection: usize,
    kind: Kind,
    ctx: &ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let model = &state.model;
    let spec = &model.collections[collection];
    let handle = state.database.collection::<Document>(&spec.collection);
    let arguments = ctx.args.as_index_map();
    let lookup = || -> async_graphql::Result<Document> {
        let field = &model.objects[spec.object].fields[spec.lookup];
        let storage = field.scalar().expect("lookups are scalars").0;
        let key = arguments.get(field.name.as_str()).unwrap_or(&Value::Null);
        let key = to_bson(key, storage).map_err(|error| bad_input(error.0))?;
        Ok(doc! { field.path.clone(): { "$eq": key } })
    };
    let set = || -> async_graphql::Result<Document> {
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
    let claims = RequestClaims::of(ctx);
    let within = restriction(model, collection, claims)?;
    let admit = |value: &Value, complete: bool| admit(model, collection, claims, value, complete);
    Ok(match kind {
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
                .collect::<async_graphql::Result<Vec<_>>>()?;
            if documents.is_empty() {
                return Ok(Some(FieldValue::owned_any(Outcome {
                    affected: 0,
                    documents,
                })));
            }
            // Ordered: the first rejected document stops the rest, and the error says which.
            let inserted = handle.insert_many(&documents).await.map_err(fail)?;
            for (index, id) in inserted.inserted_ids {
                documents[index].entry("_id".to_owned()).or_insert(id);
            }
            if matches!(kind, Kind::InsertOne) {
                documents.pop().map(FieldValue::owned_any)
            } else {
                Some(FieldValue::owned_any(Outcome {
                    affected: documents.len() as u64,
                    documents,
                }))
            }
        }
        Kind::UpdateByKey => {
            admit(arguments.get("_set").unwrap_or(&Value::Null), false)?;
            handle
                .find_one_and_update(both(lookup()?, within), doc! { "$set": set()? })
                .return_document(ReturnDocument::After)
                .await
                .map_err(fail)?
                .map(FieldValue::owned_any)
        }
        Kind::DeleteByKey => handle
            .find_one_and_delete(both(lookup()?, within))
            .await
            .map_err(fail)?
            .map(FieldValue::owned_any),
        Kind::Update | Kind::Delete => {
            let filter = both(
                where_filter(model, spec.object, arguments.get("where"))?,
                within,
            );
            let set = if matches!(kind, Kind::Update) {
                admit(arguments.get("_set").unwrap_or(&Value::Null), false)?;
                Some(set()?)
            } else {
                None
            };
            Some(FieldValue::owned_any(
                update_or_delete(&handle, filter, set).await.map_err(fail)?,
            ))
        }
    })
}

/// Refuses a written document (an insert's object, `complete`, or an update's `_set`) that would
/// put it outside the collection's row rule for these claims.
fn admit(
    model: &Model,
    collection: usize,
    claims: Option<&Claims>,
    value: &Value,
    complete: bool,
) -> async_graphql::Result<()> {
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
        .map_err(|message| {
            async_graphql::Error::new(message)
                .extend_with(|_, extensions| extensions.set("code", "FORBIDDEN"))
        })
}

/// Updates (with `set`) or deletes the documents matching `filter`, returning them as they are
/// afterwards (or were, for a delete).
async fn update_or_delete(
    handle: &mongodb::Collection<Document>,
    filter: Document,
    set: Option<Document>,
) -> mongodb::error::Result<Outcome> {
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
        Outcome {
            affected: updated.matched_count,
            documents,
        }
    } else {
        let deleted = handle.delete_many(by_ids).await?;
        Outcome {
            affected: deleted.deleted_count,
            documents: matched,
        }
    })
}
