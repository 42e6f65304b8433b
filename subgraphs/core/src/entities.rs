//! `_entities` for subgraphs that only extend entities other subgraphs own: each
//! representation is just a type name and a single key, which the extension fields resolve
//! from.

use async_graphql::dynamic::ResolverContext;
use async_graphql::{ErrorExtensions as _, Value};

fn bad_input(message: String) -> async_graphql::Error {
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
}

/// The type name and key (as `ID` text) of each representation, in order; a representation
/// of another type, or without its key, is a `BAD_USER_INPUT` error.
pub fn references(
    ctx: &ResolverContext<'_>,
    entities: &[String],
    key: &str,
) -> async_graphql::Result<Vec<(String, String)>> {
    references_in(
        ctx.args.try_get("representations")?.as_value(),
        entities,
        key,
    )
}

/// [`references`] of an engine's `_entities` field.
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

/// [`references`] of a `representations` value, for code that runs outside a resolver.
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
