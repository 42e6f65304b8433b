//! The fast path: root fields answered with their response JSON whole.
//!
//! The translated statement already returns each root field's value shaped like the response
//! (response keys, nested objects and lists, `__typename`), so walking it field by field
//! through async-graphql's resolvers adds work without adding anything: about 2.8 µs per object
//! in the benchmark, twice the database's own time for a page of rows. This extension's
//! `resolve` hook answers root `Query` fields of this subgraph directly and returns the value,
//! so async-graphql skips the nested resolution. Parsing, validation, introspection, `_service`
//! and mutations keep the regular path; so does any field whose fast answer fails, which then
//! reports its error with the regular path's locations. `_entities` cannot take this path:
//! async-graphql calls the entity resolver outside the extension chain.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextResolve,
    ResolveInfo,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{Response, ServerResult, Value, Variables};
use polygraph_subgraph_core::claims::RequestClaims;
use polygraph_subgraph_core::selection::Walker;
use polygraph_subgraph_core::values::to_value;

use crate::root::{self, root_of};
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
        let answer = root::answer(&self.state, table, kind, &walker, info.field, claims)
            .await
            .map(|json| to_value(&json))
            .ok();
        match answer {
            Some(value) => Ok(Some(value)),
            None => next.run(ctx, info).await,
        }
    }
}
