//! The GraphQL schema generated from the model: a type per collection (and per nested
//! document), the fields collections add to other subgraphs' entities, and per collection a
//! list, a page by cursor, a lookup by key, aggregates and the mutations its config allows.
//! Its fields are answered by the engine ([`crate::engine`]); async-graphql validates and
//! serves introspection.

use async_graphql::dynamic::{
    Field, InputObject, InputValue, Object, Scalar, Schema, SchemaBuilder, SchemaError, Type,
    TypeRef,
};
use polygraph_subgraph_core::aggregate::{self, aggregate_type};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::engine::engine_field;
use polygraph_subgraph_core::engine::{Hook, by_engine};
use polygraph_subgraph_core::filter::{self, ScalarKind};

use crate::model::{Aggregate, CollectionModel, FieldModel, Model, Shape};
use crate::writes::Kind;

/// The shared `PageInfo` type's name.
pub(crate) const PAGE_INFO: &str = "PageInfo";

/// The schema for `model`'s collections.
pub fn build(model: &Model) -> Result<Schema, SchemaError> {
    let has_mutations = model.collections.iter().any(|c| c.mutations.any());
    let has_changes = model.collections.iter().any(|c| c.changed_field.is_some());
    let mut builder = Schema::build(
        "Query",
        has_mutations.then_some("Mutation"),
        has_changes.then_some("Subscription"),
    )
    .enable_federation()
    .extension(Hook)
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
    builder = builder
        .register(directions)
        .register(CacheHint::apply(inherit.as_ref(), page_info()));

    builder = register_objects(builder, model, inherit.as_ref());
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let mut subscription = async_graphql::dynamic::Subscription::new("Subscription");
    for (index, collection) in model.collections.iter().enumerate() {
        let object = model.object_of(index);
        if let Some(name) = &collection.changed_field {
            subscription = subscription.field(changed_field(name, &object.type_name));
        }
        for output in aggregate::types(&object.type_name, "documents", &object.filter_fields())
            .into_iter()
            .chain(connection_types(&object.type_name))
        {
            builder = builder.register(derived(collection, output));
        }
        query = query
            .field(list_field(model, index))
            .field(connection_field(model, index))
            .field(by_key_field(model, index))
            .field(aggregate_field(model, index));
        if collection.mutations.any() {
            builder = mutation_types(model, index)
                .into_iter()
                .fold(builder, SchemaBuilder::register);
            mutation = mutation_fields(model, index)
                .into_iter()
                .fold(mutation, Object::field);
        }
    }
    for index in 0..model.foreign.len() {
        let hint = model.foreign[index].cache.as_ref();
        builder = builder.register(CacheHint::apply(hint, foreign_type(model, index)));
    }
    if has_mutations {
        builder = builder.register(mutation);
    }
    if has_changes {
        builder = builder.register(subscription);
    }
    builder
        .register(query)
        .entity_resolver(by_engine())
        .finish()
}

/// `<list>_changed`: each document after it is written.
fn changed_field(name: &str, type_name: &str) -> async_graphql::dynamic::SubscriptionField {
    let description = format!(
        "Each {type_name} after it is inserted, updated or replaced, as this caller may see it."
    );
    polygraph_subgraph_core::changes::field(name, type_name, description)
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

/// A field read from the document.
fn document_field(model: &Model, field: &FieldModel) -> Field {
    Field::new(&field.name, field_type(model, field), by_engine())
}

fn list_field(model: &Model, collection: usize) -> Field {
    let spec = &model.collections[collection];
    let type_name = &model.objects[spec.object].type_name;
    let field = Field::new(
        &spec.list_field,
        TypeRef::named_nn_list_nn(type_name),
        by_engine(),
    )
    .description(format!(
        "{type_name} documents, filtered, sorted and paged."
    ));
    filter::list_arguments(field, type_name)
}

fn by_key_field(model: &Model, collection: usize) -> Field {
    let spec = &model.collections[collection];
    let object = model.object_of(collection);
    let lookup = &object.fields[spec.lookup];
    let kind = lookup.scalar().expect("lookup fields are scalars").1;
    Field::new(
        &spec.by_key_field,
        TypeRef::named(&object.type_name),
        by_engine(),
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

fn aggregate_field(model: &Model, collection: usize) -> Field {
    let spec = &model.collections[collection];
    let type_name = &model.objects[spec.object].type_name;
    Field::new(
        &spec.aggregate_field,
        TypeRef::named_nn(aggregate_type(type_name)),
        by_engine(),
    )
    .argument(InputValue::new(
        "where",
        TypeRef::named(filter::bool_exp_type(type_name)),
    ))
    .description(format!("Aggregates over {type_name} documents."))
}

/// An entity owned elsewhere: its key, and the fields collections here add to it.
fn foreign_type(model: &Model, index: usize) -> Object {
    let foreign = &model.foreign[index];
    let mut object = Object::new(&foreign.type_name).field(Field::new(
        &foreign.key,
        TypeRef::named_nn(TypeRef::ID),
        by_engine(),
    ));
    object = if foreign.fields.is_empty() {
        object.unresolvable(&foreign.key)
    } else {
        object.key(&foreign.key)
    };
    for extension in &foreign.fields {
        let collection_object = model.collections[extension.collection].object;
        let documents_type = &model.objects[collection_object].type_name;
        let ty = match extension.aggregate {
            None => TypeRef::named_nn_list_nn(documents_type),
            Some(Aggregate::Count) => TypeRef::named_nn(TypeRef::INT),
            Some(Aggregate::Function(function, of)) => {
                let kind = model.objects[collection_object].fields[of]
                    .scalar()
                    .map_or(ScalarKind::Json, |(_, kind)| kind);
                TypeRef::named(function.output_type(kind))
            }
        };
        let mut field = Field::new(&extension.name, ty, by_engine());
        field = if extension.aggregate.is_none() {
            filter::list_arguments(field, documents_type)
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

/// The shared `PageInfo` type (shareable: other subgraphs define the same one).
fn page_info() -> Object {
    let field = |name: &str, ty: TypeRef| engine_field(name, ty);
    Object::new(PAGE_INFO)
        .shareable()
        .field(field("hasNextPage", TypeRef::named_nn(TypeRef::BOOLEAN)))
        .field(field(
            "hasPreviousPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
        ))
        .field(field("startCursor", TypeRef::named(TypeRef::STRING)))
        .field(field("endCursor", TypeRef::named(TypeRef::STRING)))
}

/// `ReviewConnection` and `ReviewEdge`.
fn connection_types(type_name: &str) -> Vec<Object> {
    vec![
        Object::new(format!("{type_name}Connection"))
            .field(Field::new(
                "edges",
                TypeRef::named_nn_list_nn(format!("{type_name}Edge")),
                by_engine(),
            ))
            .field(Field::new(
                "pageInfo",
                TypeRef::named_nn(PAGE_INFO),
                by_engine(),
            )),
        Object::new(format!("{type_name}Edge"))
            .field(Field::new(
                "cursor",
                TypeRef::named_nn(TypeRef::STRING),
                by_engine(),
            ))
            .field(Field::new(
                "node",
                TypeRef::named_nn(type_name),
                by_engine(),
            )),
    ]
}

/// `reviews_connection(where, order_by, first, after)`.
fn connection_field(model: &Model, collection: usize) -> Field {
    let spec = &model.collections[collection];
    let type_name = &model.objects[spec.object].type_name;
    Field::new(
        format!("{}_connection", spec.list_field),
        TypeRef::named_nn(format!("{type_name}Connection")),
        by_engine(),
    )
    .argument(InputValue::new(
        "where",
        TypeRef::named(filter::bool_exp_type(type_name)),
    ))
    .argument(InputValue::new(
        "order_by",
        TypeRef::named_nn_list(filter::order_by_type(type_name)),
    ))
    .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
    .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
    .description(format!(
        "{type_name} documents a page at a time, by cursor."
    ))
}

fn input_type_name(type_name: &str) -> String {
    format!("{type_name}Input")
}

/// Inputs for the collection's documents (and their nested documents), and the response type.
fn mutation_types(model: &Model, collection: usize) -> Vec<Type> {
    let spec = &model.collections[collection];
    let name = &model.objects[spec.object].type_name;
    let mut types = Vec::new();
    // Nested documents' inputs, reachable from this collection's type.
    let mut pending = vec![spec.object];
    while let Some(index) = pending.pop() {
        for field in &model.objects[index].fields {
            if let Shape::Object(nested) = field.shape {
                pending.push(nested);
                types.push(Type::from(input_object(
                    model,
                    nested,
                    &input_type_name(&model.objects[nested].type_name),
                    false,
                )));
            }
        }
    }
    types.push(Type::from(input_object(
        model,
        spec.object,
        &format!("{name}InsertInput"),
        false,
    )));
    types.push(Type::from(input_object(
        model,
        spec.object,
        &format!("{name}SetInput"),
        true,
    )));
    let response = format!("{name}MutationResponse");
    types.push(Type::from(
        Object::new(&response)
            .description(format!("The {name} documents a mutation affected."))
            .field(Field::new(
                "affected_rows",
                TypeRef::named_nn(TypeRef::INT),
                by_engine(),
            ))
            .field(Field::new(
                "returning",
                TypeRef::named_nn_list_nn(name),
                by_engine(),
            )),
    ));
    types
}

/// The collection's mutation fields: those its config allows, each guarded as its config says.
fn mutation_fields(model: &Model, collection: usize) -> Vec<Field> {
    let spec = &model.collections[collection];
    let object = &model.objects[spec.object];
    let name = &object.type_name;
    let lookup = &object.fields[spec.lookup];
    let lookup_type = lookup
        .scalar()
        .expect("lookups are scalars")
        .1
        .graphql_name();
    let filter = || InputValue::new("where", TypeRef::named_nn(filter::bool_exp_type(name)));
    let set = || InputValue::new("_set", TypeRef::named_nn(format!("{name}SetInput")));
    let key = || InputValue::new(&lookup.name, TypeRef::named_nn(lookup_type));
    let insert = format!("{name}InsertInput");
    Kind::ALL
        .into_iter()
        .filter(|kind| spec.mutations.allows(kind.write()))
        .map(|kind| {
            let ty = if kind.many() {
                TypeRef::named_nn(format!("{name}MutationResponse"))
            } else {
                TypeRef::named(name)
            };
            let field = Field::new(kind.field_name(&spec.list_field), ty, by_engine());
            let field = match kind {
                Kind::Insert => field.argument(InputValue::new(
                    "objects",
                    TypeRef::named_nn_list_nn(&insert),
                )),
                Kind::InsertOne => {
                    field.argument(InputValue::new("object", TypeRef::named_nn(&insert)))
                }
                Kind::Update => field.argument(filter()).argument(set()),
                Kind::UpdateByKey => field.argument(key()).argument(set()),
                Kind::Delete => field.argument(filter()),
                Kind::DeleteByKey => field.argument(key()),
            };
            spec.writes
                .of(kind.write())
                .directives()
                .into_iter()
                .fold(field, Field::directive)
        })
        .collect()
}

/// An input with a field per stored field (references excluded: their stored field is there).
/// Insert inputs require what the schema requires (but `_id`, generated when absent); set
/// inputs require nothing and cannot change `_id`.
fn input_object(model: &Model, object: usize, name: &str, set: bool) -> InputObject {
    let mut input = InputObject::new(name);
    for field in &model.objects[object].fields {
        let type_name = match &field.shape {
            Shape::Scalar { kind, .. } => kind.graphql_name().to_owned(),
            Shape::Object(nested) => input_type_name(&model.objects[*nested].type_name),
            Shape::Reference(_) => continue,
        };
        if set && field.path == "_id" {
            continue;
        }
        let required = !set && !field.nullable && field.path != "_id";
        let ty = match (field.list, required) {
            (true, true) => TypeRef::named_nn_list_nn(type_name),
            (true, false) => TypeRef::named_nn_list(type_name),
            (false, true) => TypeRef::named_nn(type_name),
            (false, false) => TypeRef::named(type_name),
        };
        input = input.field(InputValue::new(&field.name, ty));
    }
    input
}
