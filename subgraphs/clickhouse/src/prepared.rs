//! The prepared path: validated `_entities` requests answered straight from the parsed
//! document. The series statement is the same as the regular path's; what this skips is
//! async-graphql resolving every point's every measure as a field of its own, which for 100
//! products' monthly sales costs about as much as the statement. The server only asks about
//! query texts that passed validation once; any shape this path does not know is left to the
//! regular path (`None`).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use futures::future::BoxFuture;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::entities::{EntitiesRequest, entities_request};
use polygraph_subgraph_core::selection::{SelectedField, Shapes, Walker, shape};
use polygraph_subgraph_core::server::Prepared;
use serde_json::{Map, Value as Json, json};

use crate::model::Model;
use crate::schema::{State, read_ahead};

pub(crate) struct PreparedEntities(pub(crate) Arc<State>);

impl Prepared for PreparedEntities {
    fn eligible(&self, document: &ExecutableDocument) -> bool {
        polygraph_subgraph_core::entities::has_entities_operation(document)
    }

    fn answer<'a>(
        &'a self,
        document: &'a ExecutableDocument,
        operation_name: Option<&'a str>,
        variables: &'a async_graphql::Variables,
        _claims: Option<&'a Claims>,
    ) -> BoxFuture<'a, Option<polygraph_subgraph_core::server::Answer>> {
        Box::pin(async move {
            let state = &self.0;
            let EntitiesRequest {
                field,
                walker,
                representations,
            } = entities_request(document, operation_name, variables)?;
            let references = polygraph_subgraph_core::entities::references_in(
                &representations,
                &state.model.entities,
                "id",
            )
            .ok()?;
            let sets = [&field.selection_set.node];
            let mut selections: HashMap<&str, Vec<SelectedField<'_>>> = HashMap::new();
            for entity in &state.model.entities {
                selections.insert(entity, walker.collect(&sets, entity).ok()?);
            }
            let entities = read_ahead(state, &walker, &sets, references).await.ok()?;
            let mut answers = Vec::with_capacity(entities.len());
            for (typename, id, series) in entities {
                answers.push(entity(
                    &state.model,
                    &walker,
                    &selections[typename.as_str()],
                    &typename,
                    &id,
                    &series,
                )?);
            }
            let key = field.response_key().node.as_str();
            Some(polygraph_subgraph_core::server::Answer::Json(
                json!({ "data": { key: answers } }),
            ))
        })
    }
}

/// One entity's answer, keyed like the request; `None` for a field this path does not know.
fn entity(
    model: &Model,
    walker: &Walker<'_>,
    selected: &[SelectedField<'_>],
    typename: &str,
    id: &str,
    series: &HashMap<String, Arc<Vec<Json>>>,
) -> Option<Json> {
    // Points hold scalars only, already rendered as the response wants them.
    let shapes = Shapes {
        child: &|_, _| None,
        scalar: &|_, _, value| value.clone(),
    };
    let mut object = Map::with_capacity(selected.len());
    for field in selected {
        let value = match field.name {
            "__typename" => json!(typename),
            "id" => json!(id),
            name => {
                let spec = model
                    .series
                    .iter()
                    .find(|s| s.entity == typename && s.field == name)?;
                let points = series.get(field.response_key)?;
                Json::Array(
                    points
                        .iter()
                        .map(|point| {
                            shape(
                                walker,
                                &field.selection_sets,
                                &spec.point_type,
                                point,
                                &shapes,
                            )
                        })
                        .collect::<Option<_>>()?,
                )
            }
        };
        object.insert(field.response_key.to_owned(), value);
    }
    Some(Json::Object(object))
}
