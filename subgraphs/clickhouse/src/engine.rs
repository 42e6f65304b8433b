//! The analytics subgraph's one execution path: `_entities` with every series field read
//! ahead (one statement per field and arguments, for all the entities at once) and
//! `trainingRows`, one statement for all ids and features; each value shaped by the schema
//! (see [`polygraph_subgraph_core::engine`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Value;
use async_graphql::parser::types::SelectionSet;
use futures::future::BoxFuture;
use polygraph_subgraph_core::engine::{Engine, FieldError, Operation, Resolved};
use polygraph_subgraph_core::selection::{SelectedField, Walker};
use serde_json::{Map, Value as Json, json};

use crate::model::{Model, training_sql};
use crate::warehouse::{Ids, SeriesKey, Warehouse, rfc3339, series_key, sql_time};

/// The analytics engine.
pub(crate) struct Analytics {
    pub(crate) model: Arc<Model>,
    pub(crate) warehouse: Warehouse,
}

impl Engine for Analytics {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.warehouse
                .client
                .query("SELECT 1")
                .execute()
                .await
                .map_err(|error| error.to_string())
        })
    }

    fn resolve<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> BoxFuture<'a, Resolved> {
        Box::pin(async move {
            match field.name {
                "_entities" => self.entities(operation, field).await.into(),
                "trainingRows" => self.training_rows(operation, field).await.into(),
                _ => Resolved::not_answered(field),
            }
        })
    }
}

/// A series field an `_entities` selection asks for: its response key, series, arguments and
/// measure names.
type SelectedSeries = (
    String,
    usize,
    indexmap::IndexMap<async_graphql::Name, Value>,
    Vec<String>,
);

/// An entity reference with its series read ahead: type name, id, and the points per response
/// key.
pub(crate) type ReadAhead = (String, String, HashMap<String, Arc<Vec<Json>>>);

impl Analytics {
    /// `_entities`: references by id, each with the series fields its selection asks for.
    async fn entities(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
    ) -> Result<Json, FieldError> {
        let references =
            polygraph_subgraph_core::entities::references_of(field, &self.model.entities, "id")?;
        let walker = operation.walker();
        let sets = &field.selection_sets;
        let entities = self.read_ahead(&walker, sets, references).await?;
        let shaper = operation.shaper(sets);
        let mut items = Vec::with_capacity(entities.len());
        for (typename, id, series) in entities {
            // A series field of the entity (not a measure of a point under the same key).
            let raw = |type_name: &str, field: &SelectedField<'_>, _: &Map<String, Json>| {
                let is_series = self
                    .model
                    .series
                    .iter()
                    .any(|series| series.entity == type_name && series.field == field.name);
                is_series
                    .then(|| series.get(field.response_key))
                    .flatten()
                    .map(|points| Json::Array(points.to_vec()))
            };
            let document = json!({ "id": id });
            items.push(shaper.shape_with(&typename, &document, &raw)?);
        }
        Ok(Json::Array(items))
    }

    /// Reads every series field `sets` select on the references' types, for all of them at once.
    async fn read_ahead(
        &self,
        walker: &Walker<'_>,
        sets: &[&SelectionSet],
        references: Vec<(String, String)>,
    ) -> Result<Vec<ReadAhead>, FieldError> {
        let model = &self.model;
        // Per entity type: the series fields selected on it.
        let mut selections: HashMap<&str, Vec<SelectedSeries>> = HashMap::new();
        for entity in &model.entities {
            let mut fields = Vec::new();
            for field in walker.collect(sets, entity)? {
                let Some(series) = model
                    .series
                    .iter()
                    .position(|s| s.entity == *entity && s.field == field.name)
                else {
                    continue;
                };
                let measures = walker
                    .collect(&field.selection_sets, &model.series[series].point_type)?
                    .iter()
                    .map(|m| m.name.to_owned())
                    .collect();
                fields.push((
                    field.response_key.to_owned(),
                    series,
                    field.arguments.clone(),
                    measures,
                ));
            }
            selections.insert(entity, fields);
        }
        // Per type referenced: each selected series field's key, its arguments checked and
        // converted once (the id left to fill in).
        let mut templates: HashMap<&str, Vec<(String, SeriesKey)>> = HashMap::new();
        for (typename, _) in &references {
            if templates.contains_key(typename.as_str()) {
                continue;
            }
            let mut keys = Vec::new();
            for (response_key, series, arguments, measures) in &selections[typename.as_str()] {
                let measures = measures.iter().map(String::as_str);
                let key = series_key(model, *series, arguments, measures, String::new())?;
                keys.push((response_key.clone(), key));
            }
            templates.insert(typename, keys);
        }
        // Per reference: (response key, key) of each series field selected on its type.
        let wanted: Vec<Vec<(String, SeriesKey)>> = references
            .iter()
            .map(|(typename, id)| {
                templates[typename.as_str()]
                    .iter()
                    .map(|(response_key, template)| {
                        let key = SeriesKey {
                            id: id.clone(),
                            ..template.clone()
                        };
                        (response_key.clone(), key)
                    })
                    .collect()
            })
            .collect();
        let all: Vec<SeriesKey> = wanted
            .iter()
            .flatten()
            .map(|(_, key)| key.clone())
            .collect();
        let loaded = if all.is_empty() {
            HashMap::new()
        } else {
            self.warehouse.series(model, &all).await?
        };
        Ok(references
            .into_iter()
            .zip(wanted)
            .map(|((typename, id), keys)| {
                let prefetched = keys
                    .into_iter()
                    .map(|(response_key, key)| {
                        let points = loaded.get(&key).cloned().unwrap_or_default();
                        (response_key, points)
                    })
                    .collect();
                (typename, id, prefetched)
            })
            .collect())
    }

    /// `trainingRows(entity, ids, features, asOf)`: point-in-time correct, one statement.
    async fn training_rows(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
    ) -> Result<Json, FieldError> {
        let Some(training) = &self.model.training else {
            return Err(FieldError::bad_input("this subgraph has no training data"));
        };
        let entity = field.text("entity").unwrap_or_default();
        let kind = training
            .entities
            .get(&entity)
            .ok_or_else(|| FieldError::bad_input(format!("unknown entity {entity}")))?;
        let ids = field.texts("ids");
        let features = field.texts("features");
        if ids.len() > self.model.max_ids {
            return Err(FieldError::bad_input(format!(
                "at most {} ids",
                self.model.max_ids
            )));
        }
        let as_of = sql_time(&field.text("asOf").unwrap_or_default())?;
        let sql = training_sql(training);
        let query = self.warehouse.client.query(&sql).bind(kind.as_str());
        let query = Ids::parse(&ids, &training.id_type)?
            .bind(query)
            .bind(&features)
            .bind(as_of.as_str());
        let rows = self.warehouse.rows(&sql, query).await?;
        let mut found: HashMap<(String, String), (Json, Json)> = HashMap::new();
        for row in rows {
            let id = row["id"].as_str().unwrap_or_default().to_owned();
            let feature = row["feature"].as_str().unwrap_or_default().to_owned();
            found.insert((id, feature), (row["value"].clone(), rfc3339(&row["at"])));
        }
        let rows: Vec<Json> = ids
            .iter()
            .map(|id| {
                let (values, observed): (Vec<Json>, Vec<Json>) = features
                    .iter()
                    .map(|feature| {
                        found
                            .get(&(id.clone(), feature.clone()))
                            .cloned()
                            .unwrap_or((Json::Null, Json::Null))
                    })
                    .unzip();
                json!({ "id": id, "values": values, "observedAt": observed })
            })
            .collect();
        operation.shape(&field.selection_sets, "TrainingRow", &Json::Array(rows))
    }
}
