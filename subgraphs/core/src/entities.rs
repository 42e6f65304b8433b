//! `_entities` for subgraphs whose entities have one key field: each representation is a type
//! name and that key, which the engine reads its fields by.

use async_graphql::{ErrorExtensions as _, Value};

fn bad_input(message: String) -> async_graphql::Error {
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
}

/// The type name and key (as `ID` text) of each representation of an engine's `_entities`
/// field, in order; a representation of another type, or without its key, is a
/// `BAD_USER_INPUT` error.
pub fn references_of(
    field: &crate::selection::SelectedField<'_>,
    entities: &[String],
    key: &str,
) -> async_graphql::Result<Vec<(String, String)>> {
    references_in(
        field.argument("representations").unwrap_or(&Value::Null),
        entities,
        key,
    )
}

/// [`references_of`] of a `representations` value.
pub fn references_in(
    representations: &Value,
    entities: &[String],
    key: &str,
) -> async_graphql::Result<Vec<(String, String)>> {
    let Value::List(representations) = representations else {
        return Err(bad_input("representations must be a list".to_owned()));
    };
    representations
        .iter()
        .map(|representation| {
            let Value::Object(representation) = representation else {
                return Err(bad_input(
                    "each representation must be an object".to_owned(),
                ));
            };
            let Some(Value::String(typename)) = representation.get("__typename") else {
                return Err(bad_input("a representation has no __typename".to_owned()));
            };
            if !entities.contains(typename) {
                return Err(bad_input(format!(
                    "{typename} is not an entity of this subgraph"
                )));
            }
            let id = match representation.get(key) {
                Some(Value::String(id)) => id.clone(),
                Some(Value::Number(id)) => id.to_string(),
                _ => {
                    return Err(bad_input(format!(
                        "a {typename} representation has no {key}"
                    )));
                }
            };
            Ok((typename.clone(), id))
        })
        .collect()
}
