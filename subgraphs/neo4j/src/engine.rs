//! The relationships subgraph's one execution path: `_entities`, and below it every level of
//! relationship fields, each level one statement per relationship and `limit` for all its
//! entities at once (see [`polygraph_subgraph_core::engine`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::Value;
use async_graphql::parser::types::SelectionSet;
use futures::future::BoxFuture;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::engine::{Engine, FieldError, Operation, Resolved};
use polygraph_subgraph_core::rules;
use polygraph_subgraph_core::selection::SelectedField;
use serde_json::{Map, Value as Json};

use crate::errors::bad_input;
use crate::graph::{Graph, RelatedKey};
use crate::model::Model;

/// The relationships engine.
pub(crate) struct Relationships {
    pub(crate) model: Arc<Model>,
    pub(crate) graph: Arc<Graph>,
}

impl Engine for Relationships {
    fn resolve<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> BoxFuture<'a, Resolved> {
        Box::pin(async move {
            if field.name != "_entities" {
                let error = FieldError::new(format!("{} is not answered here", field.name));
                return Resolved::failed(error.code("BAD_REQUEST"));
            }
            self.entities(operation, field).await.into()
        })
    }
}

/// An entity by type name and id.
type Reference = (String, String);

impl Relationships {
    /// `_entities`: references by id, their relationship fields read level by level.
    async fn entities(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
    ) -> Result<Json, FieldError> {
        let names: Vec<String> = self
            .model
            .entities
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        let representations = field.argument("representations").unwrap_or(&Value::Null);
        let references =
            polygraph_subgraph_core::entities::references_in(representations, &names, "id")?;
        let budget = AtomicUsize::new(self.model.max_objects);
        self.take(&budget, references.len())?;
        let objects = self
            .objects(operation, references, field.selection_sets.clone(), &budget)
            .await?;
        Ok(Json::Array(objects))
    }

    /// The objects for `references`, each with the fields `sets` select on its type: every
    /// relationship field of every reference read at once, then the next level below them.
    /// Each level takes what it returns from `budget`, the entities the request may still
    /// return; a request that would exceed it is refused.
    fn objects<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        references: Vec<Reference>,
        sets: Vec<&'a SelectionSet>,
        budget: &'a AtomicUsize,
    ) -> BoxFuture<'a, Result<Vec<Json>, FieldError>> {
        Box::pin(async move {
            let walker = operation.walker();
            let mut selected: HashMap<&str, Vec<SelectedField<'a>>> = HashMap::new();
            for (typename, _) in &references {
                if !selected.contains_key(typename.as_str()) {
                    let fields = walker
                        .collect(&sets, typename)
                        .map_err(|error| bad_input(error.0))?;
                    let typename = self
                        .model
                        .entities
                        .iter()
                        .find(|(name, _)| name == typename);
                    if let Some((typename, _)) = typename {
                        selected.insert(typename.as_str(), fields);
                    }
                }
            }
            let related = self.read(&references, &selected, operation.claims).await?;
            // The next level: per type and relationship field, every reference's related ids.
            let mut below: HashMap<(&str, &str), std::vec::IntoIter<Json>> = HashMap::new();
            for (typename, fields) in &selected {
                for field in fields {
                    let Some((_, target, _)) = self.relationship(typename, field)? else {
                        continue;
                    };
                    let count = references
                        .iter()
                        .filter(|(t, _)| t == typename)
                        .map(|reference| {
                            related
                                .get(&(reference.clone(), field.response_key))
                                .map_or(0, |ids| ids.len())
                        })
                        .sum();
                    self.take(budget, count)?;
                    let children: Vec<Reference> = references
                        .iter()
                        .filter(|(t, _)| t == typename)
                        .flat_map(|reference| {
                            related
                                .get(&(reference.clone(), field.response_key))
                                .map(|ids| ids.as_slice())
                                .unwrap_or_default()
                                .iter()
                                .map(|id| (target.to_owned(), id.clone()))
                        })
                        .collect();
                    let objects = self
                        .objects(operation, children, field.selection_sets.clone(), budget)
                        .await?;
                    below.insert((typename, field.response_key), objects.into_iter());
                }
            }
            let mut objects = Vec::with_capacity(references.len());
            for reference in &references {
                let (typename, id) = reference;
                let mut object = Map::new();
                for field in &selected[typename.as_str()] {
                    let value = match field.name {
                        "__typename" => Json::String(typename.clone()),
                        "id" => Json::String(id.clone()),
                        _ => {
                            let count = related
                                .get(&(reference.clone(), field.response_key))
                                .map_or(0, |ids| ids.len());
                            let items = below
                                .get_mut(&(typename.as_str(), field.response_key))
                                .map(|items| items.by_ref().take(count).collect())
                                .unwrap_or_default();
                            Json::Array(items)
                        }
                    };
                    object.insert(field.response_key.to_owned(), value);
                }
                objects.push(Json::Object(object));
            }
            Ok(objects)
        })
    }

    /// Takes `count` entities from what the request may still return.
    fn take(&self, budget: &AtomicUsize, count: usize) -> Result<(), FieldError> {
        let left = budget.load(Ordering::Relaxed);
        if count > left {
            return Err(bad_input(format!(
                "this request would return more than {} entities; ask for fewer or use smaller limits",
                self.model.max_objects
            )));
        }
        budget.store(left - count, Ordering::Relaxed);
        Ok(())
    }

    /// The relationship `field` of `typename` reads: its index, target type and limit; `None`
    /// for a field that is not a relationship.
    fn relationship<'m>(
        &'m self,
        typename: &str,
        field: &SelectedField<'_>,
    ) -> Result<Option<(usize, &'m str, u64)>, FieldError> {
        let Some(index) = self
            .model
            .relationships
            .iter()
            .position(|r| r.entity == typename && r.field == field.name)
        else {
            return Ok(None);
        };
        let limit = limit_of(field.argument("limit"), self.model.max_limit)?;
        Ok(Some((
            index,
            &self.model.relationships[index].target,
            limit,
        )))
    }

    /// The related ids of each reference's relationship fields, by reference and response
    /// key. Entities whose relationships a rule hides from this caller are not read: empty.
    async fn read<'f>(
        &self,
        references: &[Reference],
        selected: &HashMap<&str, Vec<SelectedField<'f>>>,
        claims: Option<&Claims>,
    ) -> Result<HashMap<(Reference, &'f str), Arc<Vec<String>>>, FieldError> {
        let mut wanted = Vec::new();
        for reference in references {
            let (typename, id) = reference;
            let mut fields = Vec::new();
            for field in &selected[typename.as_str()] {
                if let Some((relationship, _, limit)) = self.relationship(typename, field)? {
                    fields.push((field.response_key, relationship, limit));
                }
            }
            if !fields.is_empty() && !allowed(&self.model, typename, id, claims)? {
                continue;
            }
            for (response_key, relationship, limit) in fields {
                let key = RelatedKey {
                    relationship,
                    limit,
                    id: id.clone(),
                };
                wanted.push(((reference.clone(), response_key), key));
            }
        }
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<RelatedKey> = wanted.iter().map(|(_, key)| key.clone()).collect();
        let loaded = self.graph.load(&self.model, &keys).await?;
        Ok(wanted
            .into_iter()
            .map(|(at, key)| (at, loaded.get(&key).cloned().unwrap_or_default()))
            .collect())
    }
}

/// A `limit` argument, checked against the model's maximum.
fn limit_of(value: Option<&Value>, max_limit: u64) -> Result<u64, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(max_limit),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|limit| *limit <= max_limit)
            .ok_or_else(|| bad_input(format!("limit must be between 0 and {max_limit}"))),
        Some(_) => Err(bad_input("limit must be an integer")),
    }
}

/// Whether the caller may follow the relationships of entity `name` with `id` (its row rule).
fn allowed(
    model: &Model,
    name: &str,
    id: &str,
    claims: Option<&Claims>,
) -> Result<bool, FieldError> {
    let rule = model
        .entities
        .iter()
        .position(|(entity, _)| entity == name)
        .and_then(|index| model.rules[index].as_ref());
    let what = format!("the relationships of {name}");
    Ok(rules::ruled(rule, claims, &what)?
        .is_none_or(|(rule, claims)| rule.holds_for_id(claims, id)))
}
