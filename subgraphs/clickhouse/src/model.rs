//! The analytics model and its SQL, pure: configured series and the training table, checked
//! against the columns `system.columns` lists, and the one statement each request becomes.
//! Identifiers come only from the checked configuration; every request value is a `?` the
//! client library binds (escaping it), and the SQL is kept to what ClickHouse 18.16 and current
//! ClickHouse both accept (no window functions, no server-side typed parameters).

use anyhow::{anyhow, bail};
use indexmap::IndexMap;
use polygraph_subgraph_core::naming;

use crate::config::Config;

/// A table's columns and their ClickHouse types.
pub type Columns = std::collections::BTreeMap<String, Vec<(String, String)>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
    Month,
}

impl Granularity {
    pub const ALL: [(&'static str, Granularity); 3] = [
        ("DAY", Granularity::Day),
        ("WEEK", Granularity::Week),
        ("MONTH", Granularity::Month),
    ];

    /// The bucket start of `column`, as a `DateTime`.
    fn bucket(self, column: &str) -> String {
        match self {
            Granularity::Day => format!("toStartOfDay({column})"),
            Granularity::Week => format!("toDateTime(toMonday({column}))"),
            Granularity::Month => format!("toDateTime(toStartOfMonth({column}))"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Measure {
    /// The GraphQL field.
    pub name: String,
    /// The aggregate over its (quoted) column, e.g. ``sum(`amount`)``.
    pub expression: String,
    /// Counts are `Int`, the rest `Float`.
    pub integer: bool,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub entity: String,
    pub field: String,
    pub point_type: String,
    pub table: String,
    pub key: String,
    pub key_type: String,
    pub time: String,
    pub measures: Vec<Measure>,
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
}

#[derive(Clone, Debug)]
pub struct Training {
    pub table: String,
    pub entity_column: String,
    pub entities: IndexMap<String, String>,
    pub id: String,
    pub id_type: String,
    pub feature: String,
    pub value: String,
    pub time: String,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub series: Vec<Series>,
    pub training: Option<Training>,
    /// Entity types extended by a series, in config order.
    pub entities: Vec<String>,
    pub max_ids: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
}

/// `` `name` ``, with backticks inside doubled.
pub fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

fn column_type<'a>(columns: &'a Columns, table: &str, column: &str) -> anyhow::Result<&'a str> {
    columns
        .get(table)
        .ok_or_else(|| anyhow!("table {table} does not exist"))?
        .iter()
        .find(|(name, _)| name == column)
        .map(|(_, kind)| kind.as_str())
        .ok_or_else(|| anyhow!("table {table} has no column {column}"))
}

pub fn build(config: &Config, columns: &Columns) -> anyhow::Result<Model> {
    let mut series = Vec::new();
    let mut entities: Vec<String> = Vec::new();
    for spec in &config.series {
        if !naming::is_graphql_name(&spec.entity) || !naming::is_graphql_name(&spec.field) {
            bail!("series {}.{}: not GraphQL names", spec.entity, spec.field);
        }
        let key_type = column_type(columns, &spec.table, &spec.key)?.to_owned();
        let time_type = column_type(columns, &spec.table, &spec.time)?;
        if !time_type.starts_with("DateTime") {
            bail!(
                "{}.{} is {time_type}, not a DateTime",
                spec.table,
                spec.time
            );
        }
        let mut measures = Vec::new();
        for (name, measure) in &spec.measures {
            let column = match &measure.column {
                Some(column) => {
                    column_type(columns, &spec.table, column)?;
                    Some(quote(column))
                }
                None => None,
            };
            let (expression, integer) = match (measure.function.as_str(), column) {
                ("count", None) => ("count()".to_owned(), true),
                ("count" | "uniq", Some(column)) => {
                    (format!("{}({column})", measure.function), true)
                }
                ("sum" | "avg" | "min" | "max", Some(column)) => {
                    (format!("toFloat64({}({column}))", measure.function), false)
                }
                (function, _) => bail!(
                    "series {}.{}: measure {name}: {function} needs a column (count, uniq, sum, avg, min, max)",
                    spec.entity,
                    spec.field
                ),
            };
            measures.push(Measure {
                name: naming::field_name(name),
                expression,
                integer,
            });
        }
        if !entities.contains(&spec.entity) {
            entities.push(spec.entity.clone());
        }
        series.push(Series {
            point_type: format!("{}{}Point", spec.entity, naming::pascal_case(&spec.field)),
            entity: spec.entity.clone(),
            field: spec.field.clone(),
            table: spec.table.clone(),
            key: spec.key.clone(),
            key_type,
            time: spec.time.clone(),
            measures,
            cache: spec.cache,
        });
    }
    let training = match &config.training {
        None => None,
        Some(spec) => {
            for column in [&spec.entity_column, &spec.feature, &spec.value, &spec.time] {
                column_type(columns, &spec.table, column)?;
            }
            Some(Training {
                table: spec.table.clone(),
                entity_column: spec.entity_column.clone(),
                entities: spec.entities.clone(),
                id_type: column_type(columns, &spec.table, &spec.id)?.to_owned(),
                id: spec.id.clone(),
                feature: spec.feature.clone(),
                value: spec.value.clone(),
                time: spec.time.clone(),
            })
        }
    };
    Ok(Model {
        series,
        training,
        entities,
        max_ids: config.max_ids,
        max_depth: config.max_depth,
        max_complexity: config.max_complexity,
    })
}

/// `… IN (SELECT arrayJoin(CAST(? AS Array(T))))`: a bound array as an `IN` set (ClickHouse
/// 18.16 takes no array on the right of `IN`).
fn in_bound_array(column: &str, element_type: &str) -> String {
    format!(
        "{} IN (SELECT arrayJoin(CAST(? AS Array({element_type}))))",
        quote(column)
    )
}

/// One series for many entities, computing only the `measures` asked for (by index): binds the
/// ids (array), `from` and `to` (`YYYY-MM-DD hh:mm:ss`).
pub fn series_sql(series: &Series, granularity: Granularity, measures: &[usize]) -> String {
    let time = quote(&series.time);
    let measures = measures.iter().fold(String::new(), |mut out, index| {
        use std::fmt::Write as _;
        let _ = write!(out, ", {} AS m{index}", series.measures[*index].expression);
        out
    });
    format!(
        "SELECT toString({key}) AS k, toUInt32({bucket}) AS t{measures} FROM {table} \
         WHERE {keys} AND {time} >= toDateTime(?, 'UTC') AND {time} < toDateTime(?, 'UTC') \
         GROUP BY k, t ORDER BY k, t",
        key = quote(&series.key),
        bucket = granularity.bucket(&time),
        table = quote(&series.table),
        keys = in_bound_array(&series.key, &series.key_type),
    )
}

/// Each id's latest value of each feature at or before `asOf`: binds the entity kind, the ids
/// (array), the feature names (array) and `asOf`.
pub fn training_sql(training: &Training) -> String {
    let time = quote(&training.time);
    format!(
        "SELECT toString({id}) AS id, {feature} AS feature, argMax({value}, {time}) AS value, \
         toUInt32(max({time})) AS at FROM {table} \
         WHERE {entity} = ? AND {ids} AND {features} AND {time} <= toDateTime(?, 'UTC') \
         GROUP BY id, feature",
        id = quote(&training.id),
        feature = quote(&training.feature),
        value = quote(&training.value),
        table = quote(&training.table),
        entity = quote(&training.entity_column),
        ids = in_bound_array(&training.id, &training.id_type),
        features = in_bound_array(&training.feature, "String"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Columns {
        let mut columns = Columns::new();
        columns.insert(
            "order_events".into(),
            vec![
                ("event_time".into(), "DateTime".into()),
                ("product_id".into(), "UInt64".into()),
                ("amount".into(), "Float64".into()),
            ],
        );
        columns.insert(
            "feature_history".into(),
            ["entity", "entity_id", "feature", "value", "event_time"]
                .iter()
                .map(|c| {
                    (
                        (*c).to_owned(),
                        if *c == "entity_id" {
                            "UInt64".into()
                        } else {
                            "String".into()
                        },
                    )
                })
                .collect(),
        );
        columns
    }

    #[test]
    fn statements_bind_every_request_value() {
        let config = Config::from_yaml(
            "series: [{ entity: Product, field: sales, table: order_events, key: product_id, time: event_time, measures: { orders: { function: count }, revenue: { function: sum, column: amount } } }]\n\
             training: { table: feature_history, entity_column: entity, entities: { User: user }, id: entity_id, feature: feature, value: value, time: event_time }",
        )
        .unwrap();
        let model = build(&config, &columns()).unwrap();
        insta::assert_snapshot!(series_sql(&model.series[0], Granularity::Week, &[0, 1]));
        assert!(!series_sql(&model.series[0], Granularity::Day, &[1]).contains("count()"));
        insta::assert_snapshot!(training_sql(model.training.as_ref().unwrap()));
    }

    #[test]
    fn unknown_columns_and_functions_are_refused() {
        let bad_column = Config::from_yaml(
            "series: [{ entity: Product, field: sales, table: order_events, key: product_id, time: event_time, measures: { x: { function: sum, column: nope } } }]",
        )
        .unwrap();
        assert!(build(&bad_column, &columns()).is_err());
        let bad_function = Config::from_yaml(
            "series: [{ entity: Product, field: sales, table: order_events, key: product_id, time: event_time, measures: { x: { function: \"sleep\", column: amount } } }]",
        )
        .unwrap();
        assert!(build(&bad_function, &columns()).is_err());
        assert_eq!(quote("a`b"), "`a``b`");
    }
}
