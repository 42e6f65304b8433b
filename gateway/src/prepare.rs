//! Parsing and validating an operation against the API schema, with the error codes clients
//! and gateways expect: `GRAPHQL_PARSE_FAILED` for syntax, `GRAPHQL_VALIDATION_FAILED` for an
//! operation the schema does not allow, `GRAPHQL_UNKNOWN_OPERATION_NAME` for an operation name
//! the document lacks. Each error keeps the locations it refers to.

use apollo_compiler::executable::{Operation, Selection, SelectionSet};
use apollo_compiler::validation::{DiagnosticList, Valid};
use apollo_compiler::{ExecutableDocument, Node, Schema};

use crate::errors::Code;

/// An error in the request itself, safe to return to the client as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    pub code: Code,
    pub message: String,
    /// 1-based `(line, column)` of each place the error points at.
    pub locations: Vec<(usize, usize)>,
}

/// A validated operation, ready to plan.
#[derive(Debug)]
pub struct Prepared {
    pub document: Valid<ExecutableDocument>,
}

impl Prepared {
    /// The operation to run: the one named, or the only one.
    pub fn operation(&self, name: Option<&str>) -> Result<&Node<Operation>, RequestError> {
        self.document.operations.get(name).map_err(|_| match name {
            Some(name) => RequestError {
                code: Code::GraphqlUnknownOperationName,
                message: format!("unknown operation named \"{name}\""),
                locations: Vec::new(),
            },
            None => RequestError {
                code: Code::GraphqlValidationFailed,
                message: "the document has several operations: say which with operationName"
                    .to_owned(),
                locations: Vec::new(),
            },
        })
    }
}

/// Parses `query` and validates it against the API schema.
pub fn prepare(api_schema: &Valid<Schema>, query: &str) -> Result<Prepared, Vec<RequestError>> {
    prepare_with_limits(api_schema, query, usize::MAX)
}

/// [`prepare`], refusing documents of more than `max_tokens` tokens before building them.
pub fn prepare_with_limits(
    api_schema: &Valid<Schema>,
    query: &str,
    max_tokens: usize,
) -> Result<Prepared, Vec<RequestError>> {
    let ast = tracing::info_span!("graphql parse").in_scope(|| {
        apollo_compiler::parser::Parser::new()
            .token_limit(max_tokens)
            .recursion_limit(RECURSION_LIMIT)
            .parse_ast(query, "operation.graphql")
            .map_err(|with_errors| errors(Code::GraphqlParseFailed, &with_errors.errors))
    })?;
    let document = tracing::info_span!("graphql validate").in_scope(|| {
        ast.to_executable_validate(api_schema)
            .map_err(|with_errors| errors(Code::GraphqlValidationFailed, &with_errors.errors))
    })?;
    reserved_aliases(&document)?;
    Ok(Prepared { document })
}

/// Refuses aliases that begin with `__` and name another field: names beginning with `__` are
/// reserved for introspection, and the gateway reads `__typename` to know an object's type and
/// to send it in representations, so `__typename: name` must not pass for it.
fn reserved_aliases(document: &ExecutableDocument) -> Result<(), Vec<RequestError>> {
    fn walk(set: &SelectionSet, document: &ExecutableDocument, out: &mut Vec<RequestError>) {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    if let Some(alias) = &field.alias
                        && alias.starts_with("__")
                        && *alias != field.name
                    {
                        out.push(RequestError {
                            code: Code::GraphqlValidationFailed,
                            message: format!(
                                "the alias \"{alias}\" is reserved: aliases beginning with \
                                 \"__\" may only name the field of that name"
                            ),
                            locations: field
                                .line_column_range(&document.sources)
                                .map(|range| vec![(range.start.line, range.start.column)])
                                .unwrap_or_default(),
                        });
                    }
                    walk(&field.selection_set, document, out);
                }
                Selection::InlineFragment(fragment) => {
                    walk(&fragment.selection_set, document, out);
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    for operation in document.operations.iter() {
        walk(&operation.selection_set, document, &mut out);
    }
    for fragment in document.fragments.values() {
        walk(&fragment.selection_set, document, &mut out);
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Nesting the parser follows before it gives up on a document.
const RECURSION_LIMIT: usize = 256;

fn errors(code: Code, diagnostics: &DiagnosticList) -> Vec<RequestError> {
    diagnostics
        .iter()
        .map(|diagnostic| RequestError {
            code,
            message: diagnostic.error.to_string(),
            locations: diagnostic
                .line_column_range()
                .map(|range| vec![(range.start.line, range.start.column)])
                .unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Valid<Schema> {
        Schema::parse_and_validate(
            "type Query { user(id: ID!): User users: [User] }
             type User { id: ID! name: String }",
            "api.graphql",
        )
        .unwrap()
    }

    #[test]
    fn valid_operations_prepare() {
        let prepared = prepare(&api(), "query Q($id: ID!) { user(id: $id) { name } }").unwrap();
        assert_eq!(
            prepared
                .operation(Some("Q"))
                .unwrap()
                .name
                .as_ref()
                .unwrap(),
            "Q"
        );
        assert!(
            prepared.operation(None).is_ok(),
            "the only operation needs no name"
        );
    }

    #[test]
    fn syntax_errors_are_parse_failures_with_locations() {
        let errors = prepare(&api(), "{ user(id: 1) { name }").unwrap_err();
        assert_eq!(errors[0].code, Code::GraphqlParseFailed);
        assert!(!errors[0].locations.is_empty(), "{errors:?}");
    }

    #[test]
    fn schema_violations_are_validation_failures() {
        let errors = prepare(&api(), "{ users { nope } }").unwrap_err();
        assert!(
            errors
                .iter()
                .all(|error| error.code == Code::GraphqlValidationFailed)
        );
        let unknown = errors
            .iter()
            .find(|error| error.message.contains("nope"))
            .expect("names the field");
        assert_eq!(unknown.locations, vec![(1, 11)]);
        let errors = prepare(&api(), "query($id: Int!) { user(id: $id) { name } }").unwrap_err();
        assert_eq!(
            errors[0].code,
            Code::GraphqlValidationFailed,
            "a variable of the wrong type"
        );
    }

    #[test]
    fn operation_names_must_exist() {
        let prepared = prepare(
            &api(),
            "query A { users { id } } query B { users { name } }",
        )
        .unwrap();
        assert_eq!(
            prepared.operation(Some("C")).unwrap_err().code,
            Code::GraphqlUnknownOperationName
        );
        assert_eq!(
            prepared.operation(None).unwrap_err().code,
            Code::GraphqlValidationFailed
        );
        assert!(prepared.operation(Some("B")).is_ok());
    }

    #[test]
    fn aliases_cannot_pass_for_typename() {
        for query in [
            "{ users { __typename: name } }",
            "{ users { ...F } } fragment F on User { __type: name }",
            "{ users { ... on User { __x: id } } }",
        ] {
            let errors = prepare(&api(), query).unwrap_err();
            assert_eq!(errors[0].code, Code::GraphqlValidationFailed, "{query}");
            assert!(errors[0].message.contains("reserved"), "{errors:?}");
            assert!(!errors[0].locations.is_empty(), "{errors:?}");
        }
        prepare(
            &api(),
            "{ users { __typename: __typename kind: __typename } }",
        )
        .expect("an alias for __typename itself, or any other alias of it, is fine");
    }
}
