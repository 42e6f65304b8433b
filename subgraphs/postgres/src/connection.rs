//! Cursor pagination, Relay-style: `users_connection(where, order_by, first, after)` returns
//! `{ edges { cursor node { … } } pageInfo { hasNextPage endCursor … } }`.
//!
//! A cursor is the row's values of the ordering keys (the requested `order_by`, then the
//! primary key), as JSON, base64url-encoded: opaque to clients, and enough for the next page's
//! keyset condition ("rows strictly after these values"), which stays correct when rows are
//! inserted or deleted between pages, unlike offsets.

use async_graphql::Value;
use async_graphql::parser::types::SelectionSet;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::engine::FieldError;
use polygraph_subgraph_core::filter;
use polygraph_subgraph_core::selection::{SelectedField, Walker};
use serde_json::{Map, Value as Json};

use crate::errors::{bad_input, database_error, input};
use crate::execute;
use crate::lowering::{access, list_args, outputs};
use crate::state::State;
use crate::translate::{self, CURSOR_KEY, TranslateError};

pub(crate) const PAGE_INFO: &str = "PageInfo";

pub(crate) fn connection_type(type_name: &str) -> String {
    format!("{type_name}Connection")
}

pub(crate) fn edge_type(type_name: &str) -> String {
    format!("{type_name}Edge")
}

/// One page of rows with their cursors.
struct Page {
    rows: Vec<Json>,
    cursors: Vec<String>,
    has_next: bool,
    has_previous: bool,
}

fn collect<'a>(
    walker: &Walker<'a>,
    sets: &[&'a SelectionSet],
    on: &str,
) -> Result<Vec<SelectedField<'a>>, FieldError> {
    Ok(walker.collect(sets, on)?)
}

/// The connection's document, keyed by the response keys of its selection.
fn connection_document(
    walker: &Walker<'_>,
    connection: &[SelectedField<'_>],
    type_name: &str,
    page: &Page,
) -> Result<Map<String, Json>, FieldError> {
    let mut document = Map::new();
    for field in connection {
        let value = match field.name {
            "__typename" => Json::from(connection_type(type_name)),
            "edges" => {
                let edge_fields = collect(walker, &field.selection_sets, &edge_type(type_name))?;
                Json::Array(
                    page.rows
                        .iter()
                        .zip(&page.cursors)
                        .map(|(row, cursor)| {
                            let mut edge = Map::new();
                            for edge_field in &edge_fields {
                                let value = match edge_field.name {
                                    "cursor" => Json::from(cursor.clone()),
                                    "node" => row.clone(),
                                    _ => Json::from(edge_type(type_name)),
                                };
                                edge.insert(edge_field.response_key.to_owned(), value);
                            }
                            Json::Object(edge)
                        })
                        .collect(),
                )
            }
            "pageInfo" => {
                let mut info = Map::new();
                for info_field in collect(walker, &field.selection_sets, PAGE_INFO)? {
                    let value = match info_field.name {
                        "hasNextPage" => Json::from(page.has_next),
                        "hasPreviousPage" => Json::from(page.has_previous),
                        "startCursor" => page
                            .cursors
                            .first()
                            .map_or(Json::Null, |c| Json::from(c.clone())),
                        "endCursor" => page
                            .cursors
                            .last()
                            .map_or(Json::Null, |c| Json::from(c.clone())),
                        _ => Json::from(PAGE_INFO),
                    };
                    info.insert(info_field.response_key.to_owned(), value);
                }
                Json::Object(info)
            }
            other => {
                return Err(input(format!(
                    "{} has no field {other}",
                    connection_type(type_name)
                )));
            }
        };
        document.insert(field.response_key.to_owned(), value);
    }
    Ok(document)
}

fn encode(values: &Json) -> String {
    URL_SAFE_NO_PAD.encode(values.to_string())
}

fn decode(cursor: &str) -> Result<Vec<Value>, TranslateError> {
    let invalid = || TranslateError::input("invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    match serde_json::from_slice::<Json>(&bytes).map_err(|_| invalid())? {
        Json::Array(values) => values
            .into_iter()
            .map(|value| Value::from_json(value).map_err(|_| invalid()))
            .collect(),
        _ => Err(invalid()),
    }
}

/// The connection's response JSON for one `*_connection` field.
pub(crate) async fn answer(
    state: &State,
    table: usize,
    walker: &Walker<'_>,
    field: &SelectedField<'_>,
    claims: Option<&Claims>,
) -> Result<Json, FieldError> {
    let model = &state.model;
    let type_name = &model.tables[table].type_name;
    let args = list_args(model, table, field)?;
    let first = filter::parse_count("first", field.argument("first"), model.max_limit)
        .map_err(|error| input(error.to_string()))?
        .unwrap_or(model.max_limit);
    let after = match field.argument("after") {
        Some(Value::String(cursor)) => Some(decode(cursor).map_err(bad_input)?),
        _ => None,
    };

    // The connection's selection: which keys to fill, and the nodes' fields.
    let connection = collect(walker, &field.selection_sets, &connection_type(type_name))?;
    let edge_sets: Vec<_> = connection
        .iter()
        .filter(|f| f.name == "edges")
        .flat_map(|f| f.selection_sets.clone())
        .collect();
    let edges = collect(walker, &edge_sets, &edge_type(type_name))?;
    let node_sets: Vec<_> = edges
        .iter()
        .filter(|f| f.name == "node")
        .flat_map(|f| f.selection_sets.clone())
        .collect();
    let fields = outputs(model, table, walker, &node_sets)?;

    let statement = translate::page(
        model,
        &access(model, claims),
        table,
        &args,
        first,
        after.as_deref(),
        &fields,
    )
    .map_err(bad_input)?;
    let mut rows = execute::documents(&state.executor, &statement)
        .await
        .map_err(database_error)?;
    let has_next_page = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let cursors: Vec<String> = rows
        .iter_mut()
        .map(|row| {
            row.as_object_mut()
                .and_then(|object| object.remove(CURSOR_KEY))
                .map(|values| encode(&values))
                .unwrap_or_default()
        })
        .collect();

    let page = Page {
        rows,
        cursors,
        has_next: has_next_page,
        has_previous: after.is_some(),
    };
    let document = connection_document(walker, &connection, type_name, &page)?;
    Ok(Json::Object(document))
}
