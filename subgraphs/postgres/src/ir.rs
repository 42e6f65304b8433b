//! The query IR [`crate::lowering`] builds from a request and [`crate::translate`] writes as
//! SQL: a list field's arguments, the output fields of a document, what the request may see
//! of each table, and the statement that comes out, with its parameters.

use polygraph_subgraph_core::filter::{BoolExp, OrderBy};

pub use polygraph_subgraph_core::aggregate::Function;

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
    /// Indexed like [`crate::model::Model::tables`]; empty means no table is restricted.
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

    pub(crate) fn of(&self, table: usize) -> &TableAccess {
        self.tables.get(table).unwrap_or(&TableAccess::All)
    }
}

pub(crate) type Result<T> = std::result::Result<T, TranslateError>;
