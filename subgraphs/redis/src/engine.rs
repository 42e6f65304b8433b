//! The feature store's one execution path: `_entities`, `featureVector` and `putFeatures`,
//! each a Redis pipeline and a value shaped by the schema (see
//! [`polygraph_subgraph_core::engine`]).
//!
//! Every read is one pipeline of `HMGET`s: the groups all the referenced entities' selections
//! read, or all the ids × names of a `featureVector`. `putFeatures` writes an entity's hashes
//! and their TTLs in one `MULTI`/`EXEC`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Value;
use async_graphql::parser::types::{OperationType, SelectionSet};
use futures::future::BoxFuture;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::engine::{Engine, FieldError, Operation, Resolved};
use polygraph_subgraph_core::rules;
use polygraph_subgraph_core::selection::{SelectedField, Walker};
use serde_json::{Map, Value as Json, json};

use crate::errors::{database_error, forbidden};
use crate::model::Model;
use crate::store::{GroupKey, GroupValues, Store};

/// The feature store's engine.
pub(crate) struct Features {
    pub(crate) model: Arc<Model>,
    pub(crate) store: Store,
    pub(crate) changes: Arc<crate::changes::Changes>,
}

impl Engine for Features {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut self.store.connection.clone())
                .await
                .map(drop)
                .map_err(|error| error.to_string())
        })
    }

    fn subscribe<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> Option<futures::stream::BoxStream<'a, Resolved>> {
        let (index, group) = self
            .model
            .groups
            .iter()
            .enumerate()
            .find(|(_, group)| group.changed_field.as_deref() == Some(field.name))?;
        let receiver = self.changes.subscribe(&group.name);
        Some(polygraph_subgraph_core::changes::follow(
            receiver,
            move |id: String| async move { self.changed(operation, field, index, id).await.into() },
        ))
    }

    fn resolve<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> BoxFuture<'a, Resolved> {
        Box::pin(async move {
            let mutation = operation.definition.ty == OperationType::Mutation;
            match (mutation, field.name) {
                (false, "_entities") => self.entities(operation, field).await.into(),
                (false, "featureVector") => self.feature_vector(operation, field).await.into(),
                (true, "putFeatures") => self.put_features(operation, field).await.into(),
                _ => Resolved::not_answered(field),
            }
        })
    }
}

/// An entity type's reads: each group its selection reads, and which of its features.
type GroupRead = (usize, Arc<[usize]>);

/// A referenced entity: its type, id, and the groups read for it.
type Referenced = (String, String, HashMap<usize, GroupValues>);

impl Features {
    /// `_entities`: references to entities owned elsewhere, every group their selections read
    /// fetched in one pipeline.
    async fn entities(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
    ) -> Result<Json, FieldError> {
        let references =
            polygraph_subgraph_core::entities::references_of(field, &self.model.entities, "id")?;
        self.shaped(operation, &field.selection_sets, references)
            .await
            .map(Json::Array)
    }

    /// The entity `id` after a write to its `group` hash, as the subscriber may see it: null
    /// when the group is hidden from this caller.
    async fn changed(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        group: usize,
        id: String,
    ) -> Result<Json, FieldError> {
        // A group this caller may not read is no event of theirs.
        if !allowed(&self.model, group, &id, operation.claims)? {
            return Ok(Json::Null);
        }
        let entity = self.model.groups[group].entity.clone();
        let mut shaped = self
            .shaped(operation, &field.selection_sets, vec![(entity, id)])
            .await?;
        Ok(shaped.pop().unwrap_or(Json::Null))
    }

    /// `references` (type, id) shaped for the selection `sets`, every group they read fetched
    /// in one pipeline.
    async fn shaped(
        &self,
        operation: &Operation<'_>,
        sets: &[&SelectionSet],
        references: Vec<(String, String)>,
    ) -> Result<Vec<Json>, FieldError> {
        let walker = operation.walker();
        let entities = self
            .read_ahead(&walker, sets, references, operation.claims)
            .await?;
        // `features(names:)` of an entity (not a feature that happens to be called so).
        let raw = |type_name: &str, field: &SelectedField<'_>, object: &Map<String, Json>| {
            let entity = self.model.entities.iter().any(|entity| entity == type_name);
            (entity && field.name == "features").then(|| self.features_of(type_name, field, object))
        };
        let shaper = operation.shaper(sets);
        let mut items = Vec::with_capacity(entities.len());
        for (typename, id, groups) in entities {
            let mut document = Map::new();
            document.insert("id".to_owned(), Json::String(id));
            for (index, group) in self.model.groups_of(&typename) {
                let values = groups.get(&index).cloned().flatten();
                let values = values.map_or(Json::Null, |values| (*values).clone());
                document.insert(group.field.clone(), values);
            }
            items.push(shaper.shape_with(&typename, &Json::Object(document), &raw)?);
        }
        Ok(items)
    }

    /// `features(names:)` of an entity whose groups `object` holds by their fields: each
    /// feature asked for, in group order, null where its group was not found or is hidden.
    fn features_of(
        &self,
        type_name: &str,
        field: &SelectedField<'_>,
        object: &Map<String, Json>,
    ) -> Json {
        let names = feature_names(field);
        let mut features = Vec::new();
        for (_, group) in self.model.groups_of(type_name) {
            let values = object.get(&group.field);
            for feature in &group.features {
                if names
                    .as_ref()
                    .is_some_and(|names| !names.contains(&feature.name))
                {
                    continue;
                }
                let value = values
                    .and_then(|values| values.get(&feature.field))
                    .cloned()
                    .unwrap_or(Json::Null);
                features.push(json!({ "name": feature.name, "group": group.name, "value": value }));
            }
        }
        Json::Array(features)
    }

    /// Each referenced entity with the feature groups its type's selection reads (all of the
    /// entity's groups when it asks for `features`), in one pipeline. Groups a row rule hides
    /// from this caller are not read, and answer as absent.
    async fn read_ahead(
        &self,
        walker: &Walker<'_>,
        sets: &[&SelectionSet],
        references: Vec<(String, String)>,
        claims: Option<&Claims>,
    ) -> Result<Vec<Referenced>, FieldError> {
        let model = &self.model;
        let mut needed: HashMap<&str, Vec<GroupRead>> = HashMap::new();
        for entity in &model.entities {
            needed.insert(entity, self.groups_read(walker, sets, entity)?);
        }
        let mut visible = Vec::new();
        for (typename, id) in &references {
            for (group, _) in &needed[typename.as_str()] {
                visible.push(allowed(model, *group, id, claims)?);
            }
        }
        let reads: Vec<GroupKey> = references
            .iter()
            .flat_map(|(typename, id)| {
                needed[typename.as_str()]
                    .iter()
                    .map(|(group, features)| GroupKey {
                        group: *group,
                        features: features.clone(),
                        id: id.clone(),
                    })
            })
            .zip(&visible)
            .filter_map(|(read, visible)| visible.then_some(read))
            .collect();
        let mut loaded = self
            .store
            .read_groups(model, &reads)
            .await
            .map_err(database_error)?
            .into_iter();
        let mut visible = visible.into_iter();
        // `reads` went in reference by reference, group by group: the answers come back so.
        Ok(references
            .into_iter()
            .map(|(typename, id)| {
                let groups = needed[typename.as_str()]
                    .iter()
                    .map(|(group, _)| {
                        let read = visible.next().unwrap_or(false);
                        (*group, if read { loaded.next().flatten() } else { None })
                    })
                    .collect();
                (typename, id, groups)
            })
            .collect())
    }

    /// The groups (and their features) the selection `sets` reads on `entity`.
    fn groups_read(
        &self,
        walker: &Walker<'_>,
        sets: &[&SelectionSet],
        entity: &str,
    ) -> Result<Vec<GroupRead>, FieldError> {
        let selected = walker.collect(sets, entity)?;
        let mut groups = Vec::new();
        for (index, group) in self.model.groups_of(entity) {
            let mut features: Vec<usize> = Vec::new();
            for field in &selected {
                if field.name == group.field {
                    let parts = walker.collect(&field.selection_sets, &group.type_name)?;
                    features.extend(parts.iter().filter_map(|part| {
                        group.features.iter().position(|f| f.field == part.name)
                    }));
                } else if field.name == "features" {
                    let names = feature_names(field);
                    features.extend(group.features.iter().enumerate().filter_map(|(i, f)| {
                        names
                            .as_ref()
                            .is_none_or(|names| names.contains(&f.name))
                            .then_some(i)
                    }));
                }
            }
            features.sort_unstable();
            features.dedup();
            if !features.is_empty() {
                groups.push((index, features.into()));
            }
        }
        Ok(groups)
    }

    /// `featureVector(entity, ids, names)`: one pipeline for the whole matrix.
    async fn feature_vector(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
    ) -> Result<Json, FieldError> {
        let model = &self.model;
        let entity = field.text("entity").unwrap_or_default();
        let ids = field.texts("ids");
        let names = field.texts("names");
        if ids.len() > model.max_ids {
            return Err(FieldError::bad_input(format!(
                "at most {} ids",
                model.max_ids
            )));
        }
        let mut columns = Vec::with_capacity(names.len());
        for name in &names {
            let (group, feature) = model
                .find(&entity, name)
                .ok_or_else(|| FieldError::bad_input(format!("{entity} has no feature {name}")))?;
            columns.push((group, feature.kind));
        }
        // One HMGET per (id, group) for the names in that group.
        let mut groups: Vec<usize> = columns.iter().map(|(g, _)| *g).collect();
        groups.sort_unstable();
        groups.dedup();
        let mut hidden = Vec::new();
        let mut reads = Vec::new();
        for id in &ids {
            for group in &groups {
                // Entities a group's row rule hides from this caller read as missing.
                hidden.push(!allowed(model, *group, id, operation.claims)?);
                let fields: Vec<&str> = names
                    .iter()
                    .zip(&columns)
                    .filter(|(_, (g, _))| g == group)
                    .map(|(name, _)| name.as_str())
                    .collect();
                reads.push((model.groups[*group].key(id), fields));
            }
        }
        let rows = self
            .store
            .read(&reads, model.max_ids * groups.len().max(1))
            .await
            .map_err(database_error)?;
        let mut values = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (row_index, id) in ids.iter().enumerate() {
            let mut row = Vec::with_capacity(names.len());
            for (column, name) in names.iter().enumerate() {
                let (group, kind) = columns[column];
                let read = row_index * groups.len()
                    + groups.iter().position(|g| *g == group).expect("grouped");
                let position = names
                    .iter()
                    .zip(&columns)
                    .filter(|(_, (g, _))| *g == group)
                    .position(|(n, _)| n == name)
                    .expect("listed");
                let value = rows[read][position]
                    .as_deref()
                    .filter(|_| !hidden[read])
                    .and_then(|stored| kind.read(stored));
                if let Some(value) = value {
                    row.push(value);
                } else {
                    missing.push(json!({ "id": id, "name": name }));
                    row.push(Json::Null);
                }
            }
            values.push(Json::Array(row));
        }
        let vector = json!({ "ids": ids, "names": names, "values": values, "missing": missing });
        operation.shape(&field.selection_sets, "FeatureVector", &vector)
    }

    /// `putFeatures(entity, id, values)`: every group touched written, with its TTL,
    /// atomically; nothing written when any value is refused.
    async fn put_features(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
    ) -> Result<Json, FieldError> {
        let model = &self.model;
        let entity = field.text("entity").unwrap_or_default();
        let id = field.text("id").unwrap_or_default();
        let inputs = match field.argument("values") {
            Some(Value::List(inputs)) => inputs.as_slice(),
            Some(single @ Value::Object(_)) => std::slice::from_ref(single),
            _ => return Err(FieldError::bad_input("values must be a list")),
        };
        let mut writes: Vec<(usize, Vec<(String, String)>)> = Vec::new();
        for input in inputs {
            let Value::Object(input) = input else {
                return Err(FieldError::bad_input("each value must be an object"));
            };
            let Some(Value::String(name)) = input.get("name") else {
                return Err(FieldError::bad_input("a value has no name"));
            };
            let (group, feature) = model
                .find(&entity, name)
                .ok_or_else(|| FieldError::bad_input(format!("{entity} has no feature {name}")))?;
            if !allowed(model, group, &id, operation.claims)? {
                return Err(forbidden(format!(
                    "{name} of {entity} {id} is outside what this request may write"
                )));
            }
            let stored = feature
                .kind
                .write(input.get("value").unwrap_or(&Value::Null))
                .map_err(|error| FieldError::bad_input(format!("{name}: {error}")))?;
            match writes.iter_mut().find(|(g, _)| *g == group) {
                Some((_, fields)) => fields.push((name.clone(), stored)),
                None => writes.push((group, vec![(name.clone(), stored)])),
            }
        }
        let expires = self
            .store
            .write(model, &id, &writes)
            .await
            .map_err(database_error)?;
        let result = json!({ "id": id, "written": inputs.len(), "expiresInSeconds": expires });
        operation.shape(&field.selection_sets, "PutFeaturesResult", &result)
    }
}

/// The `names:` of `features(names:)`: `None` (all of them) when absent or null.
fn feature_names(field: &SelectedField<'_>) -> Option<Vec<String>> {
    match field.argument("names") {
        None | Some(Value::Null) => None,
        Some(_) => Some(field.texts("names")),
    }
}

/// Whether the caller may read or write `group` of entity `id` (its row rule).
fn allowed(
    model: &Model,
    group: usize,
    id: &str,
    claims: Option<&Claims>,
) -> Result<bool, FieldError> {
    let group = &model.groups[group];
    let what = format!("{} features", group.type_name);
    Ok(rules::ruled(group.rule.as_ref(), claims, &what)?
        .is_none_or(|(rule, claims)| rule.holds_for_id(claims, id)))
}
