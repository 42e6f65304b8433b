//! The prepared path: validated `_entities` requests answered straight from the parsed
//! document, without async-graphql's per-field resolution (which costs more than the `_mget`
//! itself). The server only asks about query texts that passed validation once; a selection
//! this path does not know (nested objects) is left to the regular path (`None`).

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use futures::future::BoxFuture;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::entities::entities_field;
use polygraph_subgraph_core::selection::Walker;
use polygraph_subgraph_core::server::Prepared;
use serde_json::{Map, Value as Json, json};

use crate::model::Indexed;
use crate::schema::{State, fetch_entities, not_found};

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
    ) -> BoxFuture<'a, Option<Json>> {
        Box::pin(async move {
            let state = &self.0;
            let model = &state.model;
            let (operation, field) = entities_field(document, operation_name)?;
            let walker = Walker::from_parts(
                &document.fragments,
                variables,
                &operation.variable_definitions,
            );
            let representations = walker
                .resolve(&field.get_argument("representations")?.node)
                .ok()?;
            // Each entity type's selection: (response key, field) pairs, scalars only.
            let sets = [&field.selection_set.node];
            let mut selections = Vec::with_capacity(model.indices.len());
            for index in &model.indices {
                let object = &model.objects[index.object];
                let mut fields = Vec::new();
                for selected in walker.collect(&sets, &object.type_name).ok()? {
                    let doc_field = if selected.name == "__typename" {
                        None
                    } else {
                        let doc_field = object.fields.iter().find(|f| f.name == selected.name)?;
                        if matches!(doc_field.indexed, Indexed::Object(_)) {
                            return None;
                        }
                        Some(doc_field)
                    };
                    fields.push((selected.response_key.to_owned(), doc_field));
                }
                selections.push(fields);
            }
            let found = fetch_entities(state, &representations).await.ok()?;
            let key = field.response_key().node.as_str();
            let mut entities = Vec::with_capacity(found.len());
            let mut errors = Vec::new();
            for (i, (position, id, source)) in found.into_iter().enumerate() {
                let Some(source) = source else {
                    errors.push(json!({
                        "message": not_found(model, position, &id),
                        "path": [key, i],
                        "extensions": { "code": "NOT_FOUND" },
                    }));
                    entities.push(Json::Null);
                    continue;
                };
                let type_name = &model.entity(position).type_name;
                let mut object = Map::new();
                for (response_key, doc_field) in &selections[position] {
                    let value = match doc_field {
                        None => json!(type_name),
                        Some(doc_field) => match &source[&doc_field.name] {
                            Json::Number(number) if doc_field.key => json!(number.to_string()),
                            value => value.clone(),
                        },
                    };
                    object.insert(response_key.clone(), value);
                }
                entities.push(Json::Object(object));
            }
            let mut response = json!({ "data": { key: entities } });
            if !errors.is_empty() {
                response["errors"] = Json::Array(errors);
            }
            Some(response)
        })
    }
}
