//! The relationships schema and resolvers: each relationship field of every entity of one
//! request step, with the same `limit`, is one Cypher statement (`UNWIND $keys`), run on the
//! driver's own threads.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, Schema, SchemaError,
    TypeRef,
};
use async_graphql::{ErrorExtensions as _, Value};
use neo4j::driver::Driver;
use neo4j::{ValueReceive, ValueSend};

use crate::model::Model;
use crate::pool::BlockingPool;

/// The driver, its threads, and a count of statements run.
pub struct Graph {
    pub(crate) driver: Arc<Driver>,
    pub(crate) pool: BlockingPool,
    pub(crate) statements: Arc<AtomicU64>,
}

fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into())
        .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
}

fn database_error(error: &dyn std::fmt::Display) -> async_graphql::Error {
    tracing::warn!(%error, "Neo4j failed");
    async_graphql::Error::new("the graph database could not answer this request")
        .extend_with(|_, extensions| extensions.set("code", "DATABASE_ERROR"))
}

impl Graph {
    /// Runs `cypher` with `parameters` on a driver thread; returns each record's `key` and
    /// `items`.
    async fn related(
        &self,
        cypher: String,
        parameters: HashMap<String, ValueSend>,
    ) -> async_graphql::Result<Vec<(ValueReceive, Vec<ValueReceive>)>> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let driver = self.driver.clone();
        let records = self
            .pool
            .run(move || {
                driver
                    .execute_query(cypher.as_str())
                    .with_parameters(&parameters)
                    .run()
                    .map(|result| result.records)
                    .map_err(|error| error.to_string())
            })
            .await
            .map_err(|error| database_error(&error))?
            .map_err(|error| database_error(&error))?;
        Ok(records
            .into_iter()
            .map(|mut record| {
                let key = record.take_value("key").unwrap_or(ValueReceive::Null);
                let items = match record.take_value("items") {
                    Some(ValueReceive::List(items)) => items,
                    _ => Vec::new(),
                };
                (key, items)
            })
            .collect())
    }
}

/// A key as the `ID` text GraphQL shows.
fn key_text(value: &ValueReceive) -> Option<String> {
    match value {
        ValueReceive::Integer(n) => Some(n.to_string()),
        ValueReceive::String(text) => Some(text.clone()),
        _ => None,
    }
}

/// One entity's relationship field with one `limit`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelatedKey {
    relationship: usize,
    limit: u64,
    id: String,
}

pub struct RelatedLoader {
    model: Arc<Model>,
    graph: Arc<Graph>,
}

impl Loader<RelatedKey> for RelatedLoader {
    type Value = Arc<Vec<String>>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[RelatedKey],
    ) -> Result<HashMap<RelatedKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<(usize, u64), Vec<&RelatedKey>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.relationship, key.limit))
                .or_default()
                .push(key);
        }
        let mut loaded = HashMap::with_capacity(keys.len());
        for ((relationship, limit), keys) in groups {
            let spec = &self.model.relationships[relationship];
            let entity = self
                .model
                .entity(&spec.entity)
                .expect("checked at start-up");
            // Keys become the stored type; one that cannot (a non-number for integer keys)
            // matches nothing rather than reaching Cypher.
            let bound: Vec<ValueSend> = keys
                .iter()
                .filter_map(|key| {
                    if entity.integer_keys {
                        key.id.parse::<i64>().ok().map(ValueSend::Integer)
                    } else {
                        Some(ValueSend::String(key.id.clone()))
                    }
                })
                .collect();
            let mut related: HashMap<String, Vec<String>> = HashMap::new();
            if !bound.is_empty() {
                let parameters = HashMap::from([
                    ("keys".to_owned(), ValueSend::List(bound)),
                    ("limit".to_owned(), ValueSend::Integer(limit as i64)),
                ]);
                for (key, items) in self.graph.related(spec.cypher.clone(), parameters).await? {
                    if let Some(key) = key_text(&key) {
                        related.insert(key, items.iter().filter_map(key_text).collect());
                    }
                }
            }
            for key in keys {
                loaded.insert(
                    key.clone(),
                    Arc::new(related.remove(&key.id).unwrap_or_default()),
                );
            }
        }
        Ok(loaded)
    }
}

struct EntityRef(String);

fn entity_id<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a str> {
    ctx.parent_value
        .downcast_ref::<EntityRef>()
        .map(|entity| entity.0.as_str())
        .ok_or_else(|| async_graphql::Error::new("internal: the parent is not an entity"))
}

pub fn build(model: &Arc<Model>, graph: Arc<Graph>) -> Result<Schema, SchemaError> {
    let loader = Arc::new(
        DataLoader::new(
            RelatedLoader {
                model: model.clone(),
                graph,
            },
            tokio::spawn,
        )
        .max_batch_size(model.max_ids),
    );
    let mut builder = Schema::build("Query", None, None)
        .enable_federation()
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity);
    for (name, _) in &model.entities {
        let mut object = Object::new(name).key("id").field(Field::new(
            "id",
            TypeRef::named_nn(TypeRef::ID),
            |ctx| {
                FieldFuture::new(
                    async move { Ok(Some(Value::String(entity_id(&ctx)?.to_owned()))) },
                )
            },
        ));
        for (index, relationship) in model
            .relationships
            .iter()
            .enumerate()
            .filter(|(_, r)| r.entity == *name)
        {
            let loader = loader.clone();
            let max_limit = model.max_limit;
            let mut field = Field::new(
                &relationship.field,
                TypeRef::named_nn_list_nn(&relationship.target),
                move |ctx| {
                    let loader = loader.clone();
                    FieldFuture::new(async move {
                        let id = entity_id(&ctx)?.to_owned();
                        let limit = match ctx.args.get("limit") {
                            Some(limit) => u64::try_from(limit.i64()?)
                                .ok()
                                .filter(|limit| *limit <= max_limit)
                                .ok_or_else(|| {
                                    bad_input(format!("limit must be between 0 and {max_limit}"))
                                })?,
                            None => max_limit,
                        };
                        let related = loader
                            .load_one(RelatedKey {
                                relationship: index,
                                limit,
                                id,
                            })
                            .await?
                            .unwrap_or_default();
                        Ok(Some(FieldValue::list(
                            related
                                .iter()
                                .map(|id| FieldValue::owned_any(EntityRef(id.clone()))),
                        )))
                    })
                },
            )
            .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)));
            if let Some(description) = &relationship.description {
                field = field.description(description);
            }
            object = object.field(field);
        }
        builder = builder.register(object);
    }
    let entities: Vec<String> = model
        .entities
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    builder
        .register(Object::new("Query"))
        .entity_resolver(move |ctx| {
            let entities = entities.clone();
            FieldFuture::new(async move { resolve_entities(&entities, &ctx) })
        })
        .finish()
}

/// `_entities`: references by id, for the relationship fields to load in batches.
fn resolve_entities<'a>(
    entities: &[String],
    ctx: &ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let references = polygraph_subgraph_core::entities::references(ctx, entities, "id")?;
    Ok(Some(FieldValue::list(references.into_iter().map(
        |(typename, id)| FieldValue::owned_any(EntityRef(id)).with_type(typename),
    ))))
}
