//! The search subgraph's one execution path: each search field one `_search`, `_entities` one
//! `_mget` for every representation, the answers shaped by the schema's own types (see
//! [`polygraph_subgraph_core::engine`]).

use async_graphql::Value;
use elasticsearch::SearchParts;
use futures::future::BoxFuture;
use polygraph_subgraph_core::engine::{Engine, FieldError, Operation, Resolved};
use polygraph_subgraph_core::selection::SelectedField;
use serde_json::Value as Json;

use crate::client::Client;
use crate::search::{fetch_entities, not_found, parse_search, restrict, result};

/// The search engine.
pub(crate) struct Searches {
    pub(crate) client: Client,
}

impl Engine for Searches {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let response = self
                .client
                .server
                .ping()
                .send()
                .await
                .map_err(|error| error.to_string())?;
            if response.status_code().is_success() {
                Ok(())
            } else {
                Err(format!("answered HTTP {}", response.status_code()))
            }
        })
    }

    fn resolve<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> BoxFuture<'a, Resolved> {
        Box::pin(async move {
            if field.name == "_entities" {
                return self.entities(operation, field).await;
            }
            let model = &self.client.model;
            match model
                .indices
                .iter()
                .position(|index| index.search_field == field.name)
            {
                Some(position) => self.search(operation, field, position).await.into(),
                None => Resolved::not_answered(field),
            }
        })
    }
}

impl Searches {
    /// A search: one `_search`, its hits, totals and facets within the index's row rule.
    async fn search(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        position: usize,
    ) -> Result<Json, FieldError> {
        let model = &self.client.model;
        let mut search = parse_search(model, position, &field.arguments)?;
        restrict(model, position, operation.claims, &mut search)?;
        let result_type = format!("{}SearchResult", model.entity(position).type_name);
        search.highlight = asks_for_highlights(operation, field, &result_type)?;
        let index = &model.indices[position];
        let body = crate::query::body(index, &search);
        tracing::debug!(%body, "search");
        let mut answer = self
            .client
            .send(
                || format!("search {} {body}", index.index),
                self.client
                    .server
                    .search(SearchParts::Index(&[&index.index]))
                    .body(body.clone())
                    .send(),
            )
            .await?;
        let value = result(index, &search, &mut answer);
        operation.shape(&field.selection_sets, &result_type, &value)
    }

    /// `_entities`: one `_mget`; a key without a (visible) document is null, with a
    /// `NOT_FOUND` error at its index.
    async fn entities(&self, operation: &Operation<'_>, field: &SelectedField<'_>) -> Resolved {
        let model = &self.client.model;
        let representations = field.argument("representations").unwrap_or(&Value::Null);
        let found = match fetch_entities(&self.client, representations, operation.claims).await {
            Ok(found) => found,
            Err(error) => return Resolved::failed(error),
        };
        let shaper = operation.shaper(&field.selection_sets);
        let mut items = Vec::with_capacity(found.len());
        let mut errors = Vec::new();
        for (i, (position, key, source)) in found.into_iter().enumerate() {
            let Some(source) = source else {
                let missing = FieldError::new(not_found(model, position, &key)).code("NOT_FOUND");
                errors.push(missing.at(i));
                items.push(Json::Null);
                continue;
            };
            let type_name = &model.entity(position).type_name;
            match shaper.shape(type_name, &source) {
                Ok(item) => items.push(item),
                Err(error) => return Resolved::failed(error),
            }
        }
        Resolved::json(Json::Array(items)).with_errors(errors)
    }
}

/// Whether a search's selection reaches `hits { highlights }`.
fn asks_for_highlights(
    operation: &Operation<'_>,
    field: &SelectedField<'_>,
    result_type: &str,
) -> Result<bool, FieldError> {
    let walker = operation.walker();
    for selected in walker.collect(&field.selection_sets, result_type)? {
        let Some(hit_type) = operation.composite_type_of(result_type, selected.name) else {
            continue;
        };
        if selected.name == "hits"
            && walker
                .collect(&selected.selection_sets, hit_type)?
                .iter()
                .any(|part| part.name == "highlights")
        {
            return Ok(true);
        }
    }
    Ok(false)
}
