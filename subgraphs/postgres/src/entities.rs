//! `_entities`: the representations grouped by type, one statement per type (or per
//! extension field, for other subgraphs' entities), the documents in representation order as
//! PostgreSQL wrote them, spliced into the answer unparsed.

use std::collections::HashMap;

use async_graphql::Value;
use async_graphql::parser::types::SelectionSet;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::engine::{FieldError, Resolved};
use polygraph_subgraph_core::selection::Walker;

use crate::errors::{bad_input, database_error, input};
use crate::execute;
use crate::lowering::{access, outputs};
use crate::state::State;
use crate::translate;

/// The `_entities` answer for `found`: the documents in order, `null` with a `NOT_FOUND`
/// error at its index for each one missing.
pub(crate) fn written(found: Vec<Found>) -> Resolved {
    let size: usize = found
        .iter()
        .map(|(_, document)| document.as_ref().map_or(4, String::len) + 1)
        .sum();
    let mut text = String::with_capacity(size + 2);
    let mut errors = Vec::new();
    text.push('[');
    for (index, (_, document)) in found.into_iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        match document {
            Ok(document) => text.push_str(&document),
            Err(message) => {
                text.push_str("null");
                errors.push(FieldError::new(message).code("NOT_FOUND").at(index));
            }
        }
    }
    text.push(']');
    Resolved::written(text).with_errors(errors)
}

/// An entity's type name and its document as the database wrote it (a JSON object), or why
/// there is none.
pub(crate) type Found = (String, Result<String, String>);

/// Finds the entities `representations` name, one statement per entity type; in
/// representation order, each with its type name and document, or why it is missing.
pub(crate) async fn find(
    state: &State,
    walker: &Walker<'_>,
    sets: &[&SelectionSet],
    representations: &[Value],
    claims: Option<&Claims>,
) -> Result<Vec<Found>, FieldError> {
    let unusable = |message: String| input(message);
    let mut results: Vec<Option<Found>> = vec![None; representations.len()];
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (index, representation) in representations.iter().enumerate() {
        let typename = match representation {
            Value::Object(object) => match object.get("__typename") {
                Some(Value::String(typename)) => typename.as_str(),
                _ => {
                    return Err(unusable(format!(
                        "representation {index} has no __typename"
                    )));
                }
            },
            _ => return Err(unusable(format!("representation {index} is not an object"))),
        };
        match groups.iter_mut().find(|(name, _)| *name == typename) {
            Some((_, indices)) => indices.push(index),
            None => groups.push((typename, vec![index])),
        }
    }
    let access = access(&state.model, claims);
    for (typename, indices) in groups {
        if let Some(entity) = state.model.foreign.iter().find(|f| f.type_name == typename) {
            let group: Vec<&Value> = indices.iter().map(|&i| &representations[i]).collect();
            let found = crate::extends::find(state, walker, sets, entity, &group, claims).await?;
            for (&index, document) in indices.iter().zip(found) {
                results[index] = Some((typename.to_owned(), document));
            }
            continue;
        }
        let not_ours = || unusable(format!("{typename} is not an entity of this subgraph"));
        let (table, table_model) = state.model.table_by_type(typename).ok_or_else(not_ours)?;
        let key_columns = table_model.entity_key.clone().ok_or_else(not_ours)?;
        let mut keys = Vec::with_capacity(indices.len());
        for &index in &indices {
            let Value::Object(object) = &representations[index] else {
                unreachable!("checked above")
            };
            let key = key_columns
                .iter()
                .map(|column| {
                    let column = &table_model.columns[*column];
                    let text = match object.get(column.field.as_str()) {
                        Some(Value::String(text)) => text.clone(),
                        Some(Value::Number(number)) => number.to_string(),
                        other => {
                            return Err(unusable(format!(
                                "{typename}.{}: unusable key {}",
                                column.field,
                                other.map_or_else(|| "(missing)".to_owned(), ToString::to_string)
                            )));
                        }
                    };
                    translate::normalize_key(column, &text).map_err(bad_input)
                })
                .collect::<Result<Vec<String>, FieldError>>()?;
            keys.push(key);
        }
        let fields = outputs(&state.model, table, walker, sets)?;
        let statement =
            translate::entities(&state.model, &access, table, &key_columns, &keys, &fields)
                .map_err(bad_input)?;
        let rows = execute::keyed_documents(&state.executor, &statement)
            .await
            .map_err(database_error)?;
        let mut found: HashMap<String, String> = rows.into_iter().collect();
        let texts: Vec<String> = keys.iter().map(|key| translate::key_text(key)).collect();
        // A key asked for several times gets copies; its last (usually only) use takes it.
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for text in &texts {
            *uses.entry(text).or_default() += 1;
        }
        for ((&index, key), text) in indices.iter().zip(&keys).zip(&texts) {
            let remaining = uses.get_mut(text.as_str()).expect("counted above");
            *remaining -= 1;
            let document = if *remaining == 0 {
                found.remove(text)
            } else {
                found.get(text).cloned()
            };
            let document =
                document.ok_or_else(|| format!("{typename} with key {} not found", key.join(", ")));
            results[index] = Some((typename.to_owned(), document));
        }
    }
    Ok(results
        .into_iter()
        .map(|result| result.expect("every index is in a group"))
        .collect())
}
