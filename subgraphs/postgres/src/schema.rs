//! The GraphQL schema generated from the model, with its resolvers.
//!
//! Root fields translate their whole selection into one statement ([`crate::translate`]) and
//! run it ([`crate::execute`]); every nested field reads its value from the fetched documents
//! ([`polygraph_subgraph_core::values`]). `_entities` runs one statement per entity type.

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Object, ResolverContext, Scalar, Schema,
    SchemaBuilder, SchemaError, TypeRef,
};
use async_graphql::parser::types::SelectionSet;

use async_graphql::{ErrorExtensions as _, Value};
use polygraph_subgraph_core::aggregate::{aggregate_type, function_type};
use polygraph_subgraph_core::claims::{Claims, RequestClaims};
use polygraph_subgraph_core::filter::{self, BoolExp, FilterField, FilterRelationship, ScalarKind};
use polygraph_subgraph_core::selection::{SelectedField, SelectionError, Walker};
use polygraph_subgraph_core::values::{self, Document, Missing};

use crate::execute::{self, Executor};
use crate::model::{Cardinality, Model, TableModel};
use crate::root::{self, RootKind};
use crate::translate::{
    self, Access, AggregateOutput, ErrorKind, Function, ListArgs, Output, ReferenceOutput,
    TableAccess, TranslateError,
};

/// What the resolvers share.
pub(crate) struct State {
    pub(crate) model: Arc<Model>,
    pub(crate) executor: Arc<Executor>,
}

/// Builds the subgraph's schema for `model`, resolving through `executor`, with the prepared
/// path that answers validated `_entities` requests without async-graphql's execution.
pub fn build_served(
    model: &Arc<Model>,
    executor: Arc<Executor>,
) -> Result<(Schema, Arc<dyn polygraph_subgraph_core::server::Prepared>), SchemaError> {
    let state = Arc::new(State {
        model: model.clone(),
        executor,
    });
    let schema = build_with_state(&state)?;
    Ok((schema, Arc::new(crate::fast::PreparedPath(state))))
}

fn build_with_state(state: &Arc<State>) -> Result<Schema, SchemaError> {
    let model = &state.model;
    let state = state.clone();
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let has_mutations = model.tables.iter().any(|table| table.mutations.any());
    let mut builder = Schema::build("Query", has_mutations.then_some("Mutation"), None)
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
        builder = builder.register(crate::connection::page_info(hinted));
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
        query = query.field(root_list(&state, index));
        query = query.field(root_aggregate(&state, index));
        if !table.primary_key.is_empty() {
            query = query.field(root_by_pk(&state, index));
            query = query.field(crate::connection::root_field(&state, index));
            for object in crate::connection::types(table) {
                builder = builder.register(cached(object, table));
            }
        }
        if table.mutations.any() {
            let (types, fields) = crate::mutations::for_table(&state, index);
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
    let entities_state = state.clone();
    builder
        .extension(crate::fast::FastPath(state.clone()))
        .register(query)
        .entity_resolver(move |ctx| {
            let state = entities_state.clone();
            FieldFuture::new(async move { resolve_entities(&state, &ctx).await })
        })
        .finish()
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

pub(crate) fn scalar_type(kind: ScalarKind, nullable: bool) -> TypeRef {
    if nullable {
        TypeRef::named(kind.graphql_name())
    } else {
        TypeRef::named_nn(kind.graphql_name())
    }
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
            values::scalar_field,
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
        let mut field = Field::new(&reference.name, ty, values::object_field);
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
                object.field(Field::new(&relationship.name, ty, values::object_field))
            }
            Cardinality::Array => object
                .field(list_arguments_for(
                    Field::new(
                        &relationship.name,
                        TypeRef::named_nn_list_nn(target),
                        values::list_field,
                    ),
                    target,
                ))
                .field(list_arguments_for(
                    Field::new(
                        relationship.aggregate_name(),
                        TypeRef::named_nn(aggregate_type(target)),
                        values::object_field,
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
        builder = builder.register(crate::extends::object(model, entity));
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
        values::scalar_field,
    ));
    for (name, ty) in fields {
        object = object.field(Field::new(*name, ty.clone(), values::scalar_field).external());
    }
    object
}

pub(crate) fn list_arguments_for(field: Field, type_name: &str) -> Field {
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

fn aggregate_types(table: &TableModel) -> Vec<Object> {
    polygraph_subgraph_core::aggregate::types(&table.type_name, "rows", &filter_fields(table))
}

/// A root field whose resolver answers through [`crate::root::answer`].
pub(crate) fn root_field(
    state: &Arc<State>,
    table: usize,
    kind: RootKind,
    name: &str,
    ty: TypeRef,
) -> Field {
    let state = state.clone();
    Field::new(name, ty, move |ctx| {
        let state = state.clone();
        FieldFuture::new(async move {
            let walker = Walker::new(ctx.ctx);
            let json = root::answer(
                &state,
                table,
                kind,
                &walker,
                &ctx.ctx.item.node,
                RequestClaims::of(&ctx),
            )
            .await?;
            Ok(root::field_value(json))
        })
    })
}

fn root_list(state: &Arc<State>, table: usize) -> Field {
    let model = &state.model.tables[table];
    let field = root_field(
        state,
        table,
        RootKind::List,
        &model.list_field,
        TypeRef::named_nn_list_nn(&model.type_name),
    )
    .description(format!(
        "{} rows, filtered, sorted and paginated.",
        model.type_name
    ));
    list_arguments_for(field, &model.type_name)
}

fn root_aggregate(state: &Arc<State>, table: usize) -> Field {
    let model = &state.model.tables[table];
    let field = root_field(
        state,
        table,
        RootKind::Aggregate,
        &model.aggregate_field,
        TypeRef::named_nn(aggregate_type(&model.type_name)),
    );
    list_arguments_for(field, &model.type_name)
}

fn root_by_pk(state: &Arc<State>, table: usize) -> Field {
    let model = &state.model.tables[table];
    let mut field = root_field(
        state,
        table,
        RootKind::ByPk,
        &model.by_pk_field,
        TypeRef::named(&model.type_name),
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

/// What this request may see of each table: row rules instantiated with its verified claims.
pub(crate) fn access(model: &Model, claims: Option<&Claims>) -> Access {
    if model.tables.iter().all(|table| table.rule.is_none()) {
        return Access::unrestricted();
    }
    let tables = model
        .tables
        .iter()
        .map(|table| match (&table.rule, claims) {
            (None, _) => TableAccess::All,
            (Some(_), None) => TableAccess::Denied(format!(
                "{} rows are visible only to requests with verified claims",
                table.type_name
            )),
            (Some(rule), Some(claims)) => TableAccess::Rows(rule.restriction(claims)),
        })
        .collect();
    Access { tables }
}

/// The selection set of the field being resolved.
pub(crate) fn selection_set<'a>(ctx: &ResolverContext<'a>) -> &'a SelectionSet {
    &ctx.ctx.item.node.selection_set.node
}

/// Argument values of a field node with variables substituted.
pub(crate) trait ArgumentsAsValues {
    fn arguments_as_values(
        &self,
        walker: &Walker<'_>,
    ) -> async_graphql::Result<Vec<(String, Value)>>;
}

impl ArgumentsAsValues for async_graphql::parser::types::Field {
    fn arguments_as_values(
        &self,
        walker: &Walker<'_>,
    ) -> async_graphql::Result<Vec<(String, Value)>> {
        self.arguments
            .iter()
            .map(|(name, value)| {
                walker
                    .resolve(&value.node)
                    .map(|value| (name.node.to_string(), value))
                    .map_err(SelectionError::bad_input)
            })
            .collect()
    }
}

pub(crate) fn list_args(
    model: &Model,
    table: usize,
    arguments: &[(String, Value)],
) -> async_graphql::Result<ListArgs> {
    let get = |name: &str| {
        arguments
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    };
    let table_model = &model.tables[table];
    let relationship_target = |type_name: &str, field: &str| {
        let (_, table) = model.table_by_type(type_name)?;
        let relationship = table.relationship(field)?;
        Some(model.tables[relationship.target].type_name.clone())
    };
    let filter = match get("where") {
        Some(value) => filter::parse_bool_exp(value, &table_model.type_name, &relationship_target)
            .map_err(|error| bad_input(TranslateError::input(error.to_string())))?,
        None => BoolExp::always(),
    };
    let order_by = get("order_by")
        .map(filter::parse_order_by)
        .transpose()
        .map_err(|error| bad_input(TranslateError::input(error.to_string())))?
        .unwrap_or_default();
    let limit = filter::parse_count("limit", get("limit"), model.max_limit)
        .map_err(|error| bad_input(TranslateError::input(error.to_string())))?;
    let offset = filter::parse_count("offset", get("offset"), i64::MAX as u64)
        .map_err(|error| bad_input(TranslateError::input(error.to_string())))?;
    Ok(ListArgs {
        filter,
        order_by,
        limit,
        offset,
    })
}

/// The output fields for `table` from the selection sets of a field of its type.
pub(crate) fn outputs(
    model: &Model,
    table: usize,
    walker: &Walker<'_>,
    sets: &[&SelectionSet],
) -> async_graphql::Result<Vec<Output>> {
    let table_model = &model.tables[table];
    let selected = walker
        .collect(sets, &table_model.type_name)
        .map_err(SelectionError::bad_input)?;
    selected
        .iter()
        .map(|field| output(model, table, walker, field))
        .collect()
}

fn output(
    model: &Model,
    table: usize,
    walker: &Walker<'_>,
    field: &SelectedField<'_>,
) -> async_graphql::Result<Output> {
    let table_model = &model.tables[table];
    let key = field.response_key.to_owned();
    if field.name == "__typename" {
        return Ok(Output::Typename {
            key,
            type_name: table_model.type_name.clone(),
        });
    }
    if let Some((column, _)) = table_model.column(field.name) {
        return Ok(Output::Column { key, column });
    }
    if let Some(index) = table_model
        .references
        .iter()
        .position(|reference| reference.name == field.name)
    {
        return reference_output(model, table, index, walker, field);
    }
    let arguments: Vec<(String, Value)> = field
        .arguments
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    for (index, relationship) in table_model.relationships.iter().enumerate() {
        if relationship.name == field.name {
            let fields = outputs(model, relationship.target, walker, &field.selection_sets)?;
            return Ok(match relationship.cardinality {
                Cardinality::Object => Output::Object {
                    key,
                    relationship: index,
                    fields,
                },
                Cardinality::Array => Output::Array {
                    key,
                    relationship: index,
                    args: list_args(model, relationship.target, &arguments)?,
                    fields,
                },
            });
        }
        if relationship.cardinality == Cardinality::Array
            && relationship.aggregate_name() == field.name
        {
            return Ok(Output::Aggregate {
                key,
                relationship: index,
                args: list_args(model, relationship.target, &arguments)?,
                fields: aggregate_outputs(
                    model,
                    relationship.target,
                    walker,
                    &field.selection_sets,
                )?,
            });
        }
    }
    Err(bad_input(TranslateError::input(format!(
        "{} has no field {}",
        table_model.type_name, field.name
    ))))
}

/// A reference field: the entity's `__typename`, key and provided fields, nothing else.
fn reference_output(
    model: &Model,
    table: usize,
    index: usize,
    walker: &Walker<'_>,
    field: &SelectedField<'_>,
) -> async_graphql::Result<Output> {
    let reference = &model.tables[table].references[index];
    let selected = walker
        .collect(&field.selection_sets, &reference.type_name)
        .map_err(SelectionError::bad_input)?;
    let fields = selected
        .iter()
        .map(|selected| {
            let key = selected.response_key.to_owned();
            if selected.name == "__typename" {
                return Ok(ReferenceOutput::Typename {
                    key,
                    type_name: reference.type_name.clone(),
                });
            }
            if selected.name == reference.key {
                return Ok(ReferenceOutput::Key { key });
            }
            reference
                .provides
                .iter()
                .find(|(name, _)| name == selected.name)
                .map(|(_, column)| ReferenceOutput::Provided {
                    key,
                    column: *column,
                })
                .ok_or_else(|| {
                    bad_input(TranslateError::input(format!(
                        "{}.{} provides only its key and {:?}",
                        model.tables[table].type_name,
                        reference.name,
                        reference
                            .provides
                            .iter()
                            .map(|(name, _)| name)
                            .collect::<Vec<_>>()
                    )))
                })
        })
        .collect::<async_graphql::Result<Vec<_>>>()?;
    Ok(Output::Reference {
        key: field.response_key.to_owned(),
        reference: index,
        fields,
    })
}

pub(crate) fn aggregate_outputs(
    model: &Model,
    table: usize,
    walker: &Walker<'_>,
    sets: &[&SelectionSet],
) -> async_graphql::Result<Vec<AggregateOutput>> {
    let table_model = &model.tables[table];
    let type_name = aggregate_type(&table_model.type_name);
    let selected = walker
        .collect(sets, &type_name)
        .map_err(SelectionError::bad_input)?;
    selected
        .iter()
        .map(|field| {
            let key = field.response_key.to_owned();
            if field.name == "count" {
                return Ok(AggregateOutput::Count { key });
            }
            if field.name == "__typename" {
                return Ok(AggregateOutput::Typename {
                    key,
                    type_name: type_name.clone(),
                });
            }
            let function = Function::ALL
                .into_iter()
                .find(|function| function.name() == field.name)
                .ok_or_else(|| {
                    bad_input(TranslateError::input(format!(
                        "{type_name} has no field {}",
                        field.name
                    )))
                })?;
            let inner = walker
                .collect(
                    &field.selection_sets,
                    &function_type(&table_model.type_name, function),
                )
                .map_err(SelectionError::bad_input)?;
            let columns = inner
                .iter()
                .map(|column| {
                    table_model
                        .column(column.name)
                        .filter(|(_, c)| function.applies_to(c.kind))
                        .map(|(index, _)| (column.response_key.to_owned(), index))
                        .ok_or_else(|| {
                            bad_input(TranslateError::input(format!(
                                "{} cannot be selected in {}",
                                column.name,
                                function.name()
                            )))
                        })
                })
                .collect::<async_graphql::Result<Vec<_>>>()?;
            Ok(AggregateOutput::Function {
                key,
                function,
                columns,
            })
        })
        .collect()
}

/// An entity's type name and its document as the database wrote it (a JSON object), or why
/// there is none.
pub(crate) type Found = (String, Result<String, String>);

/// `_entities`: representations grouped by type, one statement per type, results in
/// representation order; unknown keys resolve to null with an error at their index.
async fn resolve_entities<'a>(
    state: &State,
    ctx: &ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let Value::List(representations) = ctx.args.try_get("representations")?.as_value() else {
        return Err(bad_input(TranslateError::input(
            "representations must be a list",
        )));
    };
    let walker = Walker::new(ctx.ctx);
    let results = find_entities(
        state,
        &walker,
        selection_set(ctx),
        representations,
        RequestClaims::of(ctx),
    )
    .await?;
    let mut values = Vec::with_capacity(results.len());
    for (typename, result) in results {
        values.push(match result {
            Ok(text) => {
                let document: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&text).map_err(|error| {
                        tracing::error!(%error, "an entity document is not a JSON object");
                        async_graphql::Error::new("internal error reading an entity")
                    })?;
                FieldValue::owned_any(Document(document)).with_type(typename)
            }
            Err(message) => FieldValue::owned_any(Missing(message)).with_type(typename),
        });
    }
    Ok(Some(FieldValue::list(values)))
}

/// Finds the entities `representations` name, one statement per entity type; in
/// representation order, each with its type name and document, or why it is missing.
pub(crate) async fn find_entities(
    state: &State,
    walker: &Walker<'_>,
    selection: &SelectionSet,
    representations: &[Value],
    claims: Option<&Claims>,
) -> async_graphql::Result<Vec<Found>> {
    let unusable = |message: String| bad_input(TranslateError::input(message));
    let mut results: Vec<Option<Found>> = vec![None; representations.len()];
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (index, representation) in representations.iter().enumerate() {
        let typename = match representation {
            Value::Object(object) => match object.get("__typename") {
                Some(Value::String(typename)) => typename.as_str(),
                _ => {
                    return Err(unusable(format!(
                        "representation {index} has no __typename"
                    )));
                }
            },
            _ => return Err(unusable(format!("representation {index} is not an object"))),
        };
        match groups.iter_mut().find(|(name, _)| *name == typename) {
            Some((_, indices)) => indices.push(index),
            None => groups.push((typename, vec![index])),
        }
    }
    let access = access(&state.model, claims);
    for (typename, indices) in groups {
        if let Some(entity) = state.model.foreign.iter().find(|f| f.type_name == typename) {
            let group: Vec<&Value> = indices.iter().map(|&i| &representations[i]).collect();
            let found =
                crate::extends::find(state, walker, selection, entity, &group, claims).await?;
            for (&index, document) in indices.iter().zip(found) {
                results[index] = Some((typename.to_owned(), document));
            }
            continue;
        }
        let not_ours = || unusable(format!("{typename} is not an entity of this subgraph"));
        let (table, table_model) = state.model.table_by_type(typename).ok_or_else(not_ours)?;
        let key_columns = table_model.entity_key.clone().ok_or_else(not_ours)?;
        let mut keys = Vec::with_capacity(indices.len());
        for &index in &indices {
            let Value::Object(object) = &representations[index] else {
                unreachable!("checked above")
            };
            let key = key_columns
                .iter()
                .map(|column| {
                    let column = &table_model.columns[*column];
                    let text = match object.get(column.field.as_str()) {
                        Some(Value::String(text)) => text.clone(),
                        Some(Value::Number(number)) => number.to_string(),
                        other => {
                            return Err(unusable(format!(
                                "{typename}.{}: unusable key {}",
                                column.field,
                                other.map_or_else(|| "(missing)".to_owned(), ToString::to_string)
                            )));
                        }
                    };
                    translate::normalize_key(column, &text).map_err(bad_input)
                })
                .collect::<async_graphql::Result<Vec<String>>>()?;
            keys.push(key);
        }
        let fields = outputs(&state.model, table, walker, &[selection])?;
        let statement =
            translate::entities(&state.model, &access, table, &key_columns, &keys, &fields)
                .map_err(bad_input)?;
        let rows = execute::keyed_documents(&state.executor, &statement)
            .await
            .map_err(database_error)?;
        let mut found: std::collections::HashMap<String, String> = rows.into_iter().collect();
        let texts: Vec<String> = keys.iter().map(|key| translate::key_text(key)).collect();
        // A key asked for several times gets copies; its last (usually only) use takes it.
        let mut uses: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for text in &texts {
            *uses.entry(text).or_default() += 1;
        }
        for ((&index, key), text) in indices.iter().zip(&keys).zip(&texts) {
            let remaining = uses.get_mut(text.as_str()).expect("counted above");
            *remaining -= 1;
            let document = if *remaining == 0 {
                found.remove(text)
            } else {
                found.get(text).cloned()
            };
            let document =
                document.ok_or_else(|| format!("{typename} with key {} not found", key.join(", ")));
            results[index] = Some((typename.to_owned(), document));
        }
    }
    Ok(results
        .into_iter()
        .map(|result| result.expect("every index is in a group"))
        .collect())
}

/// An error in the request, safe to show: `BAD_USER_INPUT`, or `UNAUTHENTICATED` where a row
/// rule needs claims the request lacks.
pub(crate) fn bad_input(error: TranslateError) -> async_graphql::Error {
    let code = match error.kind {
        ErrorKind::Input => "BAD_USER_INPUT",
        ErrorKind::Unauthenticated => "UNAUTHENTICATED",
        ErrorKind::Forbidden => "FORBIDDEN",
    };
    async_graphql::Error::new(error.message)
        .extend_with(|_, extensions| extensions.set("code", code))
}

/// A database failure: logged in full, shown to the client without internals.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(database_error)`
pub(crate) fn database_error(error: sqlx::Error) -> async_graphql::Error {
    // Integrity violations (class 23: unique, foreign key, not null, check) and data exceptions
    // (class 22: a value out of range for its column) are the client's to fix, and PostgreSQL's
    // message names only the constraint or the value: shown as they are.
    if let sqlx::Error::Database(database) = &error {
        let code = database.code().unwrap_or_default();
        if code.starts_with("23") || code.starts_with("22") {
            let message = database.message().to_owned();
            let constraint = database.constraint().map(ToOwned::to_owned);
            return async_graphql::Error::new(message).extend_with(|_, extensions| {
                extensions.set("code", "BAD_USER_INPUT");
                extensions.set("sqlstate", code.as_ref());
                if let Some(constraint) = &constraint {
                    extensions.set("constraint", constraint.as_str());
                }
            });
        }
    }
    tracing::error!(%error, "PostgreSQL query failed");
    let message = match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            "the database is unavailable"
        }
        _ => "the database could not answer this request",
    };
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", "DATABASE_ERROR"))
}
