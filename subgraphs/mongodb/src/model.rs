//! The GraphQL shape of the collections: types, fields, keys, references and extensions. A
//! pure function of each collection's schema (declared, its `$jsonSchema` validator, or one
//! inferred from sample documents) and the configuration.
//!
//! Nested documents become their own types (`Review.author` of `{name, email}` → a
//! `ReviewAuthor` type), arrays become lists. Fields whose names are not GraphQL names are left
//! out.

use std::collections::BTreeSet;

use anyhow::{Context as _, anyhow, bail};
use mongodb::bson::{Bson, Document};
use polygraph_subgraph_core::aggregate::Function;
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::config::Mutations;
use polygraph_subgraph_core::filter::{FilterField, FilterRelationship, ScalarKind};
use polygraph_subgraph_core::guard::{Guard, WriteGuards};
use polygraph_subgraph_core::naming;
use polygraph_subgraph_core::rules::RowRule;
use serde_json::{Map, Value as Json, json};

use crate::config::Config;

/// How values of a field are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    ObjectId,
    Long,
    Int,
    Double,
    Decimal,
    String,
    Bool,
    Date,
    /// Mixed or unknown types: exposed as `JSON`.
    Any,
}

impl Storage {
    fn from_bson_type(name: &str) -> Option<Self> {
        Some(match name {
            "objectId" => Storage::ObjectId,
            "long" | "integer" => Storage::Long,
            "int" => Storage::Int,
            "double" | "number" => Storage::Double,
            "decimal" => Storage::Decimal,
            "string" => Storage::String,
            "bool" | "boolean" => Storage::Bool,
            "date" | "timestamp" => Storage::Date,
            _ => return None,
        })
    }

    /// The GraphQL kind a field stored this way is exposed as.
    fn kind(self) -> ScalarKind {
        match self {
            Storage::ObjectId => ScalarKind::Id,
            Storage::Long => ScalarKind::BigInt,
            Storage::Int => ScalarKind::Int,
            Storage::Double => ScalarKind::Float,
            Storage::Decimal => ScalarKind::Decimal,
            Storage::String => ScalarKind::String,
            Storage::Bool => ScalarKind::Boolean,
            Storage::Date => ScalarKind::DateTime,
            Storage::Any => ScalarKind::Json,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    Scalar {
        storage: Storage,
        kind: ScalarKind,
    },
    /// A nested document, typed by `objects[index]`.
    Object(usize),
    /// The key of an entity owned elsewhere, exposed as that entity (`foreign[index]`).
    Reference(usize),
}

#[derive(Clone, Debug)]
pub struct FieldModel {
    /// The GraphQL field name.
    pub name: String,
    /// The document key it is read from.
    pub path: String,
    pub shape: Shape,
    pub list: bool,
    pub nullable: bool,
    pub description: Option<String>,
}

impl FieldModel {
    pub fn scalar(&self) -> Option<(Storage, ScalarKind)> {
        match self.shape {
            Shape::Scalar { storage, kind } => Some((storage, kind)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ObjectModel {
    pub type_name: String,
    pub description: Option<String>,
    pub fields: Vec<FieldModel>,
}

impl ObjectModel {
    pub fn field(&self, name: &str) -> Option<&FieldModel> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// The fields `where` and `order_by` can name: scalars and lists of scalars.
    pub fn filter_fields(&self) -> Vec<FilterField> {
        self.fields
            .iter()
            .filter_map(|field| {
                field.scalar().map(|(_, kind)| FilterField {
                    name: field.name.clone(),
                    kind,
                    list: field.list,
                })
            })
            .collect()
    }

    /// Nested documents `where` can filter through.
    pub fn filter_relationships(&self, objects: &[ObjectModel]) -> Vec<FilterRelationship> {
        self.fields
            .iter()
            .filter_map(|field| match field.shape {
                Shape::Object(index) => Some(FilterRelationship {
                    name: field.name.clone(),
                    target_type: objects[index].type_name.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct CollectionModel {
    pub collection: String,
    /// Index into `Model::objects` of the document type.
    pub object: usize,
    pub list_field: String,
    pub by_key_field: String,
    pub aggregate_field: String,
    /// The subscription field with the document after each change, when it has one.
    pub changed_field: Option<String>,
    /// The entity key field (index into the object's fields), if the type is an entity.
    pub key: Option<usize>,
    /// The field `…_by_pk` looks documents up by: the key, or `_id`.
    pub lookup: usize,
    pub shareable: bool,
    /// Private whenever the collection has a row rule.
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
    /// Which documents a request may see and write, from its claims.
    pub rule: Option<RowRule>,
    /// Which generated mutations the collection gets.
    pub mutations: Mutations,
    /// Who may run them, by kind, and who may read the type.
    pub writes: WriteGuards,
    pub guard: Guard,
}

/// An entity another subgraph owns: referenced from documents here, possibly given fields.
#[derive(Clone, Debug)]
pub struct ForeignType {
    pub type_name: String,
    pub key: String,
    pub fields: Vec<ExtensionField>,
    pub cache: Option<polygraph_subgraph_core::cache::CacheHint>,
}

#[derive(Clone, Debug)]
pub struct ExtensionField {
    pub name: String,
    pub collection: usize,
    /// Index into the collection object's fields.
    pub foreign_key: usize,
    pub aggregate: Option<Aggregate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    /// A function over one field (index into the collection object's fields).
    Function(Function, usize),
}

#[derive(Clone, Debug)]
pub struct Model {
    pub objects: Vec<ObjectModel>,
    pub collections: Vec<CollectionModel>,
    pub foreign: Vec<ForeignType>,
    pub max_limit: u64,
    pub max_depth: usize,
    pub max_complexity: usize,
    /// How long one read may take: the server is asked to stop there (`maxTimeMS`) and the
    /// subgraph stops waiting there.
    pub operation_timeout: std::time::Duration,
}

impl Model {
    pub fn object_of(&self, collection: usize) -> &ObjectModel {
        &self.objects[self.collections[collection].object]
    }

    /// For `where` parsing: the nested type a field of `type_name` leads to.
    pub fn nested_type(&self, type_name: &str, field: &str) -> Option<String> {
        let object = self.objects.iter().find(|o| o.type_name == type_name)?;
        match object.field(field)?.shape {
            Shape::Object(index) => Some(self.objects[index].type_name.clone()),
            _ => None,
        }
    }

    pub fn object_named(&self, type_name: &str) -> Option<usize> {
        self.objects.iter().position(|o| o.type_name == type_name)
    }
}

/// Builds the model from each configured collection's `$jsonSchema` (in config order).
pub fn build(config: &Config, schemas: &[Json]) -> anyhow::Result<Model> {
    let mut model = Model {
        objects: Vec::new(),
        collections: Vec::new(),
        foreign: Vec::new(),
        max_limit: config.max_limit,
        max_depth: config.max_depth,
        max_complexity: config.max_complexity,
        operation_timeout: std::time::Duration::from_millis(config.operation_timeout_ms),
    };
    // Foreign types first, so references can point at them.
    for (type_name, extension) in &config.extends {
        model.foreign.push(ForeignType {
            type_name: type_name.clone(),
            key: extension.key.clone(),
            fields: Vec::new(),
            cache: extension.cache,
        });
    }
    for ((name, collection), schema) in config.collections.iter().zip(schemas) {
        add_collection(&mut model, config, name, collection, schema)?;
    }
    for (index, (type_name, extension)) in config.extends.iter().enumerate() {
        for (field_name, field) in &extension.fields {
            let field = extension_field(&model, config, type_name, field_name, field)?;
            model.foreign[index].fields.push(field);
        }
    }
    // Fields that read a ruled or guarded collection make their entity's answers private too.
    for foreign in &mut model.foreign {
        let ruled = foreign.fields.iter().any(|field| {
            let collection = &model.collections[field.collection];
            collection.rule.is_some() || !collection.guard.is_empty()
        });
        if ruled {
            foreign.cache = foreign.cache.map(CacheHint::private);
        }
    }
    Ok(model)
}

/// Adds a collection's types and its root fields' model.
fn add_collection(
    model: &mut Model,
    config: &Config,
    name: &str,
    collection: &crate::config::CollectionConfig,
    schema: &Json,
) -> anyhow::Result<()> {
    let type_name = collection
        .type_name
        .clone()
        .unwrap_or_else(|| naming::type_name(name));
    // Fields that hold keys are IDs, whatever their storage.
    let mut ids: BTreeSet<String> = collection.ids.iter().cloned().collect();
    ids.insert("_id".to_owned());
    ids.extend(collection.key.clone());
    ids.extend(collection.references.values().map(|r| r.field.clone()));
    for extension in config.extends.values() {
        for field in extension.fields.values() {
            if field.collection == name {
                ids.insert(field.foreign_key.clone());
            }
        }
    }
    let object = parse_object(&mut model.objects, &type_name, schema, &ids, true)
        .with_context(|| format!("the schema of collection {name}"))?;
    for (field_name, reference) in &collection.references {
        let stored = model.objects[object]
            .fields
            .iter()
            .find(|f| f.path == reference.field)
            .ok_or_else(|| {
                anyhow!(
                    "collection {name}: reference {field_name} names an unknown field {}",
                    reference.field
                )
            })?
            .clone();
        let known = model
            .foreign
            .iter()
            .position(|f| f.type_name == reference.type_name);
        let foreign = known.unwrap_or_else(|| {
            model.foreign.push(ForeignType {
                type_name: reference.type_name.clone(),
                key: "id".to_owned(),
                fields: Vec::new(),
                cache: None,
            });
            model.foreign.len() - 1
        });
        model.objects[object].fields.push(FieldModel {
            name: field_name.clone(),
            path: reference.field.clone(),
            shape: Shape::Reference(foreign),
            list: stored.list,
            nullable: stored.nullable,
            description: Some(format!(
                "The {} whose key is in `{}`.",
                reference.type_name, reference.field
            )),
        });
    }
    let fields = &model.objects[object].fields;
    let key = match &collection.key {
        Some(key) => Some(
            fields
                .iter()
                .position(|f| f.path == *key && f.scalar().is_some() && !f.list)
                .ok_or_else(|| anyhow!("collection {name}: key {key} is not a scalar field"))?,
        ),
        None => None,
    };
    let lookup = key
        .or_else(|| fields.iter().position(|f| f.path == "_id"))
        .ok_or_else(|| anyhow!("collection {name} has no _id"))?;
    let rule = access(fields, name, collection)?;
    // What a row rule or a guard lets through depends on who asks: no shared cache may keep it.
    let cache = if rule.is_some() || !collection.guard.is_empty() {
        collection.cache.map(CacheHint::private)
    } else {
        collection.cache
    };
    let list_field = naming::field_name(name);
    model.collections.push(CollectionModel {
        collection: name.to_owned(),
        object,
        by_key_field: format!("{list_field}_by_pk"),
        aggregate_field: format!("{list_field}_aggregate"),
        changed_field: collection.changes.then(|| format!("{list_field}_changed")),
        list_field,
        key,
        lookup,
        shareable: collection.shareable,
        cache,
        rule,
        mutations: collection.mutations,
        writes: collection.writes.clone(),
        guard: collection.guard.clone(),
    });
    Ok(())
}

/// The collection's row rule, parsed against its `fields`, once its guards are checked.
fn access(
    fields: &[FieldModel],
    name: &str,
    collection: &crate::config::CollectionConfig,
) -> anyhow::Result<Option<RowRule>> {
    collection
        .guard
        .check()
        .map_err(|message| anyhow!("collection {name}: guard: {message}"))?;
    collection
        .writes
        .check()
        .map_err(|message| anyhow!("collection {name}: {message}"))?;
    let Some(text) = collection.rule.as_deref() else {
        return Ok(None);
    };
    let field_of = |stored: &str| {
        fields
            .iter()
            .find(|f| {
                // Typed fields only: a JSON field's stored type could differ from what the
                // write check compared.
                f.path == stored
                    && !f.list
                    && f.scalar()
                        .is_some_and(|(storage, _)| storage != Storage::Any)
            })
            .map(|f| f.name.clone())
    };
    RowRule::parse(text, field_of)
        .map(Some)
        .map_err(|message| anyhow!("collection {name}: rule {text:?}: {message}"))
}

/// One field a collection adds to another subgraph's entity.
fn extension_field(
    model: &Model,
    config: &Config,
    type_name: &str,
    field_name: &str,
    field: &crate::config::ExtensionFieldConfig,
) -> anyhow::Result<ExtensionField> {
    let collection = config
        .collections
        .get_index_of(&field.collection)
        .ok_or_else(|| {
            anyhow!(
                "{type_name}.{field_name}: unknown collection {}",
                field.collection
            )
        })?;
    let object = model.object_of(collection);
    let position = |path: &str| {
        object
            .fields
            .iter()
            .position(|f| f.path == path && f.scalar().is_some())
            .ok_or_else(|| {
                anyhow!(
                    "{type_name}.{field_name}: {} has no scalar field {path}",
                    field.collection
                )
            })
    };
    let foreign_key = position(&field.foreign_key)?;
    let aggregate = match field.aggregate.as_deref() {
        None => None,
        Some("count") => Some(Aggregate::Count),
        Some(name) => {
            let function = Function::from_name(name).ok_or_else(|| {
                        anyhow!("{type_name}.{field_name}: unknown aggregate {name} (count, sum, avg, min or max)")
                    })?;
            let of = field.of.as_deref().ok_or_else(|| {
                anyhow!(
                    "{type_name}.{field_name}: {name} needs `of`, the field it is computed over"
                )
            })?;
            let of = position(of)?;
            let kind = object.fields[of]
                .scalar()
                .map_or(ScalarKind::Json, |(_, kind)| kind);
            if !function.applies_to(kind) || object.fields[of].list {
                bail!(
                    "{type_name}.{field_name}: {name} does not apply to {}",
                    object.fields[of].name
                );
            }
            Some(Aggregate::Function(function, of))
        }
    };
    Ok(ExtensionField {
        name: field_name.to_owned(),
        collection,
        foreign_key,
        aggregate,
    })
}

/// Parses an object schema into `objects`; returns its index.
fn parse_object(
    objects: &mut Vec<ObjectModel>,
    type_name: &str,
    schema: &Json,
    ids: &BTreeSet<String>,
    root: bool,
) -> anyhow::Result<usize> {
    let index = objects.len();
    objects.push(ObjectModel {
        type_name: type_name.to_owned(),
        description: schema["description"].as_str().map(ToOwned::to_owned),
        fields: Vec::new(),
    });
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .map(|items| items.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let empty = Map::new();
    let properties = schema["properties"].as_object().unwrap_or(&empty);
    let mut fields = Vec::new();
    if root && !properties.contains_key("_id") {
        fields.push(FieldModel {
            name: "_id".to_owned(),
            path: "_id".to_owned(),
            shape: Shape::Scalar {
                storage: Storage::ObjectId,
                kind: ScalarKind::Id,
            },
            list: false,
            nullable: false,
            description: None,
        });
    }
    for (name, property) in properties {
        if !naming::is_graphql_name(name) {
            tracing::warn!(type_name, field = %name, "left out: not a GraphQL name");
            continue;
        }
        let (types, nullable) = bson_types(property);
        let mut list = false;
        let mut element = property;
        let mut element_types = types.clone();
        if types == ["array"] {
            list = true;
            element = &property["items"];
            element_types = bson_types(element).0;
        }
        let shape = if element_types == ["object"] && element["properties"].is_object() {
            let nested_name = format!(
                "{type_name}{}",
                naming::pascal_case(&if list {
                    naming::singular(name)
                } else {
                    name.clone()
                })
            );
            Shape::Object(parse_object(objects, &nested_name, element, ids, false)?)
        } else {
            let storage = match element_types.as_slice() {
                [single] => Storage::from_bson_type(single).unwrap_or(Storage::Any),
                _ => Storage::Any,
            };
            let id = root && ids.contains(name) && storage != Storage::Any;
            let kind = if id { ScalarKind::Id } else { storage.kind() };
            Shape::Scalar { storage, kind }
        };
        fields.push(FieldModel {
            name: name.clone(),
            path: name.clone(),
            shape,
            list,
            nullable: nullable || !(required.contains(name.as_str()) || (root && name == "_id")),
            description: property["description"].as_str().map(ToOwned::to_owned),
        });
    }
    objects[index].fields = fields;
    Ok(index)
}

/// A property's non-null `bsonType`s (or JSON Schema `type`s), and whether null is allowed.
fn bson_types(property: &Json) -> (Vec<String>, bool) {
    let declared = if property["bsonType"].is_null() {
        &property["type"]
    } else {
        &property["bsonType"]
    };
    let names: Vec<String> = match declared {
        Json::String(name) => vec![name.clone()],
        Json::Array(names) => names
            .iter()
            .filter_map(Json::as_str)
            .map(ToOwned::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let nullable = names.iter().any(|name| name == "null");
    (
        names.into_iter().filter(|name| name != "null").collect(),
        nullable,
    )
}

/// A `$jsonSchema` describing sample documents: each field's types as seen, required when
/// every sample has it non-null.
pub fn infer_schema(samples: &[Document]) -> Json {
    object_schema(samples.iter().collect::<Vec<_>>().as_slice())
}

fn object_schema(documents: &[&Document]) -> Json {
    let mut names: Vec<&str> = Vec::new();
    for document in documents {
        for key in document.keys() {
            if !names.contains(&key.as_str()) {
                names.push(key);
            }
        }
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for name in names {
        let values: Vec<&Bson> = documents.iter().filter_map(|d| d.get(name)).collect();
        let present = values.iter().filter(|v| !matches!(v, Bson::Null)).count();
        if present == documents.len() {
            required.push(json!(name));
        }
        properties.insert(name.to_owned(), value_schema(&values));
    }
    json!({ "bsonType": "object", "required": required, "properties": properties })
}

fn value_schema(values: &[&Bson]) -> Json {
    let mut types: BTreeSet<&str> = BTreeSet::new();
    for value in values {
        types.insert(match value {
            Bson::Null => continue,
            Bson::ObjectId(_) => "objectId",
            Bson::Int64(_) => "long",
            Bson::Int32(_) => "int",
            Bson::Double(_) => "double",
            Bson::Decimal128(_) => "decimal",
            Bson::String(_) => "string",
            Bson::Boolean(_) => "bool",
            Bson::DateTime(_) | Bson::Timestamp(_) => "date",
            Bson::Document(_) => "object",
            Bson::Array(_) => "array",
            _ => "other",
        });
    }
    let numeric = |t: &&str| matches!(*t, "int" | "long" | "double");
    let merged: Vec<&str> = if types.len() > 1 && types.iter().all(numeric) {
        vec![if types.contains("double") {
            "double"
        } else {
            "long"
        }]
    } else {
        types.into_iter().collect()
    };
    match merged.as_slice() {
        ["object"] => {
            let documents: Vec<&Document> = values.iter().filter_map(|v| v.as_document()).collect();
            object_schema(&documents)
        }
        ["array"] => {
            let items: Vec<&Bson> = values
                .iter()
                .filter_map(|v| v.as_array())
                .flatten()
                .collect();
            json!({ "bsonType": "array", "items": value_schema(&items) })
        }
        [single] => json!({ "bsonType": single }),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, oid::ObjectId};

    use super::*;

    #[test]
    fn samples_infer_nested_types_lists_and_nullability() {
        let samples = vec![
            doc! { "_id": ObjectId::new(), "n": 1_i32, "tags": ["a"], "author": { "name": "x" }, "note": "y" },
            doc! { "_id": ObjectId::new(), "n": 2_i64, "tags": [], "author": { "name": "z", "age": 3 } },
        ];
        let schema = infer_schema(&samples);
        let mut objects = Vec::new();
        let ids = BTreeSet::from(["_id".to_owned()]);
        parse_object(&mut objects, "Doc", &schema, &ids, true).unwrap();
        let doc = &objects[0];
        let field = |name: &str| doc.field(name).unwrap();
        assert_eq!(
            field("_id").shape,
            Shape::Scalar {
                storage: Storage::ObjectId,
                kind: ScalarKind::Id
            }
        );
        assert_eq!(
            field("n").shape,
            Shape::Scalar {
                storage: Storage::Long,
                kind: ScalarKind::BigInt
            }
        );
        assert!(!field("n").nullable);
        assert!(field("note").nullable);
        assert!(field("tags").list);
        assert_eq!(field("tags").scalar().unwrap().0, Storage::String);
        assert_eq!(field("author").shape, Shape::Object(1));
        assert_eq!(objects[1].type_name, "DocAuthor");
        assert!(objects[1].field("age").unwrap().nullable);
        assert!(!objects[1].field("name").unwrap().nullable);
    }
}
