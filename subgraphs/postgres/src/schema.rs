//! The GraphQL schema generated from the model: types, root fields, `_entities`. async-graphql
//! validates requests against it and answers introspection; the fields are the engine's to
//! answer (`engine.rs`).

use async_graphql::dynamic::{
    Field, InputValue, Object, Scalar, Schema, SchemaBuilder, SchemaError, Subscription,
    SubscriptionField, TypeRef,
};
use polygraph_subgraph_core::aggregate::aggregate_type;
use polygraph_subgraph_core::engine::{Hook, by_engine};
use polygraph_subgraph_core::filter::{self, FilterField, FilterRelationship, ScalarKind};

use crate::connection::{PAGE_INFO, connection_type, edge_type};
use crate::model::{Cardinality, ForeignEntity, Model, TableModel};
use crate::types::scalar_type;

/// The subgraph's schema for `model`.
pub fn build(model: &Model) -> Result<Schema, SchemaError> {
    build_with(model)
}

fn build_with(model: &Model) -> Result<Schema, SchemaError> {
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let has_mutations = model.tables.iter().any(|table| table.mutations.any());
    let mut subscription = Subscription::new("Subscription");
    let has_changes = model
        .tables
        .iter()
        .any(|table| table.changed_field.is_some());
    let mut builder = Schema::build(
        "Query",
        has_mutations.then_some("Mutation"),
        has_changes.then_some("Subscription"),
    )
    .enable_federation()
    .limit_depth(model.max_depth)
    .limit_complexity(model.max_complexity);

    let hinted = model.tables.iter().any(|table| {
        table.directives.cache.is_some()
            || table
                .columns
                .iter()
                .any(|column| column.directives.cache.is_some())
    }) || model.foreign.iter().any(|entity| {
        entity.cache.is_some() || entity.fields.iter().any(|field| field.cache.is_some())
    });
    if hinted {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    let kinds: Vec<ScalarKind> = model
        .tables
        .iter()
        .flat_map(|t| t.columns.iter().map(|c| c.kind))
        .collect();
    let mut declared = Vec::new();
    for kind in &kinds {
        if !kind.is_builtin() && !declared.contains(kind) {
            declared.push(*kind);
            builder = builder
                .register(Scalar::new(kind.graphql_name()).description(scalar_description(*kind)));
        }
    }
    let (comparisons, directions) = filter::shared_types(kinds.iter().copied());
    for comparison in comparisons {
        builder = builder.register(comparison);
    }
    builder = builder.register(directions);
    if model
        .tables
        .iter()
        .any(|table| !table.primary_key.is_empty())
    {
        builder = builder.register(page_info(hinted));
    }

    for (index, table) in model.tables.iter().enumerate() {
        for input in filter::input_types(
            &table.type_name,
            &filter_fields(table),
            &filter_relationships(model, table),
        ) {
            builder = builder.register(input);
        }
        builder = builder.register(object_type(model, table));
        for object in aggregate_types(table) {
            builder = builder.register(cached(object, table));
        }
        query = query.field(root_list(table));
        query = query.field(root_aggregate(table));
        if !table.primary_key.is_empty() {
            query = query.field(root_by_pk(table));
            query = query.field(root_connection(table));
            for object in connection_types(table) {
                builder = builder.register(cached(object, table));
            }
        }
        if let Some(name) = &table.changed_field {
            subscription = subscription.field(changed(table, name));
        }
        if table.mutations.any() {
            let (types, fields) = crate::mutations::for_table(model, index);
            builder = types
                .into_iter()
                .fold(builder, async_graphql::dynamic::SchemaBuilder::register);
            mutation = fields.into_iter().fold(mutation, Object::field);
        }
    }
    builder = register_other_entities(builder, model);
    if has_mutations {
        builder = builder.register(mutation);
    }
    if has_changes {
        builder = builder.register(subscription);
    }
    builder
        .extension(Hook)
        .register(query)
        .entity_resolver(by_engine())
        .finish()
}

/// `<list>_changed`: the row after each insert or update.
fn changed(table: &TableModel, name: &str) -> SubscriptionField {
    polygraph_subgraph_core::changes::field(
        name,
        &table.type_name,
        format!(
            "Each {} after it is inserted or updated, as this caller may see it.",
            table.type_name
        ),
    )
}

fn scalar_description(kind: ScalarKind) -> &'static str {
    match kind {
        ScalarKind::BigInt => "A 64-bit integer, as a JSON number.",
        ScalarKind::Decimal => "An exact decimal number (PostgreSQL numeric), as a JSON number.",
        ScalarKind::DateTime => "A date and time, as an RFC 3339 string.",
        ScalarKind::Date => "A calendar date, as YYYY-MM-DD.",
        ScalarKind::Json => "Any JSON value.",
        _ => "",
    }
}

/// The columns `where`, `order_by` and aggregates can name: all but guarded ones, whose values
/// a filter, a sort order or a `max` would otherwise reveal past their guard.
fn filter_fields(table: &TableModel) -> Vec<FilterField> {
    table
        .columns
        .iter()
        .filter(|column| column.directives.guard.is_empty())
        .map(|column| FilterField {
            name: column.field.clone(),
            kind: column.kind,
            list: false,
        })
        .collect()
}

fn filter_relationships(model: &Model, table: &TableModel) -> Vec<FilterRelationship> {
    table
        .relationships
        .iter()
        .map(|relationship| FilterRelationship {
            name: relationship.name.clone(),
            target_type: model.tables[relationship.target].type_name.clone(),
        })
        .collect()
}

/// Applies configured federation directives to a type or field builder.
macro_rules! with_directives {
    ($target:expr, $directives:expr) => {{
        let directives: &crate::config::Directives = $directives;
        let mut target = $target;
        if directives.shareable {
            target = target.shareable();
        }
        if directives.inaccessible {
            target = target.inaccessible();
        }
        if !directives.tags.is_empty() {
            target = target.tags(directives.tags.iter().cloned());
        }
        if let Some(hint) = &directives.cache {
            target = target.directive(hint.directive());
        }
        for directive in directives.guard.directives() {
            target = target.directive(directive);
        }
        target
    }};
}

/// The table's `@cacheControl` and guard on a type derived from it (aggregates, connections,
/// edges): what its rows allow, their aggregates allow too.
fn cached(object: Object, table: &TableModel) -> Object {
    let object = match &table.directives.cache {
        Some(hint) => object.directive(hint.directive()),
        None => object,
    };
    table
        .directives
        .guard
        .directives()
        .into_iter()
        .fold(object, Object::directive)
}

fn object_type(model: &Model, table: &TableModel) -> Object {
    let mut object = with_directives!(Object::new(&table.type_name), &table.directives);
    if let Some(description) = &table.description {
        object = object.description(description);
    }
    if let Some(key) = &table.entity_key {
        let fields: Vec<&str> = key
            .iter()
            .map(|column| table.columns[*column].field.as_str())
            .collect();
        object = object.key(fields.join(" "));
    }
    for column in &table.columns {
        let mut field = Field::new(
            &column.field,
            scalar_type(column.kind, column.nullable),
            by_engine(),
        );
        if let Some(description) = &column.description {
            field = field.description(description);
        }
        object = object.field(with_directives!(field, &column.directives));
    }
    for reference in &table.references {
        let column = &table.columns[reference.column];
        let ty = if column.nullable {
            TypeRef::named(&reference.type_name)
        } else {
            TypeRef::named_nn(&reference.type_name)
        };
        let mut field = Field::new(&reference.name, ty, by_engine());
        if !reference.provides.is_empty() {
            let provided: Vec<&str> = reference.provides.iter().map(|(f, _)| f.as_str()).collect();
            field = field.provides(provided.join(" "));
        }
        object = object.field(field);
    }
    for relationship in &table.relationships {
        let target = &model.tables[relationship.target].type_name;
        object = match relationship.cardinality {
            Cardinality::Object => {
                // A row rule on the target can hide the related row, so the field may be null.
                let hidden = model.tables[relationship.target].rule.is_some();
                let ty = if relationship.nullable || hidden {
                    TypeRef::named(target)
                } else {
                    TypeRef::named_nn(target)
                };
                object.field(Field::new(&relationship.name, ty, by_engine()))
            }
            Cardinality::Array => object
                .field(filter::list_arguments(
                    Field::new(
                        &relationship.name,
                        TypeRef::named_nn_list_nn(target),
                        by_engine(),
                    ),
                    target,
                ))
                .field(filter::list_arguments(
                    Field::new(
                        relationship.aggregate_name(),
                        TypeRef::named_nn(aggregate_type(target)),
                        by_engine(),
                    ),
                    target,
                )),
        };
    }
    object
}

/// Other subgraphs' entities: those `extends` adds fields to, and those references lead to.
fn register_other_entities(mut builder: SchemaBuilder, model: &Model) -> SchemaBuilder {
    for entity in &model.foreign {
        builder = builder.register(foreign_entity(model, entity));
    }
    for (type_name, (key, fields)) in &provided_fields(model) {
        builder = builder.register(reference_stub(type_name, key, fields));
    }
    builder
}

/// The fields of another subgraph's entity that references provide, per entity type: its key
/// field, and each provided field with its GraphQL type.
type Provided<'m> = (&'m str, Vec<(&'m str, TypeRef)>);

fn provided_fields(model: &Model) -> indexmap::IndexMap<&str, Provided<'_>> {
    let mut provided: indexmap::IndexMap<&str, Provided<'_>> = indexmap::IndexMap::new();
    for table in &model.tables {
        for reference in &table.references {
            let (_, fields) = provided
                .entry(reference.type_name.as_str())
                .or_insert((reference.key.as_str(), Vec::new()));
            for (field, column) in &reference.provides {
                let column = &table.columns[*column];
                if !fields.iter().any(|(name, _)| name == field) {
                    fields.push((field, scalar_type(column.kind, column.nullable)));
                }
            }
        }
    }
    provided
}

/// The stub of another subgraph's entity that references lead to: its key, and the fields
/// they provide (`@external`); not resolvable here.
fn reference_stub(type_name: &str, key: &str, fields: &[(&str, TypeRef)]) -> Object {
    let mut object = Object::new(type_name).unresolvable(key).field(Field::new(
        key,
        TypeRef::named_nn(TypeRef::ID),
        by_engine(),
    ));
    for (name, ty) in fields {
        object = object.field(Field::new(*name, ty.clone(), by_engine()).external());
    }
    object
}

fn aggregate_types(table: &TableModel) -> Vec<Object> {
    polygraph_subgraph_core::aggregate::types(&table.type_name, "rows", &filter_fields(table))
}

fn root_list(model: &TableModel) -> Field {
    let field = Field::new(
        &model.list_field,
        TypeRef::named_nn_list_nn(&model.type_name),
        by_engine(),
    )
    .description(format!(
        "{} rows, filtered, sorted and paginated.",
        model.type_name
    ));
    filter::list_arguments(field, &model.type_name)
}

fn root_aggregate(model: &TableModel) -> Field {
    let field = Field::new(
        &model.aggregate_field,
        TypeRef::named_nn(aggregate_type(&model.type_name)),
        by_engine(),
    );
    filter::list_arguments(field, &model.type_name)
}

fn root_by_pk(model: &TableModel) -> Field {
    let mut field = Field::new(
        &model.by_pk_field,
        TypeRef::named(&model.type_name),
        by_engine(),
    )
    .description(format!("One {} by its primary key.", model.type_name));
    for column in &model.primary_key {
        let column = &model.columns[*column];
        field = field.argument(InputValue::new(
            &column.field,
            TypeRef::named_nn(column.kind.graphql_name()),
        ));
    }
    field
}

/// The shared `PageInfo` type; where tables have cache hints, it takes its connection's (`inheritMaxAge`).
fn page_info(hinted: bool) -> Object {
    // Shareable: other subgraphs (MongoDB's) define the same type.
    let mut object = Object::new(PAGE_INFO).shareable();
    if hinted {
        let inherit = polygraph_subgraph_core::cache::CacheHint {
            inherit_max_age: true,
            ..Default::default()
        };
        object = object.directive(inherit.directive());
    }
    object
        .field(Field::new(
            "hasNextPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            by_engine(),
        ))
        .field(Field::new(
            "hasPreviousPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            by_engine(),
        ))
        .field(Field::new(
            "startCursor",
            TypeRef::named(TypeRef::STRING),
            by_engine(),
        ))
        .field(Field::new(
            "endCursor",
            TypeRef::named(TypeRef::STRING),
            by_engine(),
        ))
}

/// `UserConnection` and `UserEdge`.
fn connection_types(table: &TableModel) -> Vec<Object> {
    let name = &table.type_name;
    vec![
        Object::new(connection_type(name))
            .field(Field::new(
                "edges",
                TypeRef::named_nn_list_nn(edge_type(name)),
                by_engine(),
            ))
            .field(Field::new(
                "pageInfo",
                TypeRef::named_nn(PAGE_INFO),
                by_engine(),
            )),
        Object::new(edge_type(name))
            .field(Field::new(
                "cursor",
                TypeRef::named_nn(TypeRef::STRING),
                by_engine(),
            ))
            .field(Field::new("node", TypeRef::named_nn(name), by_engine())),
    ]
}

/// The root field `users_connection(where, order_by, first, after)`.
fn root_connection(model: &TableModel) -> Field {
    let name = &model.type_name;
    Field::new(
        format!("{}_connection", model.list_field),
        TypeRef::named_nn(connection_type(name)),
        by_engine(),
    )
    .description(format!("{name} rows a page at a time, by cursor."))
    .argument(InputValue::new(
        "where",
        TypeRef::named(filter::bool_exp_type(name)),
    ))
    .argument(InputValue::new(
        "order_by",
        TypeRef::named_nn_list(filter::order_by_type(name)),
    ))
    .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)))
    .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)))
}

/// The stub type of another subgraph's entity, with the fields added here.
fn foreign_entity(model: &Model, entity: &ForeignEntity) -> Object {
    let mut object = Object::new(&entity.type_name)
        .key(&entity.key)
        .field(Field::new(
            &entity.key,
            TypeRef::named_nn(TypeRef::ID),
            by_engine(),
        ));
    if let Some(hint) = &entity.cache {
        object = object.directive(hint.directive());
    }
    for name in entity.external() {
        object =
            object.field(Field::new(name, TypeRef::named_nn(TypeRef::ID), by_engine()).external());
    }
    for field in &entity.fields {
        let target = &model.tables[field.table].type_name;
        let mut graphql = if field.aggregate {
            Field::new(
                &field.name,
                TypeRef::named_nn(aggregate_type(target)),
                by_engine(),
            )
        } else {
            Field::new(&field.name, TypeRef::named_nn_list_nn(target), by_engine())
        };
        graphql = filter::list_arguments(graphql, target);
        if field.from != entity.key {
            graphql = graphql.requires(&field.from);
        }
        if let Some(hint) = &field.cache {
            graphql = graphql.directive(hint.directive());
        }
        object = object.field(graphql);
    }
    object
}
