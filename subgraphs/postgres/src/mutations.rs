//! The `Mutation` root: per table, `insert_t`, `insert_t_one`, `update_t`, `update_t_by_pk`,
//! `delete_t` and `delete_t_by_pk`, with their input and response types. Resolvers parse the
//! arguments and the selection and run the one statement [`crate::mutate`] translates them to.

use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object,
    ResolverContext, Type, TypeRef,
};
use polygraph_subgraph_core::claims::RequestClaims;
use polygraph_subgraph_core::config::Write;
use polygraph_subgraph_core::filter::{self, BoolExp, Operator};
use polygraph_subgraph_core::selection::{SelectionError, Walker};
use polygraph_subgraph_core::values::{self, Document};

use crate::execute;
use crate::model::{Model, TableModel};
use crate::mutate::{self, OnConflict, ResponseField, Row, Shape};
use crate::schema::{
    ArgumentsAsValues as _, State, access, bad_input, database_error, list_args, outputs,
    scalar_type, selection_set,
};
use crate::translate::TranslateError;

fn response_type(type_name: &str) -> String {
    format!("{type_name}MutationResponse")
}

/// The types and `Mutation` fields of one table.
pub(crate) fn for_table(state: &Arc<State>, table: usize) -> (Vec<Type>, Vec<Field>) {
    (types(&state.model.tables[table]), fields(state, table))
}

/// Inputs (`UserInsertInput`, `UserSetInput`, `UserOnConflict`), the column enum and the
/// response type of one table's mutations.
fn types(model: &TableModel) -> Vec<Type> {
    let name = &model.type_name;
    let row_input = |input_name: String| {
        model
            .columns
            .iter()
            .fold(InputObject::new(input_name), |input, column| {
                input.field(InputValue::new(
                    &column.field,
                    scalar_type(column.kind, true),
                ))
            })
    };
    let columns = model
        .columns
        .iter()
        .fold(Enum::new(format!("{name}Column")), |e, column| {
            e.item(EnumItem::new(&column.field))
        });
    let on_conflict = InputObject::new(format!("{name}OnConflict"))
        .description("Upsert: rows that collide on `conflict_columns` (default: the primary key) update `update_columns` instead; none means skip them.")
        .field(InputValue::new("conflict_columns", TypeRef::named_nn_list(format!("{name}Column"))))
        .field(InputValue::new("update_columns", TypeRef::named_nn_list_nn(format!("{name}Column"))));
    let response = Object::new(response_type(name))
        .field(Field::new(
            "affected_rows",
            TypeRef::named_nn(TypeRef::INT),
            values::scalar_field,
        ))
        .field(Field::new(
            "returning",
            TypeRef::named_nn_list_nn(name),
            values::list_field,
        ));
    vec![
        Type::from(row_input(format!("{name}InsertInput"))),
        Type::from(row_input(format!("{name}SetInput"))),
        Type::from(columns),
        Type::from(on_conflict),
        Type::from(response),
    ]
}

/// The table's mutation fields: those its config allows. The by-key forms come last, as they
/// always have, so the SDL's field order is stable.
fn fields(state: &Arc<State>, table: usize) -> Vec<Field> {
    let model = &state.model.tables[table];
    let name = &model.type_name;
    let list = &model.list_field;
    let allows = |write| model.mutations.allows(write);
    let with_key = |field: Field| {
        model.primary_key.iter().fold(field, |field, column| {
            let column = &model.columns[*column];
            field.argument(InputValue::new(
                &column.field,
                TypeRef::named_nn(column.kind.graphql_name()),
            ))
        })
    };
    let field = |kind: Kind, field_name: String, ty: TypeRef| {
        mutation_field(state, table, field_name, ty, kind)
    };
    let response = || TypeRef::named_nn(response_type(name));
    let on_conflict =
        || InputValue::new("on_conflict", TypeRef::named(format!("{name}OnConflict")));
    let insert_input = |list: bool| {
        let input = format!("{name}InsertInput");
        if list {
            InputValue::new("objects", TypeRef::named_nn_list_nn(input))
        } else {
            InputValue::new("object", TypeRef::named_nn(input))
        }
    };
    let filter = || InputValue::new("where", TypeRef::named_nn(filter::bool_exp_type(name)));
    let set = || InputValue::new("_set", TypeRef::named_nn(format!("{name}SetInput")));
    let keyed = !model.primary_key.is_empty();
    // An upsert updates rows: offered only where updates are, under the same guard as inserts.
    let upsert = |field: Field| {
        if allows(Write::Update) && model.writes.insert == model.writes.update {
            field.argument(on_conflict())
        } else {
            field
        }
    };
    let mut fields = Vec::new();
    if allows(Write::Insert) {
        fields.push(upsert(
            field(Kind::Insert, format!("insert_{list}"), response()).argument(insert_input(true)),
        ));
        fields.push(upsert(
            field(
                Kind::InsertOne,
                format!("insert_{list}_one"),
                TypeRef::named(name),
            )
            .argument(insert_input(false)),
        ));
    }
    if allows(Write::Update) {
        fields.push(
            field(Kind::Update, format!("update_{list}"), response())
                .argument(filter())
                .argument(set()),
        );
    }
    if allows(Write::Delete) {
        fields.push(field(Kind::Delete, format!("delete_{list}"), response()).argument(filter()));
    }
    if keyed && allows(Write::Update) {
        let by_key = field(
            Kind::UpdateByPk,
            format!("update_{list}_by_pk"),
            TypeRef::named(name),
        );
        fields.push(with_key(by_key).argument(set()));
    }
    if keyed && allows(Write::Delete) {
        let by_key = field(
            Kind::DeleteByPk,
            format!("delete_{list}_by_pk"),
            TypeRef::named(name),
        );
        fields.push(with_key(by_key));
    }
    fields
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Insert,
    InsertOne,
    Update,
    UpdateByPk,
    Delete,
    DeleteByPk,
}

impl Kind {
    fn write(self) -> Write {
        match self {
            Kind::Insert | Kind::InsertOne => Write::Insert,
            Kind::Update | Kind::UpdateByPk => Write::Update,
            Kind::Delete | Kind::DeleteByPk => Write::Delete,
        }
    }
}

fn mutation_field(
    state: &Arc<State>,
    table: usize,
    name: String,
    ty: TypeRef,
    kind: Kind,
) -> Field {
    let guard = state.model.tables[table]
        .writes
        .of(kind.write())
        .directives();
    let state = state.clone();
    let field = Field::new(name, ty, move |ctx| {
        let state = state.clone();
        FieldFuture::new(async move { resolve(&state, table, kind, &ctx).await })
    });
    guard.into_iter().fold(field, Field::directive)
}

async fn resolve<'a>(
    state: &State,
    table: usize,
    kind: Kind,
    ctx: &ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let model = &state.model;
    let table_model = &model.tables[table];
    let walker = Walker::new(ctx.ctx);
    let arguments = ctx.ctx.item.node.arguments_as_values(&walker)?;
    let get = |name: &str| {
        arguments
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    };
    let one = matches!(kind, Kind::InsertOne | Kind::UpdateByPk | Kind::DeleteByPk);
    let shape = if one {
        Shape::One(outputs(model, table, &walker, &[selection_set(ctx)])?)
    } else {
        response_shape(model, table, &walker, ctx)?
    };
    let statement = match kind {
        Kind::Insert | Kind::InsertOne => {
            let rows = match (kind, get("objects"), get("object")) {
                (Kind::Insert, Some(Value::List(objects)), _) => objects
                    .iter()
                    .map(|object| row(table_model, object))
                    .collect::<async_graphql::Result<Vec<_>>>()?,
                (Kind::InsertOne, _, Some(object)) => vec![row(table_model, object)?],
                _ => {
                    return Err(bad_input(TranslateError::input(
                        "objects to insert are missing",
                    )));
                }
            };
            for row in &rows {
                check_rule(table_model, RequestClaims::of(ctx), row, true)?;
            }
            let on_conflict = get("on_conflict")
                .filter(|v| !matches!(v, Value::Null))
                .map(|v| on_conflict(table_model, v))
                .transpose()?;
            mutate::insert(
                model,
                &access(model, RequestClaims::of(ctx)),
                table,
                &rows,
                on_conflict.as_ref(),
                &shape,
            )
        }
        Kind::Update | Kind::UpdateByPk => {
            let filter = filter_of(model, table, kind, &arguments)?;
            let set = get("_set").map_or(Ok(Vec::new()), |value| row(table_model, value))?;
            check_rule(table_model, RequestClaims::of(ctx), &set, false)?;
            mutate::update(
                model,
                &access(model, RequestClaims::of(ctx)),
                table,
                &filter,
                &set,
                &shape,
            )
        }
        Kind::Delete | Kind::DeleteByPk => {
            let filter = filter_of(model, table, kind, &arguments)?;
            mutate::delete(
                model,
                &access(model, RequestClaims::of(ctx)),
                table,
                &filter,
                &shape,
            )
        }
    }
    .map_err(bad_input)?;
    let rows = execute::documents(&state.executor, &statement)
        .await
        .map_err(database_error)?;
    Ok(rows.into_iter().next().and_then(|row| match row {
        serde_json::Value::Object(object) => Some(FieldValue::owned_any(Document(object))),
        _ => None,
    }))
}

/// `where` for the bulk forms; the primary key arguments for the `_by_pk` forms.
fn filter_of(
    model: &Model,
    table: usize,
    kind: Kind,
    arguments: &[(String, Value)],
) -> async_graphql::Result<BoolExp> {
    if matches!(kind, Kind::UpdateByPk | Kind::DeleteByPk) {
        let table_model = &model.tables[table];
        return Ok(BoolExp::And(
            table_model
                .primary_key
                .iter()
                .map(|column| {
                    let field = &table_model.columns[*column].field;
                    BoolExp::Compare {
                        field: field.clone(),
                        operator: Operator::Eq,
                        value: arguments
                            .iter()
                            .find(|(name, _)| name == field)
                            .map_or(Value::Null, |(_, v)| v.clone()),
                    }
                })
                .collect(),
        ));
    }
    let filter = list_args(model, table, arguments)?.filter;
    Ok(filter)
}

fn response_shape(
    model: &Model,
    table: usize,
    walker: &Walker<'_>,
    ctx: &ResolverContext<'_>,
) -> async_graphql::Result<Shape> {
    let type_name = response_type(&model.tables[table].type_name);
    let selected = walker
        .collect(&[selection_set(ctx)], &type_name)
        .map_err(SelectionError::bad_input)?;
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
                other => {
                    return Err(bad_input(TranslateError::input(format!(
                        "{type_name} has no field {other}"
                    ))));
                }
            })
        })
        .collect::<async_graphql::Result<Vec<_>>>()?;
    Ok(Shape::Response(fields))
}

/// Refuses a write that would put a row outside the table's row rule for these claims (reads
/// of ruled tables without claims are refused by the translation already).
fn check_rule(
    table: &TableModel,
    claims: Option<&polygraph_subgraph_core::claims::Claims>,
    values: &Row,
    complete: bool,
) -> async_graphql::Result<()> {
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
fn row(table: &TableModel, value: &Value) -> async_graphql::Result<Row> {
    let Value::Object(object) = value else {
        return Err(bad_input(TranslateError::input(format!(
            "expected an object of {} columns",
            table.type_name
        ))));
    };
    object
        .iter()
        .map(|(name, value)| {
            table
                .column(name.as_str())
                .map(|(index, _)| (index, value.clone()))
                .ok_or_else(|| {
                    bad_input(TranslateError::input(format!(
                        "{} has no column {name}",
                        table.type_name
                    )))
                })
        })
        .collect()
}

fn on_conflict(table: &TableModel, value: &Value) -> async_graphql::Result<OnConflict> {
    let columns = |name: &str| -> async_graphql::Result<Vec<usize>> {
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
                    table.column(name).map(|(index, _)| index).ok_or_else(|| {
                        bad_input(TranslateError::input(format!(
                            "{} has no column {name}",
                            table.type_name
                        )))
                    })
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
