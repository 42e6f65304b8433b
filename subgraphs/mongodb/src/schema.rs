//! The GraphQL schema generated from the model, with its resolvers.
//!
//! Root fields run one `find` or `aggregate` each; nested fields read the fetched BSON
//! documents in place. `_entities` runs one `find` per collection type however many keys, and
//! fields added to other subgraphs' entities (`Product.reviews`) load through a batching loader:
//! every entity of one request step that asks for the same field with the same arguments shares
//! one database round trip.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, Scalar, Schema,
    SchemaBuilder, SchemaError, TypeRef,
};
use async_graphql::{ErrorExtensions as _, Value};
use futures::TryStreamExt as _;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use polygraph_subgraph_core::aggregate::{self, Function, aggregate_type, function_type};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::claims::{Claims, RequestClaims};
use polygraph_subgraph_core::filter::{self, ScalarKind};
use polygraph_subgraph_core::rules;
use polygraph_subgraph_core::selection::{SelectionError, Walker};
use polygraph_subgraph_core::values::{self, Missing};

use crate::convert::{self, key_text, to_bson};
use crate::loader::{ExtensionKey, ExtensionLoader, Loaded, Restriction};
use crate::model::{Aggregate, CollectionModel, FieldModel, Model, Shape};
use crate::translate::{self, Accumulate, TranslateError};

/// What the resolvers share.
pub(crate) struct State {
    pub(crate) model: Arc<Model>,
    pub(crate) database: Database,
    pub(crate) loader: DataLoader<ExtensionLoader>,
}

/// A reference to an entity another subgraph owns, by its key (the field's type says which).
#[derive(Clone, Debug)]
pub(crate) struct EntityRef {
    pub(crate) key: String,
}

pub fn build(model: &Arc<Model>, database: Database) -> Result<Schema, SchemaError> {
    let loader = DataLoader::new(
        ExtensionLoader {
            model: model.clone(),
            database: database.clone(),
        },
        tokio::spawn,
    )
    .max_batch_size(filter::MAX_IN_LIST);
    let state = Arc::new(State {
        model: model.clone(),
        database,
        loader,
    });
    let has_mutations = model.collections.iter().any(|c| c.mutations.any());
    let mut builder = Schema::build("Query", has_mutations.then_some("Mutation"), None)
        .enable_federation()
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity);

    let kinds: Vec<(ScalarKind, bool)> = model
        .objects
        .iter()
        .flat_map(|o| {
            o.fields
                .iter()
                .filter_map(|f| f.scalar().map(|(_, kind)| (kind, f.list)))
        })
        .collect();
    let mut declared = Vec::new();
    for (kind, _) in &kinds {
        if !kind.is_builtin() && !declared.contains(kind) {
            declared.push(*kind);
            builder = builder
                .register(Scalar::new(kind.graphql_name()).description(scalar_description(*kind)));
        }
    }
    let (comparisons, directions) = filter::shared_types(
        kinds
            .iter()
            .filter(|(_, list)| !list)
            .map(|(kind, _)| *kind),
    );
    for input in comparisons.into_iter().chain(filter::list_comparisons(
        kinds
            .iter()
            .filter(|(_, list)| *list)
            .map(|(kind, _)| *kind),
    )) {
        builder = builder.register(input);
    }
    let hinted = model.collections.iter().any(|c| c.cache.is_some())
        || model.foreign.iter().any(|f| f.cache.is_some());
    if hinted {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    let inherit = hinted.then(CacheHint::inherit);
    builder = builder.register(directions).register(CacheHint::apply(
        inherit.as_ref(),
        crate::connection::page_info(),
    ));

    builder = register_objects(builder, model, inherit.as_ref());
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    for (index, collection) in model.collections.iter().enumerate() {
        let object = model.object_of(index);
        for output in aggregate::types(&object.type_name, "documents", &object.filter_fields())
            .into_iter()
            .chain(crate::connection::types(&object.type_name))
        {
            builder = builder.register(derived(collection, output));
        }
        query = query
            .field(list_field(&state, index, &collection.list_field))
            .field(crate::connection::field(&state, index))
            .field(by_key_field(&state, index))
            .field(aggregate_field(&state, index));
        if collection.mutations.any() {
            let (types, fields) = crate::mutations::for_collection(&state, index);
            builder = types
                .into_iter()
                .fold(builder, async_graphql::dynamic::SchemaBuilder::register);
            mutation = fields.into_iter().fold(mutation, Object::field);
        }
    }
    for index in 0..model.foreign.len() {
        let hint = model.foreign[index].cache.as_ref();
        builder = builder.register(CacheHint::apply(hint, foreign_type(&state, index)));
    }
    let entities = state.clone();
    if has_mutations {
        builder = builder.register(mutation);
    }
    builder
        .register(query)
        .entity_resolver(move |ctx| {
            let state = entities.clone();
            FieldFuture::new(async move { resolve_entities(&state, &ctx).await })
        })
        .finish()
}

/// A type derived from a collection's documents (aggregates, connections): the collection's
/// cache hint and guard hold for it too.
fn derived(collection: &CollectionModel, output: Object) -> Object {
    let output = CacheHint::apply(collection.cache.as_ref(), output);
    collection
        .guard
        .directives()
        .into_iter()
        .fold(output, Object::directive)
}

fn scalar_description(kind: ScalarKind) -> &'static str {
    match kind {
        ScalarKind::BigInt => "A 64-bit integer, as a JSON number.",
        ScalarKind::Decimal => "An exact decimal number (BSON decimal128), as a JSON number.",
        ScalarKind::DateTime => "A date and time, as an RFC 3339 string.",
        ScalarKind::Json => "Any JSON value.",
        _ => "",
    }
}

/// The GraphQL type of a field, from its shape, list-ness and nullability.
fn field_type(model: &Model, field: &FieldModel) -> TypeRef {
    let name = match &field.shape {
        Shape::Scalar { kind, .. } => kind.graphql_name().to_owned(),
        Shape::Object(index) => model.objects[*index].type_name.clone(),
        Shape::Reference(index) => model.foreign[*index].type_name.clone(),
    };
    match (field.list, field.nullable) {
        (true, true) => TypeRef::named_nn_list(name),
        (true, false) => TypeRef::named_nn_list_nn(name),
        (false, true) => TypeRef::named(name),
        (false, false) => TypeRef::named_nn(name),
    }
}

/// Each document type and its filter inputs: a collection's documents take its cache hint,
/// nested documents their parent's (`inherit`, when hints are in use).
fn register_objects(
    mut builder: SchemaBuilder,
    model: &Model,
    inherit: Option<&CacheHint>,
) -> SchemaBuilder {
    for (index, object) in model.objects.iter().enumerate() {
        for input in filter::input_types(
            &object.type_name,
            &object.filter_fields(),
            &object.filter_relationships(&model.objects),
        ) {
            builder = builder.register(input);
        }
        // A collection's documents take its hint; nested documents their parent's.
        let hint = match model.collections.iter().find(|c| c.object == index) {
            Some(collection) => collection.cache,
            None => inherit.copied(),
        };
        builder = builder.register(CacheHint::apply(hint.as_ref(), object_type(model, index)));
    }
    builder
}

fn object_type(model: &Model, index: usize) -> Object {
    let object = &model.objects[index];
    let mut output = Object::new(&object.type_name);
    if let Some(description) = &object.description {
        output = output.description(description);
    }
    if let Some(collection) = model.collections.iter().find(|c| c.object == index) {
        if let Some(key) = collection.key {
            output = output.key(&object.fields[key].name);
        }
        if collection.shareable {
            output = output.shareable();
        }
        for directive in collection.guard.directives() {
            output = output.directive(directive);
        }
    }
    for field in &object.fields {
        let mut graphql = document_field(model, field);
        if let Some(description) = &field.description {
            graphql = graphql.description(description);
        }
        output = output.field(graphql);
    }
    output
}

/// A field read from the parent document.
fn document_field(model: &Model, field: &FieldModel) -> Field {
    let path = field.path.clone();
    let list = field.list;
    let ty = field_type(model, field);
    match field.shape {
        Shape::Scalar { kind, .. } => {
            let id = kind == ScalarKind::Id;
            Field::new(&field.name, ty, move |ctx| {
                let value = parent(&ctx).map(|document| match document.get(&path) {
                    None | Some(Bson::Null) => None,
                    Some(Bson::Array(items)) if list => Some(FieldValue::value(Value::List(
                        items
                            .iter()
                            .filter(|item| !matches!(item, Bson::Null))
                            .map(|item| convert::to_value(item, id))
                            .collect(),
                    ))),
                    Some(value) => Some(FieldValue::value(convert::to_value(value, id))),
                });
                ready(value)
            })
        }
        Shape::Object(_) => Field::new(&field.name, ty, move |ctx| {
            let value = parent(&ctx).map(|document| match document.get(&path) {
                Some(Bson::Array(items)) if list => Some(FieldValue::list(
                    items
                        .iter()
                        .filter_map(Bson::as_document)
                        .map(|d| FieldValue::borrowed_any(d)),
                )),
                Some(Bson::Document(nested)) if !list => Some(FieldValue::borrowed_any(nested)),
                _ => None,
            });
            ready(value)
        }),
        Shape::Reference(_) => Field::new(&field.name, ty, move |ctx| {
            let entity =
                |value: &Bson| key_text(value).map(|key| FieldValue::owned_any(EntityRef { key }));
            let value = parent(&ctx).map(|document| match document.get(&path) {
                Some(Bson::Array(items)) if list => {
                    Some(FieldValue::list(items.iter().filter_map(entity)))
                }
                Some(value) => entity(value),
                None => None,
            });
            ready(value)
        }),
    }
}

/// A cursor batch size that fetches `documents` in the first reply (up to the server's 16 MB
/// per reply), so a request is one round trip rather than a `find` and `getMore`s.
pub(crate) fn batch(documents: u64) -> u32 {
    u32::try_from(documents.clamp(1, i32::MAX as u64)).unwrap_or(u32::MAX)
}

fn ready<'a>(value: async_graphql::Result<Option<FieldValue<'a>>>) -> FieldFuture<'a> {
    match value {
        Ok(value) => FieldFuture::Value(value),
        Err(error) => FieldFuture::new(async move { Err::<Option<FieldValue<'a>>, _>(error) }),
    }
}

/// The document being resolved: one fetched whole, or nested inside one.
fn parent<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Document> {
    if let Some(document) = ctx.parent_value.downcast_ref::<Document>() {
        return Ok(document);
    }
    if let Some(missing) = ctx.parent_value.downcast_ref::<Missing>() {
        return Err(async_graphql::Error::new(missing.0.clone())
            .extend_with(|_, extensions| extensions.set("code", "NOT_FOUND")));
    }
    Err(async_graphql::Error::new(
        "internal: the parent value is not a document",
    ))
}

fn entity_ref<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a EntityRef> {
    if let Some(missing) = ctx.parent_value.downcast_ref::<Missing>() {
        return Err(async_graphql::Error::new(missing.0.clone()));
    }
    ctx.parent_value
        .downcast_ref::<EntityRef>()
        .ok_or_else(|| async_graphql::Error::new("internal: the parent value is not an entity"))
}

/// `where`, `order_by`, `limit`, `offset`.
fn list_arguments(field: Field, type_name: &str) -> Field {
    field
        .argument(InputValue::new(
            "where",
            TypeRef::named(filter::bool_exp_type(type_name)),
        ))
        .argument(InputValue::new(
            "order_by",
            TypeRef::named_nn_list(filter::order_by_type(type_name)),
        ))
        .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)))
}

pub(crate) fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into())
        .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
}

fn translate_error(error: TranslateError) -> async_graphql::Error {
    bad_input(error.0)
}

/// A database failure as the client sees it: the server's message for rejected writes (a
/// validator, a duplicate key), a generic one otherwise.
pub(crate) fn database_error(error: &mongodb::error::Error) -> async_graphql::Error {
    use mongodb::error::{ErrorKind, WriteFailure};
    tracing::warn!(%error, "MongoDB operation failed");
    let rejected = match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(write)) => Some(write.message.clone()),
        ErrorKind::InsertMany(insert) => insert
            .write_errors
            .as_ref()
            .and_then(|errors| errors.first())
            .map(|write| write.message.clone()),
        ErrorKind::Command(command) if command.code == 121 || command.code == 11000 => {
            Some(command.message.clone())
        }
        // MaxTimeMSExpired: the server stopped the read at its time limit.
        ErrorKind::Command(command) if command.code == 50 => {
            return async_graphql::Error::new("the database did not answer in time")
                .extend_with(|_, extensions| extensions.set("code", "TIMEOUT"));
        }
        _ => None,
    };
    match rejected {
        Some(message) => bad_input(message),
        None => async_graphql::Error::new("the database could not answer this request")
            .extend_with(|_, extensions| extensions.set("code", "DATABASE_ERROR")),
    }
}

/// Runs a read within the model's operation timeout: the read itself asks the server to stop
/// there (`max_time`), and the subgraph stops waiting there whatever the server does, so one
/// slow read cannot hold a request (or the connection it waits on) for longer.
pub(crate) async fn within<T>(
    model: &Model,
    read: impl std::future::Future<Output = mongodb::error::Result<T>>,
) -> async_graphql::Result<T> {
    match tokio::time::timeout(model.operation_timeout, read).await {
        Ok(answer) => answer.map_err(|error| database_error(&error)),
        Err(_) => Err(timed_out(model)),
    }
}

fn timed_out(model: &Model) -> async_graphql::Error {
    tracing::warn!(timeout = ?model.operation_timeout, "a MongoDB read ran out of time");
    async_graphql::Error::new(format!(
        "the database did not answer within {} ms",
        model.operation_timeout.as_millis()
    ))
    .extend_with(|_, extensions| extensions.set("code", "TIMEOUT"))
}

/// The documents of `collection` a request with `claims` may see, as a query document (empty:
/// all of them): the collection's row rule with the claims' values. A ruled collection is
/// refused to a request without verified claims.
pub(crate) fn restriction(
    model: &Model,
    collection: usize,
    claims: Option<&Claims>,
) -> async_graphql::Result<Document> {
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

/// Documents matching both filters.
pub(crate) fn both(first: Document, second: Document) -> Document {
    match (first.is_empty(), second.is_empty()) {
        (true, _) => second,
        (_, true) => first,
        _ => doc! { "$and": [first, second] },
    }
}

/// The `where` argument of a list over `objects[object]`, as a query document.
pub(crate) fn where_filter(
    model: &Model,
    object: usize,
    value: Option<&Value>,
) -> async_graphql::Result<Document> {
    let exp = match value {
        None => return Ok(Document::new()),
        Some(value) => filter::parse_bool_exp(
            value,
            &model.objects[object].type_name,
            &|type_name, field| model.nested_type(type_name, field),
        )
        .map_err(|error| bad_input(error.to_string()))?,
    };
    translate::filter(model, object, &exp).map_err(translate_error)
}

/// The sort and window of a list: `order_by`, `limit` (capped at the model's maximum) and
/// `offset`.
pub(crate) fn window(
    model: &Model,
    object: usize,
    arguments: &indexmap::IndexMap<async_graphql::Name, Value>,
) -> async_graphql::Result<(Document, u64, u64)> {
    let order_by = filter::parse_order_by(arguments.get("order_by").unwrap_or(&Value::Null))
        .map_err(|error| bad_input(error.to_string()))?;
    let sort = translate::sort(&model.objects[object], &order_by).map_err(translate_error)?;
    let limit = filter::parse_count("limit", arguments.get("limit"), model.max_limit)
        .map_err(|error| bad_input(error.to_string()))?
        .unwrap_or(model.max_limit);
    let offset = filter::parse_count("offset", arguments.get("offset"), u64::MAX)
        .map_err(|error| bad_input(error.to_string()))?
        .unwrap_or(0);
    Ok((sort, limit, offset))
}

fn list_field(state: &Arc<State>, collection: usize, name: &str) -> Field {
    let model = &state.model;
    let object = model.collections[collection].object;
    let type_name = model.objects[object].type_name.clone();
    let state = state.clone();
    let field = Field::new(name, TypeRef::named_nn_list_nn(&type_name), move |ctx| {
        let state = state.clone();
        FieldFuture::new(async move {
            let arguments = ctx.args.as_index_map();
            let filter = both(
                where_filter(&state.model, object, arguments.get("where"))?,
                restriction(&state.model, collection, RequestClaims::of(&ctx))?,
            );
            let (sort, limit, offset) = window(&state.model, object, arguments)?;
            let model = &state.model;
            let read = async {
                state
                    .database
                    .collection::<Document>(&model.collections[collection].collection)
                    .find(filter)
                    .sort(sort)
                    .skip(offset)
                    .limit(limit as i64)
                    .batch_size(batch(limit))
                    .max_time(model.operation_timeout)
                    .await?
                    .try_collect::<Vec<Document>>()
                    .await
            };
            let documents = within(model, read).await?;
            Ok(Some(FieldValue::list(
                documents.into_iter().map(FieldValue::owned_any),
            )))
        })
    })
    .description(format!(
        "{type_name} documents, filtered, sorted and paged."
    ));
    list_arguments(field, &type_name)
}

fn by_key_field(state: &Arc<State>, collection: usize) -> Field {
    let model = &state.model;
    let spec = &model.collections[collection];
    let object = model.object_of(collection);
    let lookup = object.fields[spec.lookup].clone();
    let (storage, kind) = lookup.scalar().expect("lookup fields are scalars");
    let state = state.clone();
    let (path, name) = (lookup.path.clone(), lookup.name.clone());
    Field::new(
        &spec.by_key_field,
        TypeRef::named(&object.type_name),
        move |ctx| {
            let state = state.clone();
            let (path, name) = (path.clone(), name.clone());
            FieldFuture::new(async move {
                let key = to_bson(ctx.args.try_get(&name)?.as_value(), storage)
                    .map_err(|error| bad_input(error.0))?;
                let model = &state.model;
                let filter = both(
                    doc! { path: { "$eq": key } },
                    restriction(model, collection, RequestClaims::of(&ctx))?,
                );
                let handle = state
                    .database
                    .collection::<Document>(&model.collections[collection].collection);
                let read = handle
                    .find_one(filter)
                    .max_time(model.operation_timeout)
                    .into_future();
                let found = within(model, read).await?;
                Ok(found.map(FieldValue::owned_any))
            })
        },
    )
    .argument(InputValue::new(
        &lookup.name,
        TypeRef::named_nn(kind.graphql_name()),
    ))
    .description(format!(
        "The {} with this {}, if any.",
        object.type_name, lookup.name
    ))
}

fn aggregate_field(state: &Arc<State>, collection: usize) -> Field {
    let model = &state.model;
    let spec = &model.collections[collection];
    let object_index = spec.object;
    let type_name = model.objects[object_index].type_name.clone();
    let state = state.clone();
    let aggregate_name = aggregate_type(&type_name);
    let where_type = filter::bool_exp_type(&type_name);
    let description = format!("Aggregates over {type_name} documents.");
    Field::new(
        &spec.aggregate_field,
        TypeRef::named_nn(&aggregate_name),
        move |ctx| {
            let state = state.clone();
            let aggregate_name = aggregate_name.clone();
            let type_name = type_name.clone();
            FieldFuture::new(async move {
                let model = &state.model;
                let filter = both(
                    where_filter(model, object_index, ctx.args.as_index_map().get("where"))?,
                    restriction(model, collection, RequestClaims::of(&ctx))?,
                );
                let walker = Walker::new(ctx.ctx);
                let selected = walker
                    .collect(&[&ctx.ctx.item.node.selection_set.node], &aggregate_name)
                    .map_err(SelectionError::bad_input)?;
                // Each selected output: its response key, and the accumulators it reads.
                let mut accumulate = Vec::new();
                let mut shape = Vec::new();
                for field in &selected {
                    if field.name == "count" {
                        shape.push((
                            field.response_key,
                            None,
                            vec![(String::new(), accumulate.len())],
                        ));
                        accumulate.push(Accumulate::Count);
                        continue;
                    }
                    let Some(function) = Function::from_name(field.name) else {
                        continue; // __typename
                    };
                    let inner = walker
                        .collect(&field.selection_sets, &function_type(&type_name, function))
                        .map_err(SelectionError::bad_input)?;
                    let mut outputs = Vec::new();
                    for column in inner.iter().filter(|column| column.name != "__typename") {
                        let path = model.objects[object_index]
                            .field(column.name)
                            .map(|f| f.path.clone())
                            .ok_or_else(|| {
                                bad_input(format!("{type_name} has no field {}", column.name))
                            })?;
                        outputs.push((column.response_key.to_owned(), accumulate.len()));
                        accumulate.push(Accumulate::Function { function, path });
                    }
                    shape.push((field.response_key, Some(function), outputs));
                }
                let pipeline = translate::aggregate_pipeline(filter, None, &accumulate);
                let read = async {
                    state
                        .database
                        .collection::<Document>(&model.collections[collection].collection)
                        .aggregate(pipeline)
                        .max_time(model.operation_timeout)
                        .await?
                        .try_next()
                        .await
                };
                let group = within(model, read).await?;
                let value = |index: usize| -> serde_json::Value {
                    match group.as_ref().and_then(|g| g.get(format!("a{index}"))) {
                        Some(bson) => convert::to_value(bson, false)
                            .into_json()
                            .unwrap_or_default(),
                        None if matches!(accumulate[index], Accumulate::Count) => 0.into(),
                        None => serde_json::Value::Null,
                    }
                };
                let mut document = serde_json::Map::new();
                for (key, function, outputs) in shape {
                    if function.is_none() {
                        document.insert(key.to_owned(), value(outputs[0].1));
                    } else {
                        let inner = outputs
                            .into_iter()
                            .map(|(key, index)| (key, value(index)))
                            .collect();
                        document.insert(key.to_owned(), serde_json::Value::Object(inner));
                    }
                }
                Ok(Some(FieldValue::owned_any(values::Document(document))))
            })
        },
    )
    .argument(InputValue::new("where", TypeRef::named(where_type)))
    .description(description)
}

/// An entity owned elsewhere: its key, and the fields collections here add to it.
fn foreign_type(state: &Arc<State>, index: usize) -> Object {
    let model = &state.model;
    let foreign = &model.foreign[index];
    let mut object = Object::new(&foreign.type_name).field(Field::new(
        &foreign.key,
        TypeRef::named_nn(TypeRef::ID),
        |ctx| {
            ready(
                entity_ref(&ctx)
                    .map(|entity| Some(FieldValue::value(Value::String(entity.key.clone())))),
            )
        },
    ));
    object = if foreign.fields.is_empty() {
        object.unresolvable(&foreign.key)
    } else {
        object.key(&foreign.key)
    };
    for (position, extension) in foreign.fields.iter().enumerate() {
        let collection_object = model.collections[extension.collection].object;
        let documents_type = model.objects[collection_object].type_name.clone();
        let ty = match extension.aggregate {
            None => TypeRef::named_nn_list_nn(&documents_type),
            Some(Aggregate::Count) => TypeRef::named_nn(TypeRef::INT),
            Some(Aggregate::Function(function, of)) => {
                let kind = model.objects[collection_object].fields[of]
                    .scalar()
                    .map_or(ScalarKind::Json, |(_, kind)| kind);
                TypeRef::named(function.output_type(kind))
            }
        };
        let state = state.clone();
        let listing = extension.aggregate.is_none();
        let mut field = Field::new(&extension.name, ty, move |ctx| {
            let state = state.clone();
            FieldFuture::new(async move {
                let entity = entity_ref(&ctx)?;
                let arguments = if listing {
                    serde_json::to_string(ctx.args.as_index_map())?
                } else {
                    String::new()
                };
                let collection = state.model.foreign[index].fields[position].collection;
                let within = restriction(&state.model, collection, RequestClaims::of(&ctx))?;
                let loaded = state
                    .loader
                    .load_one(ExtensionKey {
                        foreign: index,
                        field: position,
                        arguments: arguments.into(),
                        restriction: Restriction::new(within),
                        key: entity.key.clone(),
                    })
                    .await?;
                Ok(match loaded {
                    Some(Loaded::Documents(documents)) => Some(FieldValue::list(
                        documents.iter().cloned().map(FieldValue::owned_any),
                    )),
                    Some(Loaded::Value(value)) => Some(FieldValue::value(value)),
                    None => None,
                })
            })
        });
        field = if listing {
            list_arguments(field, &documents_type)
        } else {
            // An aggregate over guarded documents is as guarded as they are.
            model.collections[extension.collection]
                .guard
                .directives()
                .into_iter()
                .fold(field, Field::directive)
        };
        object = object.field(field);
    }
    object
}

/// `_entities`: representations grouped by type, one `find` per collection type, results in
/// representation order; keys with no document resolve to null with an error at their index.
async fn resolve_entities<'a>(
    state: &State,
    ctx: &ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let Value::List(representations) = ctx.args.try_get("representations")?.as_value() else {
        return Err(bad_input("representations must be a list"));
    };
    let model = &state.model;
    let mut results: Vec<Option<FieldValue<'a>>> = Vec::with_capacity(representations.len());
    // Per collection: the representations' positions and keys.
    let mut wanted: Vec<Vec<(usize, Bson)>> = vec![Vec::new(); model.collections.len()];
    for (position, representation) in representations.iter().enumerate() {
        let Value::Object(representation) = representation else {
            return Err(bad_input("each representation must be an object"));
        };
        let Some(Value::String(typename)) = representation.get("__typename") else {
            return Err(bad_input("a representation has no __typename"));
        };
        if let Some(foreign) = model.foreign.iter().position(|f| f.type_name == *typename) {
            let key = match representation.get(model.foreign[foreign].key.as_str()) {
                Some(Value::String(key)) => Some(key.clone()),
                Some(Value::Number(number)) => Some(number.to_string()),
                _ => None,
            };
            let value = match key {
                Some(key) => FieldValue::owned_any(EntityRef { key }),
                None => FieldValue::owned_any(Missing(format!(
                    "a {typename} representation has no {}",
                    model.foreign[foreign].key
                ))),
            };
            results.push(Some(value.with_type(typename.clone())));
            continue;
        }
        let collection = model
            .collections
            .iter()
            .position(|c| c.key.is_some() && model.objects[c.object].type_name == *typename);
        let Some(collection) = collection else {
            return Err(bad_input(format!(
                "{typename} is not an entity of this subgraph"
            )));
        };
        let key_field = &model.object_of(collection).fields[model.collections[collection]
            .key
            .expect("entities have keys")];
        let storage = key_field.scalar().expect("keys are scalars").0;
        let key = representation
            .get(key_field.name.as_str())
            .map(|value| to_bson(value, storage))
            .transpose()
            .map_err(|error| bad_input(error.0))?;
        match key {
            Some(key) if !matches!(key, Bson::Null) => wanted[collection].push((position, key)),
            _ => {
                return Err(bad_input(format!(
                    "a {typename} representation has no {}",
                    key_field.name
                )));
            }
        }
        results.push(None);
    }
    let restrictions = (0..model.collections.len())
        .map(|collection| {
            if wanted[collection].is_empty() {
                Ok(Document::new())
            } else {
                restriction(model, collection, RequestClaims::of(ctx))
            }
        })
        .collect::<async_graphql::Result<Vec<_>>>()?;
    find_entities(state, &wanted, &restrictions, &mut results).await?;
    Ok(Some(FieldValue::list(
        results
            .into_iter()
            .map(|result| result.unwrap_or(FieldValue::NULL)),
    )))
}

/// One `find` per collection for the keys `wanted` (per collection: positions and keys), within
/// each collection's `restrictions`; fills `results` at those positions (a key the restriction
/// hides is as absent as one with no document).
async fn find_entities(
    state: &State,
    wanted: &[Vec<(usize, Bson)>],
    restrictions: &[Document],
    results: &mut [Option<FieldValue<'_>>],
) -> async_graphql::Result<()> {
    let model = &state.model;
    let lookups = wanted
        .iter()
        .enumerate()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(collection, keys)| async move {
            let key_field = &model.object_of(collection).fields[model.collections[collection]
                .key
                .expect("entities have keys")];
            let keys_bson: Vec<Bson> = keys.iter().map(|(_, key)| key.clone()).collect();
            let read = async {
                state
                    .database
                    .collection::<Document>(&model.collections[collection].collection)
                    .find(both(
                        doc! { key_field.path.clone(): { "$in": keys_bson } },
                        restrictions[collection].clone(),
                    ))
                    .batch_size(batch(keys.len() as u64))
                    .max_time(model.operation_timeout)
                    .await?
                    .try_collect::<Vec<Document>>()
                    .await
            };
            within(model, read)
                .await
                .map(|documents| (collection, documents))
        });
    let found = futures::future::try_join_all(lookups).await?;
    for (collection, documents) in found {
        let spec = &model.collections[collection];
        let object = model.object_of(collection);
        let key_field = &object.fields[spec.key.expect("entities have keys")];
        let mut by_key: std::collections::HashMap<String, Document> = documents
            .into_iter()
            .filter_map(|document| Some((key_text(document.get(&key_field.path)?)?, document)))
            .collect();
        for (position, key) in &wanted[collection] {
            let text = key_text(key).unwrap_or_default();
            let value = match by_key.get(&text) {
                // Several representations may name the same key.
                Some(document) => FieldValue::owned_any(document.clone()),
                // async-graphql cannot null a union element: its fields fail instead, which
                // nulls the (nullable) element with this error.
                None => FieldValue::owned_any(Missing(format!(
                    "no {} with {} {text}",
                    object.type_name, key_field.name
                ))),
            };
            results[*position] = Some(value.with_type(object.type_name.clone()));
        }
        by_key.clear();
    }
    Ok(())
}
