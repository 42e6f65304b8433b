//! Answering root fields: a field's arguments and selection in, its response JSON out.
//!
//! Both ways of executing a root field come here: the regular resolvers (which then let
//! async-graphql walk the nested fields through [`polygraph_subgraph_core::values`]) and the
//! fast path of [`crate::fast`] (which hands the JSON back whole, skipping that walk).

use async_graphql::Value;
use async_graphql::dynamic::FieldValue;
use async_graphql::parser::types::Field;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::filter::{BoolExp, Operator};
use polygraph_subgraph_core::selection::Walker;
use polygraph_subgraph_core::values::{self, Document};
use serde_json::Value as Json;

use crate::execute;
use crate::model::Model;
use crate::schema::{
    ArgumentsAsValues as _, State, access, aggregate_outputs, bad_input, database_error, list_args,
    outputs,
};
use crate::translate::{self, ListArgs};

/// The kinds of root field a table has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootKind {
    List,
    Aggregate,
    ByPk,
    Connection,
}

/// The table and kind of a `Query` field, if it is one of ours.
pub(crate) fn root_of(model: &Model, name: &str) -> Option<(usize, RootKind)> {
    model.tables.iter().enumerate().find_map(|(index, table)| {
        let kind = if name == table.list_field {
            RootKind::List
        } else if name == table.aggregate_field {
            RootKind::Aggregate
        } else if name == table.by_pk_field && !table.primary_key.is_empty() {
            RootKind::ByPk
        } else if name == format!("{}_connection", table.list_field)
            && !table.primary_key.is_empty()
        {
            RootKind::Connection
        } else {
            return None;
        };
        Some((index, kind))
    })
}

/// The response JSON of one root field.
pub(crate) async fn answer(
    state: &State,
    table: usize,
    kind: RootKind,
    walker: &Walker<'_>,
    field: &Field,
    claims: Option<&Claims>,
) -> async_graphql::Result<Json> {
    if kind == RootKind::Connection {
        let arguments = field.arguments_as_values(walker)?;
        return crate::connection::answer(state, table, walker, field, &arguments, claims).await;
    }
    let statement = statement(state, table, kind, walker, field, claims)?;
    let rows = execute::documents(&state.executor, &statement)
        .await
        .map_err(database_error)?;
    Ok(match kind {
        RootKind::List => Json::Array(rows),
        _ => rows.into_iter().next().unwrap_or(Json::Null),
    })
}

/// The response JSON of one root field as text, the documents spliced in as PostgreSQL wrote
/// them; not for connections, whose cursors are taken out of the documents.
pub(crate) async fn answer_written(
    state: &State,
    table: usize,
    kind: RootKind,
    walker: &Walker<'_>,
    field: &Field,
    claims: Option<&Claims>,
) -> async_graphql::Result<String> {
    let statement = statement(state, table, kind, walker, field, claims)?;
    let rows = execute::document_texts(&state.executor, &statement)
        .await
        .map_err(database_error)?;
    let null = || "null".to_owned();
    Ok(match kind {
        RootKind::List => {
            let mut text = String::with_capacity(
                2 + rows
                    .iter()
                    .map(|row| row.as_ref().map_or(4, String::len) + 1)
                    .sum::<usize>(),
            );
            text.push('[');
            for (index, row) in rows.into_iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                text.push_str(&row.unwrap_or_else(null));
            }
            text.push(']');
            text
        }
        _ => rows.into_iter().next().flatten().unwrap_or_else(null),
    })
}

/// The statement of a root field other than a connection.
fn statement(
    state: &State,
    table: usize,
    kind: RootKind,
    walker: &Walker<'_>,
    field: &Field,
    claims: Option<&Claims>,
) -> async_graphql::Result<translate::Statement> {
    let model = &state.model;
    let arguments = field.arguments_as_values(walker)?;
    let selection = [&field.selection_set.node];
    let access = access(model, claims);
    match kind {
        RootKind::Connection => Err(bad_input(translate::TranslateError::input(
            "a connection is answered with its cursors",
        ))),
        RootKind::List => {
            let args = list_args(model, table, &arguments)?;
            let fields = outputs(model, table, walker, &selection)?;
            translate::list(model, &access, table, &args, &fields).map_err(bad_input)
        }
        RootKind::Aggregate => {
            let args = list_args(model, table, &arguments)?;
            let fields = aggregate_outputs(model, table, walker, &selection)?;
            translate::aggregate(model, &access, table, &args, &fields).map_err(bad_input)
        }
        RootKind::ByPk => {
            let table_model = &model.tables[table];
            let filter = BoolExp::And(
                table_model
                    .primary_key
                    .iter()
                    .map(|column| {
                        let name = &table_model.columns[*column].field;
                        BoolExp::Compare {
                            field: name.clone(),
                            operator: Operator::Eq,
                            value: arguments
                                .iter()
                                .find(|(argument, _)| argument == name)
                                .map_or(Value::Null, |(_, value)| value.clone()),
                        }
                    })
                    .collect(),
            );
            let args = ListArgs {
                filter,
                limit: Some(1),
                ..ListArgs::default()
            };
            let fields = outputs(model, table, walker, &selection)?;
            translate::list(model, &access, table, &args, &fields).map_err(bad_input)
        }
    }
}

/// A root field's JSON as the value async-graphql resolves nested fields from.
pub(crate) fn field_value(json: Json) -> Option<FieldValue<'static>> {
    match json {
        Json::Array(items) => Some(values::documents(items)),
        Json::Object(object) => Some(FieldValue::owned_any(Document(object))),
        _ => None,
    }
}
