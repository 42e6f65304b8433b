//! Translation: what a GraphQL field selects, with its arguments, becomes one SQL statement with
//! bound parameters. Pure: no database, snapshot-tested.
//!
//! The statement returns JSON documents shaped like the response, keyed by response keys in
//! the order of the selection, so a whole selection tree, however deep, is one round trip.
//! A document is `row_to_json` of a one-row subquery whose columns are named by the response
//! keys: about half the server time of `jsonb_build_object`, which works out every
//! argument's type on every row and sorts the keys. Nested lists are correlated subqueries
//! aggregated with `json_agg`, nested objects are correlated subqueries returning one
//! document; PostgreSQL plans them as joins over the foreign-key indexes. For
//!
//! ```graphql
//! users(limit: 2) { name orders(order_by: [{created_at: DESC}], limit: 1) { total } }
//! ```
//!
//! the statement is, in outline,
//!
//! ```sql
//! SELECT (SELECT row_to_json(_doc.*) FROM (SELECT t0."name" AS "name",
//!          (SELECT coalesce(json_agg(
//!                    (SELECT row_to_json(_doc.*) FROM (SELECT t1."total" AS "total") _doc)
//!                    ORDER BY t1.ord), '[]'::json)
//!             FROM (SELECT t1.*, row_number() OVER (ORDER BY t1."created_at" DESC) AS ord
//!                     FROM "public"."orders" t1 WHERE t1."user_id" = t0."id"
//!                    ORDER BY t1."created_at" DESC LIMIT 1) t1) AS "orders") _doc) AS doc
//!   FROM "public"."users" t0 WHERE true ORDER BY t0."id" ASC LIMIT 2
//! ```
//!
//! Every value from the request is a parameter (`$1`, sent as text and cast to the column's
//! type in SQL); identifiers come only from the catalog and are quoted.

use std::fmt::Write as _;

use async_graphql::Value;
use polygraph_subgraph_core::filter::{Direction, OrderBy};

use crate::ir::Result;
pub use crate::ir::{
    Access, AggregateOutput, ErrorKind, Function, ListArgs, Output, Param, ReferenceOutput,
    Statement, TableAccess, TranslateError,
};
use crate::model::Model;
pub use crate::sql::normalize_key;
use crate::sql::{Builder, quote, row_object};

/// `SELECT doc FROM table …`: one row per object, in order.
pub fn list(
    model: &Model,
    access: &Access,
    table: usize,
    args: &ListArgs,
    fields: &[Output],
) -> Result<Statement> {
    let mut builder = Builder::new(model, access);
    let alias = builder.alias();
    let document = builder.document(table, &alias, fields)?;
    let from = builder.from(table, &alias);
    let condition = builder.condition(table, &alias, &args.filter)?;
    let condition = condition + &builder.restrict(table, &alias)?;
    let order = builder.order(table, &alias, &args.order_by)?;
    // Documents are built over the rows that survive the limit: PostgreSQL evaluates a select
    // list before a top-N sort, which would build a document for every matching row.
    let mut rows = format!("SELECT {alias}.* FROM {from} WHERE {condition}{order}");
    builder.limit_offset(&mut rows, args);
    Ok(builder.finish(format!(
        "SELECT {document}::text AS doc FROM ({rows}) {alias}{order}"
    )))
}

/// The key under which [`page`] puts each row's cursor values into its document.
pub const CURSOR_KEY: &str = "__cursor";

/// A page for cursor pagination: like [`list`], ordered by `args.order_by` and then the primary
/// key (so the order is total), keeping only rows strictly after the `after` cursor's values,
/// and fetching `first + 1` rows so the caller knows whether another page follows. Each
/// document carries its cursor values under [`CURSOR_KEY`].
pub fn page(
    model: &Model,
    access: &Access,
    table: usize,
    args: &ListArgs,
    first: u64,
    after: Option<&[Value]>,
    fields: &[Output],
) -> Result<Statement> {
    let table_model = &model.tables[table];
    if table_model.primary_key.is_empty() {
        return Err(TranslateError::input(format!(
            "{} has no primary key, so it cannot be paginated by cursor",
            table_model.type_name
        )));
    }
    let mut keys: Vec<(usize, Direction)> = Vec::new();
    for key in &args.order_by {
        let (column, _) = table_model.column(&key.field).ok_or_else(|| {
            TranslateError::input(format!(
                "cannot order {} by {}",
                table_model.type_name, key.field
            ))
        })?;
        keys.push((column, key.direction));
    }
    for column in &table_model.primary_key {
        if !keys.iter().any(|(existing, _)| existing == column) {
            keys.push((*column, Direction::Asc));
        }
    }
    let order_by: Vec<OrderBy> = keys
        .iter()
        .map(|(column, direction)| OrderBy {
            field: table_model.columns[*column].field.clone(),
            direction: *direction,
        })
        .collect();

    let mut builder = Builder::new(model, access);
    let alias = builder.alias();
    let mut document_fields = fields.to_vec();
    document_fields
        .retain(|field| !matches!(field, Output::Column { key, .. } if key == CURSOR_KEY));
    let mut pairs = builder.document_pairs(table, &alias, &document_fields)?;
    let cursor_values: Vec<String> = keys
        .iter()
        .map(|(column, _)| format!("{alias}.{}", quote(&table_model.columns[*column].column)))
        .collect();
    pairs.push((
        CURSOR_KEY,
        format!("json_build_array({})", cursor_values.join(", ")),
    ));
    let document = row_object(&pairs);
    let from = builder.from(table, &alias);
    let mut condition = builder.condition(table, &alias, &args.filter)?;
    condition += &builder.restrict(table, &alias)?;
    if let Some(after) = after {
        if after.len() != keys.len() {
            return Err(TranslateError::input(
                "the cursor does not belong to this ordering",
            ));
        }
        let after = builder.after(table, &alias, &keys, after)?;
        condition.push_str(" AND ");
        condition.push_str(&after);
    }
    let order = builder.order(table, &alias, &order_by)?;
    let sql = format!(
        "SELECT {document}::text AS doc FROM (SELECT {alias}.* FROM {from} WHERE {condition}{order} LIMIT {}) {alias}{order}",
        first.min(model.max_limit) + 1
    );
    Ok(builder.finish(sql))
}

/// `SELECT json_build_object('count', …) AS doc FROM (…)`: one row.
pub fn aggregate(
    model: &Model,
    access: &Access,
    table: usize,
    args: &ListArgs,
    fields: &[AggregateOutput],
) -> Result<Statement> {
    let mut builder = Builder::new(model, access);
    let alias = builder.alias();
    let from = builder.from(table, &alias);
    let condition = builder.condition(table, &alias, &args.filter)?;
    let condition = condition + &builder.restrict(table, &alias)?;
    let inner = builder.filtered_rows(table, &alias, &from, &condition, args)?;
    let set = builder.alias();
    let document = builder.aggregate_document(table, &set, fields);
    // `GROUP BY ()`: one row even when only `__typename` is selected (no aggregate function
    // to fold the rows) and when there are no rows.
    Ok(builder.finish(format!(
        "SELECT {document}::text AS doc FROM ({inner}) {set} GROUP BY ()"
    )))
}

/// Entities by key: `SELECT key, doc FROM table WHERE (keys) IN (unnest($1, …))`, one row per
/// key found, in no particular order; `keys[i][j]` is representation `i`'s value for key column
/// `j` (as text). Returns the statement; the caller matches rows to representations by `key`.
pub fn entities(
    model: &Model,
    access: &Access,
    table: usize,
    key_columns: &[usize],
    keys: &[Vec<String>],
    fields: &[Output],
) -> Result<Statement> {
    let mut builder = Builder::new(model, access);
    let alias = builder.alias();
    let document = builder.document(table, &alias, fields)?;
    let from = builder.from(table, &alias);
    let columns = &model.tables[table].columns;
    let mut tuple = Vec::new();
    let mut arrays = Vec::new();
    let mut key_text = Vec::new();
    for (position, &column) in key_columns.iter().enumerate() {
        let column_model = &columns[column];
        let values = keys
            .iter()
            .map(|key| normalize_key(column_model, &key[position]).map(Some))
            .collect::<Result<Vec<_>>>()?;
        let param = builder.bind(Param::TextArray(values));
        tuple.push(format!("{alias}.{}", quote(&column_model.column)));
        arrays.push(format!("{param}::{}[]", column_model.sql_type));
        key_text.push(format!("{alias}.{}::text", quote(&column_model.column)));
    }
    // The key as `key_text` writes it: the value, or for composite keys each value's length
    // in characters, a colon and the value, concatenated.
    let key = match key_text.as_slice() {
        [single] => single.clone(),
        parts => format!(
            "concat({})",
            parts
                .iter()
                .map(|part| format!("length({part}), ':', {part}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let restriction = builder.restrict(table, &alias)?;
    // One key column is an index lookup by array; composite keys match tuples of arrays.
    let matches = match (tuple.as_slice(), arrays.as_slice()) {
        ([column], [array]) => format!("{column} = ANY({array})"),
        _ => format!(
            "({}) IN (SELECT * FROM unnest({}))",
            tuple.join(", "),
            arrays.join(", ")
        ),
    };
    // The document as text: it is spliced into the response as PostgreSQL wrote it.
    let sql = format!(
        "SELECT {key} AS key, {document}::text AS doc FROM {from} WHERE {matches}{restriction}"
    );
    Ok(builder.finish(sql))
}

/// What an extension field of another subgraph's entity selects: the rows, or their
/// aggregate.
#[derive(Clone, Debug, PartialEq)]
pub enum Extended {
    Rows(Vec<Output>),
    Aggregate(Vec<AggregateOutput>),
}

/// An extension field for many entities in one statement: for each distinct value of `values`
/// (the entities' matched field), the documents of `table`'s rows whose `column` equals it (or
/// their aggregate). Rows are `(value as text, document as text)`, one per distinct value.
pub fn extension(
    model: &Model,
    access: &Access,
    table: usize,
    column: usize,
    values: &[String],
    args: &ListArgs,
    selected: &Extended,
) -> Result<Statement> {
    let mut builder = Builder::new(model, access);
    let column_model = &model.tables[table].columns[column];
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    let mut distinct: Vec<Option<String>> = Vec::with_capacity(values.len());
    for value in values {
        let value = normalize_key(column_model, value)?;
        if seen.insert(value.clone()) {
            distinct.push(Some(value));
        }
    }
    let param = builder.bind(Param::TextArray(distinct));
    let matched = quote(&column_model.column);
    let join = |_: &Builder<'_>, inner: &str| format!("{inner}.{matched} = k.v");
    let document = match selected {
        Extended::Rows(fields) => builder.rows_array(table, &join, args, fields)?,
        Extended::Aggregate(fields) => builder.rows_aggregate(table, &join, args, fields)?,
    };
    let sql = format!(
        "SELECT k.v::text AS key, {document}::text AS doc FROM unnest({param}::{}[]) AS k(v)",
        column_model.sql_type
    );
    Ok(builder.finish(sql))
}

/// One row's key as one text, as the entities statement writes it: the value itself, or for
/// a composite key each value's length in characters, `:` and the value, so that different
/// keys never meet.
pub fn key_text(key: &[String]) -> String {
    match key {
        [single] => single.clone(),
        parts => parts.iter().fold(String::new(), |mut text, part| {
            let _ = write!(text, "{}:{part}", part.chars().count());
            text
        }),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::value;

    use super::*;
    use crate::model::tests::shop_model;
    use crate::sql::literal;
    use polygraph_subgraph_core::filter::{BoolExp, Operator};

    fn index(model: &Model, type_name: &str) -> usize {
        model.table_by_type(type_name).unwrap().0
    }

    fn column(model: &Model, type_name: &str, field: &str) -> Output {
        let (_, table) = model.table_by_type(type_name).unwrap();
        Output::Column {
            key: field.into(),
            column: table.column(field).unwrap().0,
        }
    }

    fn relationship(model: &Model, type_name: &str, name: &str) -> usize {
        let (_, table) = model.table_by_type(type_name).unwrap();
        table
            .relationships
            .iter()
            .position(|r| r.name == name)
            .unwrap()
    }

    #[test]
    fn three_levels_are_one_statement() {
        let model = shop_model();
        let fields = vec![
            column(&model, "User", "name"),
            Output::Array {
                key: "recent".into(),
                relationship: relationship(&model, "User", "orders"),
                args: ListArgs {
                    order_by: vec![OrderBy {
                        field: "created_at".into(),
                        direction: Direction::Desc,
                    }],
                    limit: Some(2),
                    ..ListArgs::default()
                },
                fields: vec![
                    column(&model, "Order", "total"),
                    Output::Array {
                        key: "order_items".into(),
                        relationship: relationship(&model, "Order", "order_items"),
                        args: ListArgs::default(),
                        fields: vec![
                            column(&model, "OrderItem", "quantity"),
                            Output::Object {
                                key: "product".into(),
                                relationship: relationship(&model, "OrderItem", "product"),
                                fields: vec![
                                    column(&model, "Product", "name"),
                                    Output::Typename {
                                        key: "__typename".into(),
                                        type_name: "Product".into(),
                                    },
                                ],
                            },
                        ],
                    },
                ],
            },
        ];
        let args = ListArgs {
            filter: BoolExp::Compare {
                field: "country".into(),
                operator: Operator::Eq,
                value: value!("DE"),
            },
            limit: Some(5),
            ..ListArgs::default()
        };
        let statement = list(
            &model,
            &Access::unrestricted(),
            index(&model, "User"),
            &args,
            &fields,
        )
        .unwrap();
        insta::assert_snapshot!(statement.sql);
        assert_eq!(statement.params, vec![Param::Text(Some("DE".into()))]);
    }

    #[test]
    fn filters_bind_every_value() {
        let model = shop_model();
        let filter = BoolExp::Or(vec![
            BoolExp::Compare {
                field: "name".into(),
                operator: Operator::ILike,
                value: value!("%'; DROP TABLE users; --%"),
            },
            BoolExp::And(vec![
                BoolExp::Compare {
                    field: "id".into(),
                    operator: Operator::In,
                    value: value!(["1", 2]),
                },
                BoolExp::Compare {
                    field: "email".into(),
                    operator: Operator::IsNull,
                    value: value!(false),
                },
                BoolExp::Not(Box::new(BoolExp::Compare {
                    field: "country".into(),
                    operator: Operator::Neq,
                    value: value!("FR"),
                })),
            ]),
            BoolExp::Related {
                relationship: "orders".into(),
                predicate: Box::new(BoolExp::Compare {
                    field: "total".into(),
                    operator: Operator::Gte,
                    value: value!(100.5),
                }),
            },
        ]);
        let args = ListArgs {
            filter,
            ..ListArgs::default()
        };
        let statement = list(
            &model,
            &Access::unrestricted(),
            index(&model, "User"),
            &args,
            &[column(&model, "User", "id")],
        )
        .unwrap();
        insta::assert_snapshot!(statement.sql);
        assert_eq!(
            statement.params,
            vec![
                Param::Text(Some("%'; DROP TABLE users; --%".into())),
                Param::TextArray(vec![Some("1".into()), Some("2".into())]),
                Param::Text(Some("FR".into())),
                Param::Text(Some("100.5".into())),
            ]
        );
    }

    #[test]
    fn guarded_columns_are_neither_filters_nor_orders() {
        let mut model = shop_model();
        let users = index(&model, "User");
        let email = model.tables[users].column("email").unwrap().0;
        model.tables[users].columns[email]
            .directives
            .guard
            .authenticated = true;
        let fields = [column(&model, "User", "id")];
        let filter = ListArgs {
            filter: BoolExp::Compare {
                field: "email".into(),
                operator: Operator::Like,
                value: value!("a%"),
            },
            ..ListArgs::default()
        };
        let error = list(&model, &Access::unrestricted(), users, &filter, &fields).unwrap_err();
        assert_eq!(error.message, "User has no field email");
        let order = ListArgs {
            order_by: vec![OrderBy {
                field: "email".into(),
                direction: Direction::Asc,
            }],
            ..ListArgs::default()
        };
        let error = list(&model, &Access::unrestricted(), users, &order, &fields).unwrap_err();
        assert_eq!(error.message, "cannot order User by email");
        let by_name = ListArgs {
            order_by: vec![OrderBy {
                field: "name".into(),
                direction: Direction::Asc,
            }],
            ..ListArgs::default()
        };
        assert!(list(&model, &Access::unrestricted(), users, &by_name, &fields).is_ok());
    }

    #[test]
    fn bad_integers_are_clean_errors() {
        let model = shop_model();
        let args = ListArgs {
            filter: BoolExp::Compare {
                field: "id".into(),
                operator: Operator::Eq,
                value: value!("1 OR 1=1"),
            },
            ..ListArgs::default()
        };
        let error = list(
            &model,
            &Access::unrestricted(),
            index(&model, "User"),
            &args,
            &[column(&model, "User", "id")],
        )
        .unwrap_err();
        assert_eq!(error.message, "id: \"1 OR 1=1\" is not an integer");
    }

    #[test]
    fn entities_are_one_statement_per_type() {
        let model = shop_model();
        let keys: Vec<Vec<String>> = ["3", "1", "007"]
            .iter()
            .map(|k| vec![(*k).to_owned()])
            .collect();
        let user = index(&model, "User");
        let statement = entities(
            &model,
            &Access::unrestricted(),
            user,
            &[0],
            &keys,
            &[column(&model, "User", "email")],
        )
        .unwrap();
        insta::assert_snapshot!(statement.sql);
        assert_eq!(
            statement.params,
            vec![Param::TextArray(vec![
                Some("3".into()),
                Some("1".into()),
                Some("7".into())
            ])]
        );
    }

    #[test]
    fn aggregates() {
        let model = shop_model();
        let order = index(&model, "Order");
        let (_, table) = model.table_by_type("Order").unwrap();
        let total = table.column("total").unwrap().0;
        let fields = vec![
            AggregateOutput::Count {
                key: "count".into(),
            },
            AggregateOutput::Function {
                key: "sum".into(),
                function: Function::Sum,
                columns: vec![("total".into(), total)],
            },
            AggregateOutput::Function {
                key: "max".into(),
                function: Function::Max,
                columns: vec![("total".into(), total)],
            },
        ];
        let args = ListArgs {
            filter: BoolExp::Compare {
                field: "status".into(),
                operator: Operator::Eq,
                value: value!("paid"),
            },
            ..ListArgs::default()
        };
        let statement = aggregate(&model, &Access::unrestricted(), order, &args, &fields).unwrap();
        insta::assert_snapshot!(statement.sql);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
