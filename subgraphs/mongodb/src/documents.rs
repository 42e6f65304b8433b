//! Documents as the response asks for them, and the fields collections add to other
//! subgraphs' entities loaded level by level.
//!
//! Shaping reads each selected field from the BSON document by its stored path: scalars by
//! their kind (`ID`s as text), nested documents and references (entities owned elsewhere, by
//! key) shaped by their own selections. Extension fields (`Product.reviews`) are loaded before
//! the shaping: one walk finds every entity of the level that asks for one, each distinct
//! field with its arguments becomes one `find` (or `aggregate`) for all their keys, the loaded
//! documents are shaped the same way (the next level), and a second walk, in the same order,
//! writes the answers in place.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::SelectionSet;
use futures::future::BoxFuture;
use mongodb::bson::{Bson, Document};
use polygraph_subgraph_core::engine::{FieldError, Operation};
use polygraph_subgraph_core::selection::SelectedField;
use serde_json::{Map, Value as Json};

use crate::convert::{key_text, to_json};
use crate::model::{Model, Shape};
use crate::store::{Loaded, Store};

/// What is shaped: a document (or a nested one) of `objects[index]`, or an entity owned
/// elsewhere (`foreign[index]`) by its key.
pub(crate) enum Item<'d> {
    Document(usize, &'d Document),
    Entity(usize, String),
}

/// The type of an item: a document type or a foreign entity type, by index.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Object(usize),
    Foreign(usize),
}

/// How a selected field's value is made.
enum Source {
    Typename,
    Scalar {
        path: String,
        id: bool,
        list: bool,
    },
    Nested {
        path: String,
        object: usize,
        list: bool,
    },
    Reference {
        path: String,
        foreign: usize,
        list: bool,
    },
    /// A foreign entity's key field.
    Key,
    /// A foreign entity's extension field (index into its `fields`).
    Extension(usize),
    Unknown,
}

/// A type's selected fields under one selection, and whether any extension field is reachable
/// from them (if not, the walk for loads skips them).
struct Plan<'a> {
    fields: Vec<(SelectedField<'a>, Source, Option<Arc<Plan<'a>>>)>,
    loads: bool,
}

/// One extension field of one entity: which selected field (its plan and position) and key.
struct Need<'a> {
    plan: Arc<Plan<'a>>,
    position: usize,
    foreign: usize,
    key: String,
}

/// A type and the selection sets (by address) a plan is for.
type PlanKey = (Kind, Vec<usize>);

/// Per request: each type's plan under each selection, made once.
pub(crate) struct Shaping<'o, 'a> {
    store: &'o Store,
    operation: &'o Operation<'a>,
    plans: std::sync::Mutex<HashMap<PlanKey, Arc<Plan<'a>>>>,
}

impl<'o, 'a> Shaping<'o, 'a> {
    pub(crate) fn new(store: &'o Store, operation: &'o Operation<'a>) -> Self {
        Self {
            store,
            operation,
            plans: std::sync::Mutex::default(),
        }
    }

    /// `items` with the fields `sets` select, every extension field below them loaded.
    pub(crate) fn shape<'s>(
        &'s self,
        items: &'s [Item<'s>],
        sets: &'s [&'a SelectionSet],
    ) -> BoxFuture<'s, Result<Vec<Json>, FieldError>> {
        Box::pin(async move {
            let mut needs = Vec::new();
            let plans = items
                .iter()
                .map(|item| {
                    let plan = self.plan(kind_of(item), sets)?;
                    Self::walk(item, &plan, &mut needs);
                    Ok(plan)
                })
                .collect::<Result<Vec<_>, FieldError>>()?;
            let mut filled = self.load(&needs).await?.into_iter();
            Ok(items
                .iter()
                .zip(plans)
                .map(|(item, plan)| self.build(item, &plan, &mut filled))
                .collect())
        })
    }

    /// The plan of type `kind` under `sets`, made the first time.
    fn plan(&self, kind: Kind, sets: &[&'a SelectionSet]) -> Result<Arc<Plan<'a>>, FieldError> {
        let key = (
            kind,
            sets.iter()
                .map(|set| std::ptr::from_ref(*set) as usize)
                .collect(),
        );
        if let Some(plan) = self.plans.lock().expect("not poisoned").get(&key) {
            return Ok(plan.clone());
        }
        let model = &self.store.model;
        let type_name = match kind {
            Kind::Object(index) => &model.objects[index].type_name,
            Kind::Foreign(index) => &model.foreign[index].type_name,
        };
        let mut fields = Vec::new();
        let mut loads = false;
        for field in self.operation.walker().collect(sets, type_name)? {
            let source = source(model, kind, field.name);
            let child = match source {
                Source::Nested { object, .. } => {
                    Some(self.plan(Kind::Object(object), &field.selection_sets)?)
                }
                Source::Reference { foreign, .. } => {
                    Some(self.plan(Kind::Foreign(foreign), &field.selection_sets)?)
                }
                _ => None,
            };
            loads |=
                matches!(source, Source::Extension(_)) || child.as_ref().is_some_and(|c| c.loads);
            fields.push((field, source, child));
        }
        let plan = Arc::new(Plan { fields, loads });
        self.plans
            .lock()
            .expect("not poisoned")
            .insert(key, plan.clone());
        Ok(plan)
    }

    /// Finds, in order, the extension fields `item` and everything below it ask for.
    fn walk(item: &Item<'_>, plan: &Arc<Plan<'a>>, needs: &mut Vec<Need<'a>>) {
        if !plan.loads {
            return;
        }
        for (position, (_, source, child)) in plan.fields.iter().enumerate() {
            match (item, source, child) {
                (
                    Item::Document(_, document),
                    Source::Nested { path, object, list },
                    Some(child),
                ) => {
                    for nested in nested_documents(document, path, *list) {
                        Self::walk(&Item::Document(*object, nested), child, needs);
                    }
                }
                (
                    Item::Document(_, document),
                    Source::Reference {
                        path,
                        foreign,
                        list,
                    },
                    Some(child),
                ) => {
                    for key in reference_keys(document, path, *list) {
                        Self::walk(&Item::Entity(*foreign, key), child, needs);
                    }
                }
                (Item::Entity(foreign, key), Source::Extension(_), _) => needs.push(Need {
                    plan: plan.clone(),
                    position,
                    foreign: *foreign,
                    key: key.clone(),
                }),
                _ => {}
            }
        }
    }

    /// The value of each of `needs`, in order: per distinct field, one load for every key,
    /// and the loaded documents shaped (the next level).
    async fn load(&self, needs: &[Need<'a>]) -> Result<Vec<Json>, FieldError> {
        if needs.is_empty() {
            return Ok(Vec::new());
        }
        // Needs by the selected field they are for.
        let mut groups: Vec<(&Need<'a>, Vec<usize>)> = Vec::new();
        for (index, need) in needs.iter().enumerate() {
            match groups.iter_mut().find(|(first, _)| {
                Arc::ptr_eq(&first.plan, &need.plan) && first.position == need.position
            }) {
                Some((_, members)) => members.push(index),
                None => groups.push((need, vec![index])),
            }
        }
        let loads = groups
            .iter()
            .map(|(first, members)| self.load_group(first, members, needs));
        let mut filled = vec![Json::Null; needs.len()];
        for (members, values) in groups
            .iter()
            .map(|(_, members)| members)
            .zip(futures::future::try_join_all(loads).await?)
        {
            for (index, value) in members.iter().zip(values) {
                filled[*index] = value;
            }
        }
        Ok(filled)
    }

    /// One extension field for the entities `members` (indices into `needs`), all sharing
    /// `first`'s field and arguments.
    async fn load_group(
        &self,
        first: &Need<'a>,
        members: &[usize],
        needs: &[Need<'a>],
    ) -> Result<Vec<Json>, FieldError> {
        let (field, source, _) = &first.plan.fields[first.position];
        let Source::Extension(extension) = *source else {
            unreachable!("needs are extension fields");
        };
        let collection = self.store.model.foreign[first.foreign].fields[extension].collection;
        let restriction = self.store.restriction(collection, self.operation.claims)?;
        let mut keys: Vec<&str> = members.iter().map(|m| needs[*m].key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let loaded = self
            .store
            .extension(
                (first.foreign, extension),
                &field.arguments,
                restriction,
                &keys,
            )
            .await?;
        let by_key: HashMap<&str, Loaded> = keys.into_iter().zip(loaded).collect();
        let object = self.store.model.collections[collection].object;
        // The documents of every member, in order, shaped as one level.
        let mut items = Vec::new();
        let mut counts = Vec::with_capacity(members.len());
        for member in members {
            match &by_key[needs[*member].key.as_str()] {
                Loaded::Documents(documents) => {
                    counts.push(Some(documents.len()));
                    items.extend(documents.iter().map(|d| Item::Document(object, d)));
                }
                Loaded::Value(_) => counts.push(None),
            }
        }
        let mut shaped = self.shape(&items, &field.selection_sets).await?.into_iter();
        Ok(members
            .iter()
            .zip(counts)
            .map(|(member, count)| match count {
                Some(count) => Json::Array(shaped.by_ref().take(count).collect()),
                None => match &by_key[needs[*member].key.as_str()] {
                    Loaded::Value(value) => value.clone(),
                    Loaded::Documents(_) => Json::Null,
                },
            })
            .collect())
    }

    /// `item` as the response shows it, extension fields taken from `filled` in walk order.
    fn build(
        &self,
        item: &Item<'_>,
        plan: &Plan<'a>,
        filled: &mut std::vec::IntoIter<Json>,
    ) -> Json {
        let model = &self.store.model;
        let mut out = Map::with_capacity(plan.fields.len());
        for (field, source, child) in &plan.fields {
            let value = match (item, source, child) {
                (_, Source::Typename, _) => Json::String(
                    match item {
                        Item::Document(object, _) => &model.objects[*object].type_name,
                        Item::Entity(foreign, _) => &model.foreign[*foreign].type_name,
                    }
                    .clone(),
                ),
                (Item::Document(_, document), Source::Scalar { path, id, list }, _) => {
                    scalar(document.get(path), *id, *list)
                }
                (
                    Item::Document(_, document),
                    Source::Nested { path, object, list },
                    Some(child),
                ) => {
                    let mut nested = nested_documents(document, path, *list)
                        .map(|nested| self.build(&Item::Document(*object, nested), child, filled));
                    if *list {
                        Json::Array(nested.collect())
                    } else {
                        nested.next().unwrap_or(Json::Null)
                    }
                }
                (
                    Item::Document(_, document),
                    Source::Reference {
                        path,
                        foreign,
                        list,
                    },
                    Some(child),
                ) => {
                    let mut entities = reference_keys(document, path, *list)
                        .map(|key| self.build(&Item::Entity(*foreign, key), child, filled));
                    if *list {
                        Json::Array(entities.collect())
                    } else {
                        entities.next().unwrap_or(Json::Null)
                    }
                }
                (Item::Entity(_, key), Source::Key, _) => Json::String(key.clone()),
                (Item::Entity(..), Source::Extension(_), _) => filled.next().unwrap_or(Json::Null),
                _ => Json::Null,
            };
            out.insert(field.response_key.to_owned(), value);
        }
        Json::Object(out)
    }
}

fn kind_of(item: &Item<'_>) -> Kind {
    match item {
        Item::Document(object, _) => Kind::Object(*object),
        Item::Entity(foreign, _) => Kind::Foreign(*foreign),
    }
}

/// How field `name` of type `kind` is read.
fn source(model: &Model, kind: Kind, name: &str) -> Source {
    if name == "__typename" {
        return Source::Typename;
    }
    match kind {
        Kind::Object(object) => {
            let Some(field) = model.objects[object].field(name) else {
                return Source::Unknown;
            };
            let (path, list) = (field.path.clone(), field.list);
            match field.shape {
                Shape::Scalar { kind, .. } => Source::Scalar {
                    path,
                    id: kind == polygraph_subgraph_core::filter::ScalarKind::Id,
                    list,
                },
                Shape::Object(object) => Source::Nested { path, object, list },
                Shape::Reference(foreign) => Source::Reference {
                    path,
                    foreign,
                    list,
                },
            }
        }
        Kind::Foreign(foreign) => {
            let foreign = &model.foreign[foreign];
            if foreign.key == name {
                return Source::Key;
            }
            foreign
                .fields
                .iter()
                .position(|field| field.name == name)
                .map_or(Source::Unknown, Source::Extension)
        }
    }
}

/// A scalar field's value (`id`: as text); a list's null items are left out.
fn scalar(value: Option<&Bson>, id: bool, list: bool) -> Json {
    match value {
        None | Some(Bson::Null) => Json::Null,
        Some(Bson::Array(items)) if list => Json::Array(
            items
                .iter()
                .filter(|item| !matches!(item, Bson::Null))
                .map(|item| to_json(item, id))
                .collect(),
        ),
        Some(value) => to_json(value, id),
    }
}

/// The documents nested at `path`: one, or a list's.
fn nested_documents<'d>(
    document: &'d Document,
    path: &str,
    list: bool,
) -> impl Iterator<Item = &'d Document> {
    let (one, many) = match document.get(path) {
        Some(Bson::Array(items)) if list => {
            (None, Some(items.iter().filter_map(Bson::as_document)))
        }
        Some(Bson::Document(nested)) if !list => (Some(nested), None),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

/// The keys of the entities referenced at `path`: one, or a list's.
fn reference_keys(document: &Document, path: &str, list: bool) -> impl Iterator<Item = String> {
    let values: Vec<&Bson> = match document.get(path) {
        Some(Bson::Array(items)) if list => items.iter().collect(),
        Some(value) => vec![value],
        None => Vec::new(),
    };
    values.into_iter().filter_map(key_text)
}
