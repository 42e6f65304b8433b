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
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::claims::{Claims, RequestClaims};
use polygraph_subgraph_core::rules;

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
        // Different fields are different statements: run them side by side on the driver's
        // threads.
        let statements = groups
            .into_iter()
            .map(|((relationship, limit), keys)| self.load_group(relationship, limit, keys));
        let mut loaded = HashMap::with_capacity(keys.len());
        for group in futures::future::try_join_all(statements).await? {
            loaded.extend(group);
        }
        Ok(loaded)
    }
}

impl RelatedLoader {
    /// One statement for every key of one relationship with one limit.
    async fn load_group(
        &self,
        relationship: usize,
        limit: u64,
        keys: Vec<&RelatedKey>,
    ) -> async_graphql::Result<Vec<(RelatedKey, Arc<Vec<String>>)>> {
        {
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
            Ok(keys
                .into_iter()
                .map(|key| {
                    (
                        key.clone(),
                        Arc::new(related.remove(&key.id).unwrap_or_default()),
                    )
                })
                .collect())
        }
    }
}

/// An entity another subgraph owns, by id, with the relationship fields `_entities` read ahead
/// for it (by response key).
struct EntityRef {
    id: String,
    prefetched: HashMap<String, Arc<Vec<String>>>,
}

fn reference(id: &str) -> FieldValue<'static> {
    FieldValue::owned_any(EntityRef {
        id: id.to_owned(),
        prefetched: HashMap::new(),
    })
}

/// A `limit` argument, checked against the model's maximum.
fn limit_of(value: Option<&Value>, max_limit: u64) -> async_graphql::Result<u64> {
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
) -> async_graphql::Result<bool> {
    let rule = model
        .entities
        .iter()
        .position(|(entity, _)| entity == name)
        .and_then(|index| model.rules[index].as_ref());
    let what = format!("the relationships of {name}");
    Ok(rules::ruled(rule, claims, &what)?
        .is_none_or(|(rule, claims)| rule.holds_for_id(claims, id)))
}

fn entity<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a EntityRef> {
    ctx.parent_value
        .downcast_ref::<EntityRef>()
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
    if model
        .entities
        .iter()
        .any(|(_, entity)| entity.cache.is_some())
    {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    for (name, config) in &model.entities {
        let object = Object::new(name);
        let mut object = CacheHint::apply(config.cache.as_ref(), object)
            .key("id")
            .field(Field::new("id", TypeRef::named_nn(TypeRef::ID), |ctx| {
                FieldFuture::new(async move { Ok(Some(Value::String(entity(&ctx)?.id.clone()))) })
            }));
        for (index, relationship) in model
            .relationships
            .iter()
            .enumerate()
            .filter(|(_, r)| r.entity == *name)
        {
            let loader = loader.clone();
            let rules = model.clone();
            let entity_name = name.clone();
            let max_limit = model.max_limit;
            let mut field = Field::new(
                &relationship.field,
                TypeRef::named_nn_list_nn(&relationship.target),
                move |ctx| {
                    let loader = loader.clone();
                    let (rules, entity_name) = (rules.clone(), entity_name.clone());
                    FieldFuture::new(async move {
                        let parent = entity(&ctx)?;
                        let response_key = ctx.ctx.item.node.response_key().node.as_str();
                        let related = if let Some(related) = parent.prefetched.get(response_key) {
                            related.clone()
                        } else if !allowed(
                            &rules,
                            &entity_name,
                            &parent.id,
                            RequestClaims::of(&ctx),
                        )? {
                            Arc::default()
                        } else {
                            let limit =
                                limit_of(ctx.args.get("limit").map(|v| v.as_value()), max_limit)?;
                            let key = RelatedKey {
                                relationship: index,
                                limit,
                                id: parent.id.clone(),
                            };
                            loader.load_one(key).await?.unwrap_or_default()
                        };
                        Ok(Some(FieldValue::list(
                            related.iter().map(|id| reference(id)),
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
    let (entities_model, entities_loader) = (model.clone(), loader.clone());
    builder
        .register(Object::new("Query"))
        .entity_resolver(move |ctx| {
            let (model, loader) = (entities_model.clone(), entities_loader.clone());
            FieldFuture::new(async move { resolve_entities(&model, &loader, &ctx).await })
        })
        .finish()
}

/// `_entities`: references by id, with every relationship field the selection asks for read
/// ahead: one statement per field and limit for all the entities at once, the statements side
/// by side (fields of one entity resolve one after another, so loading them field by field
/// would cost a round trip each, one after another).
async fn resolve_entities<'a>(
    model: &Model,
    loader: &DataLoader<RelatedLoader>,
    ctx: &ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    use polygraph_subgraph_core::selection::{SelectionError, Walker};
    let entities: Vec<String> = model
        .entities
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    let references = polygraph_subgraph_core::entities::references(ctx, &entities, "id")?;
    let walker = Walker::new(ctx.ctx);
    let sets = [&ctx.ctx.item.node.selection_set.node];
    // Per entity type: (response key, relationship, limit) of each relationship field selected.
    let mut selected: HashMap<&str, Vec<(String, usize, u64)>> = HashMap::new();
    for entity in &entities {
        let mut fields = Vec::new();
        for field in walker
            .collect(&sets, entity)
            .map_err(SelectionError::bad_input)?
        {
            if let Some(relationship) = model
                .relationships
                .iter()
                .position(|r| r.entity == *entity && r.field == field.name)
            {
                let limit = limit_of(field.argument("limit"), model.max_limit)?;
                fields.push((field.response_key.to_owned(), relationship, limit));
            }
        }
        selected.insert(entity, fields);
    }
    // Entities whose relationships a rule hides from this caller are not read: empty lists.
    let mut hidden = std::collections::HashSet::new();
    for (typename, id) in &references {
        if !selected[typename.as_str()].is_empty()
            && !allowed(model, typename, id, RequestClaims::of(ctx))?
        {
            hidden.insert((typename.clone(), id.clone()));
        }
    }
    let keys: Vec<RelatedKey> = references
        .iter()
        .filter(|reference| !hidden.contains(*reference))
        .flat_map(|(typename, id)| {
            selected[typename.as_str()]
                .iter()
                .map(|(_, relationship, limit)| RelatedKey {
                    relationship: *relationship,
                    limit: *limit,
                    id: id.clone(),
                })
        })
        .collect();
    let related = if keys.is_empty() {
        HashMap::new()
    } else {
        loader.loader().load(&keys).await?
    };
    Ok(Some(FieldValue::list(references.into_iter().map(
        |(typename, id)| {
            let prefetched = selected[typename.as_str()]
                .iter()
                .map(|(response_key, relationship, limit)| {
                    let key = RelatedKey {
                        relationship: *relationship,
                        limit: *limit,
                        id: id.clone(),
                    };
                    (
                        response_key.clone(),
                        related.get(&key).cloned().unwrap_or_default(),
                    )
                })
                .collect();
            FieldValue::owned_any(EntityRef { id, prefetched }).with_type(typename)
        },
    ))))
}
