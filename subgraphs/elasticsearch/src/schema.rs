//! The GraphQL schema generated from the index model: an entity type per index, and a search
//! field per index with its result, hit and facet types. Its fields are answered by the engine
//! ([`crate::engine`]); async-graphql validates and serves introspection.

use async_graphql::dynamic::{
    Enum, EnumItem, Field, InputObject, InputValue, Object, Scalar, Schema, SchemaError, TypeRef,
};
use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::engine::engine_field;
use polygraph_subgraph_core::engine::{Hook, by_engine};
use polygraph_subgraph_core::filter::ScalarKind;

use crate::model::{DocField, Indexed, Model};

/// The schema for `model`'s indices.
pub fn build(model: &Model) -> Result<Schema, SchemaError> {
    let mut builder = Schema::build("Query", None, None)
        .enable_federation()
        .extension(Hook)
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity);
    for kind in scalars(model) {
        builder = builder.register(Scalar::new(kind.graphql_name()));
    }
    // With a cache hint on any index, every type of a search result takes its parent's.
    let hinted = model.indices.iter().any(|index| index.cache.is_some());
    let inherit = hinted.then(CacheHint::inherit);
    for object in shared_types() {
        builder = builder.register(CacheHint::apply(inherit.as_ref(), object));
    }
    if hinted {
        builder = polygraph_subgraph_core::cache::register(builder);
    }
    builder = builder
        .register(
            Enum::new("SortDirection")
                .item(EnumItem::new("ASC"))
                .item(EnumItem::new("DESC")),
        )
        .register(
            InputObject::new("KeywordFilter")
                .description("Exact values: `eq` one value, `in` any of several.")
                .field(InputValue::new("eq", TypeRef::named(TypeRef::STRING)))
                .field(InputValue::new(
                    "in",
                    TypeRef::named_nn_list(TypeRef::STRING),
                )),
        )
        .register(range_input("NumberRange", TypeRef::FLOAT))
        .register(range_input("DateRange", "DateTime"))
        .register(
            InputObject::new("RangeInput")
                .description("A range facet's bucket: `from` inclusive, `to` exclusive.")
                .field(InputValue::new("key", TypeRef::named(TypeRef::STRING)))
                .field(InputValue::new("from", TypeRef::named(TypeRef::FLOAT)))
                .field(InputValue::new("to", TypeRef::named(TypeRef::FLOAT))),
        );
    for (position, object) in model.objects.iter().enumerate() {
        let mut output = Object::new(&object.type_name);
        let entity = model.indices.iter().find(|index| index.object == position);
        for field in &object.fields {
            if let Some(index) = entity
                && !field.key
                && !index.exposed.contains(&field.name)
            {
                continue;
            }
            let type_name = match field.indexed {
                Indexed::Object(nested) => model.objects[nested].type_name.clone(),
                _ => field
                    .kind()
                    .expect("scalars have kinds")
                    .graphql_name()
                    .to_owned(),
            };
            let ty = match (field.list, field.key) {
                (true, _) => TypeRef::named_nn_list(type_name),
                (false, true) => TypeRef::named_nn(type_name),
                (false, false) => TypeRef::named(type_name),
            };
            let mut graphql = engine_field(&field.name, ty);
            if entity.is_some_and(|index| index.shareable.contains(&field.name)) {
                graphql = graphql.shareable();
            }
            output = output.field(graphql);
        }
        if let Some(index) = entity {
            output = output.key(&index.key);
        }
        let hint = match entity {
            Some(index) => index.cache.as_ref(),
            None => inherit.as_ref(),
        };
        builder = builder.register(CacheHint::apply(hint, output));
    }
    let mut query = Object::new("Query");
    for index in 0..model.indices.len() {
        let (types, field) = search_field(model, index);
        builder = types
            .into_iter()
            .fold(builder, async_graphql::dynamic::SchemaBuilder::register);
        query = query.field(field);
    }
    builder
        .register(query)
        .entity_resolver(by_engine())
        .finish()
}

/// The custom scalars the mapped fields use, and `DateTime` (which `DateRange` needs).
fn scalars(model: &Model) -> Vec<ScalarKind> {
    let mut scalars: Vec<ScalarKind> = vec![ScalarKind::DateTime];
    for object in &model.objects {
        for kind in object.fields.iter().filter_map(DocField::kind) {
            if !kind.is_builtin() && !scalars.contains(&kind) {
                scalars.push(kind);
            }
        }
    }
    scalars
}

fn range_input(name: &str, scalar: &str) -> InputObject {
    ["gt", "gte", "lt", "lte"]
        .into_iter()
        .fold(InputObject::new(name), |input, bound| {
            input.field(InputValue::new(bound, TypeRef::named(scalar)))
        })
}

/// The facet output types every index shares.
fn shared_types() -> Vec<Object> {
    let object = |name: &str, fields: &[(&str, TypeRef)]| {
        fields
            .iter()
            .fold(Object::new(name), |object, (field, ty)| {
                object.field(engine_field(*field, ty.clone()))
            })
    };
    vec![
        object(
            "SearchHighlight",
            &[
                ("field", TypeRef::named_nn(TypeRef::STRING)),
                ("fragments", TypeRef::named_nn_list_nn(TypeRef::STRING)),
            ],
        ),
        object(
            "TermsBucket",
            &[
                ("value", TypeRef::named_nn(TypeRef::STRING)),
                ("count", TypeRef::named_nn(TypeRef::INT)),
            ],
        ),
        object(
            "TermsFacet",
            &[
                ("field", TypeRef::named_nn(TypeRef::STRING)),
                ("buckets", TypeRef::named_nn_list_nn("TermsBucket")),
                ("other", TypeRef::named_nn(TypeRef::INT)),
            ],
        ),
        object(
            "RangeBucket",
            &[
                ("key", TypeRef::named_nn(TypeRef::STRING)),
                ("from", TypeRef::named(TypeRef::FLOAT)),
                ("to", TypeRef::named(TypeRef::FLOAT)),
                ("count", TypeRef::named_nn(TypeRef::INT)),
            ],
        ),
        object(
            "RangeFacet",
            &[
                ("field", TypeRef::named_nn(TypeRef::STRING)),
                ("buckets", TypeRef::named_nn_list_nn("RangeBucket")),
            ],
        ),
        object(
            "StatsFacet",
            &[
                ("field", TypeRef::named_nn(TypeRef::STRING)),
                ("count", TypeRef::named_nn(TypeRef::INT)),
                ("min", TypeRef::named(TypeRef::FLOAT)),
                ("max", TypeRef::named(TypeRef::FLOAT)),
                ("avg", TypeRef::named(TypeRef::FLOAT)),
                ("sum", TypeRef::named(TypeRef::FLOAT)),
            ],
        ),
        object(
            "SearchFacets",
            &[
                ("terms", TypeRef::named_nn_list_nn("TermsFacet")),
                ("ranges", TypeRef::named_nn_list_nn("RangeFacet")),
                ("stats", TypeRef::named_nn_list_nn("StatsFacet")),
            ],
        ),
    ]
}

/// The types of a search field's arguments and result, and whether it takes facets.
fn search_types(model: &Model, position: usize) -> (Vec<async_graphql::dynamic::Type>, bool) {
    use async_graphql::dynamic::Type;
    let index = &model.indices[position];
    let entity = model.entity(position);
    let name = &entity.type_name;
    let keyword: Vec<&DocField> = entity
        .fields
        .iter()
        .filter(|f| f.indexed == Indexed::Keyword)
        .collect();
    let numeric: Vec<&DocField> = entity
        .fields
        .iter()
        .filter(|f| f.indexed.is_numeric() && !f.key)
        .collect();
    let sortable: Vec<&DocField> = entity
        .fields
        .iter()
        .filter(|f| f.kind().is_some() && !f.list && f.indexed != Indexed::Text)
        .collect();
    let mut types: Vec<Type> = Vec::new();

    types.push(filter_input(entity).into());

    let enumeration = |suffix: &str, fields: &[&DocField], extra: &[&str]| -> Option<Enum> {
        if fields.is_empty() && extra.is_empty() {
            return None;
        }
        let items = extra
            .iter()
            .map(|e| (*e).to_owned())
            .chain(fields.iter().map(|f| f.name.clone()));
        Some(items.fold(Enum::new(format!("{name}{suffix}")), |e, item| {
            e.item(EnumItem::new(item))
        }))
    };
    let mut facets = InputObject::new(format!("{name}FacetsInput"))
        .description("Facets to compute over every matching document (not only this page).");
    if let Some(keywords) = enumeration("KeywordField", &keyword, &[]) {
        types.push(keywords.into());
        types.push(
            InputObject::new(format!("{name}TermsFacetInput"))
                .field(InputValue::new(
                    "field",
                    TypeRef::named_nn(format!("{name}KeywordField")),
                ))
                .field(InputValue::new("size", TypeRef::named(TypeRef::INT)))
                .into(),
        );
        facets = facets.field(InputValue::new(
            "terms",
            TypeRef::named_nn_list(format!("{name}TermsFacetInput")),
        ));
    }
    if let Some(numbers) = enumeration("NumericField", &numeric, &[]) {
        types.push(numbers.into());
        types.push(
            InputObject::new(format!("{name}RangeFacetInput"))
                .field(InputValue::new(
                    "field",
                    TypeRef::named_nn(format!("{name}NumericField")),
                ))
                .field(InputValue::new(
                    "ranges",
                    TypeRef::named_nn_list_nn("RangeInput"),
                ))
                .into(),
        );
        facets = facets
            .field(InputValue::new(
                "ranges",
                TypeRef::named_nn_list(format!("{name}RangeFacetInput")),
            ))
            .field(InputValue::new(
                "stats",
                TypeRef::named_nn_list(format!("{name}NumericField")),
            ));
    }
    let has_facets = !keyword.is_empty() || !numeric.is_empty();
    if has_facets {
        types.push(facets.into());
    }
    if let Some(sorts) = enumeration("SortField", &sortable, &["_score"]) {
        types.push(sorts.into());
    }
    types.push(
        InputObject::new(format!("{name}SearchSort"))
            .field(InputValue::new(
                "field",
                TypeRef::named_nn(format!("{name}SortField")),
            ))
            .field(InputValue::new(
                "direction",
                TypeRef::named("SortDirection"),
            ))
            .into(),
    );
    types.extend(result_types(name, &index.hit_field, index.cache.as_ref()));
    (types, has_facets)
}

/// `ProductSearchFilter`: a typed filter per filterable field.
fn filter_input(entity: &crate::model::ObjectModel) -> InputObject {
    let name = &entity.type_name;
    let mut filter = InputObject::new(format!("{name}SearchFilter")).description(format!(
        "Filters on {name} documents: every one given must match."
    ));
    for field in entity.fields.iter().filter(|f| f.kind().is_some()) {
        let ty = match field.indexed {
            _ if field.key => "KeywordFilter",
            Indexed::Keyword => "KeywordFilter",
            Indexed::Integer | Indexed::Long | Indexed::Float => "NumberRange",
            Indexed::Date => "DateRange",
            Indexed::Boolean => TypeRef::BOOLEAN,
            Indexed::Text | Indexed::Object(_) => continue,
        };
        filter = filter.field(InputValue::new(&field.name, TypeRef::named(ty)));
    }
    filter
}

/// `ProductSearchHit` and `ProductSearchResult`.
fn result_types(
    name: &str,
    hit_field: &str,
    cache: Option<&CacheHint>,
) -> Vec<async_graphql::dynamic::Type> {
    let inherit = cache.map(|_| CacheHint::inherit());
    vec![
        CacheHint::apply(inherit.as_ref(), Object::new(format!("{name}SearchHit")))
            .field(
                engine_field("score", TypeRef::named(TypeRef::FLOAT))
                    .description("Relevance; null when sorted by something else."),
            )
            .field(
                engine_field("cursor", TypeRef::named_nn(TypeRef::STRING))
                    .description("Pass as `after` to get the hits after this one."),
            )
            .field(engine_field(
                "highlights",
                TypeRef::named_nn_list_nn("SearchHighlight"),
            ))
            .field(engine_field(hit_field, TypeRef::named_nn(name)))
            .into(),
        CacheHint::apply(cache, Object::new(format!("{name}SearchResult")))
            .field(
                engine_field("total", TypeRef::named_nn(TypeRef::INT))
                    .description("How many documents match."),
            )
            .field(engine_field(
                "hits",
                TypeRef::named_nn_list_nn(format!("{name}SearchHit")),
            ))
            .field(engine_field("facets", TypeRef::named_nn("SearchFacets")))
            .into(),
    ]
}

/// `searchProducts` and the types of its arguments and result.
fn search_field(model: &Model, position: usize) -> (Vec<async_graphql::dynamic::Type>, Field) {
    let index = &model.indices[position];
    let name = &model.entity(position).type_name;
    let (types, has_facets) = search_types(model, position);
    let mut field = Field::new(
        &index.search_field,
        TypeRef::named_nn(format!("{name}SearchResult")),
        by_engine(),
    )
    .description(format!(
        "Full-text search over {name} documents, with filters, facets, sorting and paging."
    ))
    .argument(
        InputValue::new("query", TypeRef::named(TypeRef::STRING))
            .description("Words to search for; matched as text, never as query syntax."),
    )
    .argument(InputValue::new(
        "filters",
        TypeRef::named(format!("{name}SearchFilter")),
    ));
    if has_facets {
        field = field.argument(InputValue::new(
            "facets",
            TypeRef::named(format!("{name}FacetsInput")),
        ));
    }
    field = field
        .argument(InputValue::new(
            "sort",
            TypeRef::named_nn_list(format!("{name}SearchSort")),
        ))
        .argument(InputValue::new("from", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("size", TypeRef::named(TypeRef::INT)))
        .argument(
            InputValue::new("after", TypeRef::named(TypeRef::STRING))
                .description("A hit's cursor: continue after it (deep paging)."),
        );
    (types, field)
}
