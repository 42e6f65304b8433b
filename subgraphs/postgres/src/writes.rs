//! Writes: per table, `insert_t`, `insert_t_one`, `update_t`, `update_t_by_pk`, `delete_t`
//! and `delete_t_by_pk`, each its arguments and selection lowered into the one statement
//! [`crate::mutate`] translates them to, refused first where the row rule would not admit
//! the rows it writes.

use async_graphql::Value;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::config::Write;
use polygraph_subgraph_core::engine::{FieldError, Operation, Resolved};
use polygraph_subgraph_core::filter::BoolExp;
use polygraph_subgraph_core::selection::{SelectedField, Walker};

use crate::errors::{bad_input, database_error, input};
use crate::execute;
use crate::lowering::{access, by_key, list_args, outputs};
use crate::model::{Model, TableModel};
use crate::mutate::{self, OnConflict, ResponseField, Row, Shape};
use crate::state::State;
use crate::translate::TranslateError;

/// The response type of a table's bulk writes.
pub(crate) fn response_type(type_name: &str) -> String {
    format!("{type_name}MutationResponse")
}

/// The six writes of a table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Insert,
    InsertOne,
    Update,
    UpdateByPk,
    Delete,
    DeleteByPk,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Insert,
        Kind::InsertOne,
        Kind::Update,
        Kind::UpdateByPk,
        Kind::Delete,
        Kind::DeleteByPk,
    ];

    /// The `Mutation` field of this write on the table whose list field is `list`.
    pub(crate) fn field_name(self, list: &str) -> String {
        match self {
            Kind::Insert => format!("insert_{list}"),
            Kind::InsertOne => format!("insert_{list}_one"),
            Kind::Update => format!("update_{list}"),
            Kind::UpdateByPk => format!("update_{list}_by_pk"),
            Kind::Delete => format!("delete_{list}"),
            Kind::DeleteByPk => format!("delete_{list}_by_pk"),
        }
    }

    pub(crate) fn write(self) -> Write {
        match self {
            Kind::Insert | Kind::InsertOne => Write::Insert,
            Kind::Update | Kind::UpdateByPk => Write::Update,
            Kind::Delete | Kind::DeleteByPk => Write::Delete,
        }
    }
}

/// Runs the write `kind` on `table` for `field`: one statement, its document the answer.
pub(crate) async fn run(
    state: &State,
    operation: &Operation<'_>,
    field: &SelectedField<'_>,
    table: usize,
    kind: Kind,
) -> Resolved {
    match statement(state, operation, field, table, kind) {
        Ok(statement) => match execute::document_texts(&state.executor, &statement).await {
            Ok(rows) => Resolved::written(
                rows.into_iter()
                    .next()
                    .flatten()
                    .unwrap_or_else(|| "null".to_owned()),
            ),
            Err(error) => Resolved::failed(database_error(error)),
        },
        Err(error) => Resolved::failed(error),
    }
}

fn statement(
    state: &State,
    operation: &Operation<'_>,
    field: &SelectedField<'_>,
    table: usize,
    kind: Kind,
) -> Result<crate::translate::Statement, FieldError> {
    let model = &state.model;
    let table_model = &model.tables[table];
    let walker = operation.walker();
    let claims = operation.claims;
    let get = |name: &str| field.argument(name);
    let one = matches!(kind, Kind::InsertOne | Kind::UpdateByPk | Kind::DeleteByPk);
    let shape = if one {
        Shape::One(outputs(model, table, &walker, &field.selection_sets)?)
    } else {
        response_shape(model, table, &walker, field)?
    };
    let access = access(model, claims);
    match kind {
        Kind::Insert | Kind::InsertOne => {
            let rows = match (kind, get("objects"), get("object")) {
                (Kind::Insert, Some(Value::List(objects)), _) => objects
                    .iter()
                    .map(|object| row(table_model, object))
                    .collect::<Result<Vec<_>, FieldError>>()?,
                (Kind::InsertOne, _, Some(object)) => vec![row(table_model, object)?],
                _ => return Err(input("objects to insert are missing")),
            };
            for row in &rows {
                check_rule(table_model, claims, row, true)?;
            }
            let on_conflict = get("on_conflict")
                .filter(|v| !matches!(v, Value::Null))
                .map(|v| on_conflict(table_model, v))
                .transpose()?;
            mutate::insert(model, &access, table, &rows, on_conflict.as_ref(), &shape)
        }
        Kind::Update | Kind::UpdateByPk => {
            let filter = filter_of(model, table, kind, field)?;
            let set = get("_set").map_or(Ok(Vec::new()), |value| row(table_model, value))?;
            check_rule(table_model, claims, &set, false)?;
            mutate::update(model, &access, table, &filter, &set, &shape)
        }
        Kind::Delete | Kind::DeleteByPk => {
            let filter = filter_of(model, table, kind, field)?;
            mutate::delete(model, &access, table, &filter, &shape)
        }
    }
    .map_err(bad_input)
}

/// `where` for the bulk forms; the primary key arguments for the `_by_pk` forms.
fn filter_of(
    model: &Model,
    table: usize,
    kind: Kind,
    field: &SelectedField<'_>,
) -> Result<BoolExp, FieldError> {
    if matches!(kind, Kind::UpdateByPk | Kind::DeleteByPk) {
        return by_key(model, table, field);
    }
    Ok(list_args(model, table, field)?.filter)
}

fn response_shape(
    model: &Model,
    table: usize,
    walker: &Walker<'_>,
    field: &SelectedField<'_>,
) -> Result<Shape, FieldError> {
    let type_name = response_type(&model.tables[table].type_name);
    let selected = walker.collect(&field.selection_sets, &type_name)?;
    let fields = selected
        .iter()
        .map(|field| {
            let key = field.response_key.to_owned();
            Ok(match field.name {
                "affected_rows" => ResponseField::AffectedRows { key },
                "__typename" => ResponseField::Typename {
                    key,
                    type_name: type_name.clone(),
                },
                "returning" => ResponseField::Returning {
                    key,
                    fields: outputs(model, table, walker, &field.selection_sets)?,
                },
                other => return Err(input(format!("{type_name} has no field {other}"))),
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    Ok(Shape::Response(fields))
}

/// Refuses a write that would put a row outside the table's row rule for these claims (reads
/// of ruled tables without claims are refused by the translation already).
fn check_rule(
    table: &TableModel,
    claims: Option<&Claims>,
    values: &Row,
    complete: bool,
) -> Result<(), FieldError> {
    let (Some(rule), Some(claims)) = (&table.rule, claims) else {
        return Ok(());
    };
    let written = |field: &str| {
        let (index, _) = table.column(field)?;
        values
            .iter()
            .find(|(written, _)| *written == index)
            .map(|(_, value)| value)
    };
    let integral = |field: &str| {
        table
            .column(field)
            .is_some_and(|(_, column)| column.integral)
    };
    rule.admits(claims, complete, written, integral)
        .map_err(|message| {
            bad_input(TranslateError {
                message,
                kind: crate::translate::ErrorKind::Forbidden,
            })
        })
}

/// An input object of column values as a row.
fn row(table: &TableModel, value: &Value) -> Result<Row, FieldError> {
    let Value::Object(object) = value else {
        return Err(input(format!(
            "expected an object of {} columns",
            table.type_name
        )));
    };
    object
        .iter()
        .map(|(name, value)| {
            table
                .column(name.as_str())
                .map(|(index, _)| (index, value.clone()))
                .ok_or_else(|| input(format!("{} has no column {name}", table.type_name)))
        })
        .collect()
}

fn on_conflict(table: &TableModel, value: &Value) -> Result<OnConflict, FieldError> {
    let columns = |name: &str| -> Result<Vec<usize>, FieldError> {
        let Value::Object(object) = value else {
            return Ok(Vec::new());
        };
        match object.get(name) {
            Some(Value::List(items)) => items
                .iter()
                .map(|item| {
                    let name = match item {
                        Value::Enum(name) => name.as_str(),
                        Value::String(name) => name.as_str(),
                        _ => "",
                    };
                    table
                        .column(name)
                        .map(|(index, _)| index)
                        .ok_or_else(|| input(format!("{} has no column {name}", table.type_name)))
                })
                .collect(),
            _ => Ok(Vec::new()),
        }
    };
    Ok(OnConflict {
        conflict_columns: columns("conflict_columns")?,
        update_columns: columns("update_columns")?,
    })
}
