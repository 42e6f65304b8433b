//! Why a set of subgraphs does not compose: each error with a code (Apollo's, where Apollo
//! names the problem), the subgraph it is in and the schema coordinate it is about.

use std::fmt;

/// One reason a composition failed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Error {
    /// `INVALID_FIELD_SHARING`, `REQUIRES_INVALID_FIELDS`, … (Apollo's composition codes).
    pub code: &'static str,
    /// The subgraph at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subgraph: Option<String>,
    /// `Type`, `Type.field`, `Type.field(argument:)` or `@directive`, when the error is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinate: Option<String>,
    pub message: String,
}

impl Error {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            subgraph: None,
            coordinate: None,
            message: message.into(),
        }
    }

    pub(crate) fn in_subgraph(mut self, subgraph: &str) -> Self {
        self.subgraph = Some(subgraph.to_owned());
        self
    }

    pub(crate) fn at(mut self, coordinate: impl Into<String>) -> Self {
        self.coordinate = Some(coordinate.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.code)?;
        if let Some(subgraph) = &self.subgraph {
            write!(f, " subgraph {subgraph:?}")?;
        }
        if let Some(coordinate) = &self.coordinate {
            write!(f, " at {coordinate}")?;
        }
        write!(f, ": {}", self.message)
    }
}
