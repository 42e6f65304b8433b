//! The prepared path: validated `_entities` and search requests answered straight from the
//! parsed document, without async-graphql's per-field resolution (which costs more than the
//! `_mget` or `_search` itself). The server only asks about query texts that passed validation
//! once; a shape this path does not know (nested objects in `_entities`) is left to the regular
//! path (`None`), and so is any failure, which the regular path then reports.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use elasticsearch::SearchParts;
use futures::future::BoxFuture;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::entities::{EntitiesRequest, entities_request, only_root_field};
use polygraph_subgraph_core::selection::{Shapes, Walker, shape};
use polygraph_subgraph_core::server::Prepared;
use serde_json::{Map, Value as Json, json};

use crate::model::{Indexed, Model};
use crate::schema::{Arguments, State, fetch_entities, not_found, parse_search, result};

pub(crate) struct PreparedEntities(pub(crate) Arc<State>);

impl Prepared for PreparedEntities {
    fn eligible(&self, document: &ExecutableDocument) -> bool {
        polygraph_subgraph_core::entities::only_root_fields(document)
            .iter()
            .any(|field| {
                field.name.node == "_entities"
                    || self.search_index(field.name.node.as_str()).is_some()
            })
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
            let model = &state.model;
            if let Some((operation, field)) = only_root_field(document, operation_name)
                && let Some(position) = self.search_index(field.name.node.as_str())
            {
                return self
                    .search(document, variables, operation, field, position, claims)
                    .await
                    .map(polygraph_subgraph_core::server::Answer::Json);
            }
            let EntitiesRequest {
                field,
                walker,
                representations,
            } = entities_request(document, operation_name, variables)?;
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
            let found = fetch_entities(state, &representations, claims).await.ok()?;
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
            Some(polygraph_subgraph_core::server::Answer::Json(response))
        })
    }
}

impl PreparedEntities {
    /// The index whose search field is `name`.
    fn search_index(&self, name: &str) -> Option<usize> {
        self.0
            .model
            .indices
            .iter()
            .position(|index| index.search_field == name)
    }

    /// A search answered whole: one `_search`, the result shaped by the selection.
    async fn search(
        &self,
        document: &ExecutableDocument,
        variables: &async_graphql::Variables,
        operation: &async_graphql::parser::types::OperationDefinition,
        field: &async_graphql::parser::types::Field,
        position: usize,
        claims: Option<&Claims>,
    ) -> Option<Json> {
        let state = &self.0;
        let model = &state.model;
        let walker = Walker::from_parts(
            &document.fragments,
            variables,
            &operation.variable_definitions,
        );
        let mut arguments = Arguments::new();
        for (name, value) in &field.arguments {
            arguments.insert(name.node.clone(), walker.resolve(&value.node).ok()?);
        }
        let mut search = parse_search(model, position, &arguments).ok()?;
        // Without the claims a rule needs, the regular path says so.
        crate::schema::restrict(model, position, claims, &mut search).ok()?;
        let entity = &model.entity(position).type_name;
        let sets = [&field.selection_set.node];
        search.highlight = asks_for_highlights(&walker, &sets, entity)?;
        let index = &model.indices[position];
        let body = crate::query::body(index, &search);
        let mut answer = state
            .send(
                state
                    .client
                    .search(SearchParts::Index(&[&index.index]))
                    .body(body)
                    .send(),
            )
            .await
            .ok()?;
        let value = result(index, &search, &mut answer);
        let child = |parent: &str, name: &str| child_type(model, position, parent, name);
        let scalar = |parent: &str, name: &str, value: &Json| key_text(model, parent, name, value);
        let shapes = Shapes {
            child: &child,
            scalar: &scalar,
        };
        let answered = shape(
            &walker,
            &sets,
            &format!("{entity}SearchResult"),
            &value,
            &shapes,
        )?;
        Some(json!({ "data": { field.response_key().node.as_str(): answered } }))
    }
}

/// Whether a search's selection reaches `hits { highlights }`.
fn asks_for_highlights(
    walker: &Walker<'_>,
    sets: &[&async_graphql::parser::types::SelectionSet],
    entity: &str,
) -> Option<bool> {
    for field in walker
        .collect(sets, &format!("{entity}SearchResult"))
        .ok()?
    {
        if field.name == "hits" {
            let hit = walker
                .collect(&field.selection_sets, &format!("{entity}SearchHit"))
                .ok()?;
            if hit.iter().any(|part| part.name == "highlights") {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// The object type `name` leads to on `parent`, in a search result of index `position`.
fn child_type(model: &Model, position: usize, parent: &str, name: &str) -> Option<String> {
    let index = &model.indices[position];
    let entity = &model.entity(position).type_name;
    let result = format!("{entity}SearchResult");
    let hit = format!("{entity}SearchHit");
    Some(match (parent, name) {
        (p, "hits") if p == result => hit,
        (p, "facets") if p == result => "SearchFacets".to_owned(),
        (p, "highlights") if p == hit => "SearchHighlight".to_owned(),
        (p, field) if p == hit && field == index.hit_field => entity.clone(),
        ("SearchFacets", "terms") => "TermsFacet".to_owned(),
        ("SearchFacets", "ranges") => "RangeFacet".to_owned(),
        ("SearchFacets", "stats") => "StatsFacet".to_owned(),
        ("TermsFacet", "buckets") => "TermsBucket".to_owned(),
        ("RangeFacet", "buckets") => "RangeBucket".to_owned(),
        (p, field) => {
            let object = model.objects.iter().find(|o| o.type_name == p)?;
            match object.fields.iter().find(|f| f.name == field)?.indexed {
                Indexed::Object(nested) => model.objects[nested].type_name.clone(),
                _ => return None,
            }
        }
    })
}

/// A scalar as the regular path renders it: entity keys that are numbers become `ID` text.
fn key_text(model: &Model, parent: &str, name: &str, value: &Json) -> Json {
    match value {
        Json::Number(number)
            if model.objects.iter().any(|o| {
                o.type_name == parent && o.fields.iter().any(|f| f.name == name && f.key)
            }) =>
        {
            Json::String(number.to_string())
        }
        other => other.clone(),
    }
}
