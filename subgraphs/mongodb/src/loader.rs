//! Batched loading of the fields collections add to other subgraphs' entities.
//!
//! Every `Product.reviews` asked for in one step of a request (all the `_entities`
//! representations, or all the products referenced from a list of documents) arrives here
//! together; keys that share the field and its arguments become one `find` (or one
//! `aggregate`) with `{foreign_key: {$in: keys}}`, never one query per entity.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Name, Value};
use futures::TryStreamExt as _;
use indexmap::IndexMap;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

use crate::convert::{self, key_text, to_bson};
use crate::model::{Aggregate, Model};
use crate::schema::{batch, both, where_filter, window, within};
use crate::translate::{self, Accumulate};

/// One entity's field: which foreign type and field, the field's arguments (as JSON text, so
/// equal arguments batch together), what the request may see of the collection, and the
/// entity's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionKey {
    pub foreign: usize,
    pub field: usize,
    pub arguments: Arc<str>,
    pub restriction: Restriction,
    pub key: String,
}

/// A row rule's filter for one request's claims. The loader batches loads of concurrent
/// requests together, so keys of callers who may see different documents must differ: equal
/// restrictions (compared as their BSON bytes) share a query, others never do. Unruled
/// collections (the usual case) have none, and cost nothing to compare.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Restriction(Option<Arc<Ruled>>);

#[derive(Debug)]
struct Ruled {
    filter: Document,
    bytes: Vec<u8>,
}

impl PartialEq for Ruled {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Ruled {}

impl std::hash::Hash for Ruled {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl Restriction {
    pub fn new(filter: Document) -> Self {
        if filter.is_empty() {
            return Self(None);
        }
        let mut bytes = Vec::new();
        filter
            .to_writer(&mut bytes)
            .expect("a document serializes into memory");
        Self(Some(Arc::new(Ruled { filter, bytes })))
    }

    /// The filter to add to a load's query (empty: none).
    fn filter(&self) -> Document {
        self.0
            .as_ref()
            .map_or_else(Document::new, |ruled| ruled.filter.clone())
    }
}

/// What one entity's field resolved to.
#[derive(Clone, Debug)]
pub enum Loaded {
    Documents(Arc<[Document]>),
    Value(Value),
}

pub struct ExtensionLoader {
    pub(crate) model: Arc<Model>,
    pub(crate) database: Database,
}

impl Loader<ExtensionKey> for ExtensionLoader {
    type Value = Loaded;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[ExtensionKey],
    ) -> Result<HashMap<ExtensionKey, Loaded>, async_graphql::Error> {
        type Group = (usize, usize, Arc<str>, Restriction);
        let mut groups: IndexMap<Group, Vec<&ExtensionKey>> = IndexMap::new();
        for key in keys {
            let group = (
                key.foreign,
                key.field,
                key.arguments.clone(),
                key.restriction.clone(),
            );
            groups.entry(group).or_default().push(key);
        }
        let loads = groups
            .iter()
            .map(|((foreign, field, arguments, restriction), keys)| {
                self.load_group(*foreign, *field, arguments, restriction.filter(), keys)
            });
        let mut loaded = HashMap::with_capacity(keys.len());
        for group in futures::future::try_join_all(loads).await? {
            loaded.extend(group);
        }
        Ok(loaded)
    }
}

impl ExtensionLoader {
    async fn load_group(
        &self,
        foreign: usize,
        field: usize,
        arguments: &str,
        restriction: Document,
        keys: &[&ExtensionKey],
    ) -> async_graphql::Result<Vec<(ExtensionKey, Loaded)>> {
        let model = &self.model;
        let extension = &model.foreign[foreign].fields[field];
        let spec = &model.collections[extension.collection];
        let object = &model.objects[spec.object];
        let foreign_key = &object.fields[extension.foreign_key];
        let storage = foreign_key.scalar().expect("foreign keys are scalars").0;
        // Keys that cannot be stored in the field's type match nothing.
        let stored: Vec<Bson> = keys
            .iter()
            .filter_map(|key| to_bson(&Value::String(key.key.clone()), storage).ok())
            .collect();
        let by_keys = both(
            doc! { foreign_key.path.clone(): { "$in": stored } },
            restriction,
        );
        let collection = self.database.collection::<Document>(&spec.collection);
        match extension.aggregate {
            None => {
                let arguments: IndexMap<Name, Value> = if arguments.is_empty() {
                    IndexMap::new()
                } else {
                    serde_json::from_str(arguments)?
                };
                let filter = where_filter(model, spec.object, arguments.get("where"))?;
                let filter = both(by_keys, filter);
                let (sort, limit, offset) = window(model, spec.object, &arguments)?;
                let read = async {
                    collection
                        .find(filter)
                        .sort(sort)
                        .batch_size(batch(model.max_limit.saturating_mul(keys.len() as u64)))
                        .max_time(model.operation_timeout)
                        .await?
                        .try_collect::<Vec<Document>>()
                        .await
                };
                let documents = within(model, read).await?;
                let mut grouped: HashMap<String, Vec<Document>> = HashMap::new();
                for document in documents {
                    if let Some(key) = document.get(&foreign_key.path).and_then(key_text) {
                        grouped.entry(key).or_default().push(document);
                    }
                }
                Ok(keys
                    .iter()
                    .map(|key| {
                        let documents: Vec<Document> = grouped
                            .get(&key.key)
                            .map(|documents| {
                                documents
                                    .iter()
                                    .skip(offset as usize)
                                    .take(limit as usize)
                                    .cloned()
                                    .collect()
                            })
                            .unwrap_or_default();
                        ((*key).clone(), Loaded::Documents(documents.into()))
                    })
                    .collect())
            }
            Some(aggregate) => {
                let path = &foreign_key.path;
                self.load_aggregate(&collection, object, aggregate, path, by_keys, keys)
                    .await
            }
        }
    }

    /// An aggregate field for every key at once: one pipeline grouped by the foreign key.
    async fn load_aggregate(
        &self,
        collection: &mongodb::Collection<Document>,
        object: &crate::model::ObjectModel,
        aggregate: Aggregate,
        path: &str,
        by_keys: Document,
        keys: &[&ExtensionKey],
    ) -> async_graphql::Result<Vec<(ExtensionKey, Loaded)>> {
        let accumulate = match aggregate {
            Aggregate::Count => Accumulate::Count,
            Aggregate::Function(function, of) => Accumulate::Function {
                function,
                path: object.fields[of].path.clone(),
            },
        };
        let pipeline = translate::aggregate_pipeline(by_keys, Some(path), &[accumulate]);
        let read = async {
            collection
                .aggregate(pipeline)
                .max_time(self.model.operation_timeout)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        let groups = within(&self.model, read).await?;
        // What a key without documents aggregates to.
        let none = match aggregate {
            Aggregate::Count => Value::from(0),
            Aggregate::Function(..) => Value::Null,
        };
        let values: HashMap<String, Value> = groups
            .iter()
            .filter_map(|group| {
                let key = key_text(group.get("_id")?)?;
                Some((key, convert::to_value(group.get("a0")?, false)))
            })
            .collect();
        Ok(keys
            .iter()
            .map(|key| {
                let value = values.get(&key.key).cloned();
                (
                    (*key).clone(),
                    Loaded::Value(value.unwrap_or_else(|| none.clone())),
                )
            })
            .collect())
    }
}
