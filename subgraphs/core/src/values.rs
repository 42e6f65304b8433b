//! Resolvers that read nested fields out of a JSON document the root resolver fetched whole.
//!
//! The translators build one database query whose result is a JSON document keyed by response
//! keys (aliases), mirroring the selection. Each object field then resolves by looking its
//! response key up in its parent's document: no further database work, and no copies: nested
//! objects are handed down by reference into the root's document.

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, ResolverContext, TypeRef};
use async_graphql::{Error, Name, Number, Value};
use serde_json::{Map, Value as Json};

/// A JSON object fetched for one GraphQL object value (owned at the root; nested objects are
/// borrowed `Map`s inside it).
#[derive(Debug, Clone)]
pub struct Document(pub Map<String, Json>);

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
    match parent(ctx.parent_value) {
        Ok(document) => FieldFuture::Value(
            document
                .get(response_key(&ctx))
                .filter(|value| !value.is_null())
                .map(|value| FieldValue::value(to_value(value))),
        ),
        Err(error) => fail(error),
    }
}

/// Resolves an object field (one nested document) from the parent document.
#[allow(clippy::needless_pass_by_value)] // async-graphql's resolver signature takes the context by value
pub fn object_field(ctx: ResolverContext<'_>) -> FieldFuture<'_> {
    match parent(ctx.parent_value) {
        Ok(document) => FieldFuture::Value(match document.get(response_key(&ctx)) {
            Some(Json::Object(object)) => Some(FieldValue::borrowed_any(object)),
            _ => None,
        }),
        Err(error) => fail(error),
    }
}

/// Resolves a list-of-objects field from the parent document.
#[allow(clippy::needless_pass_by_value)] // async-graphql's resolver signature takes the context by value
pub fn list_field(ctx: ResolverContext<'_>) -> FieldFuture<'_> {
    match parent(ctx.parent_value) {
        Ok(document) => FieldFuture::Value(match document.get(response_key(&ctx)) {
            Some(Json::Array(items)) => {
                Some(FieldValue::list(items.iter().map(|item| match item {
                    Json::Object(object) => FieldValue::borrowed_any(object),
                    _ => FieldValue::NULL,
                })))
            }
            _ => None,
        }),
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

/// A JSON value as a GraphQL value, converted directly (no serde round trip).
pub fn to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(flag) => Value::Boolean(*flag),
        Json::Number(number) => Value::Number(number_of(number)),
        Json::String(text) => Value::String(text.clone()),
        Json::Array(items) => Value::List(items.iter().map(to_value).collect()),
        Json::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| (Name::new(key), to_value(value)))
                .collect(),
        ),
    }
}

fn number_of(number: &serde_json::Number) -> Number {
    if let Some(n) = number.as_i64() {
        Number::from(n)
    } else if let Some(n) = number.as_u64() {
        Number::from(n)
    } else {
        number
            .as_f64()
            .and_then(Number::from_f64)
            .unwrap_or_else(|| Number::from(0))
    }
}

fn fail<'a>(error: Error) -> FieldFuture<'a> {
    FieldFuture::new(async move { Err::<Option<FieldValue<'a>>, Error>(error) })
}

/// The parent's document: an owned root `Document` or a `Map` borrowed from inside one.
fn parent<'a>(parent_value: &'a FieldValue<'a>) -> Result<&'a Map<String, Json>, Error> {
    if let Some(document) = parent_value.downcast_ref::<Document>() {
        return Ok(&document.0);
    }
    if let Some(object) = parent_value.downcast_ref::<Map<String, Json>>() {
        return Ok(object);
    }
    if let Some(missing) = parent_value.downcast_ref::<Missing>() {
        return Err(Error::new(missing.0.clone()));
    }
    Err(Error::new(
        "internal: the parent value is not a fetched document",
    ))
}

/// A field read by name (not response key) from a parent that is a `serde_json::Value` object:
/// for result types whose fields take no arguments, built as JSON by the subgraph (or an
/// `Arc` of one). `id`
/// renders numbers as `ID` strings.
pub fn json_field(name: &str, ty: TypeRef, id: bool) -> Field {
    let key = name.to_owned();
    Field::new(name, ty, move |ctx| {
        let value = json_parent(&ctx).map(|parent| match parent.get(&key) {
            None | Some(Json::Null) => None,
            Some(Json::Array(items)) => {
                Some(FieldValue::list(items.iter().map(|item| match item {
                    Json::Object(_) => FieldValue::borrowed_any(item),
                    scalar => FieldValue::value(scalar_value(scalar, id)),
                })))
            }
            Some(object @ Json::Object(_)) => Some(FieldValue::borrowed_any(object)),
            Some(scalar) => Some(FieldValue::value(scalar_value(scalar, id))),
        });
        match value {
            Ok(value) => FieldFuture::Value(value),
            Err(error) => FieldFuture::new(async move { Err::<Option<FieldValue<'_>>, _>(error) }),
        }
    })
}

fn scalar_value(value: &Json, id: bool) -> Value {
    match value {
        Json::Number(number) if id => Value::String(number.to_string()),
        Json::Null => Value::Null,
        Json::Bool(flag) => Value::Boolean(*flag),
        Json::String(text) => Value::String(text.clone()),
        other => Value::from_json(other.clone()).unwrap_or(Value::Null),
    }
}

fn json_parent<'a>(ctx: &ResolverContext<'a>) -> Result<&'a Map<String, Json>, Error> {
    if let Some(Json::Object(object)) = ctx.parent_value.downcast_ref::<Json>() {
        return Ok(object);
    }
    // Shared answers (one loaded value read by several fields) come wrapped.
    if let Some(shared) = ctx.parent_value.downcast_ref::<std::sync::Arc<Json>>()
        && let Json::Object(object) = shared.as_ref()
    {
        return Ok(object);
    }
    if let Some(missing) = ctx.parent_value.downcast_ref::<Missing>() {
        use async_graphql::ErrorExtensions as _;
        return Err(Error::new(missing.0.clone())
            .extend_with(|_, extensions| extensions.set("code", "NOT_FOUND")));
    }
    Err(Error::new(
        "internal: the parent value is not a JSON object",
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_converts_to_graphql_values() {
        let json = json!({ "a": [1, 2.5, "x", null, true], "b": { "c": -3 }, "big": 18_446_744_073_709_551_615_u64 });
        let value = to_value(&json);
        assert_eq!(value.into_json().unwrap(), json);
    }
}
