//! Translation of mutations: insert (with `on_conflict` upsert), update and delete, each one
//! statement that changes the rows and returns them shaped like the response.
//!
//! The change runs in a data-modifying CTE and the response is built from its `RETURNING` rows,
//! so the whole mutation is a single statement: it applies completely or, on any error (a
//! constraint, a bad value), not at all.
//!
//! ```sql
//! WITH m AS (INSERT INTO "public"."users" AS t0 ("id", "name") VALUES ($1::bigint, $2::text)
//!            RETURNING t0.*)
//! SELECT json_build_object('affected_rows', (SELECT count(*) FROM m),
//!                           'returning', (SELECT coalesce(json_agg(…), '[]') FROM m t1)) AS doc
//! ```

use std::fmt::Write as _;

use async_graphql::Value;
use polygraph_subgraph_core::filter::BoolExp;

use crate::ir::{Access, Output, Param, Statement, TranslateError};
use crate::model::Model;
use crate::sql::{Builder, build_object, literal, quote, text};

type Result<T> = std::result::Result<T, TranslateError>;

/// Values for some columns of one row: `(column index, value)`.
pub type Row = Vec<(usize, Value)>;

/// What the mutation field returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// `{ affected_rows returning { … } }`
    Response(Vec<ResponseField>),
    /// One object (`insert_t_one`, `update_t_by_pk`, `delete_t_by_pk`), or null.
    One(Vec<Output>),
}

/// A field of a mutation response.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseField {
    AffectedRows { key: String },
    Typename { key: String, type_name: String },
    Returning { key: String, fields: Vec<Output> },
}

/// `ON CONFLICT (conflict_columns) DO UPDATE SET update_columns = EXCLUDED…`, or `DO NOTHING`
/// when there is nothing to update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnConflict {
    pub conflict_columns: Vec<usize>,
    pub update_columns: Vec<usize>,
}

/// Inserts `rows`; columns a row leaves out take their defaults.
pub fn insert(
    model: &Model,
    access: &Access,
    table: usize,
    rows: &[Row],
    on_conflict: Option<&OnConflict>,
    shape: &Shape,
) -> Result<Statement> {
    let mut builder = Builder::new(model, access);
    let alias = builder.alias();
    let table_model = &model.tables[table];
    // Rows a rule restricts can only be inserted by requests with claims; the values they write
    // are checked against the rule before translation (`RowRule::admits`).
    builder.allowed(table)?;
    let target = format!(
        "{}.{} AS {alias}",
        quote(&model.schema),
        quote(&table_model.table)
    );
    let change = if rows.is_empty() {
        format!(
            "SELECT {alias}.* FROM {} WHERE false",
            builder.from(table, &alias)
        )
    } else {
        let mut columns: Vec<usize> = Vec::new();
        for row in rows {
            for (column, _) in row {
                if !columns.contains(column) {
                    columns.push(*column);
                }
            }
        }
        if columns.is_empty() {
            columns.push(0);
        }
        let mut tuples = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(columns.len());
            for column in &columns {
                let column_model = &table_model.columns[*column];
                match row.iter().find(|(c, _)| c == column) {
                    Some((_, value)) => {
                        let param = builder.bind(Param::Text(text(column_model, value)?));
                        values.push(format!("{param}::{}", column_model.sql_type));
                    }
                    None => values.push("DEFAULT".to_owned()),
                }
            }
            tuples.push(format!("({})", values.join(", ")));
        }
        let names: Vec<String> = columns
            .iter()
            .map(|c| quote(&table_model.columns[*c].column))
            .collect();
        let mut sql = format!(
            "INSERT INTO {target} ({}) VALUES {}",
            names.join(", "),
            tuples.join(", ")
        );
        if let Some(on_conflict) = on_conflict {
            let conflict = if on_conflict.conflict_columns.is_empty() {
                &table_model.primary_key
            } else {
                &on_conflict.conflict_columns
            };
            if conflict.is_empty() {
                return Err(TranslateError::input(format!(
                    "{} has no primary key: on_conflict needs conflict_columns",
                    table_model.type_name
                )));
            }
            let conflict: Vec<String> = conflict
                .iter()
                .map(|c| quote(&table_model.columns[*c].column))
                .collect();
            if on_conflict.update_columns.is_empty() {
                let _ = write!(sql, " ON CONFLICT ({}) DO NOTHING", conflict.join(", "));
            } else {
                let updates: Vec<String> = on_conflict
                    .update_columns
                    .iter()
                    .map(|c| {
                        let name = quote(&table_model.columns[*c].column);
                        format!("{name} = EXCLUDED.{name}")
                    })
                    .collect();
                let _ = write!(
                    sql,
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    conflict.join(", "),
                    updates.join(", ")
                );
                // An upsert may only update existing rows the row rule lets the request see.
                let restriction = builder.restrict(table, &alias)?;
                if !restriction.is_empty() {
                    let _ = write!(sql, " WHERE true{restriction}");
                }
            }
        }
        let _ = write!(sql, " RETURNING {alias}.*");
        sql
    };
    finish(builder, table, &change, shape)
}

/// Sets `set` on the rows matching `filter`.
pub fn update(
    model: &Model,
    access: &Access,
    table: usize,
    filter: &BoolExp,
    set: &Row,
    shape: &Shape,
) -> Result<Statement> {
    let table_model = &model.tables[table];
    if set.is_empty() {
        return Err(TranslateError::input(format!(
            "update of {}: _set names no column",
            table_model.type_name
        )));
    }
    let mut builder = Builder::new(model, access);
    let alias = builder.alias();
    let mut assignments = Vec::with_capacity(set.len());
    for (column, value) in set {
        let column_model = &table_model.columns[*column];
        let param = builder.bind(Param::Text(text(column_model, value)?));
        assignments.push(format!(
            "{} = {param}::{}",
            quote(&column_model.column),
            column_model.sql_type
        ));
    }
    let condition = builder.condition(table, &alias, filter)? + &builder.restrict(table, &alias)?;
    let change = format!(
        "UPDATE {}.{} AS {alias} SET {} WHERE {condition} RETURNING {alias}.*",
        quote(&model.schema),
        quote(&table_model.table),
        assignments.join(", ")
    );
    finish(builder, table, &change, shape)
}

/// Deletes the rows matching `filter`.
pub fn delete(
    model: &Model,
    access: &Access,
    table: usize,
    filter: &BoolExp,
    shape: &Shape,
) -> Result<Statement> {
    let table_model = &model.tables[table];
    let mut builder = Builder::new(model, access);
    let alias = builder.alias();
    let condition = builder.condition(table, &alias, filter)? + &builder.restrict(table, &alias)?;
    let change = format!(
        "DELETE FROM {}.{} AS {alias} WHERE {condition} RETURNING {alias}.*",
        quote(&model.schema),
        quote(&table_model.table)
    );
    finish(builder, table, &change, shape)
}

/// `WITH m AS (change) SELECT response AS doc`.
fn finish(
    mut builder: Builder<'_>,
    table: usize,
    change: &str,
    shape: &Shape,
) -> Result<Statement> {
    let response = match shape {
        Shape::One(fields) => {
            let alias = builder.alias();
            let document = builder.document(table, &alias, fields)?;
            format!("(SELECT {document} FROM m {alias} LIMIT 1)")
        }
        Shape::Response(fields) => {
            let mut pairs = Vec::with_capacity(fields.len());
            for field in fields {
                match field {
                    ResponseField::AffectedRows { key } => {
                        pairs.push(format!("{}, (SELECT count(*) FROM m)", literal(key)));
                    }
                    ResponseField::Typename { key, type_name } => {
                        pairs.push(format!("{}, {}", literal(key), literal(type_name)));
                    }
                    ResponseField::Returning { key, fields } => {
                        let alias = builder.alias();
                        let document = builder.document(table, &alias, fields)?;
                        pairs.push(format!(
                            "{}, (SELECT coalesce(json_agg({document}), '[]'::json) FROM m {alias})",
                            literal(key)
                        ));
                    }
                }
            }
            build_object(&pairs)
        }
    };
    Ok(builder.finish(format!(
        "WITH m AS ({change}) SELECT ({response})::text AS doc"
    )))
}

#[cfg(test)]
mod tests {
    use async_graphql::value;
    use polygraph_subgraph_core::filter::Operator;

    use super::*;
    use crate::model::tests::shop_model;

    #[test]
    fn upsert_many_with_defaults() {
        let model = shop_model();
        let (table, users) = model.table_by_type("User").unwrap();
        let column = |name: &str| users.column(name).unwrap().0;
        let rows = vec![
            vec![
                (column("id"), value!("1001")),
                (column("name"), value!("Ada")),
                (column("email"), value!("a@x")),
            ],
            vec![
                (column("id"), value!(1002)),
                (column("email"), value!("b@x")),
            ],
        ];
        let shape = Shape::Response(vec![
            ResponseField::AffectedRows {
                key: "affected_rows".into(),
            },
            ResponseField::Returning {
                key: "returning".into(),
                fields: vec![Output::Column {
                    key: "name".into(),
                    column: column("name"),
                }],
            },
        ]);
        let on_conflict = OnConflict {
            conflict_columns: vec![],
            update_columns: vec![column("name")],
        };
        let statement = insert(
            &model,
            &Access::unrestricted(),
            table,
            &rows,
            Some(&on_conflict),
            &shape,
        )
        .unwrap();
        insta::assert_snapshot!(statement.sql);
        assert_eq!(
            statement.params,
            vec![
                Param::Text(Some("1001".into())),
                Param::Text(Some("Ada".into())),
                Param::Text(Some("a@x".into())),
                Param::Text(Some("1002".into())),
                Param::Text(Some("b@x".into())),
            ]
        );
    }

    #[test]
    fn update_and_delete_by_filter() {
        let model = shop_model();
        let (table, orders) = model.table_by_type("Order").unwrap();
        let status = orders.column("status").unwrap().0;
        let filter = BoolExp::Compare {
            field: "id".into(),
            operator: Operator::Eq,
            value: value!("5"),
        };
        let one = Shape::One(vec![Output::Column {
            key: "status".into(),
            column: status,
        }]);
        let statement = update(
            &model,
            &Access::unrestricted(),
            table,
            &filter,
            &vec![(status, value!("shipped"))],
            &one,
        )
        .unwrap();
        insta::assert_snapshot!("update", statement.sql);
        let statement = delete(&model, &Access::unrestricted(), table, &filter, &one).unwrap();
        insta::assert_snapshot!("delete", statement.sql);
        assert!(
            update(
                &model,
                &Access::unrestricted(),
                table,
                &filter,
                &vec![],
                &one
            )
            .is_err(),
            "an empty _set is an error"
        );
    }
}
