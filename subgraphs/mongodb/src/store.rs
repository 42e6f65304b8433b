//! The subgraph's reads: each a `find` or `aggregate` built from the model and the request's
//! arguments, within the model's operation timeout and the caller's row rule.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Name, Value};
use futures::TryStreamExt as _;
use indexmap::IndexMap;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::engine::FieldError;
use polygraph_subgraph_core::filter;
use polygraph_subgraph_core::rules;
use serde_json::Value as Json;

use crate::convert::{key_text, to_bson, to_json};
use crate::errors::{bad_input, database_error, timed_out};
use crate::model::{Aggregate, Model};
use crate::shape::Shape;
use crate::translate::{self, Accumulate};

/// The model and the database it describes.
pub(crate) struct Store {
    pub(crate) model: Arc<Model>,
    pub(crate) database: Database,
}

/// The sort, `limit` and `offset` of a list.
pub(crate) struct Window {
    pub(crate) sort: Document,
    pub(crate) limit: u64,
    pub(crate) offset: u64,
}

/// What one entity's extension field loaded: its documents, or an aggregate's value.
pub(crate) enum Loaded {
    Documents(Vec<Document>),
    Value(Json),
}

impl Store {
    fn handle(&self, collection: usize) -> mongodb::Collection<Document> {
        self.database
            .collection(&self.model.collections[collection].collection)
    }

    /// Runs a read within the model's operation timeout: the read itself asks the server to
    /// stop there (`max_time`), and the subgraph stops waiting there whatever the server does,
    /// so one slow read cannot hold a request (or the connection it waits on) for longer.
    /// The read is traced in `span` (see [`Store::span`]).
    pub(crate) async fn within<T>(
        &self,
        span: tracing::Span,
        read: impl Future<Output = mongodb::error::Result<T>>,
    ) -> Result<T, FieldError> {
        use tracing::Instrument as _;
        let read = tokio::time::timeout(self.model.operation_timeout, read);
        let answer = match read.instrument(span.clone()).await {
            Ok(answer) => answer.map_err(|error| database_error(&error)),
            Err(_) => Err(timed_out(&self.model)),
        };
        polygraph_subgraph_core::recorder::ended(&span, answer)
    }

    /// The trace span of `command` on `collection` with a filter or pipeline of `documents`
    /// (their shape only: see [`Shape`]).
    pub(crate) fn span(
        &self,
        command: &'static str,
        collection: usize,
        documents: &[Document],
    ) -> tracing::Span {
        polygraph_subgraph_core::recorder::span(
            "mongodb",
            "mongodb",
            &Shape {
                command,
                collection: &self.model.collections[collection].collection,
                documents,
            },
        )
    }

    /// The documents matching `filter`, in `window`'s order and range.
    pub(crate) async fn find(
        &self,
        collection: usize,
        filter: Document,
        window: &Window,
    ) -> Result<Vec<Document>, FieldError> {
        let span = self.span("find", collection, std::slice::from_ref(&filter));
        let read = async {
            self.handle(collection)
                .find(filter)
                .sort(window.sort.clone())
                .skip(window.offset)
                .limit(i64::try_from(window.limit).unwrap_or(i64::MAX))
                .batch_size(batch(window.limit))
                .max_time(self.model.operation_timeout)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        self.within(span, read).await
    }

    /// The first document matching `filter`, if any.
    pub(crate) async fn find_one(
        &self,
        collection: usize,
        filter: Document,
    ) -> Result<Option<Document>, FieldError> {
        let handle = self.handle(collection);
        let span = self.span("find", collection, std::slice::from_ref(&filter));
        let read = handle
            .find_one(filter)
            .max_time(self.model.operation_timeout)
            .into_future();
        self.within(span, read).await
    }

    /// The one group an aggregate `pipeline` computes (none: no documents matched).
    pub(crate) async fn aggregate_one(
        &self,
        collection: usize,
        pipeline: Vec<Document>,
    ) -> Result<Option<Document>, FieldError> {
        let span = self.span("aggregate", collection, &pipeline);
        let read = async {
            self.handle(collection)
                .aggregate(pipeline)
                .max_time(self.model.operation_timeout)
                .await?
                .try_next()
                .await
        };
        self.within(span, read).await
    }

    /// The documents of `collection` whose entity key is one of `keys`, by key text.
    pub(crate) async fn by_keys(
        &self,
        collection: usize,
        keys: Vec<Bson>,
        restriction: Document,
    ) -> Result<HashMap<String, Document>, FieldError> {
        let model = &self.model;
        let key_field = &model.object_of(collection).fields[model.collections[collection]
            .key
            .expect("entities have keys")];
        let count = keys.len() as u64;
        let filter = both(
            doc! { key_field.path.clone(): { "$in": keys } },
            restriction,
        );
        let span = self.span("find", collection, std::slice::from_ref(&filter));
        let read = async {
            self.handle(collection)
                .find(filter)
                .batch_size(batch(count))
                .max_time(model.operation_timeout)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        let documents = self.within(span, read).await?;
        Ok(documents
            .into_iter()
            .filter_map(|document| Some((key_text(document.get(&key_field.path)?)?, document)))
            .collect())
    }

    /// The documents of `collection` a request with `claims` may see, as a query document
    /// (empty: all of them): the collection's row rule with the claims' values. A ruled
    /// collection is refused to a request without verified claims.
    pub(crate) fn restriction(
        &self,
        collection: usize,
        claims: Option<&Claims>,
    ) -> Result<Document, FieldError> {
        let model = &self.model;
        let spec = &model.collections[collection];
        let what = format!("{} documents", model.objects[spec.object].type_name);
        let Some((rule, claims)) = rules::ruled(spec.rule.as_ref(), claims, &what)? else {
            return Ok(Document::new());
        };
        // A claim that cannot be stored in the ruled field's type matches nothing.
        Ok(
            translate::filter(model, spec.object, &rule.restriction(claims))
                .unwrap_or_else(|_| doc! { "$nor": [{}] }),
        )
    }

    /// The `where` argument of a list over `objects[object]`, as a query document.
    pub(crate) fn where_filter(
        &self,
        object: usize,
        value: Option<&Value>,
    ) -> Result<Document, FieldError> {
        let model = &self.model;
        let exp = match value {
            None | Some(Value::Null) => return Ok(Document::new()),
            Some(value) => filter::parse_bool_exp(
                value,
                &model.objects[object].type_name,
                &|type_name, field| model.nested_type(type_name, field),
            )
            .map_err(|error| bad_input(error.to_string()))?,
        };
        translate::filter(model, object, &exp).map_err(|error| bad_input(error.0))
    }

    /// The sort and range of a list: `order_by`, `limit` (capped at the model's maximum) and
    /// `offset`.
    pub(crate) fn window(
        &self,
        object: usize,
        arguments: &IndexMap<Name, Value>,
    ) -> Result<Window, FieldError> {
        let model = &self.model;
        let order_by = filter::parse_order_by(arguments.get("order_by").unwrap_or(&Value::Null))
            .map_err(|error| bad_input(error.to_string()))?;
        let sort = translate::sort(&model.objects[object], &order_by)
            .map_err(|error| bad_input(error.0))?;
        let count = |name: &'static str, max: u64| {
            filter::parse_count(name, arguments.get(name), max)
                .map_err(|error| bad_input(error.to_string()))
        };
        Ok(Window {
            sort,
            limit: count("limit", model.max_limit)?.unwrap_or(model.max_limit),
            offset: count("offset", u64::MAX)?.unwrap_or(0),
        })
    }

    /// Extension field `field` of foreign type `foreign` (with `arguments`) for every entity
    /// of `keys` at once, in their order: one `find`, or one `aggregate` grouped by the
    /// foreign key.
    pub(crate) async fn extension(
        &self,
        (foreign, field): (usize, usize),
        arguments: &IndexMap<Name, Value>,
        restriction: Document,
        keys: &[&str],
    ) -> Result<Vec<Loaded>, FieldError> {
        let model = &self.model;
        let extension = &model.foreign[foreign].fields[field];
        let spec = &model.collections[extension.collection];
        let foreign_key = &model.objects[spec.object].fields[extension.foreign_key];
        let storage = foreign_key.scalar().expect("foreign keys are scalars").0;
        // Keys that cannot be stored in the field's type match nothing.
        let stored: Vec<Bson> = keys
            .iter()
            .filter_map(|key| to_bson(&Value::String((*key).to_owned()), storage).ok())
            .collect();
        let by_keys = both(
            doc! { foreign_key.path.clone(): { "$in": stored } },
            restriction,
        );
        if let Some(aggregate) = extension.aggregate {
            return self
                .extension_aggregate(
                    extension.collection,
                    aggregate,
                    &foreign_key.path,
                    by_keys,
                    keys,
                )
                .await;
        }
        let filter = both(
            by_keys,
            self.where_filter(spec.object, arguments.get("where"))?,
        );
        let window = self.window(spec.object, arguments)?;
        let span = self.span("find", extension.collection, std::slice::from_ref(&filter));
        let read = async {
            self.handle(extension.collection)
                .find(filter)
                .sort(window.sort.clone())
                .batch_size(batch(model.max_limit.saturating_mul(keys.len() as u64)))
                .max_time(model.operation_timeout)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        let mut grouped: HashMap<String, Vec<Document>> = HashMap::new();
        for document in self.within(span, read).await? {
            if let Some(key) = document.get(&foreign_key.path).and_then(key_text) {
                let documents = grouped.entry(key).or_default();
                // Past the window: read, but not kept.
                if (documents.len() as u64) < window.offset.saturating_add(window.limit) {
                    documents.push(document);
                }
            }
        }
        Ok(keys
            .iter()
            .map(|key| {
                let documents = grouped
                    .get(*key)
                    .map(|documents| {
                        documents
                            .iter()
                            .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                Loaded::Documents(documents)
            })
            .collect())
    }

    /// An aggregate extension field for every key at once: one pipeline grouped by the
    /// foreign key.
    async fn extension_aggregate(
        &self,
        collection: usize,
        aggregate: Aggregate,
        group_by: &str,
        by_keys: Document,
        keys: &[&str],
    ) -> Result<Vec<Loaded>, FieldError> {
        let object = self.model.object_of(collection);
        let accumulate = match aggregate {
            Aggregate::Count => Accumulate::Count,
            Aggregate::Function(function, of) => Accumulate::Function {
                function,
                path: object.fields[of].path.clone(),
            },
        };
        let pipeline = translate::aggregate_pipeline(by_keys, Some(group_by), &[accumulate]);
        let span = self.span("aggregate", collection, &pipeline);
        let read = async {
            self.handle(collection)
                .aggregate(pipeline)
                .max_time(self.model.operation_timeout)
                .await?
                .try_collect::<Vec<Document>>()
                .await
        };
        let groups = self.within(span, read).await?;
        let values: HashMap<String, Json> = groups
            .iter()
            .filter_map(|group| {
                Some((
                    key_text(group.get("_id")?)?,
                    to_json(group.get("a0")?, false),
                ))
            })
            .collect();
        // What a key without documents aggregates to.
        let none = match aggregate {
            Aggregate::Count => Json::from(0),
            Aggregate::Function(..) => Json::Null,
        };
        Ok(keys
            .iter()
            .map(|key| Loaded::Value(values.get(*key).cloned().unwrap_or_else(|| none.clone())))
            .collect())
    }
}

/// A cursor batch size that fetches `documents` in the first reply (up to the server's 16 MB
/// per reply), so a request is one round trip rather than a `find` and `getMore`s.
pub(crate) fn batch(documents: u64) -> u32 {
    u32::try_from(documents.clamp(1, i32::MAX as u64)).unwrap_or(u32::MAX)
}

/// Documents matching both filters.
pub(crate) fn both(first: Document, second: Document) -> Document {
    match (first.is_empty(), second.is_empty()) {
        (true, _) => second,
        (_, true) => first,
        _ => doc! { "$and": [first, second] },
    }
}
