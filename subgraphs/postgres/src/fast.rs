//! The fast path: root fields answered with their response JSON whole.
//!
//! The translated statement already returns each root field's value shaped like the response
//! (response keys, nested objects and lists, `__typename`), so walking it field by field
//! through async-graphql's resolvers adds work without adding anything: about 2.8 µs per object
//! in the benchmark, twice the database's own time for a page of rows. This extension's
//! `resolve` hook answers root `Query` fields of this subgraph directly and returns the value,
//! so async-graphql skips the nested resolution. Parsing, validation, introspection, `_service`
//! and mutations keep the regular path. A field whose answer fails reports its error here, with
//! its location and path. `_entities` cannot take this path:
//! async-graphql calls the entity resolver outside the extension chain.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextResolve,
    ResolveInfo,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{Response, ServerResult, Value, Variables};
use polygraph_subgraph_core::claims::RequestClaims;
use polygraph_subgraph_core::entities::{entities_field, only_root_field};
use polygraph_subgraph_core::selection::Walker;
use polygraph_subgraph_core::server::Answer;
use polygraph_subgraph_core::values::to_value;

use crate::root::{self, RootKind, root_of};
use crate::schema::State;

/// Registers the fast path on a schema.
pub(crate) struct FastPath(pub(crate) Arc<State>);

impl ExtensionFactory for FastPath {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FastPathExtension {
            state: self.0.clone(),
            request: Mutex::new(None),
            operation_name: Mutex::new(None),
        })
    }
}

/// What `resolve` needs of the request: its document and variables.
struct Captured {
    document: ExecutableDocument,
    variables: Variables,
}

struct FastPathExtension {
    state: Arc<State>,
    request: Mutex<Option<Arc<Captured>>>,
    operation_name: Mutex<Option<String>>,
}

impl FastPathExtension {
    /// Whether any operation of `document` selects a root field this path answers.
    fn answers_any(&self, document: &ExecutableDocument) -> bool {
        use async_graphql::parser::types::{OperationType, Selection};
        let operations: Vec<_> = match &document.operations {
            DocumentOperations::Single(operation) => vec![operation],
            DocumentOperations::Multiple(operations) => operations.values().collect(),
        };
        operations.iter().any(|operation| {
            operation.node.ty == OperationType::Query
                && operation
                    .node
                    .selection_set
                    .node
                    .items
                    .iter()
                    .any(|selection| match &selection.node {
                        Selection::Field(field) => {
                            root_of(&self.state.model, &field.node.name.node).is_some()
                        }
                        // A root field behind a fragment may be ours: keep the copy.
                        Selection::FragmentSpread(_) | Selection::InlineFragment(_) => true,
                    })
        })
    }

    fn captured(&self) -> Option<Arc<Captured>> {
        self.request.lock().ok().and_then(|guard| guard.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for FastPathExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        // Keep a copy only when the fast path may answer something: `_entities`, mutations and
        // introspection (with their possibly large variables) need none.
        if !self.answers_any(&document) {
            return Ok(document);
        }
        if let Ok(mut guard) = self.request.lock() {
            *guard = Some(Arc::new(Captured {
                document: document.clone(),
                variables: variables.clone(),
            }));
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Ok(mut guard) = self.operation_name.lock() {
            *guard = operation_name.map(ToOwned::to_owned);
        }
        next.run(ctx, operation_name).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let root_field = info.path_node.parent.is_none() && info.parent_type == "Query";
        let target = root_field
            .then(|| root_of(&self.state.model, info.name))
            .flatten();
        let (Some((table, kind)), Some(captured)) = (target, self.captured()) else {
            return next.run(ctx, info).await;
        };
        let operation = match &captured.document.operations {
            DocumentOperations::Single(operation) => Some(operation),
            DocumentOperations::Multiple(operations) => {
                let name = self
                    .operation_name
                    .lock()
                    .ok()
                    .and_then(|guard| guard.clone());
                name.and_then(|name| operations.get(name.as_str()))
            }
        };
        let Some(operation) = operation else {
            return next.run(ctx, info).await;
        };
        let walker = Walker::from_parts(
            &captured.document.fragments,
            &captured.variables,
            &operation.node.variable_definitions,
        );
        let claims = ctx
            .data_opt::<RequestClaims>()
            .and_then(|claims| claims.0.as_ref());
        match root::answer(&self.state, table, kind, &walker, info.field, claims).await {
            Ok(json) => Ok(Some(to_value(&json))),
            Err(error) => {
                // The error at the field's place, with its path (async-graphql's dynamic
                // execution reports resolver errors without one).
                let key = info.alias.unwrap_or(info.name);
                let position = operation
                    .node
                    .selection_set
                    .node
                    .items
                    .iter()
                    .find_map(|selection| match &selection.node {
                        async_graphql::parser::types::Selection::Field(field)
                            if field.node.response_key().node == key =>
                        {
                            Some(field.pos)
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let mut error = error.into_server_error(position);
                error.path = vec![async_graphql::PathSegment::Field(key.to_owned())];
                Err(error)
            }
        }
    }
}

/// The response to `_entities` with the documents spliced in as PostgreSQL wrote them (no
/// parsing, no copying into values), `null` and a `NOT_FOUND` error for each one missing.
fn written_entities(key: &str, found: Vec<crate::schema::Found>) -> Answer {
    let size: usize = found
        .iter()
        .map(|(_, document)| document.as_ref().map_or(4, String::len) + 1)
        .sum();
    let mut body = String::with_capacity(size + key.len() + 32);
    let _ = write!(body, "{{\"data\":{{{}:[", serde_json::Value::from(key));
    let mut errors = Vec::new();
    for (index, (_, document)) in found.into_iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        match document {
            Ok(document) => body.push_str(&document),
            Err(message) => {
                body.push_str("null");
                errors.push(serde_json::json!({
                    "message": message,
                    "path": [key, index],
                    "extensions": { "code": "NOT_FOUND" },
                }));
            }
        }
    }
    body.push_str("]}");
    let has_errors = !errors.is_empty();
    if has_errors {
        let _ = write!(body, ",\"errors\":{}", serde_json::Value::Array(errors));
    }
    body.push('}');
    Answer::Written {
        body,
        errors: has_errors,
    }
}

/// The prepared path for `_entities`, the gateway's hot path, and for single root fields
/// (lists, aggregates, lookups by key): async-graphql calls the entity resolver outside the
/// extension chain, so the HTTP layer asks this directly for query texts the schema has
/// already validated (see `polygraph_subgraph_core::server::Prepared`). Its answers are the
/// documents PostgreSQL wrote, spliced into the response unparsed.
pub(crate) struct PreparedPath(pub(crate) Arc<State>);

/// Whether every variable is declared `[_Any!]!`: the only kind this path checks itself.
fn only_representation_variables(
    operation: &async_graphql::parser::types::OperationDefinition,
) -> bool {
    operation
        .variable_definitions
        .iter()
        .all(|definition| definition.node.var_type.node.to_string() == "[_Any!]!")
}

/// Whether every variable is of a built-in scalar type and its value fits it: what
/// validation checks of them, which this path does not run. Anything else (lists, input
/// objects, enums) is the regular path's.
fn scalar_variables_fit(
    operation: &async_graphql::parser::types::OperationDefinition,
    variables: &Variables,
) -> bool {
    use async_graphql::parser::types::BaseType;
    operation.variable_definitions.iter().all(|definition| {
        let definition = &definition.node;
        let ty = &definition.var_type.node;
        let BaseType::Named(name) = &ty.base else {
            return false;
        };
        match variables.get(&definition.name.node) {
            None => ty.nullable || definition.default_value.is_some(),
            Some(Value::Null) => ty.nullable,
            Some(value) => match (name.as_str(), value) {
                ("Int", Value::Number(number)) => number
                    .as_i64()
                    .is_some_and(|number| i32::try_from(number).is_ok()),
                ("Float", Value::Number(_))
                | ("String" | "ID", Value::String(_))
                | ("Boolean", Value::Boolean(_)) => true,
                ("ID", Value::Number(number)) => number.is_i64(),
                _ => false,
            },
        }
    })
}

impl PreparedPath {
    /// The table and kind of a root field the written path answers: lists, aggregates and
    /// lookups by key (a connection's cursors come out of its documents).
    fn written_root(
        &self,
        field: &async_graphql::parser::types::Field,
    ) -> Option<(usize, RootKind)> {
        root_of(&self.0.model, &field.name.node).filter(|(_, kind)| *kind != RootKind::Connection)
    }
}

impl polygraph_subgraph_core::server::Prepared for PreparedPath {
    fn eligible(&self, document: &ExecutableDocument) -> bool {
        let names: Vec<Option<&str>> = match &document.operations {
            DocumentOperations::Single(_) => vec![None],
            DocumentOperations::Multiple(operations) => {
                operations.keys().map(|name| Some(name.as_str())).collect()
            }
        };
        names.into_iter().all(|name| {
            entities_field(document, name)
                .is_some_and(|(operation, _)| only_representation_variables(operation))
                || only_root_field(document, name)
                    .is_some_and(|(_, field)| self.written_root(field).is_some())
        })
    }

    fn answer<'a>(
        &'a self,
        document: &'a ExecutableDocument,
        operation_name: Option<&'a str>,
        variables: &'a Variables,
        claims: Option<&'a polygraph_subgraph_core::claims::Claims>,
    ) -> futures::future::BoxFuture<'a, Option<Answer>> {
        Box::pin(async move {
            if let Some((operation, field)) = only_root_field(document, operation_name)
                && let Some((table, kind)) = self.written_root(field)
            {
                if !scalar_variables_fit(operation, variables) {
                    return None;
                }
                let walker = Walker::from_parts(
                    &document.fragments,
                    variables,
                    &operation.variable_definitions,
                );
                // Errors are the regular path's to report.
                let text = root::answer_written(&self.0, table, kind, &walker, field, claims)
                    .await
                    .ok()?;
                let key = serde_json::Value::from(field.response_key().node.as_str());
                return Some(Answer::Written {
                    body: format!("{{\"data\":{{{key}:{text}}}}}"),
                    errors: false,
                });
            }
            let (operation, field) = entities_field(document, operation_name)?;
            if !only_representation_variables(operation) {
                return None;
            }
            // The values themselves must fit `[_Any!]!`, as async-graphql would insist.
            for definition in &operation.variable_definitions {
                match variables.get(&definition.node.name.node) {
                    Some(Value::List(items))
                        if items.iter().all(|item| matches!(item, Value::Object(_))) => {}
                    _ => return None,
                }
            }
            let walker = Walker::from_parts(
                &document.fragments,
                variables,
                &operation.variable_definitions,
            );
            // Borrowed from the variables where they come from one (the gateway's way), not
            // copied.
            let argument = &field.get_argument("representations")?.node;
            let resolved;
            let representations = match argument {
                async_graphql_value::Value::Variable(name) if variables.get(name).is_some() => {
                    variables.get(name)
                }
                literal => {
                    resolved = walker.resolve(literal).ok()?;
                    Some(&resolved)
                }
            };
            let Some(Value::List(representations)) = representations else {
                return None;
            };
            let found = crate::schema::find_entities(
                &self.0,
                &walker,
                &field.selection_set.node,
                representations,
                claims,
            )
            .await
            .ok()?;
            Some(written_entities(field.response_key().node.as_str(), found))
        })
    }
}
