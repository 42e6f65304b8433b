//! The GraphQL shape of each index: its entity type's fields from the index mapping, which of
//! them are lists (mappings do not say; sample documents do), what is searched, filtered,
//! faceted and sorted. A pure function of the mapping, the samples and the configuration.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail};
use polygraph_subgraph_core::filter::ScalarKind;
use polygraph_subgraph_core::naming;
use serde_json::Value as Json;

use crate::config::{Config, IndexConfig};

/// How a mapped field is indexed, which decides what a search can do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexed {
    /// Analysed full text: searched and highlighted, not filtered or sorted.
    Text,
    /// Exact values: filtered with `term`/`terms`, faceted, sorted.
    Keyword,
    Integer,
    Long,
    Float,
    Date,
    Boolean,
    /// An object (or `nested`) with its own fields: `objects[index]`.
    Object(usize),
}

impl Indexed {
    fn from_mapping(kind: &str) -> Option<Self> {
        Some(match kind {
            "text" | "match_only_text" => Indexed::Text,
            "keyword" | "constant_keyword" | "wildcard" => Indexed::Keyword,
            "integer" | "short" | "byte" => Indexed::Integer,
            "long" | "unsigned_long" => Indexed::Long,
            "float" | "double" | "half_float" | "scaled_float" => Indexed::Float,
            "date" | "date_nanos" => Indexed::Date,
            "boolean" => Indexed::Boolean,
            _ => return None,
        })
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, Indexed::Integer | Indexed::Long | Indexed::Float)
    }

    /// Whether `range` filters, sorting and range facets apply.
    pub fn is_ordered(self) -> bool {
        self.is_numeric() || matches!(self, Indexed::Date)
    }
}

#[derive(Clone, Debug)]
pub struct DocField {
    pub name: String,
    pub indexed: Indexed,
    pub list: bool,
    /// The entity key, exposed as `ID`.
    pub key: bool,
}

impl DocField {
    /// The GraphQL scalar of the field's values (`None` for objects).
    pub fn kind(&self) -> Option<ScalarKind> {
        Some(match self.indexed {
            _ if self.key => ScalarKind::Id,
            Indexed::Text | Indexed::Keyword => ScalarKind::String,
            Indexed::Integer => ScalarKind::Int,
            Indexed::Long => ScalarKind::BigInt,
            Indexed::Float => ScalarKind::Float,
            Indexed::Date => ScalarKind::DateTime,
            Indexed::Boolean => ScalarKind::Boolean,
            Indexed::Object(_) => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct ObjectModel {
    pub type_name: String,
    pub fields: Vec<DocField>,
}

#[derive(Clone, Debug)]
pub struct IndexModel {
    pub index: String,
    /// Index into `Model::objects` of the entity type.
    pub object: usize,
    pub key: String,
    /// Fields of the entity type exposed in the schema (by name).
    pub exposed: Vec<String>,
    pub shareable: Vec<String>,
    /// Full-text fields and boosts.
    pub search: Vec<(String, f64)>,
    pub highlight: Vec<String>,
    /// The root search field, e.g. `searchProducts`.
    pub search_field: String,
    /// The hit's field holding the document, e.g. `product`.
    pub hit_field: String,
    /// Which documents a request may see, from its claims.
    pub rule: Option<polygraph_subgraph_core::rules::RowRule>,
    /// `@cacheControl` for the results and the entity.
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub objects: Vec<ObjectModel>,
    pub indices: Vec<IndexModel>,
    pub max_size: u64,
    pub max_from: u64,
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl Model {
    pub fn entity(&self, index: usize) -> &ObjectModel {
        &self.objects[self.indices[index].object]
    }
}

impl IndexModel {
    /// Top-level fields of a kind, for filters, facets and sorts.
    pub fn fields_where<'a>(
        &self,
        model: &'a Model,
        test: impl Fn(&DocField) -> bool + 'a,
    ) -> impl Iterator<Item = &'a DocField> + 'a {
        model.objects[self.object]
            .fields
            .iter()
            .filter(move |f| test(f))
    }
}

/// Builds the model of every configured index from its mapping (`properties`) and the fields
/// seen holding arrays in sample documents.
pub fn build(config: &Config, mappings: &[(Json, BTreeSet<String>)]) -> anyhow::Result<Model> {
    let mut model = Model {
        objects: Vec::new(),
        indices: Vec::new(),
        max_size: config.max_size,
        max_from: config.max_from,
        max_depth: config.max_depth,
        max_complexity: config.max_complexity,
    };
    for ((name, index), (properties, arrays)) in config.indices.iter().zip(mappings) {
        let object = parse_object(
            &mut model.objects,
            &index.type_name,
            properties,
            arrays,
            "",
            Some(&index.key),
        );
        let built = index_model(&model, name, index, object)?;
        model.indices.push(built);
    }
    Ok(model)
}

fn index_model(
    model: &Model,
    name: &str,
    index: &IndexConfig,
    object: usize,
) -> anyhow::Result<IndexModel> {
    let fields = &model.objects[object].fields;
    let field = |field: &str| fields.iter().find(|f| f.name == field);
    let key = field(&index.key)
        .filter(|f| f.kind().is_some() && !f.list)
        .ok_or_else(|| {
            anyhow!(
                "index {name}: key {} is not a mapped scalar field",
                index.key
            )
        })?;
    let mut exposed = match &index.expose {
        Some(names) => names.clone(),
        None => fields.iter().map(|f| f.name.clone()).collect(),
    };
    for name in &exposed {
        if field(name).is_none() {
            bail!("index {name}: exposes {name}, which the mapping does not have");
        }
    }
    exposed.retain(|name| *name != key.name);
    let search: Vec<(String, f64)> = if index.search.is_empty() {
        fields
            .iter()
            .filter(|f| f.indexed == Indexed::Text)
            .map(|f| (f.name.clone(), 1.0))
            .collect()
    } else {
        index
            .search
            .iter()
            .map(|(f, boost)| (f.clone(), *boost))
            .collect()
    };
    for (searched, _) in &search {
        if field(searched)
            .is_none_or(|f| f.indexed != Indexed::Text && f.indexed != Indexed::Keyword)
        {
            bail!("index {name}: searches {searched}, which is not a text or keyword field");
        }
    }
    let highlight = index
        .highlight
        .clone()
        .unwrap_or_else(|| search.iter().map(|(f, _)| f.clone()).collect());
    // Rules compare exact values: analysed text would match by its words.
    let rule = index
        .rule
        .as_deref()
        .map(|text| {
            let exact = |stored: &str| {
                field(stored)
                    .filter(|f| !matches!(f.indexed, Indexed::Text | Indexed::Object(_)))
                    .map(|f| f.name.clone())
            };
            polygraph_subgraph_core::rules::RowRule::parse(text, exact)
                .map_err(|message| anyhow!("index {name}: rule {text:?}: {message}"))
        })
        .transpose()?;
    let plural = naming::pascal_case(name);
    Ok(IndexModel {
        index: name.to_owned(),
        object,
        key: key.name.clone(),
        exposed,
        shareable: index.shareable.clone(),
        search,
        highlight,
        search_field: index
            .field
            .clone()
            .unwrap_or_else(|| format!("search{plural}")),
        hit_field: lower_first(&index.type_name),
        rule,
        cache: index.cache,
    })
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

fn parse_object(
    objects: &mut Vec<ObjectModel>,
    type_name: &str,
    properties: &Json,
    arrays: &BTreeSet<String>,
    prefix: &str,
    key: Option<&str>,
) -> usize {
    let index = objects.len();
    objects.push(ObjectModel {
        type_name: type_name.to_owned(),
        fields: Vec::new(),
    });
    let mut fields = Vec::new();
    for (name, mapping) in properties.as_object().into_iter().flatten() {
        if !naming::is_graphql_name(name) {
            tracing::warn!(type_name, field = %name, "left out: not a GraphQL name");
            continue;
        }
        let path = format!("{prefix}{name}");
        let kind = mapping["type"].as_str().unwrap_or("object");
        let nested = kind == "nested";
        let indexed = if kind == "object" || nested {
            let Some(inner) = mapping.get("properties") else {
                continue;
            };
            let nested_name = format!("{type_name}{}", naming::pascal_case(name));
            Indexed::Object(parse_object(
                objects,
                &nested_name,
                inner,
                arrays,
                &format!("{path}."),
                None,
            ))
        } else {
            match Indexed::from_mapping(kind) {
                Some(indexed) => indexed,
                None => continue,
            }
        };
        fields.push(DocField {
            name: name.clone(),
            indexed,
            list: nested || arrays.contains(&path),
            key: key == Some(name.as_str()),
        });
    }
    objects[index].fields = fields;
    index
}

/// The paths of fields holding arrays in `documents` (`_source` objects).
pub fn array_paths(documents: &[Json]) -> BTreeSet<String> {
    fn walk(value: &Json, prefix: &str, out: &mut BTreeSet<String>) {
        if let Json::Object(object) = value {
            for (name, value) in object {
                let path = format!("{prefix}{name}");
                match value {
                    Json::Array(items) => {
                        out.insert(path.clone());
                        for item in items {
                            walk(item, &format!("{path}."), out);
                        }
                    }
                    Json::Object(_) => walk(value, &format!("{path}."), out),
                    _ => {}
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for document in documents {
        walk(document, "", &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mappings_and_samples_shape_the_type() {
        let config =
            Config::from_yaml("indices: { products: { type: Product, search: { name: 3 } } }")
                .unwrap();
        let properties = json!({
            "id": { "type": "long" },
            "name": { "type": "text", "fields": { "keyword": { "type": "keyword" } } },
            "tags": { "type": "keyword" },
            "price": { "type": "double" },
            "dims": { "properties": { "w": { "type": "integer" } } },
            "variants": { "type": "nested", "properties": { "sku": { "type": "keyword" } } },
            "weird-name": { "type": "keyword" },
        });
        let arrays = array_paths(&[json!({ "tags": ["a"], "dims": { "w": 1 } })]);
        let model = build(&config, &[(properties, arrays)]).unwrap();
        let product = model.entity(0);
        let field = |name: &str| product.fields.iter().find(|f| f.name == name).unwrap();
        assert_eq!(field("id").kind(), Some(ScalarKind::Id));
        assert!(field("tags").list);
        assert!(!field("price").list);
        assert!(field("variants").list);
        assert_eq!(model.objects[1].type_name, "ProductDims");
        assert!(product.fields.iter().all(|f| f.name != "weird-name"));
        let index = &model.indices[0];
        assert_eq!(index.search_field, "searchProducts");
        assert_eq!(index.hit_field, "product");
        assert_eq!(index.search, [("name".to_owned(), 3.0)]);
        assert!(!index.exposed.contains(&"id".to_owned()));
    }
}
