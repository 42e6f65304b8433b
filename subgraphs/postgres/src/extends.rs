//! Fields this subgraph adds to entities other subgraphs own (`extends` in the config): the
//! rows of a table whose column equals one of the entity's fields, or their aggregate.
//!
//! The entity's type here is a stub: its key, the other fields the extension fields match on
//! (`@external`; the fields that match on them `@requires` them), and the extension fields.
//! `_entities` answers each extension field with one statement for every representation of
//! the request ([`crate::translate::extension`]), whatever their number.

use std::collections::HashMap;
use std::fmt::Write as _;

use async_graphql::Value;
use async_graphql::parser::types::SelectionSet;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::engine::FieldError;
use polygraph_subgraph_core::selection::{SelectedField, Walker};

use crate::errors::{bad_input, database_error, input};
use crate::execute;
use crate::lowering::{access, aggregate_outputs, list_args, outputs};
use crate::model::{ExtensionField, ForeignEntity, Model};
use crate::state::State;
use crate::translate::{self, Extended};

/// A representation's value of `name` as text, as the database compares it.
fn value_text(representation: &Value, name: &str) -> Option<String> {
    let Value::Object(object) = representation else {
        return None;
    };
    match object.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// One selected field of the entity, ready to write.
enum Part<'a> {
    Typename,
    /// The key or a matched field: echoed from the representation, as an `ID`.
    Echo(&'a str),
    /// An extension field: its documents by the matched value.
    Found {
        field: &'a ExtensionField,
        documents: HashMap<String, String>,
    },
}

/// The entity `entity` for each of `representations` (all of its type), as JSON object texts
/// in their order, or why one cannot be given: one statement per selected extension field, the
/// statements running at the same time.
pub(crate) async fn find(
    state: &State,
    walker: &Walker<'_>,
    sets: &[&SelectionSet],
    entity: &ForeignEntity,
    representations: &[&Value],
    claims: Option<&Claims>,
) -> Result<Vec<Result<String, String>>, FieldError> {
    let model = &state.model;
    let access = access(model, claims);
    let selected = walker.collect(sets, &entity.type_name)?;
    let mut parts = Vec::with_capacity(selected.len());
    let mut statements = Vec::new();
    for field in &selected {
        let part = if field.name == "__typename" {
            Part::Typename
        } else if field.name == entity.key || entity.external().contains(&field.name) {
            Part::Echo(field.name)
        } else if let Some(extension) = entity.field(field.name) {
            statements.push(documents(
                state,
                &access,
                walker,
                entity,
                extension,
                field,
                representations,
            ));
            Part::Found {
                field: extension,
                documents: HashMap::new(),
            }
        } else {
            return Err(input(format!(
                "{} has no field {}",
                entity.type_name, field.name
            )));
        };
        parts.push((field.response_key, part));
    }
    // Each statement's documents go to its field, in the order the fields were selected.
    let mut found = futures::future::try_join_all(statements).await?.into_iter();
    for (_, part) in &mut parts {
        if let Part::Found { documents, .. } = part {
            *documents = found.next().expect("one statement per extension field");
        }
    }
    Ok(representations
        .iter()
        .map(|representation| write(model, entity, &parts, representation))
        .collect())
}

/// One extension field's documents for every representation, by matched value: one statement.
async fn documents(
    state: &State,
    access: &translate::Access,
    walker: &Walker<'_>,
    entity: &ForeignEntity,
    extension: &ExtensionField,
    field: &SelectedField<'_>,
    representations: &[&Value],
) -> Result<HashMap<String, String>, FieldError> {
    let model = &state.model;
    let mut values = Vec::with_capacity(representations.len());
    for (index, representation) in representations.iter().enumerate() {
        let given = match representation {
            Value::Object(object) => object.get(extension.from.as_str()),
            _ => None,
        };
        match (given, value_text(representation, &extension.from)) {
            (_, Some(value)) => values.push(value),
            // A null matches no row: the field is empty for that entity.
            (Some(Value::Null), None) => {}
            _ => {
                return Err(input(format!(
                    "representation {index} of {} has no usable {}, which {} requires",
                    entity.type_name, extension.from, extension.name
                )));
            }
        }
    }
    let args = list_args(model, extension.table, field)?;
    let extended = if extension.aggregate {
        Extended::Aggregate(aggregate_outputs(
            model,
            extension.table,
            walker,
            &field.selection_sets,
        )?)
    } else {
        Extended::Rows(outputs(
            model,
            extension.table,
            walker,
            &field.selection_sets,
        )?)
    };
    let statement = translate::extension(
        model,
        access,
        extension.table,
        extension.column,
        &values,
        &args,
        &extended,
    )
    .map_err(bad_input)?;
    Ok(execute::keyed_documents(&state.executor, &statement)
        .await
        .map_err(database_error)?
        .into_iter()
        .collect())
}

/// One representation's entity as a JSON object text; an error when a selected `ID!` it
/// should echo is null or missing there.
fn write(
    model: &Model,
    entity: &ForeignEntity,
    parts: &[(&str, Part<'_>)],
    representation: &Value,
) -> Result<String, String> {
    let column = |field: &ExtensionField| &model.tables[field.table].columns[field.column];
    let mut text = String::from("{");
    for (index, (key, part)) in parts.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        let _ = write!(text, "{}:", serde_json::Value::from(*key));
        match part {
            Part::Typename => {
                let _ = write!(
                    text,
                    "{}",
                    serde_json::Value::from(entity.type_name.as_str())
                );
            }
            Part::Echo(name) => {
                // `ID`s, whether the representation has them as strings or numbers.
                let value = value_text(representation, name).ok_or_else(|| {
                    format!(
                        "{}.{name} has no value in the representation",
                        entity.type_name
                    )
                })?;
                let _ = write!(text, "{}", serde_json::Value::String(value));
            }
            Part::Found { field, documents } => {
                let document = value_text(representation, &field.from)
                    .and_then(|value| translate::normalize_key(column(field), &value).ok())
                    .and_then(|value| documents.get(&value));
                match document {
                    Some(document) => text.push_str(document),
                    None if field.aggregate => text.push_str("null"),
                    None => text.push_str("[]"),
                }
            }
        }
    }
    text.push('}');
    Ok(text)
}
