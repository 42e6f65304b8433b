//! Writing SQL: the [`Builder`] that numbers parameters and aliases, writes documents,
//! relationships, aggregates, filters and orders for the statements of [`crate::translate`]
//! and [`crate::mutate`], and the quoting every identifier and literal goes through.

use std::fmt::Write as _;

use async_graphql::Value;
use polygraph_subgraph_core::filter::{BoolExp, Direction, Operator, OrderBy, ScalarKind};

use crate::ir::{
    Access, AggregateOutput, ErrorKind, Function, ListArgs, Output, Param, ReferenceOutput, Result,
    Statement, TableAccess, TranslateError,
};
use crate::model::{ColumnModel, Model, TableModel};

/// The column a nested list numbers its rows in, to keep their order through `json_agg`.
const ORDINAL: &str = "\"__polygraph_ordinal\"";

pub(crate) struct Builder<'m> {
    model: &'m Model,
    access: &'m Access,
    params: Vec<Param>,
    aliases: usize,
}

impl<'m> Builder<'m> {
    pub(crate) fn new(model: &'m Model, access: &'m Access) -> Self {
        Self {
            model,
            access,
            params: Vec::new(),
            aliases: 0,
        }
    }

    pub(crate) fn finish(self, sql: String) -> Statement {
        Statement {
            sql,
            params: self.params,
        }
    }

    pub(crate) fn alias(&mut self) -> String {
        let alias = format!("t{}", self.aliases);
        self.aliases += 1;
        alias
    }

    pub(crate) fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    pub(crate) fn table(&self, table: usize) -> &'m TableModel {
        &self.model.tables[table]
    }

    /// ` AND (rule)` for a table read under `alias`, empty where no rule applies; an error where
    /// the table is denied.
    pub(crate) fn restrict(&mut self, table: usize, alias: &str) -> Result<String> {
        match self.access.of(table).clone() {
            TableAccess::All => Ok(String::new()),
            TableAccess::Rows(rule) => Ok(format!(" AND {}", self.condition(table, alias, &rule)?)),
            TableAccess::Denied(message) => Err(TranslateError {
                message,
                kind: ErrorKind::Unauthenticated,
            }),
        }
    }

    /// An error where the table is denied to this request.
    pub(crate) fn allowed(&self, table: usize) -> Result<()> {
        match self.access.of(table) {
            TableAccess::Denied(message) => Err(TranslateError {
                message: message.clone(),
                kind: ErrorKind::Unauthenticated,
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn from(&self, table: usize, alias: &str) -> String {
        format!(
            "{}.{} {alias}",
            quote(&self.model.schema),
            quote(&self.table(table).table)
        )
    }

    /// The document of one object: `row_to_json` of its fields (see [`row_object`]).
    pub(crate) fn document(
        &mut self,
        table: usize,
        alias: &str,
        fields: &[Output],
    ) -> Result<String> {
        Ok(row_object(&self.document_pairs(table, alias, fields)?))
    }

    /// Each field's response key and SQL value, for [`row_object`].
    pub(crate) fn document_pairs<'f>(
        &mut self,
        table: usize,
        alias: &str,
        fields: &'f [Output],
    ) -> Result<Vec<(&'f str, String)>> {
        let mut pairs = Vec::with_capacity(fields.len());
        for field in fields {
            let (key, value) = match field {
                Output::Column { key, column } => (key, self.column_value(table, alias, *column)),
                Output::Reference {
                    key,
                    reference,
                    fields,
                } => (key, self.reference(table, alias, *reference, fields)),
                Output::Typename { key, type_name } => (key, literal(type_name)),
                Output::Object {
                    key,
                    relationship,
                    fields,
                } => (key, self.object(table, alias, *relationship, fields)?),
                Output::Array {
                    key,
                    relationship,
                    args,
                    fields,
                } => (key, self.array(table, alias, *relationship, args, fields)?),
                Output::Aggregate {
                    key,
                    relationship,
                    args,
                    fields,
                } => (
                    key,
                    self.nested_aggregate(table, alias, *relationship, args, fields)?,
                ),
            };
            pairs.push((key.as_str(), value));
        }
        Ok(pairs)
    }

    /// A column's value in a document: `ID`s as text.
    pub(crate) fn column_value(&self, table: usize, alias: &str, column: usize) -> String {
        let column = &self.table(table).columns[column];
        let reference = format!("{alias}.{}", quote(&column.column));
        if column.kind == ScalarKind::Id {
            format!("{reference}::text")
        } else {
            reference
        }
    }

    /// A reference's document: null when its column is.
    pub(crate) fn reference(
        &self,
        table: usize,
        alias: &str,
        reference: usize,
        fields: &[ReferenceOutput],
    ) -> String {
        let table_model = self.table(table);
        let holder = &table_model.references[reference];
        let column = format!(
            "{alias}.{}",
            quote(&table_model.columns[holder.column].column)
        );
        let pairs: Vec<(&str, String)> = fields
            .iter()
            .map(|field| match field {
                ReferenceOutput::Typename { key, type_name } => (key.as_str(), literal(type_name)),
                ReferenceOutput::Key { key } => (key.as_str(), format!("{column}::text")),
                ReferenceOutput::Provided { key, column } => {
                    (key.as_str(), self.column_value(table, alias, *column))
                }
            })
            .collect();
        format!(
            "CASE WHEN {column} IS NULL THEN NULL ELSE {} END",
            row_object(&pairs)
        )
    }

    pub(crate) fn join(
        &self,
        table: usize,
        alias: &str,
        relationship: usize,
        target_alias: &str,
    ) -> String {
        let relationship = &self.table(table).relationships[relationship];
        let target = self.table(relationship.target);
        relationship
            .mapping
            .iter()
            .map(|(here, there)| {
                format!(
                    "{target_alias}.{} = {alias}.{}",
                    quote(&target.columns[*there].column),
                    quote(&self.table(table).columns[*here].column)
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    pub(crate) fn object(
        &mut self,
        table: usize,
        alias: &str,
        relationship: usize,
        fields: &[Output],
    ) -> Result<String> {
        let target = self.table(table).relationships[relationship].target;
        let inner = self.alias();
        let document = self.document(target, &inner, fields)?;
        let from = self.from(target, &inner);
        let join = self.join(table, alias, relationship, &inner);
        let restriction = self.restrict(target, &inner)?;
        Ok(format!(
            "(SELECT {document} FROM {from} WHERE {join}{restriction} LIMIT 1)"
        ))
    }

    pub(crate) fn array(
        &mut self,
        table: usize,
        alias: &str,
        relationship: usize,
        args: &ListArgs,
        fields: &[Output],
    ) -> Result<String> {
        let target = self.table(table).relationships[relationship].target;
        let join = |this: &Self, inner: &str| this.join(table, alias, relationship, inner);
        self.rows_array(target, &join, args, fields)
    }

    /// The JSON array of the documents of `target`'s rows that `join` (given their alias)
    /// selects, filtered, sorted and limited by `args`.
    pub(crate) fn rows_array(
        &mut self,
        target: usize,
        join: &dyn Fn(&Self, &str) -> String,
        args: &ListArgs,
        fields: &[Output],
    ) -> Result<String> {
        let inner = self.alias();
        let document = self.document(target, &inner, fields)?;
        let from = self.from(target, &inner);
        let join = join(self, &inner);
        let condition =
            self.condition(target, &inner, &args.filter)? + &self.restrict(target, &inner)?;
        let order = self.order(target, &inner, &args.order_by)?;
        // As in `list`: limit the rows first, then build documents for the survivors only.
        let mut rows = format!(
            "SELECT {inner}.*, row_number() OVER ({}) AS {ORDINAL} FROM {from} WHERE {join} AND {condition}{order}",
            order.trim_start()
        );
        self.limit_offset(&mut rows, args);
        Ok(format!(
            "(SELECT coalesce(json_agg({document} ORDER BY {inner}.{ORDINAL}), '[]'::json) FROM ({rows}) {inner})"
        ))
    }

    pub(crate) fn nested_aggregate(
        &mut self,
        table: usize,
        alias: &str,
        relationship: usize,
        args: &ListArgs,
        fields: &[AggregateOutput],
    ) -> Result<String> {
        let target = self.table(table).relationships[relationship].target;
        let join = |this: &Self, inner: &str| this.join(table, alias, relationship, inner);
        self.rows_aggregate(target, &join, args, fields)
    }

    /// The aggregate document over `target`'s rows that `join` (given their alias) selects.
    pub(crate) fn rows_aggregate(
        &mut self,
        target: usize,
        join: &dyn Fn(&Self, &str) -> String,
        args: &ListArgs,
        fields: &[AggregateOutput],
    ) -> Result<String> {
        let inner = self.alias();
        let from = self.from(target, &inner);
        let join = join(self, &inner);
        let condition =
            self.condition(target, &inner, &args.filter)? + &self.restrict(target, &inner)?;
        let rows = self.filtered_rows(
            target,
            &inner,
            &from,
            &format!("{join} AND {condition}"),
            args,
        )?;
        let set = self.alias();
        let document = self.aggregate_document(target, &set, fields);
        // One row, whatever is selected (see `translate::aggregate`).
        Ok(format!(
            "(SELECT {document} FROM ({rows}) {set} GROUP BY ())"
        ))
    }

    /// The rows an aggregate runs over: filtered, and limited if the arguments say so.
    pub(crate) fn filtered_rows(
        &mut self,
        table: usize,
        alias: &str,
        from: &str,
        condition: &str,
        args: &ListArgs,
    ) -> Result<String> {
        let mut rows = format!("SELECT {alias}.* FROM {from} WHERE {condition}");
        if args.limit.is_some() || args.offset.is_some() {
            rows.push_str(&self.order(table, alias, &args.order_by)?);
            self.limit_offset(&mut rows, args);
        }
        Ok(rows)
    }

    pub(crate) fn aggregate_document(
        &self,
        table: usize,
        set: &str,
        fields: &[AggregateOutput],
    ) -> String {
        let columns = &self.table(table).columns;
        let pairs: Vec<String> = fields
            .iter()
            .map(|field| match field {
                AggregateOutput::Count { key } => format!("{}, count(*)", literal(key)),
                AggregateOutput::Typename { key, type_name } => {
                    format!("{}, {}", literal(key), literal(type_name))
                }
                AggregateOutput::Function {
                    key,
                    function,
                    columns: selected,
                } => {
                    let inner: Vec<String> = selected
                        .iter()
                        .map(|(key, column)| {
                            let reference = format!("{set}.{}", quote(&columns[*column].column));
                            let value = match function {
                                // Sums of integers are numerics; averages are always fractional.
                                Function::Sum | Function::Avg => {
                                    format!("{}({reference})::float8", function.name())
                                }
                                Function::Min | Function::Max => {
                                    format!("{}({reference})", function.name())
                                }
                            };
                            format!("{}, {value}", literal(key))
                        })
                        .collect();
                    format!("{}, {}", literal(key), build_object(&inner))
                }
            })
            .collect();
        build_object(&pairs)
    }

    /// Rows strictly after `values` in the order `keys`: for keys k1…kn, the disjunction over i
    /// of (k1…k(i-1) equal and ki after vi), with nulls where PostgreSQL sorts them (last when
    /// ascending, first when descending, unless the direction says).
    pub(crate) fn after(
        &mut self,
        table: usize,
        alias: &str,
        keys: &[(usize, Direction)],
        values: &[Value],
    ) -> Result<String> {
        let columns = &self.table(table).columns;
        let mut disjuncts = Vec::with_capacity(keys.len());
        let mut equal_so_far: Vec<String> = Vec::new();
        for ((column, direction), value) in keys.iter().zip(values) {
            let column_model = &columns[*column];
            let reference = format!("{alias}.{}", quote(&column_model.column));
            let descending = matches!(
                direction,
                Direction::Desc | Direction::DescNullsFirst | Direction::DescNullsLast
            );
            let nulls_first = matches!(
                direction,
                Direction::Desc | Direction::DescNullsFirst | Direction::AscNullsFirst
            );
            let (strictly_after, equal) = match text(column_model, value)? {
                None => (
                    if nulls_first {
                        format!("{reference} IS NOT NULL")
                    } else {
                        "false".to_owned()
                    },
                    format!("{reference} IS NULL"),
                ),
                Some(text) => {
                    let param = self.bind(Param::Text(Some(text)));
                    let typed = format!("{param}::{}", column_model.sql_type);
                    let base =
                        format!("{reference} {} {typed}", if descending { "<" } else { ">" });
                    let after = if nulls_first {
                        base
                    } else {
                        format!("({base} OR {reference} IS NULL)")
                    };
                    (after, format!("{reference} = {typed}"))
                }
            };
            let mut terms = equal_so_far.clone();
            terms.push(strictly_after);
            disjuncts.push(format!("({})", terms.join(" AND ")));
            equal_so_far.push(equal);
        }
        Ok(format!("({})", disjuncts.join(" OR ")))
    }

    /// ` ORDER BY …`; the primary key when the request gives no order, so pages are stable.
    pub(crate) fn order(&self, table: usize, alias: &str, order_by: &[OrderBy]) -> Result<String> {
        let model = self.table(table);
        let mut keys = Vec::new();
        for key in order_by {
            // A guarded column's order would reveal its values past its guard.
            let (_, column) = model.filterable(&key.field).ok_or_else(|| {
                TranslateError::input(format!("cannot order {} by {}", model.type_name, key.field))
            })?;
            let direction = match key.direction {
                Direction::Asc => "ASC",
                Direction::Desc => "DESC",
                Direction::AscNullsFirst => "ASC NULLS FIRST",
                Direction::AscNullsLast => "ASC NULLS LAST",
                Direction::DescNullsFirst => "DESC NULLS FIRST",
                Direction::DescNullsLast => "DESC NULLS LAST",
            };
            keys.push(format!("{alias}.{} {direction}", quote(&column.column)));
        }
        if keys.is_empty() {
            keys = model
                .primary_key
                .iter()
                .map(|column| format!("{alias}.{} ASC", quote(&model.columns[*column].column)))
                .collect();
        }
        Ok(if keys.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", keys.join(", "))
        })
    }

    pub(crate) fn limit_offset(&self, sql: &mut String, args: &ListArgs) {
        let limit = args
            .limit
            .unwrap_or(self.model.max_limit)
            .min(self.model.max_limit);
        let _ = write!(sql, " LIMIT {limit}");
        if let Some(offset) = args.offset.filter(|offset| *offset > 0) {
            let _ = write!(sql, " OFFSET {offset}");
        }
    }

    /// The SQL of a `where` expression over `alias`.
    pub(crate) fn condition(&mut self, table: usize, alias: &str, exp: &BoolExp) -> Result<String> {
        Ok(match exp {
            BoolExp::And(parts) if parts.is_empty() => "true".to_owned(),
            BoolExp::Or(parts) if parts.is_empty() => "false".to_owned(),
            BoolExp::And(parts) | BoolExp::Or(parts) => {
                let joiner = if matches!(exp, BoolExp::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = parts
                    .iter()
                    .map(|part| self.condition(table, alias, part))
                    .collect::<Result<Vec<_>>>()?;
                format!("({})", parts.join(joiner))
            }
            BoolExp::Not(inner) => format!("NOT {}", self.condition(table, alias, inner)?),
            BoolExp::Compare {
                field,
                operator,
                value,
            } => self.compare(table, alias, field, *operator, value)?,
            BoolExp::Related {
                relationship,
                predicate,
            } => {
                let model = self.table(table);
                let index = model
                    .relationships
                    .iter()
                    .position(|r| &r.name == relationship)
                    .ok_or_else(|| {
                        TranslateError::input(format!(
                            "{} has no relationship {relationship}",
                            model.type_name
                        ))
                    })?;
                let target = model.relationships[index].target;
                let inner = self.alias();
                let from = self.from(target, &inner);
                let join = self.join(table, alias, index, &inner);
                let predicate = self.condition(target, &inner, predicate)?;
                let restriction = self.restrict(target, &inner)?;
                format!("EXISTS (SELECT 1 FROM {from} WHERE {join} AND {predicate}{restriction})")
            }
        })
    }

    pub(crate) fn compare(
        &mut self,
        table: usize,
        alias: &str,
        field: &str,
        operator: Operator,
        value: &Value,
    ) -> Result<String> {
        let model = self.table(table);
        // A guarded column cannot be filtered on: the matches would reveal its values.
        let (_, column) = model.filterable(field).ok_or_else(|| {
            TranslateError::input(format!("{} has no field {field}", model.type_name))
        })?;
        let reference = format!("{alias}.{}", quote(&column.column));
        let sql_type = &column.sql_type;
        Ok(match operator {
            Operator::IsNull => {
                if matches!(value, Value::Boolean(true)) {
                    format!("{reference} IS NULL")
                } else {
                    format!("{reference} IS NOT NULL")
                }
            }
            Operator::In | Operator::Nin => {
                let Value::List(items) = value else {
                    return Err(TranslateError::input(format!(
                        "{field}: {} takes a list",
                        operator.graphql_name()
                    )));
                };
                let texts = items
                    .iter()
                    .map(|item| text(column, item))
                    .collect::<Result<Vec<_>>>()?;
                let param = self.bind(Param::TextArray(texts));
                let test = format!("{reference} = ANY({param}::{sql_type}[])");
                if operator == Operator::Nin {
                    format!("NOT coalesce({test}, false)")
                } else {
                    test
                }
            }
            Operator::Like | Operator::ILike => {
                let param = self.bind(Param::Text(text(column, value)?));
                let keyword = if operator == Operator::Like {
                    "LIKE"
                } else {
                    "ILIKE"
                };
                format!("{reference}::text {keyword} {param}")
            }
            Operator::Contains => {
                return Err(TranslateError::input(format!(
                    "{field}: _contains applies to list fields"
                )));
            }
            _ => {
                let param = self.bind(Param::Text(text(column, value)?));
                let symbol = match operator {
                    Operator::Eq => "=",
                    Operator::Neq => "<>",
                    Operator::Gt => ">",
                    Operator::Gte => ">=",
                    Operator::Lt => "<",
                    _ => "<=",
                };
                // `<>` treats NULL as unknown; Hasura-style `_neq` keeps rows whose value is null.
                if operator == Operator::Neq {
                    format!("{reference} IS DISTINCT FROM {param}::{sql_type}")
                } else {
                    format!("{reference} {symbol} {param}::{sql_type}")
                }
            }
        })
    }
}

/// A request value as the text PostgreSQL casts to the column's type; integers checked here so
/// a bad id is a clean error, not a database one.
pub(crate) fn text(column: &ColumnModel, value: &Value) -> Result<Option<String>> {
    let rendered = match value {
        Value::Null => return Ok(None),
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Boolean(flag) => flag.to_string(),
        Value::Enum(name) => name.to_string(),
        Value::List(_) | Value::Object(_) => value
            .clone()
            .into_json()
            .map_err(|error| TranslateError::input(format!("{}: {error}", column.field)))?
            .to_string(),
        Value::Binary(_) => {
            return Err(TranslateError::input(format!(
                "{}: binary values are not supported",
                column.field
            )));
        }
    };
    if column.integral {
        return normalize_key(column, &rendered).map(Some);
    }
    Ok(Some(rendered))
}

/// `json_build_object('key', value, …)`, for documents of aggregates (whose values, such as
/// `count(*)`, must stay in the query they aggregate over) and of mutation responses. It
/// takes at most 100 arguments: wider documents are concatenated as `jsonb`.
pub(crate) fn build_object(pairs: &[String]) -> String {
    match pairs.len() {
        0 => "'{}'::json".to_owned(),
        1..=50 => format!("json_build_object({})", pairs.join(", ")),
        _ => {
            let chunks: Vec<String> = pairs
                .chunks(50)
                .map(|chunk| format!("jsonb_build_object({})", chunk.join(", ")))
                .collect();
            format!("({})::json", chunks.join(" || "))
        }
    }
}

/// The longest identifier PostgreSQL keeps whole (`NAMEDATALEN - 1` bytes).
const MAX_IDENTIFIER: usize = 63;

/// A row's document: `row_to_json` of a one-row subquery with a column per response key,
/// keys in the order given. A key too long for an identifier (an alias of more than 63
/// bytes) takes [`build_object`] instead.
pub(crate) fn row_object(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return "'{}'::json".to_owned();
    }
    if pairs.iter().any(|(key, _)| key.len() > MAX_IDENTIFIER) {
        let pairs: Vec<String> = pairs
            .iter()
            .map(|(key, value)| format!("{}, {value}", literal(key)))
            .collect();
        return build_object(&pairs);
    }
    // `_doc.*`, not `_doc`: a bare name is a column first, and a response key (or a column of
    // an enclosing query) may be called `_doc`.
    let mut columns = String::new();
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            columns.push_str(", ");
        }
        let _ = write!(columns, "{value} AS {}", quote(key));
    }
    format!("(SELECT row_to_json(_doc.*) FROM (SELECT {columns}) _doc)")
}

/// A quoted SQL identifier.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A quoted SQL string literal, for keys and type names that come from the schema.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A key value as the database renders it as text, so rows match representations: integers are
/// sent by some gateways as numbers and by others as strings, with or without leading zeros.
pub fn normalize_key(column: &ColumnModel, value: &str) -> Result<String> {
    if column.sql_type == "uuid" {
        // PostgreSQL writes UUIDs in lower case.
        return Ok(value.trim().to_ascii_lowercase());
    }
    if column.integral {
        value
            .trim()
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| {
                TranslateError::input(format!("{}: {value:?} is not an integer", column.field))
            })
    } else {
        Ok(value.to_owned())
    }
}
