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
use polygraph_subgraph_core::filter::{BoolExp, Direction, Operator, OrderBy, ScalarKind};

use crate::model::{ColumnModel, Model, TableModel};

/// A statement and its parameters, in order (`$1` is `params[0]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
}

/// A bound parameter, sent as text (or an array of text) and cast in SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Text(Option<String>),
    TextArray(Vec<Option<String>>),
}

/// The standard arguments of a list field.
#[derive(Clone, Debug, PartialEq)]
pub struct ListArgs {
    pub filter: BoolExp,
    pub order_by: Vec<OrderBy>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

impl Default for ListArgs {
    fn default() -> Self {
        Self {
            filter: BoolExp::always(),
            order_by: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

/// One field of an object's output document.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Column {
        key: String,
        column: usize,
    },
    Typename {
        key: String,
        type_name: String,
    },
    Object {
        key: String,
        relationship: usize,
        fields: Vec<Output>,
    },
    Array {
        key: String,
        relationship: usize,
        args: ListArgs,
        fields: Vec<Output>,
    },
    Aggregate {
        key: String,
        relationship: usize,
        args: ListArgs,
        fields: Vec<AggregateOutput>,
    },
    /// A column holding another subgraph's entity key, as that entity (null when the column
    /// is): its `__typename`, key and the fields the table keeps copies of.
    Reference {
        key: String,
        reference: usize,
        fields: Vec<ReferenceOutput>,
    },
}

/// One field of a reference's document.
#[derive(Clone, Debug, PartialEq)]
pub enum ReferenceOutput {
    Typename {
        key: String,
        type_name: String,
    },
    Key {
        key: String,
    },
    /// A provided field, from the column holding its copy.
    Provided {
        key: String,
        column: usize,
    },
}

pub use polygraph_subgraph_core::aggregate::Function;

/// One field of an aggregate's output document.
#[derive(Clone, Debug, PartialEq)]
pub enum AggregateOutput {
    Count {
        key: String,
    },
    Typename {
        key: String,
        type_name: String,
    },
    Function {
        key: String,
        function: Function,
        columns: Vec<(String, usize)>,
    },
}

/// A request the database cannot answer as asked: a bad value for a column's type, or a name
/// the model lacks. Safe to show to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct TranslateError {
    pub message: String,
    pub kind: ErrorKind,
}

/// Whose fault a translation error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request asks for something the schema or a column's type does not allow.
    Input,
    /// A table with a row rule was read without the verified claims the rule needs.
    Unauthenticated,
    /// A write would put a row outside what the row rule lets the request see.
    Forbidden,
}

impl TranslateError {
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: ErrorKind::Input,
        }
    }
}

/// What the requester may see of each table, decided by the row rules and the request's
/// verified claims before translation. Every statement that reads a table, at any depth (root
/// lists, relationships, aggregates, filters through relationships, `_entities`, updates and
/// deletes), adds the table's condition to its `WHERE`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Access {
    /// Indexed like [`Model::tables`]; empty means no table is restricted.
    pub tables: Vec<TableAccess>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TableAccess {
    All,
    /// Only rows meeting the condition, whose values are the claims'.
    Rows(BoolExp),
    /// No rows: the table has a rule and the request has no verified claims.
    Denied(String),
}

impl Access {
    /// No restriction on any table.
    pub fn unrestricted() -> Self {
        Self::default()
    }

    fn of(&self, table: usize) -> &TableAccess {
        self.tables.get(table).unwrap_or(&TableAccess::All)
    }
}

type Result<T> = std::result::Result<T, TranslateError>;

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

/// The column a nested list numbers its rows in, to keep their order through `json_agg`.
const ORDINAL: &str = "\"__polygraph_ordinal\"";

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
    Ok(builder.finish(format!(
        "SELECT {document}::text AS doc FROM ({inner}) {set}"
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

    fn table(&self, table: usize) -> &'m TableModel {
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
    fn document_pairs<'f>(
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
    fn column_value(&self, table: usize, alias: &str, column: usize) -> String {
        let column = &self.table(table).columns[column];
        let reference = format!("{alias}.{}", quote(&column.column));
        if column.kind == ScalarKind::Id {
            format!("{reference}::text")
        } else {
            reference
        }
    }

    /// A reference's document: null when its column is.
    fn reference(
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

    fn join(&self, table: usize, alias: &str, relationship: usize, target_alias: &str) -> String {
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

    fn object(
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

    fn array(
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
    fn rows_array(
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

    fn nested_aggregate(
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
    fn rows_aggregate(
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
        Ok(format!("(SELECT {document} FROM ({rows}) {set})"))
    }

    /// The rows an aggregate runs over: filtered, and limited if the arguments say so.
    fn filtered_rows(
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

    fn aggregate_document(&self, table: usize, set: &str, fields: &[AggregateOutput]) -> String {
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
    fn after(
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
    fn order(&self, table: usize, alias: &str, order_by: &[OrderBy]) -> Result<String> {
        let model = self.table(table);
        let mut keys = Vec::new();
        for key in order_by {
            let (_, column) = model.column(&key.field).ok_or_else(|| {
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

    fn limit_offset(&self, sql: &mut String, args: &ListArgs) {
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

    fn compare(
        &mut self,
        table: usize,
        alias: &str,
        field: &str,
        operator: Operator,
        value: &Value,
    ) -> Result<String> {
        let model = self.table(table);
        let (_, column) = model.column(field).ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use async_graphql::value;

    use super::*;
    use crate::model::tests::shop_model;

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
