//! The documents subgraph's one execution path (see [`polygraph_subgraph_core::engine`]):
//! each root field one `find`, `aggregate` or write, `_entities` one `find` per collection
//! type however many keys, and the fields collections add to other subgraphs' entities one
//! read per field and level ([`crate::documents`]).

use std::collections::HashMap;

use async_graphql::Value;
use async_graphql::parser::types::{OperationType, SelectionSet};
use futures::future::BoxFuture;
use mongodb::bson::{Bson, Document, doc};
use polygraph_subgraph_core::aggregate::{Function, aggregate_type, function_type};
use polygraph_subgraph_core::engine::{Engine, FieldError, Operation, Resolved};
use polygraph_subgraph_core::filter;
use polygraph_subgraph_core::selection::SelectedField;
use serde_json::{Map, Value as Json, json};

use crate::convert::{key_text, to_bson, to_json};
use crate::cursor;
use crate::documents::{Item, Shaping};
use crate::errors::bad_input;
use crate::store::{Store, Window, both};
use crate::translate::{self, Accumulate};
use crate::writes::{self, Kind, Written};
use tracing::Instrument as _;

/// The documents engine.
pub(crate) struct Documents {
    pub(crate) store: Store,
    /// What each root field does.
    roots: HashMap<String, Root>,
    /// The collection of each `Subscription` field, by name.
    subscriptions: HashMap<String, usize>,
    changes: std::sync::Arc<crate::changes::Changes>,
}

#[derive(Clone, Copy)]
enum Root {
    List(usize),
    Page(usize),
    ByKey(usize),
    Aggregate(usize),
    Write(usize, Kind),
}

impl Documents {
    pub(crate) fn new(store: Store, changes: std::sync::Arc<crate::changes::Changes>) -> Self {
        let mut roots = HashMap::new();
        let mut subscriptions = HashMap::new();
        for (index, collection) in store.model.collections.iter().enumerate() {
            if let Some(field) = &collection.changed_field {
                subscriptions.insert(field.clone(), index);
            }
            let list = &collection.list_field;
            roots.insert(list.clone(), Root::List(index));
            roots.insert(format!("{list}_connection"), Root::Page(index));
            roots.insert(collection.by_key_field.clone(), Root::ByKey(index));
            roots.insert(collection.aggregate_field.clone(), Root::Aggregate(index));
            for kind in Kind::ALL {
                if collection.mutations.allows(kind.write()) {
                    roots.insert(kind.field_name(list), Root::Write(index, kind));
                }
            }
        }
        Self {
            store,
            roots,
            subscriptions,
            changes,
        }
    }
}

impl Engine for Documents {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.store
                .database
                .run_command(doc! { "ping": 1 })
                .await
                .map(drop)
                .map_err(|error| error.to_string())
        })
    }

    fn subscribe<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> Option<futures::stream::BoxStream<'a, Resolved>> {
        let collection = *self.subscriptions.get(field.name)?;
        let name = &self.store.model.collections[collection].collection;
        let receiver = self.changes.subscribe(name);
        Some(polygraph_subgraph_core::changes::follow(
            receiver,
            move |id: Bson| async move { self.changed(operation, field, collection, id).await.into() },
        ))
    }

    fn resolve<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> BoxFuture<'a, Resolved> {
        Box::pin(async move {
            if field.name == "_entities" {
                return self.entities(operation, field).await;
            }
            let mutation = operation.definition.ty == OperationType::Mutation;
            let answer = match self.roots.get(field.name) {
                Some(Root::Write(collection, kind)) if mutation => {
                    self.write(operation, field, *collection, *kind).await
                }
                Some(Root::List(collection)) if !mutation => {
                    self.list(operation, field, *collection).await
                }
                Some(Root::Page(collection)) if !mutation => {
                    self.page(operation, field, *collection).await
                }
                Some(Root::ByKey(collection)) if !mutation => {
                    self.by_key(operation, field, *collection).await
                }
                Some(Root::Aggregate(collection)) if !mutation => {
                    self.aggregate(operation, field, *collection).await
                }
                _ => return Resolved::not_answered(field),
            };
            answer.into()
        })
    }
}

impl Documents {
    /// `documents` of `collection`, shaped for `sets`.
    async fn shaped(
        &self,
        operation: &Operation<'_>,
        collection: usize,
        documents: &[Document],
        sets: &[&SelectionSet],
    ) -> Result<Vec<Json>, FieldError> {
        let object = self.store.model.collections[collection].object;
        let items: Vec<Item<'_>> = documents
            .iter()
            .map(|document| Item::Document(object, document))
            .collect();
        Shaping::new(&self.store, operation)
            .shape(&items, sets)
            .await
    }

    /// The filter of a read of `collection`: its `where`, within the caller's row rule.
    fn filter(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        collection: usize,
    ) -> Result<Document, FieldError> {
        let object = self.store.model.collections[collection].object;
        Ok(both(
            self.store.where_filter(object, field.argument("where"))?,
            self.store.restriction(collection, operation.claims)?,
        ))
    }

    /// `reviews(where, order_by, limit, offset)`: one `find`.
    async fn list(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        collection: usize,
    ) -> Result<Json, FieldError> {
        let filter = self.filter(operation, field, collection)?;
        let object = self.store.model.collections[collection].object;
        let window = self.store.window(object, &field.arguments)?;
        let documents = self.store.find(collection, filter, &window).await?;
        let shaped = self
            .shaped(operation, collection, &documents, &field.selection_sets)
            .await?;
        Ok(Json::Array(shaped))
    }

    /// A changed document, by its `_id`, as the subscriber may see it (null when not).
    async fn changed(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        collection: usize,
        id: Bson,
    ) -> Result<Json, FieldError> {
        let filter = doc! { "_id": { "$eq": id } };
        self.found_one(operation, field, collection, filter).await
    }

    /// The one document `filter` finds under the caller's row rule, shaped for `field`; null
    /// when there is none.
    async fn found_one(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        collection: usize,
        filter: Document,
    ) -> Result<Json, FieldError> {
        let filter = both(
            filter,
            self.store.restriction(collection, operation.claims)?,
        );
        let Some(document) = self.store.find_one(collection, filter).await? else {
            return Ok(Json::Null);
        };
        let mut shaped = self
            .shaped(operation, collection, &[document], &field.selection_sets)
            .await?;
        Ok(shaped.pop().unwrap_or(Json::Null))
    }

    /// `reviews_by_pk(review_id)`: the document with that key, or null.
    async fn by_key(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        collection: usize,
    ) -> Result<Json, FieldError> {
        let model = &self.store.model;
        let spec = &model.collections[collection];
        let lookup = &model.objects[spec.object].fields[spec.lookup];
        let storage = lookup.scalar().expect("lookup fields are scalars").0;
        let key = field.argument(&lookup.name).unwrap_or(&Value::Null);
        let key = to_bson(key, storage).map_err(|error| bad_input(error.0))?;
        let filter = doc! { lookup.path.clone(): { "$eq": key } };
        self.found_one(operation, field, collection, filter).await
    }

    /// `reviews_connection(where, order_by, first, after)`: one `find` of a page and one
    /// document more (to tell whether there is a next page).
    async fn page(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        collection: usize,
    ) -> Result<Json, FieldError> {
        let model = &self.store.model;
        let object = model.collections[collection].object;
        let mut filter = self.filter(operation, field, collection)?;
        let mut arguments = field.arguments.clone();
        arguments.shift_remove("first");
        let sort = self.store.window(object, &arguments)?.sort;
        let first = filter::parse_count("first", field.argument("first"), model.max_limit)
            .map_err(|error| bad_input(error.to_string()))?
            .unwrap_or(model.max_limit);
        let after = match field.argument("after") {
            Some(Value::String(after)) => Some(after),
            _ => None,
        };
        if let Some(after) = after {
            let values = cursor::decode(after, sort.len())
                .map_err(|error| bad_input(format!("after: {error}")))?;
            filter = both(filter, cursor::after(&sort, &values));
        }
        let window = Window {
            sort,
            limit: first + 1,
            offset: 0,
        };
        let mut documents = self.store.find(collection, filter, &window).await?;
        let has_next = documents.len() as u64 > first;
        documents.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        let cursors: Vec<String> = documents
            .iter()
            .map(|document| cursor::encode(&window.sort, document))
            .collect();
        let page_info = json!({
            "hasNextPage": has_next,
            "hasPreviousPage": after.is_some(),
            "startCursor": cursors.first(),
            "endCursor": cursors.last(),
        });
        let type_name = &model.objects[object].type_name;
        let walker = operation.walker();
        let mut out = Map::new();
        for selected in walker.collect(&field.selection_sets, &format!("{type_name}Connection"))? {
            let value = match selected.name {
                "__typename" => Json::String(format!("{type_name}Connection")),
                "pageInfo" => operation.shape(
                    &selected.selection_sets,
                    crate::schema::PAGE_INFO,
                    &page_info,
                )?,
                "edges" => {
                    let edge_type = format!("{type_name}Edge");
                    let mut edges = vec![Map::new(); documents.len()];
                    for part in walker.collect(&selected.selection_sets, &edge_type)? {
                        let values = match part.name {
                            "__typename" => vec![Json::String(edge_type.clone()); documents.len()],
                            "cursor" => cursors.iter().cloned().map(Json::String).collect(),
                            "node" => {
                                self.shaped(operation, collection, &documents, &part.selection_sets)
                                    .await?
                            }
                            _ => vec![Json::Null; documents.len()],
                        };
                        for (edge, value) in edges.iter_mut().zip(values) {
                            edge.insert(part.response_key.to_owned(), value);
                        }
                    }
                    Json::Array(edges.into_iter().map(Json::Object).collect())
                }
                _ => Json::Null,
            };
            out.insert(selected.response_key.to_owned(), value);
        }
        Ok(Json::Object(out))
    }

    /// `reviews_aggregate(where)`: one `aggregate` computing every selected output.
    async fn aggregate(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        collection: usize,
    ) -> Result<Json, FieldError> {
        let model = &self.store.model;
        let object_index = model.collections[collection].object;
        let object = &model.objects[object_index];
        let type_name = &object.type_name;
        let aggregate_name = aggregate_type(type_name);
        let filter = self.filter(operation, field, collection)?;
        let walker = operation.walker();
        let mut accumulate = Vec::new();
        let mut outputs = Vec::new();
        for selected in walker.collect(&field.selection_sets, &aggregate_name)? {
            let output = if selected.name == "__typename" {
                Output::Typename(aggregate_name.clone())
            } else if selected.name == "count" {
                accumulate.push(Accumulate::Count);
                Output::Count(accumulate.len() - 1)
            } else if let Some(function) = Function::from_name(selected.name) {
                let function_name = function_type(type_name, function);
                let mut columns = Vec::new();
                for column in walker.collect(&selected.selection_sets, &function_name)? {
                    if column.name == "__typename" {
                        columns.push((column.response_key, None));
                        continue;
                    }
                    let path = object
                        .field(column.name)
                        .map(|f| f.path.clone())
                        .ok_or_else(|| {
                            bad_input(format!("{type_name} has no field {}", column.name))
                        })?;
                    accumulate.push(Accumulate::Function { function, path });
                    columns.push((column.response_key, Some(accumulate.len() - 1)));
                }
                Output::Function(columns, function_name)
            } else {
                continue;
            };
            outputs.push((selected.response_key, output));
        }
        let group = if accumulate.is_empty() {
            None
        } else {
            let pipeline = translate::aggregate_pipeline(filter, None, &accumulate);
            self.store.aggregate_one(collection, pipeline).await?
        };
        let value = |index: usize| match group.as_ref().and_then(|g| g.get(format!("a{index}"))) {
            Some(bson) => to_json(bson, false),
            None if matches!(accumulate[index], Accumulate::Count) => Json::from(0),
            None => Json::Null,
        };
        let mut out = Map::new();
        for (key, output) in outputs {
            let value = match output {
                Output::Typename(name) => Json::String(name),
                Output::Count(index) => value(index),
                Output::Function(columns, function_name) => Json::Object(
                    columns
                        .into_iter()
                        .map(|(key, index)| {
                            let value =
                                index.map_or_else(|| Json::String(function_name.clone()), value);
                            (key.to_owned(), value)
                        })
                        .collect(),
                ),
            };
            out.insert(key.to_owned(), value);
        }
        Ok(Json::Object(out))
    }

    /// A generated mutation: its write, then the documents it wrote, shaped.
    async fn write(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        collection: usize,
        kind: Kind,
    ) -> Result<Json, FieldError> {
        // One span for the write's commands (a write may read back what it wrote).
        let command = match kind {
            Kind::Insert | Kind::InsertOne => "insert",
            Kind::Update | Kind::UpdateByKey => "update",
            Kind::Delete | Kind::DeleteByKey => "delete",
        };
        let span = self.store.span(command, collection, &[]);
        let written = writes::run(
            &self.store,
            collection,
            kind,
            &field.arguments,
            operation.claims,
        )
        .instrument(span.clone())
        .await;
        let written = polygraph_subgraph_core::recorder::ended(&span, written)?;
        let (affected, documents) = match written {
            Written::One(None) => return Ok(Json::Null),
            Written::One(Some(document)) => {
                let mut shaped = self
                    .shaped(operation, collection, &[document], &field.selection_sets)
                    .await?;
                return Ok(shaped.pop().unwrap_or(Json::Null));
            }
            Written::Many {
                affected,
                documents,
            } => (affected, documents),
        };
        let type_name = &self.store.model.object_of(collection).type_name;
        let response = format!("{type_name}MutationResponse");
        let mut out = Map::new();
        for selected in operation
            .walker()
            .collect(&field.selection_sets, &response)?
        {
            let value = match selected.name {
                "__typename" => Json::String(response.clone()),
                "affected_rows" => Json::from(affected),
                "returning" => Json::Array(
                    self.shaped(operation, collection, &documents, &selected.selection_sets)
                        .await?,
                ),
                _ => Json::Null,
            };
            out.insert(selected.response_key.to_owned(), value);
        }
        Ok(Json::Object(out))
    }

    /// `_entities`: the representations of collection types found with one `find` per
    /// collection, those of other subgraphs' entities taken by key, all shaped in
    /// representation order; a key with no (visible) document is null, with a `NOT_FOUND`
    /// error at its index.
    async fn entities(&self, operation: &Operation<'_>, field: &SelectedField<'_>) -> Resolved {
        let wanted = match self.wanted(field) {
            Ok(wanted) => wanted,
            Err(error) => return Resolved::failed(error),
        };
        let found = match self.fetch(operation, &wanted).await {
            Ok(found) => found,
            Err(error) => return Resolved::failed(error),
        };
        let model = &self.store.model;
        let mut errors = Vec::new();
        let mut items = Vec::with_capacity(wanted.len());
        let mut positions = Vec::with_capacity(wanted.len());
        for (position, wanted) in wanted.iter().enumerate() {
            let item = match wanted {
                Wanted::Entity(foreign, key) => Ok(Item::Entity(*foreign, key.clone())),
                Wanted::Unkeyed(error) => Err(error.clone()),
                Wanted::Document(collection, _, key) => {
                    let object = model.collections[*collection].object;
                    found[*collection].get(key).map_or_else(
                        || {
                            let key_field = &model.objects[object].fields[model.collections
                                [*collection]
                                .key
                                .expect("entities have keys")];
                            let message = format!(
                                "no {} with {} {key}",
                                model.objects[object].type_name, key_field.name
                            );
                            Err(FieldError::new(message).code("NOT_FOUND"))
                        },
                        |document| Ok(Item::Document(object, document)),
                    )
                }
            };
            match item {
                Ok(item) => {
                    positions.push(position);
                    items.push(item);
                }
                Err(error) => errors.push(error.at(position)),
            }
        }
        let shaped = match Shaping::new(&self.store, operation)
            .shape(&items, &field.selection_sets)
            .await
        {
            Ok(shaped) => shaped,
            Err(error) => return Resolved::failed(error),
        };
        let mut values = vec![Json::Null; wanted.len()];
        for (position, value) in positions.into_iter().zip(shaped) {
            values[position] = value;
        }
        Resolved::json(Json::Array(values)).with_errors(errors)
    }

    /// What each representation asks for. A representation of a type this subgraph does not
    /// have, or of a collection type without its key, fails the request.
    fn wanted(&self, field: &SelectedField<'_>) -> Result<Vec<Wanted>, FieldError> {
        let model = &self.store.model;
        let Some(Value::List(representations)) = field.argument("representations") else {
            return Err(bad_input("representations must be a list"));
        };
        let mut wanted = Vec::with_capacity(representations.len());
        for representation in representations {
            let Value::Object(representation) = representation else {
                return Err(bad_input("each representation must be an object"));
            };
            let Some(Value::String(typename)) = representation.get("__typename") else {
                return Err(bad_input("a representation has no __typename"));
            };
            if let Some(foreign) = model.foreign.iter().position(|f| f.type_name == *typename) {
                let key_name = &model.foreign[foreign].key;
                wanted.push(match representation.get(key_name.as_str()) {
                    Some(Value::String(key)) => Wanted::Entity(foreign, key.clone()),
                    Some(Value::Number(number)) => Wanted::Entity(foreign, number.to_string()),
                    _ => Wanted::Unkeyed(bad_input(format!(
                        "a {typename} representation has no {key_name}"
                    ))),
                });
                continue;
            }
            let collection = model
                .collections
                .iter()
                .position(|c| c.key.is_some() && model.objects[c.object].type_name == *typename)
                .ok_or_else(|| {
                    bad_input(format!("{typename} is not an entity of this subgraph"))
                })?;
            let key_field = &model.object_of(collection).fields[model.collections[collection]
                .key
                .expect("entities have keys")];
            let storage = key_field.scalar().expect("keys are scalars").0;
            let key = representation
                .get(key_field.name.as_str())
                .map(|value| to_bson(value, storage))
                .transpose()
                .map_err(|error| bad_input(error.0))?;
            match key.as_ref().and_then(|key| Some((key, key_text(key)?))) {
                Some((key, text)) => wanted.push(Wanted::Document(collection, key.clone(), text)),
                None => {
                    return Err(bad_input(format!(
                        "a {typename} representation has no {}",
                        key_field.name
                    )));
                }
            }
        }
        Ok(wanted)
    }

    /// The documents `wanted` names, per collection by key text: one `find` per collection,
    /// within the caller's row rule (a key it hides is as absent as one with no document).
    async fn fetch(
        &self,
        operation: &Operation<'_>,
        wanted: &[Wanted],
    ) -> Result<Vec<HashMap<String, Document>>, FieldError> {
        let model = &self.store.model;
        let mut keys: Vec<Vec<Bson>> = vec![Vec::new(); model.collections.len()];
        for wanted in wanted {
            if let Wanted::Document(collection, key, _) = wanted {
                keys[*collection].push(key.clone());
            }
        }
        let reads = keys
            .into_iter()
            .enumerate()
            .map(|(collection, keys)| async move {
                if keys.is_empty() {
                    return Ok(HashMap::new());
                }
                let restriction = self.store.restriction(collection, operation.claims)?;
                self.store.by_keys(collection, keys, restriction).await
            });
        futures::future::try_join_all(reads).await
    }
}

/// What one representation asks for: a collection's document by key text, an entity owned
/// elsewhere by key, or nothing (it has no key: why). Keys as stored and as text.
enum Wanted {
    Document(usize, Bson, String),
    Entity(usize, String),
    Unkeyed(FieldError),
}

/// What one selected output of an aggregate holds: a type name, an accumulator's index,
/// or a function's columns (by response key) and its type name.
enum Output<'k> {
    Typename(String),
    Count(usize),
    Function(Vec<(&'k str, Option<usize>)>, String),
}
