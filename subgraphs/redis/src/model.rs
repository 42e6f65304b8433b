//! Feature groups as the schema sees them, and feature values between Redis hash fields
//! (strings) and GraphQL. Pure.

use anyhow::{anyhow, bail};
use async_graphql::{Number, Value};
use polygraph_subgraph_core::naming;

use crate::config::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureType {
    Float,
    Int,
    String,
    Boolean,
    FloatList,
}

impl FeatureType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "Float" => FeatureType::Float,
            "Int" => FeatureType::Int,
            "String" => FeatureType::String,
            "Boolean" => FeatureType::Boolean,
            "[Float]" | "[Float!]" => FeatureType::FloatList,
            _ => return None,
        })
    }

    pub fn graphql(self) -> &'static str {
        match self {
            FeatureType::Float | FeatureType::FloatList => "Float",
            FeatureType::Int => "Int",
            FeatureType::String => "String",
            FeatureType::Boolean => "Boolean",
        }
    }

    /// A stored hash field as the JSON value answered; text that does not parse is treated as
    /// missing.
    pub fn read(self, stored: &str) -> Option<serde_json::Value> {
        use serde_json::Value as Json;
        Some(match self {
            FeatureType::Float => Json::Number(Number::from_f64(stored.parse().ok()?)?),
            FeatureType::Int => Json::Number(Number::from(stored.parse::<i64>().ok()?)),
            FeatureType::String => Json::String(stored.to_owned()),
            FeatureType::Boolean => Json::Bool(match stored {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return None,
            }),
            FeatureType::FloatList => {
                let items: Vec<f64> = serde_json::from_str(stored).ok()?;
                Json::Array(
                    items
                        .into_iter()
                        .map(|n| Number::from_f64(n).map_or(Json::Null, Json::Number))
                        .collect(),
                )
            }
        })
    }

    /// A request value as the text stored, or why it does not fit.
    pub fn write(self, value: &Value) -> Result<String, String> {
        let fail = || format!("{value} is not a {}", self.graphql());
        Ok(match (self, value) {
            (FeatureType::Float, Value::Number(n)) => n.as_f64().ok_or_else(fail)?.to_string(),
            (FeatureType::Int, Value::Number(n)) => n.as_i64().ok_or_else(fail)?.to_string(),
            (FeatureType::String, Value::String(text)) => text.clone(),
            (FeatureType::Boolean, Value::Boolean(flag)) => flag.to_string(),
            (FeatureType::FloatList, Value::List(items)) => {
                let numbers = items
                    .iter()
                    .map(|item| match item {
                        Value::Number(n) => n.as_f64().ok_or_else(fail),
                        _ => Err(fail()),
                    })
                    .collect::<Result<Vec<f64>, String>>()?;
                serde_json::to_string(&numbers).map_err(|error| error.to_string())?
            }
            _ => return Err(fail()),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Feature {
    /// The hash field.
    pub name: String,
    /// The GraphQL field on the group's type.
    pub field: String,
    pub kind: FeatureType,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub entity: String,
    /// Key pattern, split around `{id}`.
    pub prefix: String,
    pub suffix: String,
    pub field: String,
    pub type_name: String,
    pub ttl_seconds: Option<u64>,
    pub features: Vec<Feature>,
    /// Private whenever the group has a row rule.
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
    /// Which entities' features a request may read and write, from its claims.
    pub rule: Option<polygraph_subgraph_core::rules::RowRule>,
    /// The subscription field with the entity after each write to its hash, when it has one.
    pub changed_field: Option<String>,
}

impl Group {
    /// The hash key of one entity. Ids are used literally: `*`, `?` or `{` in an id are just
    /// characters of a key no pattern ever matches against.
    pub fn key(&self, id: &str) -> String {
        format!("{}{id}{}", self.prefix, self.suffix)
    }

    /// The entity id in the hash key `key`, when it is one of this group's.
    pub fn id_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str())?
            .strip_suffix(self.suffix.as_str())
            .filter(|id| !id.is_empty())
    }

    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name == name)
    }
}

#[derive(Clone, Debug)]
pub struct Model {
    pub groups: Vec<Group>,
    /// Entity types, in config order.
    pub entities: Vec<String>,
    pub max_ids: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl Model {
    pub fn groups_of<'a>(&'a self, entity: &'a str) -> impl Iterator<Item = (usize, &'a Group)> {
        self.groups
            .iter()
            .enumerate()
            .filter(move |(_, group)| group.entity == entity)
    }

    /// The group holding `name` for `entity`.
    pub fn find(&self, entity: &str, name: &str) -> Option<(usize, &Feature)> {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, group)| group.entity == entity)
            .find_map(|(index, group)| group.feature(name).map(|feature| (index, feature)))
    }
}

pub fn build(config: &Config) -> anyhow::Result<Model> {
    let mut groups = Vec::new();
    let mut entities: Vec<String> = Vec::new();
    for (name, group) in &config.groups {
        let (prefix, suffix) = group
            .key
            .split_once("{id}")
            .ok_or_else(|| anyhow!("group {name}: key {} has no {{id}}", group.key))?;
        if !naming::is_graphql_name(&group.field) || !naming::is_graphql_name(&group.entity) {
            bail!(
                "group {name}: {} and {} must be GraphQL names",
                group.entity,
                group.field
            );
        }
        let mut features = Vec::new();
        for (feature, kind) in &group.features {
            let kind = FeatureType::parse(kind)
                .ok_or_else(|| anyhow!("group {name}: {feature} has unknown type {kind} (Float, Int, String, Boolean, [Float])"))?;
            features.push(Feature {
                name: feature.clone(),
                field: naming::field_name(feature),
                kind,
            });
        }
        if !entities.contains(&group.entity) {
            entities.push(group.entity.clone());
        }
        // The entity's id is the one thing a group's entries are known by.
        let rule = group
            .rule
            .as_deref()
            .map(|text| {
                polygraph_subgraph_core::rules::RowRule::parse_on_id(text)
                    .map_err(|message| anyhow!("group {name}: rule {text:?}: {message}"))
            })
            .transpose()?;
        let cache = match &rule {
            Some(_) => group
                .cache
                .map(polygraph_subgraph_core::cache::CacheHint::private),
            None => group.cache,
        };
        groups.push(Group {
            name: name.clone(),
            entity: group.entity.clone(),
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            field: group.field.clone(),
            type_name: format!("{}{}", group.entity, naming::pascal_case(&group.field)),
            ttl_seconds: group.ttl_seconds,
            features,
            cache,
            rule,
            changed_field: group.changes.then(|| format!("{name}_changed")),
        });
    }
    for entity in &entities {
        let mut seen: Vec<&str> = Vec::new();
        for (_, group) in groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.entity == *entity)
        {
            for feature in &group.features {
                if seen.contains(&feature.name.as_str()) {
                    bail!("{entity}: feature {} is in two groups", feature.name);
                }
                seen.push(&feature.name);
            }
        }
    }
    Ok(Model {
        groups,
        entities,
        max_ids: config.max_ids,
        max_depth: config.max_depth,
        max_complexity: config.max_complexity,
    })
}

#[cfg(test)]
mod tests {
    use async_graphql::value;

    use super::*;

    #[test]
    fn values_round_trip_and_refuse_the_wrong_type() {
        assert_eq!(
            FeatureType::Float.read("0.25"),
            Some(serde_json::json!(0.25))
        );
        assert_eq!(
            FeatureType::FloatList.read("[1.0,2.5]"),
            Some(serde_json::json!([1.0, 2.5]))
        );
        assert_eq!(FeatureType::Int.read("x"), None);
        assert_eq!(FeatureType::Boolean.write(&value!(true)), Ok("true".into()));
        assert_eq!(
            FeatureType::FloatList.write(&value!([0.5, 1])),
            Ok("[0.5,1.0]".into())
        );
        assert!(FeatureType::Int.write(&value!("7")).is_err());
    }

    #[test]
    fn keys_are_literal() {
        let config = Config::from_yaml(
            "groups: { u: { entity: User, key: \"features:user:{id}\", field: onlineFeatures, features: { a: Float } } }",
        )
        .unwrap();
        let model = build(&config).unwrap();
        assert_eq!(model.groups[0].key("7"), "features:user:7");
        assert_eq!(model.groups[0].key("*"), "features:user:*");
        assert_eq!(model.groups[0].type_name, "UserOnlineFeatures");
    }
}
