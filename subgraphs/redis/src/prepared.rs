//! The prepared path: validated `_entities` requests answered straight from the parsed
//! document, without async-graphql's per-field resolution (which costs more than the Redis
//! pipeline itself). The server only asks about query texts that passed validation once; any
//! shape this path does not know is left to the regular path (`None`).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use futures::future::BoxFuture;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::entities::{EntitiesRequest, entities_request};
use polygraph_subgraph_core::selection::SelectedField;
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
        claims: Option<&'a Claims>,
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
            // Per entity type: each selected field with its own selection, collected once.
            let mut selections: HashMap<&str, Vec<Selected<'_>>> = HashMap::new();
            for entity in &state.model.entities {
                let mut fields = Vec::new();
                for field in walker.collect(&sets, entity).ok()? {
                    let child = match field.name {
                        "features" => Some("Feature"),
                        name => state
                            .model
                            .groups_of(entity)
                            .find(|(_, group)| group.field == name)
                            .map(|(_, group)| group.type_name.as_str()),
                    };
                    let parts = match child {
                        Some(child) => walker.collect(&field.selection_sets, child).ok()?,
                        None => Vec::new(),
                    };
                    fields.push((field, parts));
                }
                selections.insert(entity, fields);
            }
            // Without the claims a rule needs, the regular path says so.
            let entities = read_ahead(state, &walker, &sets, references, claims)
                .await
                .ok()?;
            let mut answers = Vec::with_capacity(entities.len());
            for (typename, id, groups) in entities {
                answers.push(entity(
                    &state.model,
                    &selections[typename.as_str()],
                    &typename,
                    &id,
                    &groups,
                )?);
            }
            let key = field.response_key().node.as_str();
            Some(polygraph_subgraph_core::server::Answer::Json(
                json!({ "data": { key: answers } }),
            ))
        })
    }
}

/// A field selected on an entity, and the fields selected on its value.
type Selected<'a> = (SelectedField<'a>, Vec<SelectedField<'a>>);

/// One entity's answer, keyed like the request; `None` for a field this path does not know.
fn entity(
    model: &Model,
    selected: &[Selected<'_>],
    typename: &str,
    id: &str,
    groups: &HashMap<usize, Option<Arc<Json>>>,
) -> Option<Json> {
    let mut object = Map::with_capacity(selected.len());
    for (field, parts) in selected {
        let value = match field.name {
            "__typename" => json!(typename),
            "id" => json!(id),
            "features" => {
                let names: Option<Vec<String>> = match field.argument("names") {
                    None | Some(async_graphql::Value::Null) => None,
                    Some(names) => Some(
                        names
                            .clone()
                            .into_json()
                            .ok()
                            .and_then(|n| serde_json::from_value(n).ok())?,
                    ),
                };
                let mut features = Vec::new();
                for (index, group) in model.groups_of(typename) {
                    let values = groups.get(&index)?;
                    for feature in &group.features {
                        if names
                            .as_ref()
                            .is_some_and(|names| !names.contains(&feature.name))
                        {
                            continue;
                        }
                        let value = values
                            .as_ref()
                            .map_or(Json::Null, |v| v[&feature.field].clone());
                        let mut item = Map::new();
                        for part in parts {
                            let value = match part.name {
                                "__typename" => json!("Feature"),
                                "name" => json!(feature.name),
                                "group" => json!(group.name),
                                "value" => value.clone(),
                                _ => return None,
                            };
                            item.insert(part.response_key.to_owned(), value);
                        }
                        features.push(Json::Object(item));
                    }
                }
                Json::Array(features)
            }
            name => {
                let (index, group) = model
                    .groups_of(typename)
                    .find(|(_, group)| group.field == name)?;
                match groups.get(&index)? {
                    None => Json::Null,
                    Some(values) => {
                        let mut out = Map::new();
                        for part in parts {
                            let value = if part.name == "__typename" {
                                json!(group.type_name)
                            } else {
                                group.features.iter().find(|f| f.field == part.name)?;
                                values[part.name].clone()
                            };
                            out.insert(part.response_key.to_owned(), value);
                        }
                        Json::Object(out)
                    }
                }
            }
        };
        object.insert(field.response_key.to_owned(), value);
    }
    Some(Json::Object(object))
}
