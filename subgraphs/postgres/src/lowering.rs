//! From a request's selection to what [`crate::translate`] takes: the rows a request may see
//! (row rules with its claims), a list field's arguments, and the output fields of a
//! selection, column by column, relationship by relationship.

use async_graphql::Value;
use async_graphql::parser::types::SelectionSet;
use polygraph_subgraph_core::aggregate::{aggregate_type, function_type};
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::engine::FieldError;
use polygraph_subgraph_core::filter::{self, BoolExp, Operator};
use polygraph_subgraph_core::selection::{SelectedField, Walker};

use crate::errors::input;
use crate::model::{Cardinality, Model};
use crate::translate::{
    Access, AggregateOutput, Function, ListArgs, Output, ReferenceOutput, TableAccess,
};

/// What this request may see of each table: row rules instantiated with its verified claims.
pub(crate) fn access(model: &Model, claims: Option<&Claims>) -> Access {
    if model.tables.iter().all(|table| table.rule.is_none()) {
        return Access::unrestricted();
    }
    let tables = model
        .tables
        .iter()
        .map(|table| match (&table.rule, claims) {
            (None, _) => TableAccess::All,
            (Some(_), None) => TableAccess::Denied(format!(
                "{} rows are visible only to requests with verified claims",
                table.type_name
            )),
            (Some(rule), Some(claims)) => TableAccess::Rows(rule.restriction(claims)),
        })
        .collect();
    Access { tables }
}

/// `where`, `order_by`, `limit` and `offset` of a list field of `table`'s rows.
pub(crate) fn list_args(
    model: &Model,
    table: usize,
    field: &SelectedField<'_>,
) -> Result<ListArgs, FieldError> {
    let get = |name: &str| field.argument(name);
    let table_model = &model.tables[table];
    let relationship_target = |type_name: &str, field: &str| {
        let (_, table) = model.table_by_type(type_name)?;
        let relationship = table.relationship(field)?;
        Some(model.tables[relationship.target].type_name.clone())
    };
    let filter = match get("where") {
        Some(value) => filter::parse_bool_exp(value, &table_model.type_name, &relationship_target)
            .map_err(|error| input(error.to_string()))?,
        None => BoolExp::always(),
    };
    let order_by = get("order_by")
        .map(filter::parse_order_by)
        .transpose()
        .map_err(|error| input(error.to_string()))?
        .unwrap_or_default();
    let limit = filter::parse_count("limit", get("limit"), model.max_limit)
        .map_err(|error| input(error.to_string()))?;
    let offset = filter::parse_count("offset", get("offset"), i64::MAX as u64)
        .map_err(|error| input(error.to_string()))?;
    Ok(ListArgs {
        filter,
        order_by,
        limit,
        offset,
    })
}

/// The output fields for `table` from the selection sets of a field of its type.
pub(crate) fn outputs(
    model: &Model,
    table: usize,
    walker: &Walker<'_>,
    sets: &[&SelectionSet],
) -> Result<Vec<Output>, FieldError> {
    let table_model = &model.tables[table];
    let selected = walker
        .collect(sets, &table_model.type_name)
        .map_err(FieldError::from)?;
    selected
        .iter()
        .map(|field| output(model, table, walker, field))
        .collect()
}

fn output(
    model: &Model,
    table: usize,
    walker: &Walker<'_>,
    field: &SelectedField<'_>,
) -> Result<Output, FieldError> {
    let table_model = &model.tables[table];
    let key = field.response_key.to_owned();
    if field.name == "__typename" {
        return Ok(Output::Typename {
            key,
            type_name: table_model.type_name.clone(),
        });
    }
    if let Some((column, _)) = table_model.column(field.name) {
        return Ok(Output::Column { key, column });
    }
    if let Some(index) = table_model
        .references
        .iter()
        .position(|reference| reference.name == field.name)
    {
        return reference_output(model, table, index, walker, field);
    }
    for (index, relationship) in table_model.relationships.iter().enumerate() {
        if relationship.name == field.name {
            let fields = outputs(model, relationship.target, walker, &field.selection_sets)?;
            return Ok(match relationship.cardinality {
                Cardinality::Object => Output::Object {
                    key,
                    relationship: index,
                    fields,
                },
                Cardinality::Array => Output::Array {
                    key,
                    relationship: index,
                    args: list_args(model, relationship.target, field)?,
                    fields,
                },
            });
        }
        if relationship.cardinality == Cardinality::Array
            && relationship.aggregate_name() == field.name
        {
            return Ok(Output::Aggregate {
                key,
                relationship: index,
                args: list_args(model, relationship.target, field)?,
                fields: aggregate_outputs(
                    model,
                    relationship.target,
                    walker,
                    &field.selection_sets,
                )?,
            });
        }
    }
    Err(input(format!(
        "{} has no field {}",
        table_model.type_name, field.name
    )))
}

/// A reference field: the entity's `__typename`, key and provided fields, nothing else.
fn reference_output(
    model: &Model,
    table: usize,
    index: usize,
    walker: &Walker<'_>,
    field: &SelectedField<'_>,
) -> Result<Output, FieldError> {
    let reference = &model.tables[table].references[index];
    let selected = walker
        .collect(&field.selection_sets, &reference.type_name)
        .map_err(FieldError::from)?;
    let fields = selected
        .iter()
        .map(|selected| {
            let key = selected.response_key.to_owned();
            if selected.name == "__typename" {
                return Ok(ReferenceOutput::Typename {
                    key,
                    type_name: reference.type_name.clone(),
                });
            }
            if selected.name == reference.key {
                return Ok(ReferenceOutput::Key { key });
            }
            reference
                .provides
                .iter()
                .find(|(name, _)| name == selected.name)
                .map(|(_, column)| ReferenceOutput::Provided {
                    key,
                    column: *column,
                })
                .ok_or_else(|| {
                    input(format!(
                        "{}.{} provides only its key and {:?}",
                        model.tables[table].type_name,
                        reference.name,
                        reference
                            .provides
                            .iter()
                            .map(|(name, _)| name)
                            .collect::<Vec<_>>()
                    ))
                })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    Ok(Output::Reference {
        key: field.response_key.to_owned(),
        reference: index,
        fields,
    })
}

pub(crate) fn aggregate_outputs(
    model: &Model,
    table: usize,
    walker: &Walker<'_>,
    sets: &[&SelectionSet],
) -> Result<Vec<AggregateOutput>, FieldError> {
    let table_model = &model.tables[table];
    let type_name = aggregate_type(&table_model.type_name);
    let selected = walker.collect(sets, &type_name).map_err(FieldError::from)?;
    selected
        .iter()
        .map(|field| {
            let key = field.response_key.to_owned();
            if field.name == "count" {
                return Ok(AggregateOutput::Count { key });
            }
            if field.name == "__typename" {
                return Ok(AggregateOutput::Typename {
                    key,
                    type_name: type_name.clone(),
                });
            }
            let function = Function::ALL
                .into_iter()
                .find(|function| function.name() == field.name)
                .ok_or_else(|| input(format!("{type_name} has no field {}", field.name)))?;
            let inner = walker
                .collect(
                    &field.selection_sets,
                    &function_type(&table_model.type_name, function),
                )
                .map_err(FieldError::from)?;
            let columns = inner
                .iter()
                .map(|column| {
                    table_model
                        .column(column.name)
                        .filter(|(_, c)| function.applies_to(c.kind))
                        .map(|(index, _)| (column.response_key.to_owned(), index))
                        .ok_or_else(|| {
                            input(format!(
                                "{} cannot be selected in {}",
                                column.name,
                                function.name()
                            ))
                        })
                })
                .collect::<Result<Vec<_>, FieldError>>()?;
            Ok(AggregateOutput::Function {
                key,
                function,
                columns,
            })
        })
        .collect()
}

/// The filter of a lookup by primary key: every key column equal to its argument.
/// A table without a primary key has no lookup by key: refused, never the empty condition
/// (which every row meets).
pub(crate) fn by_key(
    model: &Model,
    table: usize,
    field: &SelectedField<'_>,
) -> Result<BoolExp, FieldError> {
    let table = &model.tables[table];
    if table.primary_key.is_empty() {
        return Err(input(format!("{} has no primary key", table.type_name)));
    }
    Ok(BoolExp::And(
        table
            .primary_key
            .iter()
            .map(|column| {
                let name = &table.columns[*column].field;
                BoolExp::Compare {
                    field: name.clone(),
                    operator: Operator::Eq,
                    value: field.argument(name).cloned().unwrap_or(Value::Null),
                }
            })
            .collect(),
    ))
}
