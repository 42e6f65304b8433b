//! Resolvers that read nested fields out of a JSON document the root resolver fetched whole.
//!
//! The translators build one database query whose result is a JSON document keyed by response
//! keys (aliases), mirroring the selection. Each object field then resolves by looking its
//! response key up in its parent's document: no further database work.

use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use async_graphql::{Error, Value};
use serde_json::Value as Json;

/// A JSON object fetched for one GraphQL object value.
#[derive(Debug, Clone)]
pub struct Document(pub serde_json::Map<String, Json>);

/// An entity that was asked for but does not exist. async-graphql cannot put a null into a list
/// of a union, so the element resolves to this, and its first field fails with the message;
/// `_Entity` elements are nullable, so the element becomes null with that error.
#[derive(Debug, Clone)]
pub struct Missing(pub String);

/// The response key of the field being resolved.
pub fn response_key<'a>(ctx: &ResolverContext<'a>) -> &'a str {
    ctx.ctx.item.node.response_key().node.as_str()
}

/// Resolves a scalar (or list of scalars) field from the parent document.
#[allow(clippy::needless_pass_by_value)] // async-graphql's resolver signature takes the context by value
pub fn scalar_field(ctx: ResolverContext<'_>) -> FieldFuture<'_> {
    let result = parent(&ctx).map(|document| {
        document
            .0
            .get(response_key(&ctx))
            .filter(|value| !value.is_null())
            .map(|value| FieldValue::value(Value::from_json(value.clone()).unwrap_or(Value::Null)))
    });
    match result {
        Ok(value) => FieldFuture::Value(value),
        Err(error) => fail(error),
    }
}

/// Resolves an object field (one nested document) from the parent document.
#[allow(clippy::needless_pass_by_value)] // async-graphql's resolver signature takes the context by value
pub fn object_field(ctx: ResolverContext<'_>) -> FieldFuture<'_> {
    let result = parent(&ctx).map(|document| match document.0.get(response_key(&ctx)) {
        Some(Json::Object(object)) => Some(FieldValue::owned_any(Document(object.clone()))),
        _ => None,
    });
    match result {
        Ok(value) => FieldFuture::Value(value),
        Err(error) => fail(error),
    }
}

/// Resolves a list-of-objects field from the parent document.
#[allow(clippy::needless_pass_by_value)] // async-graphql's resolver signature takes the context by value
pub fn list_field(ctx: ResolverContext<'_>) -> FieldFuture<'_> {
    let result = parent(&ctx).map(|document| match document.0.get(response_key(&ctx)) {
        Some(Json::Array(items)) => Some(documents(items.clone())),
        _ => None,
    });
    match result {
        Ok(value) => FieldFuture::Value(value),
        Err(error) => fail(error),
    }
}

/// A list of JSON objects as a GraphQL list of object values (non-objects become nulls).
pub fn documents(items: Vec<Json>) -> FieldValue<'static> {
    FieldValue::list(items.into_iter().map(|item| match item {
        Json::Object(object) => FieldValue::owned_any(Document(object)),
        _ => FieldValue::NULL,
    }))
}

fn fail<'a>(error: Error) -> FieldFuture<'a> {
    FieldFuture::new(async move { Err::<Option<FieldValue<'a>>, Error>(error) })
}

fn parent<'a>(ctx: &'a ResolverContext<'_>) -> Result<&'a Document, Error> {
    if let Some(missing) = ctx.parent_value.downcast_ref::<Missing>() {
        return Err(Error::new(missing.0.clone()));
    }
    ctx.parent_value
        .try_downcast_ref::<Document>()
        .map_err(|_| Error::new("internal: the parent value is not a fetched document"))
}
