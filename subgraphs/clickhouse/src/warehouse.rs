//! ClickHouse itself, through its HTTP interface: statements with bound parameters, rows read
//! as JSON, and a count of statements.

use polygraph_subgraph_core::recorder::Recorder;
use std::collections::HashMap;
use std::sync::Arc;

use polygraph_subgraph_core::engine::FieldError;
use serde_json::{Value as Json, json};

use crate::errors::database_error;
use crate::model::{Granularity, Model, series_sql};

/// The client and a count of the statements it ran.
#[derive(Clone)]
pub struct Warehouse {
    pub(crate) client: clickhouse::Client,
    pub(crate) statements: Arc<Recorder>,
}

/// Ids bound as the key column's type: numbers stay numbers, so a hostile id is a parse error,
/// never SQL.
pub(crate) enum Ids {
    Unsigned(Vec<u64>),
    Signed(Vec<i64>),
    Text(Vec<String>),
}

impl Ids {
    pub(crate) fn parse(ids: &[String], column_type: &str) -> Result<Self, FieldError> {
        let bad = |id: &String| FieldError::bad_input(format!("{id:?} is not a valid id"));
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

    pub(crate) fn bind(self, query: clickhouse::query::Query) -> clickhouse::query::Query {
        match self {
            Ids::Unsigned(ids) => query.bind(ids),
            Ids::Signed(ids) => query.bind(ids),
            Ids::Text(ids) => query.bind(ids),
        }
    }
}

impl Warehouse {
    /// Runs a statement and reads its rows as JSON objects.
    pub(crate) async fn rows(
        &self,
        sql: &str,
        query: clickhouse::query::Query,
    ) -> Result<Vec<Json>, FieldError> {
        self.statements.note(sql);
        let bytes = self
            .statements
            .round_trip(sql, async {
                query.fetch_bytes("JSONEachRow")?.collect().await
            })
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

    /// The points of every key: one statement per group of keys sharing a series, its
    /// arguments and measures, for at most `max_ids` distinct ids each (a group's statements
    /// one after another, the groups side by side).
    pub(crate) async fn series(
        &self,
        model: &Model,
        keys: &[SeriesKey],
    ) -> Result<HashMap<SeriesKey, Arc<Vec<Json>>>, FieldError> {
        let mut groups: HashMap<SeriesArguments, Vec<&SeriesKey>> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            // A key asked for twice (two aliases, a repeated representation) is read once.
            if !seen.insert(key) {
                continue;
            }
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
        let statements = groups.into_iter().map(|(arguments, keys)| async move {
            let mut loaded = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(model.max_ids.max(1)) {
                loaded.extend(self.series_group(model, arguments.clone(), chunk).await?);
            }
            Ok::<_, FieldError>(loaded)
        });
        let mut loaded = HashMap::with_capacity(keys.len());
        for group in futures::future::try_join_all(statements).await? {
            loaded.extend(group);
        }
        Ok(loaded)
    }

    /// One statement for every key sharing a series, its arguments and measures.
    async fn series_group(
        &self,
        model: &Model,
        (series, from, to, granularity, measures): SeriesArguments,
        keys: &[&SeriesKey],
    ) -> Result<Vec<(SeriesKey, Arc<Vec<Json>>)>, FieldError> {
        {
            let spec = &model.series[series];
            let ids: Vec<String> = keys.iter().map(|key| key.id.clone()).collect();
            let sql = series_sql(spec, Granularity::ALL[granularity].1, &measures);
            let query = Ids::parse(&ids, &spec.key_type)?
                .bind(self.client.query(&sql))
                .bind(&*from)
                .bind(&*to);
            let rows = self.rows(&sql, query).await?;
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
                .iter()
                .map(|key| {
                    let series = points.get(&key.id).cloned().unwrap_or_default();
                    (SeriesKey::clone(key), Arc::new(series))
                })
                .collect())
        }
    }
}

/// `2025-01-02T03:04:05Z` → `2025-01-02 03:04:05` (UTC), as `toDateTime(?, 'UTC')` reads it.
pub(crate) fn sql_time(value: &str) -> Result<String, FieldError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|time| {
            time.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .map_err(|_| FieldError::bad_input(format!("{value:?} is not an RFC 3339 date and time")))
}

pub(crate) fn rfc3339(seconds: &Json) -> Json {
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
pub(crate) struct SeriesKey {
    pub(crate) series: usize,
    pub(crate) from: Arc<str>,
    pub(crate) to: Arc<str>,
    pub(crate) granularity: usize,
    /// The measures selected, by index.
    pub(crate) measures: Arc<[usize]>,
    pub(crate) id: String,
}

/// The index of granularity `name` in [`Granularity::ALL`].
fn granularity(name: &str) -> Result<usize, FieldError> {
    Granularity::ALL
        .iter()
        .position(|(n, _)| *n == name)
        .ok_or_else(|| FieldError::bad_input("unknown granularity"))
}

/// A series, its arguments (`from`, `to`, granularity) and measures: keys sharing them share a
/// statement.
type SeriesArguments = (usize, Arc<str>, Arc<str>, usize, Arc<[usize]>);

/// The key for one entity's series field: its arguments checked and converted, and the
/// measures its selection names.
pub(crate) fn series_key<'a>(
    model: &Model,
    series: usize,
    arguments: &indexmap::IndexMap<async_graphql::Name, async_graphql::Value>,
    selected: impl Iterator<Item = &'a str>,
    id: String,
) -> Result<SeriesKey, FieldError> {
    let time = |name: &str| match arguments.get(name) {
        Some(async_graphql::Value::String(text)) => sql_time(text),
        _ => Err(FieldError::bad_input(format!(
            "{name} must be a date and time"
        ))),
    };
    let granularity = match arguments.get("granularity") {
        None | Some(async_graphql::Value::Null) => 0,
        // A literal is an enum value; a variable's value is its name as a string.
        Some(async_graphql::Value::Enum(name)) => granularity(name.as_str())?,
        Some(async_graphql::Value::String(name)) => granularity(name)?,
        Some(_) => return Err(FieldError::bad_input("unknown granularity")),
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
