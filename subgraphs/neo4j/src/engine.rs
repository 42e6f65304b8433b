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

use crate::graph::{Graph, RelatedKey};
use crate::model::Model;

/// The relationships engine.
pub(crate) struct Relationships {
    pub(crate) model: Arc<Model>,
    pub(crate) graph: Arc<Graph>,
}

impl Engine for Relationships {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.graph.ping())
    }

    fn resolve<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> BoxFuture<'a, Resolved> {
        Box::pin(async move {
            if field.name != "_entities" {
                return Resolved::not_answered(field);
            }
            self.entities(operation, field).await.into()
        })
    }
}

/// An entity by type name and id.
type Reference = (String, String);

/// A field selected on an entity type, and the relationship it reads (index, target type and
/// limit), if it is one.
type Planned<'a> = (SelectedField<'a>, Option<(usize, &'a str, u64)>);

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
        let references = polygraph_subgraph_core::entities::references_of(field, &names, "id")?;
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
            // Per entity type: its selected fields, each with the relationship it reads.
            let walker = operation.walker();
            let mut selected: HashMap<&str, Vec<Planned<'a>>> = HashMap::new();
            for (typename, _) in &references {
                let Some((name, _)) = self.model.entities.iter().find(|(n, _)| n == typename)
                else {
                    continue;
                };
                if selected.contains_key(name.as_str()) {
                    continue;
                }
                let mut fields = Vec::new();
                for field in walker.collect(&sets, name)? {
                    let relation = self.relationship(name, &field)?;
                    fields.push((field, relation));
                }
                selected.insert(name.as_str(), fields);
            }
            let related = self.read(&references, &selected, operation.claims).await?;
            // The next level: per type and relationship field, every reference's related ids.
            let mut below: HashMap<(&str, &str), std::vec::IntoIter<Json>> = HashMap::new();
            for (typename, fields) in &selected {
                for (field, relation) in fields {
                    let Some((_, target, _)) = relation else {
                        continue;
                    };
                    let lists: Vec<&[String]> = references
                        .iter()
                        .zip(&related)
                        .filter(|((t, _), _)| t == typename)
                        .filter_map(|(_, related)| related.get(field.response_key))
                        .map(|ids| ids.as_slice())
                        .collect();
                    self.take(budget, lists.iter().map(|ids| ids.len()).sum())?;
                    let children: Vec<Reference> = lists
                        .iter()
                        .flat_map(|ids| ids.iter().map(|id| ((*target).to_owned(), id.clone())))
                        .collect();
                    let objects = self
                        .objects(operation, children, field.selection_sets.clone(), budget)
                        .await?;
                    below.insert((typename, field.response_key), objects.into_iter());
                }
            }
            let mut objects = Vec::with_capacity(references.len());
            for ((typename, id), related) in references.iter().zip(&related) {
                let mut object = Map::new();
                for (field, _) in &selected[typename.as_str()] {
                    let value = match field.name {
                        "__typename" => Json::String(typename.clone()),
                        "id" => Json::String(id.clone()),
                        _ => {
                            let count = related.get(field.response_key).map_or(0, |ids| ids.len());
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
            return Err(FieldError::bad_input(format!(
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

    /// The related ids of each reference's relationship fields by response key, in the order
    /// of `references`. Entities whose relationships a rule hides from this caller are not
    /// read: empty.
    async fn read<'f>(
        &self,
        references: &[Reference],
        selected: &HashMap<&str, Vec<Planned<'f>>>,
        claims: Option<&Claims>,
    ) -> Result<Vec<HashMap<&'f str, Arc<Vec<String>>>>, FieldError> {
        let mut wanted = Vec::new();
        for (position, (typename, id)) in references.iter().enumerate() {
            let fields = &selected[typename.as_str()];
            let reads = fields.iter().any(|(_, relation)| relation.is_some());
            if reads && !allowed(&self.model, typename, id, claims)? {
                continue;
            }
            for (field, relation) in fields {
                if let Some((relationship, _, limit)) = *relation {
                    let key = RelatedKey {
                        relationship,
                        limit,
                        id: id.clone(),
                    };
                    wanted.push((position, field.response_key, key));
                }
            }
        }
        let mut related = vec![HashMap::new(); references.len()];
        if wanted.is_empty() {
            return Ok(related);
        }
        let keys: Vec<RelatedKey> = wanted.iter().map(|(_, _, key)| key.clone()).collect();
        let loaded = self.graph.load(&self.model, &keys).await?;
        for (position, response_key, key) in wanted {
            let ids = loaded.get(&key).cloned().unwrap_or_default();
            related[position].insert(response_key, ids);
        }
        Ok(related)
    }
}

/// A `limit` argument, checked against the model's maximum.
fn limit_of(value: Option<&Value>, max_limit: u64) -> Result<u64, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(max_limit),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|limit| *limit <= max_limit)
            .ok_or_else(|| {
                FieldError::bad_input(format!("limit must be between 0 and {max_limit}"))
            }),
        Some(_) => Err(FieldError::bad_input("limit must be an integer")),
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
