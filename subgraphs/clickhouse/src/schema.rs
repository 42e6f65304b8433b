//! The analytics schema and resolvers: series fields on entities (batched through a loader:
//! every entity of one request step asking the same series with the same arguments shares one
//! statement) and `trainingRows`, one statement for all ids and features.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, Scalar,
    Schema, SchemaError, TypeRef,
};
use async_graphql::{ErrorExtensions as _, Value};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::values::json_field;
use serde_json::{Value as Json, json};

use crate::model::{Granularity, Model, series_sql, training_sql};

/// The client and a count of the statements it ran.
#[derive(Clone)]
pub struct Warehouse {
    pub(crate) client: clickhouse::Client,
    pub(crate) statements: Arc<AtomicU64>,
}

/// Ids bound as the key column's type: numbers stay numbers, so a hostile id is a parse error,
/// never SQL.
enum Ids {
    Unsigned(Vec<u64>),
    Signed(Vec<i64>),
    Text(Vec<String>),
}

impl Ids {
    fn parse(ids: &[String], column_type: &str) -> async_graphql::Result<Self> {
        let bad = |id: &String| bad_input(format!("{id:?} is not a valid id"));
        Ok(if column_type.starts_with("UInt") {
            Ids::Unsigned(
                ids.iter()
                    .map(|id| id.parse().map_err(|_| bad(id)))
                    .collect::<Result<_, _>>()?,
            )
        } else if column_type.starts_with("Int") {
            Ids::Signed(
                ids.iter()
                    .map(|id| id.parse().map_err(|_| bad(id)))
                    .collect::<Result<_, _>>()?,
            )
        } else {
            Ids::Text(ids.to_vec())
        })
    }

    fn bind(self, query: clickhouse::query::Query) -> clickhouse::query::Query {
        match self {
            Ids::Unsigned(ids) => query.bind(ids),
            Ids::Signed(ids) => query.bind(ids),
            Ids::Text(ids) => query.bind(ids),
        }
    }
}

impl Warehouse {
    /// Runs a statement and reads its rows as JSON objects.
    async fn rows(&self, query: clickhouse::query::Query) -> async_graphql::Result<Vec<Json>> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let bytes = query
            .fetch_bytes("JSONEachRow")
            .map_err(|error| database_error(&error))?
            .collect()
            .await
            .map_err(|error| database_error(&error))?;
        bytes
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice(line).map_err(|_| database_error(&"an unreadable row"))
            })
            .collect()
    }
}

fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into())
        .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
}

fn database_error(error: &dyn std::fmt::Display) -> async_graphql::Error {
    tracing::warn!(%error, "ClickHouse failed");
    async_graphql::Error::new("the analytics database could not answer this request")
        .extend_with(|_, extensions| extensions.set("code", "DATABASE_ERROR"))
}

/// `2025-01-02T03:04:05Z` → `2025-01-02 03:04:05` (UTC), as `toDateTime(?, 'UTC')` reads it.
fn sql_time(value: &str) -> async_graphql::Result<String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|time| {
            time.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .map_err(|_| bad_input(format!("{value:?} is not an RFC 3339 date and time")))
}

fn rfc3339(seconds: &Json) -> Json {
    let seconds = seconds
        .as_i64()
        .or_else(|| seconds.as_str().and_then(|s| s.parse().ok()));
    seconds
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or(Json::Null, |time| {
            Json::String(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        })
}

/// One entity's series with one set of arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    series: usize,
    from: Arc<str>,
    to: Arc<str>,
    granularity: usize,
    /// The measures selected, by index.
    measures: Arc<[usize]>,
    id: String,
}

/// A series, its arguments (`from`, `to`, granularity) and measures: keys sharing them share a
/// statement.
type SeriesArguments = (usize, Arc<str>, Arc<str>, usize, Arc<[usize]>);

pub struct SeriesLoader {
    model: Arc<Model>,
    warehouse: Warehouse,
}

impl Loader<SeriesKey> for SeriesLoader {
    type Value = Arc<Vec<Json>>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[SeriesKey],
    ) -> Result<HashMap<SeriesKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<SeriesArguments, Vec<&SeriesKey>> = HashMap::new();
        for key in keys {
            groups
                .entry((
                    key.series,
                    key.from.clone(),
                    key.to.clone(),
                    key.granularity,
                    key.measures.clone(),
                ))
                .or_default()
                .push(key);
        }
        let statements = groups
            .into_iter()
            .map(|(arguments, keys)| self.load_group(arguments, keys));
        let mut loaded = HashMap::with_capacity(keys.len());
        for group in futures::future::try_join_all(statements).await? {
            loaded.extend(group);
        }
        Ok(loaded)
    }
}

impl SeriesLoader {
    /// One statement for every key sharing a series, its arguments and measures.
    async fn load_group(
        &self,
        (series, from, to, granularity, measures): SeriesArguments,
        keys: Vec<&SeriesKey>,
    ) -> async_graphql::Result<Vec<(SeriesKey, Arc<Vec<Json>>)>> {
        {
            let spec = &self.model.series[series];
            let ids: Vec<String> = keys.iter().map(|key| key.id.clone()).collect();
            let sql = series_sql(spec, Granularity::ALL[granularity].1, &measures);
            let query = Ids::parse(&ids, &spec.key_type)?
                .bind(self.warehouse.client.query(&sql))
                .bind(&*from)
                .bind(&*to);
            let rows = self.warehouse.rows(query).await?;
            let mut points: HashMap<String, Vec<Json>> = HashMap::new();
            for row in rows {
                let mut point = serde_json::Map::new();
                point.insert("start".into(), rfc3339(&row["t"]));
                for index in measures.iter().copied() {
                    let measure = &spec.measures[index];
                    let value = &row[format!("m{index}")];
                    // 64-bit integers arrive quoted.
                    let value = match value {
                        Json::String(text) => text.parse::<f64>().map_or(Json::Null, |n| {
                            if measure.integer {
                                json!(n as i64)
                            } else {
                                json!(n)
                            }
                        }),
                        other => other.clone(),
                    };
                    point.insert(measure.name.clone(), value);
                }
                let key = row["k"].as_str().unwrap_or_default().to_owned();
                points.entry(key).or_default().push(Json::Object(point));
            }
            Ok(keys
                .into_iter()
                .map(|key| {
                    let series = points.remove(&key.id).unwrap_or_default();
                    (key.clone(), Arc::new(series))
                })
                .collect())
        }
    }
}

pub(crate) struct State {
    pub(crate) model: Arc<Model>,
    warehouse: Warehouse,
    loader: DataLoader<SeriesLoader>,
}

/// An entity another subgraph owns, by id, with the series `_entities` read ahead for it (by
/// response key).
struct EntityRef {
    id: String,
    prefetched: HashMap<String, Arc<Vec<Json>>>,
}

/// The loader key for one entity's series field: its arguments checked and converted, and the
/// measures its selection names.
fn series_key<'a>(
    model: &Model,
    series: usize,
    arguments: &indexmap::IndexMap<async_graphql::Name, Value>,
    selected: impl Iterator<Item = &'a str>,
    id: String,
) -> async_graphql::Result<SeriesKey> {
    let time = |name: &str| match arguments.get(name) {
        Some(Value::String(text)) => sql_time(text),
        _ => Err(bad_input(format!("{name} must be a date and time"))),
    };
    let granularity = match arguments.get("granularity") {
        None | Some(Value::Null) => 0,
        Some(Value::Enum(name)) => Granularity::ALL
            .iter()
            .position(|(n, _)| *n == name.as_str())
            .ok_or_else(|| bad_input("unknown granularity"))?,
        Some(_) => return Err(bad_input("unknown granularity")),
    };
    let spec = &model.series[series];
    let mut measures: Vec<usize> = selected
        .filter_map(|name| spec.measures.iter().position(|m| m.name == name))
        .collect();
    measures.sort_unstable();
    measures.dedup();
    Ok(SeriesKey {
        series,
        from: time("from")?.into(),
        to: time("to")?.into(),
        granularity,
        measures: measures.into(),
        id,
    })
}

/// The schema, and the prepared path that answers validated `_entities` requests without
/// async-graphql's per-field resolution.
pub fn build(
    model: &Arc<Model>,
    warehouse: Warehouse,
) -> Result<(Schema, Arc<dyn polygraph_subgraph_core::server::Prepared>), SchemaError> {
    let loader = DataLoader::new(
        SeriesLoader {
            model: model.clone(),
            warehouse: warehouse.clone(),
        },
        tokio::spawn,
    )
    .max_batch_size(model.max_ids);
    let state = Arc::new(State {
        model: model.clone(),
        warehouse,
        loader,
    });
    let mut builder = Schema::build("Query", None, None)
        .enable_federation()
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity)
        .register(Scalar::new("DateTime").description("A date and time, as an RFC 3339 string."))
        .register(
            Granularity::ALL
                .iter()
                .fold(Enum::new("Granularity"), |e, (name, _)| {
                    e.item(EnumItem::new(*name))
                }),
        );
    for series in &model.series {
        let mut point = Object::new(&series.point_type).field(
            json_field("start", TypeRef::named_nn("DateTime"), false)
                .description("Start of the bucket (UTC)."),
        );
        for measure in &series.measures {
            let ty = if measure.integer {
                TypeRef::INT
            } else {
                TypeRef::FLOAT
            };
            point = point.field(json_field(&measure.name, TypeRef::named(ty), false));
        }
        builder = builder.register(CacheHint::apply(series.cache.as_ref(), point));
    }
    for entity in &model.entities {
        let hint = CacheHint::strictest(
            model
                .series
                .iter()
                .filter(|series| series.entity == *entity)
                .map(|series| series.cache),
        );
        builder = builder.register(CacheHint::apply(hint.as_ref(), entity_type(&state, entity)));
    }
    if model.series.iter().any(|series| series.cache.is_some()) {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    let mut query = Object::new("Query");
    if let Some(training) = &model.training {
        builder = builder
            .register(
                training
                    .entities
                    .keys()
                    .fold(Enum::new("TrainingEntity"), |e, entity| e.item(EnumItem::new(entity))),
            )
            .register(
                Object::new("TrainingRow")
                    .description("One entity's features as of a moment: `values[j]` is `features[j]`'s latest value at or before it, `observedAt[j]` when that value was recorded.")
                    .field(json_field("id", TypeRef::named_nn(TypeRef::ID), false))
                    .field(json_field("values", TypeRef::named_nn_list(TypeRef::FLOAT), false))
                    .field(json_field("observedAt", TypeRef::named_nn_list("DateTime"), false)),
            );
        query = query.field(training_rows(&state));
    }
    let entities = state.clone();
    let schema = builder
        .register(query)
        .entity_resolver(move |ctx| {
            let state = entities.clone();
            FieldFuture::new(async move { resolve_entities(&state, &ctx).await })
        })
        .finish()?;
    Ok((schema, Arc::new(crate::prepared::PreparedEntities(state))))
}

fn entity<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a EntityRef> {
    ctx.parent_value
        .downcast_ref::<EntityRef>()
        .ok_or_else(|| async_graphql::Error::new("internal: the parent is not an entity"))
}

fn entity_type(state: &Arc<State>, entity: &str) -> Object {
    let mut object = Object::new(entity).key("id").field(Field::new(
        "id",
        TypeRef::named_nn(TypeRef::ID),
        |ctx| {
            FieldFuture::new(async move { Ok(Some(Value::String(self::entity(&ctx)?.id.clone()))) })
        },
    ));
    for (index, series) in state
        .model
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.entity == entity)
    {
        let state = state.clone();
        object = object.field(
            Field::new(
                &series.field,
                TypeRef::named_nn_list_nn(&series.point_type),
                move |ctx| {
                    let state = state.clone();
                    FieldFuture::new(async move {
                        let entity = self::entity(&ctx)?;
                        let response_key = ctx.ctx.item.node.response_key().node.as_str();
                        let points = if let Some(points) = entity.prefetched.get(response_key) {
                            points.clone()
                        } else {
                            let field = ctx.ctx.field();
                            let names: Vec<&str> =
                                field.selection_set().map(|f| f.name()).collect();
                            let key = series_key(
                                &state.model,
                                index,
                                ctx.args.as_index_map(),
                                names.into_iter(),
                                entity.id.clone(),
                            )?;
                            state.loader.load_one(key).await?.unwrap_or_default()
                        };
                        Ok(Some(FieldValue::list(
                            points.iter().cloned().map(FieldValue::owned_any),
                        )))
                    })
                },
            )
            .argument(InputValue::new("from", TypeRef::named_nn("DateTime")))
            .argument(
                InputValue::new("to", TypeRef::named_nn("DateTime")).description("Exclusive."),
            )
            .argument(
                InputValue::new("granularity", TypeRef::named("Granularity"))
                    .default_value(Value::Enum(async_graphql::Name::new("DAY"))),
            )
            .description(format!(
                "{} per bucket between `from` and `to`, computed in ClickHouse.",
                series.field
            )),
        );
    }
    object
}

/// `trainingRows(entity, ids, features, asOf)`: point-in-time correct, one statement.
fn training_rows(state: &Arc<State>) -> Field {
    let state = state.clone();
    Field::new("trainingRows", TypeRef::named_nn_list_nn("TrainingRow"), move |ctx| {
        let state = state.clone();
        FieldFuture::new(async move {
            let training = state.model.training.as_ref().expect("the field exists with training");
            let entity = ctx.args.try_get("entity")?.enum_name()?.to_owned();
            let kind = training.entities.get(&entity).ok_or_else(|| bad_input(format!("unknown entity {entity}")))?;
            let ids: Vec<String> = ctx.args.try_get("ids")?.deserialize()?;
            let features: Vec<String> = ctx.args.try_get("features")?.deserialize()?;
            if ids.len() > state.model.max_ids {
                return Err(bad_input(format!("at most {} ids", state.model.max_ids)));
            }
            let as_of = sql_time(ctx.args.try_get("asOf")?.string()?)?;
            let query = state.warehouse.client.query(&training_sql(training)).bind(kind.as_str());
            let query = Ids::parse(&ids, &training.id_type)?.bind(query).bind(&features).bind(as_of.as_str());
            let rows = state.warehouse.rows(query).await?;
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
                        .map(|feature| found.get(&(id.clone(), feature.clone())).cloned().unwrap_or((Json::Null, Json::Null)))
                        .unzip();
                    json!({ "id": id, "values": values, "observedAt": observed })
                })
                .collect();
            Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
        })
    })
    .argument(InputValue::new("entity", TypeRef::named_nn("TrainingEntity")))
    .argument(InputValue::new("ids", TypeRef::named_nn_list_nn(TypeRef::ID)))
    .argument(InputValue::new("features", TypeRef::named_nn_list_nn(TypeRef::STRING)))
    .argument(InputValue::new("asOf", TypeRef::named_nn("DateTime")))
    .description("Training data without leakage: for each id, each feature's latest value at or before `asOf`, never a later one.")
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

/// `_entities`: references by id, with every series field the selection asks for read ahead,
/// one statement per field and arguments for all the entities at once (fields of one entity
/// resolve one after another, so loading them field by field would cost a round trip each).
async fn resolve_entities<'a>(
    state: &State,
    ctx: &ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let references =
        polygraph_subgraph_core::entities::references(ctx, &state.model.entities, "id")?;
    let walker = polygraph_subgraph_core::selection::Walker::new(ctx.ctx);
    let sets = [&ctx.ctx.item.node.selection_set.node];
    let entities = read_ahead(state, &walker, &sets, references).await?;
    Ok(Some(FieldValue::list(entities.into_iter().map(
        |(typename, id, prefetched)| {
            FieldValue::owned_any(EntityRef { id, prefetched }).with_type(typename)
        },
    ))))
}

/// Reads every series field `sets` select on the references' types, for all of them at once.
pub(crate) async fn read_ahead(
    state: &State,
    walker: &polygraph_subgraph_core::selection::Walker<'_>,
    sets: &[&async_graphql::parser::types::SelectionSet],
    references: Vec<(String, String)>,
) -> async_graphql::Result<Vec<ReadAhead>> {
    use polygraph_subgraph_core::selection::SelectionError;
    let model = &state.model;
    // Per entity type: the series fields selected on it.
    let mut selections: HashMap<&str, Vec<SelectedSeries>> = HashMap::new();
    for entity in &model.entities {
        let mut fields = Vec::new();
        for field in walker
            .collect(sets, entity)
            .map_err(SelectionError::bad_input)?
        {
            let Some(series) = model
                .series
                .iter()
                .position(|s| s.entity == *entity && s.field == field.name)
            else {
                continue;
            };
            let measures = walker
                .collect(&field.selection_sets, &model.series[series].point_type)
                .map_err(SelectionError::bad_input)?
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
    // Per reference: (response key, loader key) of each series field selected on its type.
    let mut wanted: Vec<Vec<(String, SeriesKey)>> = Vec::with_capacity(references.len());
    for (typename, id) in &references {
        let mut keys = Vec::new();
        for (response_key, series, arguments, measures) in &selections[typename.as_str()] {
            let key = series_key(
                model,
                *series,
                arguments,
                measures.iter().map(String::as_str),
                id.clone(),
            )?;
            keys.push((response_key.clone(), key));
        }
        wanted.push(keys);
    }
    let all: Vec<SeriesKey> = wanted
        .iter()
        .flatten()
        .map(|(_, key)| key.clone())
        .collect();
    let loaded = if all.is_empty() {
        HashMap::new()
    } else {
        state.loader.loader().load(&all).await?
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
