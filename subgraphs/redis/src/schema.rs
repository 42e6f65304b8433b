//! The feature store's schema and resolvers.
//!
//! Every read is one pipeline of `HMGET`s: the groups asked for by all the entities of one
//! request step (through a batching loader), or all the ids × names of a `featureVector`.
//! `putFeatures` writes an entity's hashes and their TTLs in one `MULTI`/`EXEC`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, Scalar,
    Schema, SchemaError, TypeRef,
};
use async_graphql::{ErrorExtensions as _, Value};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::claims::{Claims, RequestClaims};
use polygraph_subgraph_core::rules;
use polygraph_subgraph_core::values::json_field;
use redis::aio::MultiplexedConnection;
use serde_json::{Map, Value as Json, json};

use crate::model::{FeatureType, Model};

/// The connection and a count of its round trips.
#[derive(Clone)]
pub struct Store {
    pub(crate) connection: MultiplexedConnection,
    pub(crate) round_trips: Arc<AtomicU64>,
}

impl Store {
    /// `HMGET` of each (key, fields) in one pipeline.
    async fn read(
        &self,
        reads: &[(String, Vec<&str>)],
    ) -> redis::RedisResult<Vec<Vec<Option<String>>>> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (key, fields) in reads {
            pipe.cmd("HMGET").arg(key).arg(fields);
        }
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        pipe.query_async(&mut self.connection.clone()).await
    }
}

fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into())
        .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
}

fn database_error(error: &redis::RedisError) -> async_graphql::Error {
    tracing::warn!(%error, "Redis failed");
    async_graphql::Error::new("the feature store could not answer this request")
        .extend_with(|_, extensions| extensions.set("code", "DATABASE_ERROR"))
}

/// `[[FeatureValue]!]!`.
fn matrix_type() -> TypeRef {
    let row = TypeRef::List(Box::new(TypeRef::named("FeatureValue")));
    TypeRef::NonNull(Box::new(TypeRef::List(Box::new(TypeRef::NonNull(
        Box::new(row),
    )))))
}

/// One entity's group of features: which group, and the entity's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub group: usize,
    /// The features to read (indices into the group's), in order.
    pub features: Arc<[usize]>,
    pub id: String,
}

/// Loads groups for many entities in one pipeline.
pub struct GroupLoader {
    model: Arc<Model>,
    store: Store,
}

impl Loader<GroupKey> for GroupLoader {
    /// The group's features as a JSON object by GraphQL field name; `None` when the entity has
    /// no hash for it.
    type Value = Option<Arc<Json>>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[GroupKey]) -> Result<HashMap<GroupKey, Self::Value>, Self::Error> {
        let groups = self.read(keys).await?;
        Ok(keys.iter().cloned().zip(groups).collect())
    }
}

impl GroupLoader {
    /// The groups of `keys`, in order, in one pipeline.
    pub(crate) async fn read(
        &self,
        keys: &[GroupKey],
    ) -> async_graphql::Result<Vec<Option<Arc<Json>>>> {
        let reads: Vec<(String, Vec<&str>)> = keys
            .iter()
            .map(|key| {
                let group = &self.model.groups[key.group];
                (
                    group.key(&key.id),
                    key.features
                        .iter()
                        .map(|index| group.features[*index].name.as_str())
                        .collect(),
                )
            })
            .collect();
        let rows = self
            .store
            .read(&reads)
            .await
            .map_err(|error| database_error(&error))?;
        Ok(keys
            .iter()
            .zip(rows)
            .map(|(key, row)| {
                let group = &self.model.groups[key.group];
                (row.iter().any(Option::is_some)).then(|| {
                    let values: Map<String, Json> = key
                        .features
                        .iter()
                        .map(|index| &group.features[*index])
                        .zip(&row)
                        .map(|(feature, stored)| {
                            let value = stored.as_deref().and_then(|s| feature.kind.read(s));
                            (feature.field.clone(), value.unwrap_or(Json::Null))
                        })
                        .collect();
                    Arc::new(Json::Object(values))
                })
            })
            .collect())
    }
}

pub(crate) struct State {
    pub(crate) model: Arc<Model>,
    store: Store,
    pub(crate) loader: DataLoader<GroupLoader>,
}

/// An entity another subgraph owns, by id (its type says which), with the groups `_entities`
/// read for it ahead of its fields.
struct EntityRef {
    id: String,
    groups: HashMap<usize, Option<Arc<Json>>>,
}

/// The schema, and the prepared path that answers validated `_entities` requests without
/// async-graphql's per-field resolution.
pub fn build_served(
    model: &Arc<Model>,
    store: Store,
) -> Result<(Schema, Arc<dyn polygraph_subgraph_core::server::Prepared>), SchemaError> {
    let (schema, state) = build_with_state(model, store)?;
    Ok((schema, Arc::new(crate::prepared::PreparedEntities(state))))
}

fn build_with_state(model: &Arc<Model>, store: Store) -> Result<(Schema, Arc<State>), SchemaError> {
    let loader = DataLoader::new(
        GroupLoader {
            model: model.clone(),
            store: store.clone(),
        },
        tokio::spawn,
    )
    .max_batch_size(model.max_ids);
    let state = Arc::new(State {
        model: model.clone(),
        store,
        loader,
    });
    let hinted = model.groups.iter().any(|group| group.cache.is_some());
    let inherit = hinted.then(CacheHint::inherit);
    let mut builder = Schema::build("Query", Some("Mutation"), None)
        .enable_federation()
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity)
        .register(Scalar::new("FeatureValue").description("A feature's value: a number, string, Boolean or list of numbers."))
        .register(
            // A feature takes its entity's hint.
            CacheHint::apply(inherit.as_ref(), Object::new("Feature"))
                .description("One named feature of an entity.")
                .field(json_field("name", TypeRef::named_nn(TypeRef::STRING), false))
                .field(json_field("group", TypeRef::named_nn(TypeRef::STRING), false))
                .field(json_field("value", TypeRef::named("FeatureValue"), false)),
        )
        .register(
            Object::new("MissingFeature")
                .field(json_field("id", TypeRef::named_nn(TypeRef::ID), false))
                .field(json_field("name", TypeRef::named_nn(TypeRef::STRING), false)),
        )
        .register(
            Object::new("FeatureVector")
                .description("Feature values for many entities: `values[i][j]` is `names[j]` of `ids[i]`, null when missing.")
                .field(json_field("ids", TypeRef::named_nn_list_nn(TypeRef::ID), false))
                .field(json_field("names", TypeRef::named_nn_list_nn(TypeRef::STRING), false))
                .field(json_field("values", matrix_type(), false))
                .field(json_field("missing", TypeRef::named_nn_list_nn("MissingFeature"), false)),
        )
        .register(
            Object::new("PutFeaturesResult")
                .field(json_field("id", TypeRef::named_nn(TypeRef::ID), false))
                .field(json_field("written", TypeRef::named_nn(TypeRef::INT), false))
                .field(json_field("expiresInSeconds", TypeRef::named(TypeRef::INT), false)),
        )
        .register(
            InputObject::new("FeatureInput")
                .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
                .field(InputValue::new("value", TypeRef::named_nn("FeatureValue"))),
        )
        .register(
            model
                .entities
                .iter()
                .fold(Enum::new("FeatureEntity"), |e, entity| e.item(EnumItem::new(entity))),
        );
    for (index, group) in model.groups.iter().enumerate() {
        let mut object = Object::new(&group.type_name).description(format!(
            "The {} features of a {}.",
            group.name, group.entity
        ));
        for feature in &group.features {
            let ty = match feature.kind {
                FeatureType::FloatList => TypeRef::named_nn_list("Float"),
                kind => TypeRef::named(kind.graphql()),
            };
            object = object.field(json_field(&feature.field, ty, false));
        }
        builder = builder.register(CacheHint::apply(group.cache.as_ref(), object));
        let _ = index;
    }
    for entity in &model.entities {
        let hint = CacheHint::strictest(model.groups_of(entity).map(|(_, group)| group.cache));
        builder = builder.register(CacheHint::apply(hint.as_ref(), entity_type(&state, entity)));
    }
    if hinted {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    let entities = state.clone();
    let served = state.clone();
    builder
        .register(Object::new("Query").field(feature_vector(&state)))
        .register(Object::new("Mutation").field(put_features(&state)))
        .entity_resolver(move |ctx| {
            let state = entities.clone();
            FieldFuture::new(async move { resolve_entities(&state, &ctx).await })
        })
        .finish()
        .map(|schema| (schema, served))
}

/// A group to read, and which of its features (indices).
type GroupRead = (usize, Arc<[usize]>);

/// Each referenced entity with the feature groups its type's selection reads (all of the
/// entity's groups when it asks for `features`), read in one pipeline: fields of one entity
/// resolve one after another, so reading per field would cost a round trip per field.
pub(crate) async fn read_ahead(
    state: &State,
    walker: &polygraph_subgraph_core::selection::Walker<'_>,
    sets: &[&async_graphql::parser::types::SelectionSet],
    references: Vec<(String, String)>,
    claims: Option<&Claims>,
) -> async_graphql::Result<Vec<(String, String, HashMap<usize, Option<Arc<Json>>>)>> {
    use polygraph_subgraph_core::selection::SelectionError;
    let model = &state.model;
    // Per entity type: each group its selection reads, and which of the group's features.
    let mut needed: HashMap<&str, Vec<GroupRead>> = HashMap::new();
    for entity in &model.entities {
        let selected = walker
            .collect(sets, entity)
            .map_err(SelectionError::bad_input)?;
        let mut groups = Vec::new();
        for (index, group) in model.groups_of(entity) {
            let mut features: Vec<usize> = Vec::new();
            for field in &selected {
                if field.name == group.field {
                    let parts = walker
                        .collect(&field.selection_sets, &group.type_name)
                        .map_err(SelectionError::bad_input)?;
                    features.extend(parts.iter().filter_map(|part| {
                        group.features.iter().position(|f| f.field == part.name)
                    }));
                } else if field.name == "features" {
                    let names: Option<Vec<String>> = field
                        .argument("names")
                        .and_then(|names| names.clone().into_json().ok())
                        .and_then(|names| serde_json::from_value(names).ok());
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
        needed.insert(entity, groups);
    }
    // Groups a row rule hides from this caller are not read, and answer as absent.
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
    let mut loaded = if reads.is_empty() {
        Vec::new()
    } else {
        state.loader.loader().read(&reads).await?
    }
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

/// `_entities`: references to entities owned elsewhere, their feature groups read ahead.
async fn resolve_entities<'a>(
    state: &State,
    ctx: &async_graphql::dynamic::ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let walker = polygraph_subgraph_core::selection::Walker::new(ctx.ctx);
    let sets = [&ctx.ctx.item.node.selection_set.node];
    let references =
        polygraph_subgraph_core::entities::references(ctx, &state.model.entities, "id")?;
    let entities = read_ahead(state, &walker, &sets, references, RequestClaims::of(ctx)).await?;
    Ok(Some(FieldValue::list(entities.into_iter().map(
        |(typename, id, groups)| {
            FieldValue::owned_any(EntityRef { id, groups }).with_type(typename)
        },
    ))))
}

fn entity_id<'a>(
    ctx: &async_graphql::dynamic::ResolverContext<'a>,
) -> async_graphql::Result<&'a str> {
    entity(ctx).map(|entity| entity.id.as_str())
}

fn entity<'a>(
    ctx: &async_graphql::dynamic::ResolverContext<'a>,
) -> async_graphql::Result<&'a EntityRef> {
    ctx.parent_value
        .downcast_ref::<EntityRef>()
        .ok_or_else(|| async_graphql::Error::new("internal: the parent is not an entity"))
}

/// Whether the caller may read or write `group` of entity `id` (its row rule).
pub(crate) fn allowed(
    model: &Model,
    group: usize,
    id: &str,
    claims: Option<&Claims>,
) -> async_graphql::Result<bool> {
    let group = &model.groups[group];
    let what = format!("{} features", group.type_name);
    Ok(rules::ruled(group.rule.as_ref(), claims, &what)?
        .is_none_or(|(rule, claims)| rule.holds_for_id(claims, id)))
}

/// An entity's group: read ahead by `_entities`, or through the loader (only where the caller
/// may see it).
async fn group_of(
    state: &State,
    entity: &EntityRef,
    group: usize,
    claims: Option<&Claims>,
) -> async_graphql::Result<Option<Arc<Json>>> {
    if let Some(read) = entity.groups.get(&group) {
        return Ok(read.clone());
    }
    if !allowed(&state.model, group, &entity.id, claims)? {
        return Ok(None);
    }
    Ok(state
        .loader
        .load_one(GroupKey {
            group,
            features: (0..state.model.groups[group].features.len()).collect(),
            id: entity.id.clone(),
        })
        .await?
        .flatten())
}

/// `User @key(fields: "id") { id features(names:) onlineFeatures }`.
fn entity_type(state: &Arc<State>, entity: &str) -> Object {
    let mut object = Object::new(entity).key("id").field(Field::new(
        "id",
        TypeRef::named_nn(TypeRef::ID),
        |ctx| FieldFuture::new(async move { Ok(Some(Value::String(entity_id(&ctx)?.to_owned()))) }),
    ));
    for (index, group) in state.model.groups_of(entity) {
        let state = state.clone();
        object = object.field(Field::new(
            &group.field,
            TypeRef::named(&group.type_name),
            move |ctx| {
                let state = state.clone();
                FieldFuture::new(async move {
                    let loaded =
                        group_of(&state, self::entity(&ctx)?, index, RequestClaims::of(&ctx))
                            .await?;
                    Ok(loaded.map(FieldValue::owned_any))
                })
            },
        ));
    }
    let state = state.clone();
    let entity_name = entity.to_owned();
    object.field(
        Field::new(
            "features",
            TypeRef::named_nn_list_nn("Feature"),
            move |ctx| {
                let state = state.clone();
                let entity = entity_name.clone();
                FieldFuture::new(async move {
                    let parent = self::entity(&ctx)?;
                    let names: Option<Vec<String>> = match ctx.args.get("names") {
                        Some(names) => Some(names.deserialize()?),
                        None => None,
                    };
                    let groups: Vec<usize> = state
                        .model
                        .groups_of(&entity)
                        .map(|(index, _)| index)
                        .collect();
                    let mut features = Vec::new();
                    for group in groups {
                        let spec = &state.model.groups[group];
                        let values =
                            group_of(&state, parent, group, RequestClaims::of(&ctx)).await?;
                        for feature in &spec.features {
                            if names
                                .as_ref()
                                .is_some_and(|names| !names.contains(&feature.name))
                            {
                                continue;
                            }
                            let value = values
                                .as_ref()
                                .map_or(Json::Null, |v| v[&feature.field].clone());
                            features.push(
                                json!({ "name": feature.name, "group": spec.name, "value": value }),
                            );
                        }
                    }
                    Ok(Some(FieldValue::list(
                        features.into_iter().map(FieldValue::owned_any),
                    )))
                })
            },
        )
        .argument(InputValue::new(
            "names",
            TypeRef::named_nn_list(TypeRef::STRING),
        ))
        .description("Features by name (all of them without `names`)."),
    )
}

/// `featureVector(entity, ids, names)`: one pipeline for the whole matrix.
fn feature_vector(state: &Arc<State>) -> Field {
    let state = state.clone();
    Field::new(
        "featureVector",
        TypeRef::named_nn("FeatureVector"),
        move |ctx| {
            let state = state.clone();
            FieldFuture::new(async move {
                let model = &state.model;
                let entity = ctx.args.try_get("entity")?.enum_name()?.to_owned();
                let ids: Vec<String> = ctx.args.try_get("ids")?.deserialize()?;
                let names: Vec<String> = ctx.args.try_get("names")?.deserialize()?;
                if ids.len() > model.max_ids {
                    return Err(bad_input(format!("at most {} ids", model.max_ids)));
                }
                let mut columns = Vec::with_capacity(names.len());
                for name in &names {
                    let (group, feature) = model
                        .find(&entity, name)
                        .ok_or_else(|| bad_input(format!("{entity} has no feature {name}")))?;
                    columns.push((group, feature.kind));
                }
                // One HMGET per (id, group) for the names in that group.
                let mut groups: Vec<usize> = columns.iter().map(|(g, _)| *g).collect();
                groups.sort_unstable();
                groups.dedup();
                // Entities a group's row rule hides from this caller read as missing.
                let mut hidden = Vec::new();
                for id in &ids {
                    for group in &groups {
                        hidden.push(!allowed(model, *group, id, RequestClaims::of(&ctx))?);
                    }
                }
                let mut reads = Vec::new();
                for id in &ids {
                    for group in &groups {
                        let fields: Vec<&str> = names
                            .iter()
                            .zip(&columns)
                            .filter(|(_, (g, _))| g == group)
                            .map(|(name, _)| name.as_str())
                            .collect();
                        reads.push((model.groups[*group].key(id), fields));
                    }
                }
                let rows = state
                    .store
                    .read(&reads)
                    .await
                    .map_err(|error| database_error(&error))?;
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
                Ok(Some(FieldValue::owned_any(
                    json!({ "ids": ids, "names": names, "values": values, "missing": missing }),
                )))
            })
        },
    )
    .argument(InputValue::new(
        "entity",
        TypeRef::named_nn("FeatureEntity"),
    ))
    .argument(InputValue::new(
        "ids",
        TypeRef::named_nn_list_nn(TypeRef::ID),
    ))
    .argument(InputValue::new(
        "names",
        TypeRef::named_nn_list_nn(TypeRef::STRING),
    ))
    .description("Feature values for many entities at once, for model serving.")
}

/// `putFeatures(entity, id, values)`: every group touched written, with its TTL, atomically.
fn put_features(state: &Arc<State>) -> Field {
    let state = state.clone();
    Field::new(
        "putFeatures",
        TypeRef::named_nn("PutFeaturesResult"),
        move |ctx| {
            let state = state.clone();
            FieldFuture::new(async move {
                let model = &state.model;
                let entity = ctx.args.try_get("entity")?.enum_name()?.to_owned();
                let id: String = ctx.args.try_get("id")?.deserialize()?;
                let Value::List(inputs) = ctx.args.try_get("values")?.as_value().clone() else {
                    return Err(bad_input("values must be a list"));
                };
                let mut writes: Vec<(usize, Vec<(String, String)>)> = Vec::new();
                for input in &inputs {
                    let Value::Object(input) = input else {
                        return Err(bad_input("each value must be an object"));
                    };
                    let Some(Value::String(name)) = input.get("name") else {
                        return Err(bad_input("a value has no name"));
                    };
                    let (group, feature) = model
                        .find(&entity, name)
                        .ok_or_else(|| bad_input(format!("{entity} has no feature {name}")))?;
                    if !allowed(model, group, &id, RequestClaims::of(&ctx))? {
                        return Err(async_graphql::Error::new(format!(
                            "{name} of {entity} {id} is outside what this request may write"
                        ))
                        .extend_with(|_, extensions| extensions.set("code", "FORBIDDEN")));
                    }
                    let stored = feature
                        .kind
                        .write(input.get("value").unwrap_or(&Value::Null))
                        .map_err(|error| bad_input(format!("{name}: {error}")))?;
                    match writes.iter_mut().find(|(g, _)| *g == group) {
                        Some((_, fields)) => fields.push((name.clone(), stored)),
                        None => writes.push((group, vec![(name.clone(), stored)])),
                    }
                }
                let mut pipe = redis::pipe();
                pipe.atomic();
                let mut expires = None;
                for (group, fields) in &writes {
                    let spec = &model.groups[*group];
                    let key = spec.key(&id);
                    pipe.hset_multiple(&key, fields).ignore();
                    if let Some(ttl) = spec.ttl_seconds {
                        pipe.expire(&key, ttl as i64).ignore();
                        expires = Some(expires.map_or(ttl, |e: u64| e.min(ttl)));
                    }
                }
                if !writes.is_empty() {
                    state.store.round_trips.fetch_add(1, Ordering::Relaxed);
                    let () = pipe
                        .query_async(&mut state.store.connection.clone())
                        .await
                        .map_err(|error| database_error(&error))?;
                }
                Ok(Some(FieldValue::owned_any(
                    json!({ "id": id, "written": inputs.len(), "expiresInSeconds": expires }),
                )))
            })
        },
    )
    .argument(InputValue::new(
        "entity",
        TypeRef::named_nn("FeatureEntity"),
    ))
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
    .argument(InputValue::new(
        "values",
        TypeRef::named_nn_list_nn("FeatureInput"),
    ))
    .description("Writes online features of one entity, all or nothing, with the groups' TTLs.")
}
