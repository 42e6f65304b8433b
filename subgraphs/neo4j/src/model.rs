//! Relationship fields and the one Cypher statement each batch becomes. Pure.

use anyhow::{anyhow, bail};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::naming;
use polygraph_subgraph_core::rules::RowRule;

use crate::config::{Config, EntityConfig};

#[derive(Clone, Debug)]
pub struct Relationship {
    pub entity: String,
    pub field: String,
    pub target: String,
    pub description: Option<String>,
    /// The list size cost estimates assume without a `limit`.
    pub assumed_size: u64,
    /// The statement: binds `$keys` (the entities' keys) and `$limit`; returns `key` and
    /// `items` (the related keys, best first).
    pub cypher: String,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub entities: Vec<(String, EntityConfig)>,
    /// Each entity's row rule (in the order of `entities`).
    pub rules: Vec<Option<RowRule>>,
    pub relationships: Vec<Relationship>,
    pub max_limit: u64,
    pub max_ids: usize,
    pub max_objects: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl Model {
    pub fn entity(&self, name: &str) -> Option<&EntityConfig> {
        self.entities
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }
}

/// `` `name` `` for labels and property names, with backticks inside doubled.
pub fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

/// Builds the model; `labels` and `types` are the server's (`db.labels()`,
/// `db.relationshipTypes()`), when it lists them, to catch configuration typos at start-up.
pub fn build(
    config: &Config,
    labels: Option<&[String]>,
    types: Option<&[String]>,
) -> anyhow::Result<Model> {
    for (name, entity) in &config.entities {
        if !naming::is_graphql_name(name) {
            bail!("entity {name} is not a GraphQL name");
        }
        if let Some(labels) = labels
            && !labels.contains(&entity.label)
        {
            bail!("entity {name}: the server has no label {}", entity.label);
        }
    }
    let mut relationships = Vec::new();
    for spec in &config.relationships {
        let (Some(entity), Some(target)) = (
            config.entities.get(&spec.entity),
            config.entities.get(&spec.target),
        ) else {
            bail!(
                "{}.{}: {} and {} must both be configured entities",
                spec.entity,
                spec.field,
                spec.entity,
                spec.target
            );
        };
        check_relationship(spec, config, types)?;
        let score = spec.score.as_deref().unwrap_or("count(*)");
        let cypher = format!(
            "UNWIND $keys AS key MATCH (n:{label} {{{key}: key}}) MATCH {pattern} \
             WITH key, m, {score} AS score ORDER BY score DESC, m.{target_key} ASC \
             WITH key, collect(m.{target_key}) AS items RETURN key, items[..$limit] AS items",
            label = quote(&entity.label),
            key = quote(&entity.key),
            pattern = spec.pattern,
            target_key = quote(&target.key),
        );
        relationships.push(Relationship {
            entity: spec.entity.clone(),
            field: spec.field.clone(),
            target: spec.target.clone(),
            description: spec.description.clone(),
            assumed_size: spec.assumed_size.unwrap_or(config.max_limit),
            cypher,
        });
    }
    let mut rules = Vec::new();
    let mut entities = Vec::new();
    for (name, entity) in &config.entities {
        let rule = entity
            .rule
            .as_deref()
            .map(|text| {
                RowRule::parse_on_id(text)
                    .map_err(|message| anyhow!("entity {name}: rule {text:?}: {message}"))
            })
            .transpose()?;
        let mut entity = entity.clone();
        // What a rule lets through depends on who asks: no shared cache may keep it.
        if rule.is_some() {
            entity.cache = entity.cache.map(CacheHint::private);
        }
        rules.push(rule);
        entities.push((name.clone(), entity));
    }
    Ok(Model {
        entities,
        rules,
        relationships,
        max_limit: config.max_limit,
        max_ids: config.max_ids,
        max_objects: config.max_objects,
        max_depth: config.max_depth,
        max_complexity: config.max_complexity,
    })
}

/// Refuses a relationship whose field is not a GraphQL name, whose pattern does not lead from
/// `(n)` to `(m)`, that names relationship types the server lacks, or that assumes more than
/// `max_limit` related entities.
fn check_relationship(
    spec: &crate::config::RelationshipConfig,
    config: &Config,
    types: Option<&[String]>,
) -> anyhow::Result<()> {
    if !naming::is_graphql_name(&spec.field) {
        bail!("{}.{} is not a GraphQL name", spec.entity, spec.field);
    }
    if !spec.pattern.contains("(n") || !spec.pattern.contains("(m") {
        bail!(
            "{}.{}: the pattern must lead from (n) to (m)",
            spec.entity,
            spec.field
        );
    }
    if let Some(types) = types {
        for used in relationship_types(&spec.pattern) {
            if !types.contains(&used) {
                bail!(
                    "{}.{}: the server has no relationship type {used}",
                    spec.entity,
                    spec.field
                );
            }
        }
    }
    if spec
        .assumed_size
        .is_some_and(|size| size > config.max_limit)
    {
        bail!(
            "{}.{}: assumed_size is more than max_limit ({})",
            spec.entity,
            spec.field,
            config.max_limit
        );
    }
    Ok(())
}

/// The relationship types a pattern names: `[:FOLLOWS]`, `[b:BOUGHT]`, `[:A|B]`.
fn relationship_types(pattern: &str) -> Vec<String> {
    let mut types = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let inside = &rest[open + 1..open + close];
        if let Some((_, names)) = inside.split_once(':') {
            let names = names.split(['{', '*', ' ']).next().unwrap_or_default();
            types.extend(
                names
                    .split('|')
                    .map(|name| {
                        name.trim()
                            .trim_start_matches(':')
                            .trim_matches('`')
                            .to_owned()
                    })
                    .filter(|name| !name.is_empty()),
            );
        }
        rest = &rest[open + close + 1..];
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parameterized_statement_per_relationship() {
        let config = Config::from_yaml(
            "entities: { User: { label: User }, Product: { label: Product } }\n\
             relationships: [{ entity: User, field: recommendedProducts, target: Product, pattern: \"(n)-[:FOLLOWS]->(:User)-[b:BOUGHT]->(m:Product) WHERE NOT (n)-[:BOUGHT]->(m)\", score: \"sum(b.times)\" }]",
        )
        .unwrap();
        let labels = ["User".to_owned(), "Product".to_owned()];
        let types = ["FOLLOWS".to_owned(), "BOUGHT".to_owned()];
        let model = build(&config, Some(&labels), Some(&types)).unwrap();
        insta::assert_snapshot!(model.relationships[0].cypher);
        assert!(build(&config, Some(&labels[..1]), None).is_err());
        assert!(build(&config, None, Some(&types[..1])).is_err());
        assert_eq!(
            relationship_types("(n)-[r:A|B*1..2]->(m)<-[:`C`]-(x)-[]-(y)"),
            ["A", "B", "C"]
        );
    }
}
