//! The GraphQL schema generated from the index model, with its resolvers.
//!
//! `searchProducts(query, filters, facets, sort, from, size, after)` is one `_search`; every
//! field below it reads the answer in place. `_entities` is one `_mget` for all the
//! representations of a request, whatever their index.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object,
    ResolverContext, Scalar, Schema, SchemaError, TypeRef,
};
use async_graphql::{ErrorExtensions as _, Value};
use elasticsearch::{Elasticsearch, MgetParts, SearchParts};
use polygraph_subgraph_core::claims::{Claims, RequestClaims};
use polygraph_subgraph_core::filter::ScalarKind;
use polygraph_subgraph_core::rules::{self, RowRule};
use polygraph_subgraph_core::values::Missing;
use serde_json::{Value as Json, json};

use crate::model::{DocField, Indexed, Model};
use crate::query::{self, Bucket, Filter, Search};

/// What the resolvers share.
pub(crate) struct State {
    pub(crate) model: Arc<Model>,
    pub(crate) client: Elasticsearch,
    /// Requests sent to the server since start-up.
    pub(crate) requests: Arc<AtomicU64>,
}

impl State {
    /// Sends a prepared request, counts it, and reads its JSON answer; server refusals of the
    /// request itself are `BAD_USER_INPUT`, anything else `DATABASE_ERROR`.
    pub(crate) async fn send(
        &self,
        request: impl Future<
            Output = Result<elasticsearch::http::response::Response, elasticsearch::Error>,
        >,
    ) -> async_graphql::Result<Json> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request.await.map_err(|error| {
            tracing::warn!(%error, "search server unreachable");
            database_error("the search server could not be reached")
        })?;
        let status = response.status_code();
        let body: Json = response
            .json()
            .await
            .map_err(|_| database_error("the search server answered something other than JSON"))?;
        if status.is_client_error() {
            let reason = body["error"]["root_cause"][0]["reason"]
                .as_str()
                .or_else(|| body["error"]["reason"].as_str())
                .unwrap_or("the search server refused the request");
            return Err(bad_input(reason));
        }
        if !status.is_success() {
            tracing::warn!(%status, %body, "search failed");
            return Err(database_error(
                "the search server could not answer this request",
            ));
        }
        Ok(body)
    }
}

fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into())
        .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
}

fn database_error(message: &str) -> async_graphql::Error {
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", "DATABASE_ERROR"))
}

/// The schema, and the prepared path that answers validated `_entities` requests without
/// async-graphql's per-field resolution.
pub fn build_served(
    model: &Arc<Model>,
    client: Elasticsearch,
    requests: Arc<AtomicU64>,
) -> Result<(Schema, Arc<dyn polygraph_subgraph_core::server::Prepared>), SchemaError> {
    let (schema, state) = build_with_state(model, client, requests)?;
    Ok((schema, Arc::new(crate::prepared::PreparedEntities(state))))
}

fn build_with_state(
    model: &Arc<Model>,
    client: Elasticsearch,
    requests: Arc<AtomicU64>,
) -> Result<(Schema, Arc<State>), SchemaError> {
    let state = Arc::new(State {
        model: model.clone(),
        client,
        requests,
    });
    let mut builder = Schema::build("Query", None, None)
        .enable_federation()
        .limit_depth(model.max_depth)
        .limit_complexity(model.max_complexity);
    for kind in scalars(model) {
        builder = builder.register(Scalar::new(kind.graphql_name()));
    }
    for object in shared_types() {
        builder = builder.register(object);
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
            let mut graphql = json_field(&field.name, ty, field.key);
            if entity.is_some_and(|index| index.shareable.contains(&field.name)) {
                graphql = graphql.shareable();
            }
            output = output.field(graphql);
        }
        if let Some(index) = entity {
            output = output.key(&index.key);
        }
        builder = builder.register(output);
    }
    let mut query = Object::new("Query");
    for index in 0..model.indices.len() {
        let (types, field) = search_field(&state, index);
        builder = types
            .into_iter()
            .fold(builder, async_graphql::dynamic::SchemaBuilder::register);
        query = query.field(field);
    }
    let entities = state.clone();
    builder
        .register(query)
        .entity_resolver(move |ctx| {
            let state = entities.clone();
            FieldFuture::new(async move { resolve_entities(&state, &ctx).await })
        })
        .finish()
        .map(|schema| (schema, state))
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

use polygraph_subgraph_core::values::json_field;

/// The facet output types every index shares.
fn shared_types() -> Vec<Object> {
    let object = |name: &str, fields: &[(&str, TypeRef)]| {
        fields
            .iter()
            .fold(Object::new(name), |object, (field, ty)| {
                object.field(json_field(field, ty.clone(), false))
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
    types.extend(result_types(name, &index.hit_field));
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
fn result_types(name: &str, hit_field: &str) -> Vec<async_graphql::dynamic::Type> {
    vec![
        Object::new(format!("{name}SearchHit"))
            .field(
                json_field("score", TypeRef::named(TypeRef::FLOAT), false)
                    .description("Relevance; null when sorted by something else."),
            )
            .field(
                json_field("cursor", TypeRef::named_nn(TypeRef::STRING), false)
                    .description("Pass as `after` to get the hits after this one."),
            )
            .field(json_field(
                "highlights",
                TypeRef::named_nn_list_nn("SearchHighlight"),
                false,
            ))
            .field(json_field(hit_field, TypeRef::named_nn(name), false))
            .into(),
        Object::new(format!("{name}SearchResult"))
            .field(
                json_field("total", TypeRef::named_nn(TypeRef::INT), false)
                    .description("How many documents match."),
            )
            .field(json_field(
                "hits",
                TypeRef::named_nn_list_nn(format!("{name}SearchHit")),
                false,
            ))
            .field(json_field(
                "facets",
                TypeRef::named_nn("SearchFacets"),
                false,
            ))
            .into(),
    ]
}

/// `searchProducts` and the types of its arguments and result.
fn search_field(state: &Arc<State>, position: usize) -> (Vec<async_graphql::dynamic::Type>, Field) {
    let model = &state.model;
    let index = &model.indices[position];
    let name = &model.entity(position).type_name;
    let (types, has_facets) = search_types(model, position);
    let state = state.clone();
    let mut field = Field::new(
        &index.search_field,
        TypeRef::named_nn(format!("{name}SearchResult")),
        move |ctx| {
            let state = state.clone();
            FieldFuture::new(async move {
                let mut search = parse_search(&state.model, position, ctx.args.as_index_map())?;
                restrict(&state.model, position, RequestClaims::of(&ctx), &mut search)?;
                search.highlight = ctx.look_ahead().field("hits").field("highlights").exists();
                let model = &state.model;
                let index = &model.indices[position];
                let body = query::body(index, &search);
                tracing::debug!(%body, "search");
                let mut answer = state
                    .send(
                        state
                            .client
                            .search(SearchParts::Index(&[&index.index]))
                            .body(body)
                            .send(),
                    )
                    .await?;
                Ok(Some(FieldValue::owned_any(result(
                    index,
                    &search,
                    &mut answer,
                ))))
            })
        },
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

pub(crate) type Arguments = indexmap::IndexMap<async_graphql::Name, Value>;

fn number(value: &Value) -> Option<Json> {
    value
        .clone()
        .into_json()
        .ok()
        .filter(|json| !json.is_null())
}

/// The arguments of a search, checked against the model.
pub(crate) fn parse_search(
    model: &Model,
    position: usize,
    arguments: &Arguments,
) -> async_graphql::Result<Search> {
    let index = &model.indices[position];
    let entity = model.entity(position);
    let field = |name: &str| {
        entity
            .fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| bad_input(format!("{} has no field {name}", entity.type_name)))
    };
    let count = |name: &str, default: u64, max: u64| -> async_graphql::Result<u64> {
        match arguments.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n) if n <= max => Ok(n),
                _ => Err(bad_input(format!("{name} must be between 0 and {max}"))),
            },
            Some(_) => Err(bad_input(format!("{name} must be an integer"))),
        }
    };
    let mut search = Search {
        text: match arguments.get("query") {
            Some(Value::String(text)) => Some(text.clone()),
            _ => None,
        },
        size: count("size", 10.min(model.max_size), model.max_size)?,
        from: count("from", 0, model.max_from)?,
        ..Search::default()
    };
    if let Some(Value::Object(filters)) = arguments.get("filters") {
        search.filters = parse_filters(entity, filters)?;
    }
    if let Some(Value::Object(facets)) = arguments.get("facets") {
        parse_facets(entity, facets, &mut search)?;
    }
    for item in list(arguments.get("sort")) {
        let Value::Object(item) = item else { continue };
        let name = enum_name(item.get("field"))?;
        if name != "_score" {
            field(&name)?;
        }
        let descending = enum_name(item.get("direction")).map_or(name == "_score", |d| d == "DESC");
        search.sort.push((name, descending));
    }
    if let Some(Value::String(after)) = arguments.get("after") {
        let values: Vec<Json> = serde_json::from_str(after)
            .ok()
            .filter(|values: &Vec<Json>| values.iter().all(|v| !v.is_object() && !v.is_array()))
            .ok_or_else(|| bad_input("after must be a hit's cursor"))?;
        if search.from != 0 {
            return Err(bad_input("after and from cannot be combined"));
        }
        search.after = Some(values);
    }
    let _ = index;
    Ok(search)
}

/// The `filters` argument as filter clauses.
fn parse_filters(
    entity: &crate::model::ObjectModel,
    filters: &Arguments,
) -> async_graphql::Result<Vec<Filter>> {
    let mut search = Search::default();
    let field = |name: &str| field_of(entity, name);
    for (name, value) in filters {
        let doc_field = field(name)?;
        match (doc_field.indexed, value) {
            (_, Value::Null) => {}
            (Indexed::Boolean, Value::Boolean(flag)) => search.filters.push(Filter::Term {
                field: name.to_string(),
                value: json!(flag),
            }),
            (_, Value::Object(operators)) if doc_field.indexed.is_ordered() && !doc_field.key => {
                let bounds: Vec<(String, Json)> = operators
                    .iter()
                    .filter_map(|(op, v)| number(v).map(|v| (op.to_string(), v)))
                    .collect();
                if !bounds.is_empty() {
                    search.filters.push(Filter::Range {
                        field: name.to_string(),
                        bounds,
                    });
                }
            }
            (_, Value::Object(operators)) => {
                if let Some(value) = operators.get("eq").and_then(number) {
                    search.filters.push(Filter::Term {
                        field: name.to_string(),
                        value,
                    });
                }
                if let Some(Value::List(values)) = operators.get("in") {
                    search.filters.push(Filter::Terms {
                        field: name.to_string(),
                        values: values.iter().filter_map(number).collect(),
                    });
                }
            }
            _ => return Err(bad_input(format!("filters.{name}: unexpected value"))),
        }
    }
    Ok(search.filters)
}

/// The `facets` argument, into `search`.
fn parse_facets(
    entity: &crate::model::ObjectModel,
    facets: &Arguments,
    search: &mut Search,
) -> async_graphql::Result<()> {
    let field = |name: &str| field_of(entity, name);
    for item in list(facets.get("terms")) {
        let Value::Object(item) = item else { continue };
        let name = enum_name(item.get("field"))?;
        field(&name)?;
        let size = match item.get("size") {
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| bad_input("a terms facet's size must be between 1 and 1000"))?,
            _ => 10,
        };
        search.terms.push((name, size));
    }
    for item in list(facets.get("ranges")) {
        let Value::Object(item) = item else { continue };
        let name = enum_name(item.get("field"))?;
        field(&name)?;
        let buckets = list(item.get("ranges"))
            .filter_map(|bucket| match bucket {
                Value::Object(bucket) => Some(Bucket {
                    key: match bucket.get("key") {
                        Some(Value::String(key)) => Some(key.clone()),
                        _ => None,
                    },
                    from: bucket.get("from").and_then(number).and_then(|n| n.as_f64()),
                    to: bucket.get("to").and_then(number).and_then(|n| n.as_f64()),
                }),
                _ => None,
            })
            .collect();
        search.ranges.push((name, buckets));
    }
    for item in list(facets.get("stats")) {
        let name = enum_name(Some(item))?;
        field(&name)?;
        search.stats.push(name);
    }
    Ok(())
}

fn field_of<'a>(
    entity: &'a crate::model::ObjectModel,
    name: &str,
) -> async_graphql::Result<&'a DocField> {
    entity
        .fields
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| bad_input(format!("{} has no field {name}", entity.type_name)))
}

fn list(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let items: &[Value] = match value {
        Some(Value::List(items)) => items,
        Some(Value::Null) | None => &[],
        Some(single) => std::slice::from_ref(single),
    };
    items.iter()
}

fn enum_name(value: Option<&Value>) -> async_graphql::Result<String> {
    match value {
        Some(Value::Enum(name)) => Ok(name.to_string()),
        Some(Value::String(name)) => Ok(name.clone()),
        _ => Err(bad_input("expected a field name")),
    }
}

/// The answer of a `_search` as the result type's JSON.
pub(crate) fn result(index: &crate::model::IndexModel, search: &Search, answer: &mut Json) -> Json {
    let hits: Vec<Json> = answer["hits"]["hits"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .map(|hit| {
            let highlights: Vec<Json> = hit["highlight"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(field, fragments)| json!({ "field": field, "fragments": fragments }))
                .collect();
            let mut out = json!({
                "score": hit["_score"],
                "cursor": hit["sort"].to_string(),
                "highlights": highlights,
            });
            out[&index.hit_field] = hit["_source"].take();
            out
        })
        .collect();
    let aggregations = &answer["aggregations"];
    let terms: Vec<Json> = search
        .terms
        .iter()
        .enumerate()
        .map(|(position, (field, _))| {
            let aggregation = &aggregations[format!("t{position}")];
            let buckets: Vec<Json> = aggregation["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|bucket| json!({ "value": bucket_key(&bucket["key"]), "count": bucket["doc_count"] }))
                .collect();
            json!({ "field": field, "buckets": buckets, "other": aggregation["sum_other_doc_count"].as_u64().unwrap_or(0) })
        })
        .collect();
    let ranges: Vec<Json> = search
        .ranges
        .iter()
        .enumerate()
        .map(|(position, (field, _))| {
            let buckets: Vec<Json> = aggregations[format!("r{position}")]["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|bucket| json!({ "key": bucket_key(&bucket["key"]), "from": bucket["from"], "to": bucket["to"], "count": bucket["doc_count"] }))
                .collect();
            json!({ "field": field, "buckets": buckets })
        })
        .collect();
    let stats: Vec<Json> = search
        .stats
        .iter()
        .enumerate()
        .map(|(position, field)| {
            let stats = &aggregations[format!("s{position}")];
            json!({ "field": field, "count": stats["count"], "min": stats["min"], "max": stats["max"], "avg": stats["avg"], "sum": stats["sum"] })
        })
        .collect();
    json!({
        "total": answer["hits"]["total"]["value"].as_u64().or_else(|| answer["hits"]["total"].as_u64()).unwrap_or(0),
        "hits": hits,
        "facets": { "terms": terms, "ranges": ranges, "stats": stats },
    })
}

fn bucket_key(key: &Json) -> Json {
    match key {
        Json::String(_) => key.clone(),
        other => Json::String(other.to_string()),
    }
}

/// The index's row rule and the claims it goes by (see `rules::ruled`).
fn ruled_claims<'m, 'c>(
    model: &'m Model,
    position: usize,
    claims: Option<&'c Claims>,
) -> async_graphql::Result<Option<(&'m RowRule, &'c Claims)>> {
    let what = format!("{} documents", model.entity(position).type_name);
    rules::ruled(model.indices[position].rule.as_ref(), claims, &what)
}

/// Adds the index's row rule, with the request's claims, to a search's filters: its hits,
/// totals and facets count only the documents the caller may see. A condition whose claim is
/// missing or of the wrong shape becomes `terms` of nothing, which matches nothing.
pub(crate) fn restrict(
    model: &Model,
    position: usize,
    claims: Option<&Claims>,
    search: &mut Search,
) -> async_graphql::Result<()> {
    let Some((rule, claims)) = ruled_claims(model, position, claims)? else {
        return Ok(());
    };
    for condition in &rule.conditions {
        let values = match RowRule::values(condition, claims) {
            Some(Json::Array(values)) => values.clone(),
            Some(value) => vec![value.clone()],
            None => Vec::new(),
        };
        search.filters.push(Filter::Terms {
            field: condition.field.clone(),
            values,
        });
    }
    Ok(())
}

/// The documents `representations` name, in order: each with its index (position in the
/// model) and key, and its source, or `None` where there is no such document or the caller's
/// `claims` may not see it (a row rule). One `_mget`.
pub(crate) async fn fetch_entities(
    state: &State,
    representations: &Value,
    claims: Option<&Claims>,
) -> async_graphql::Result<Vec<(usize, String, Option<Json>)>> {
    let Value::List(representations) = representations else {
        return Err(bad_input("representations must be a list"));
    };
    let model = &state.model;
    let mut wanted = Vec::with_capacity(representations.len());
    for representation in representations {
        let Value::Object(representation) = representation else {
            return Err(bad_input("each representation must be an object"));
        };
        let Some(Value::String(typename)) = representation.get("__typename") else {
            return Err(bad_input("a representation has no __typename"));
        };
        let position = model
            .indices
            .iter()
            .position(|index| model.objects[index.object].type_name == *typename)
            .ok_or_else(|| bad_input(format!("{typename} is not an entity of this subgraph")))?;
        let key = match representation.get(model.indices[position].key.as_str()) {
            Some(Value::String(key)) => key.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => {
                return Err(bad_input(format!(
                    "a {typename} representation has no {}",
                    model.indices[position].key
                )));
            }
        };
        let ruled = ruled_claims(model, position, claims)?;
        wanted.push((position, key, ruled));
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let docs: Vec<Json> = wanted
        .iter()
        .map(|(position, key, _)| json!({ "_index": model.indices[*position].index, "_id": key }))
        .collect();
    let mut answer = state
        .send(
            state
                .client
                .mget(MgetParts::None)
                .body(json!({ "docs": docs }))
                .send(),
        )
        .await?;
    let mut found = match answer["docs"].take() {
        Json::Array(found) => found,
        _ => Vec::new(),
    };
    Ok(wanted
        .into_iter()
        .enumerate()
        .map(|(i, (position, key, ruled))| {
            let source = match found.get_mut(i) {
                Some(doc) if doc["found"] == json!(true) => Some(doc["_source"].take()),
                _ => None,
            };
            let visible = |source: &Json| {
                ruled.is_none_or(|(rule, claims)| rule.holds(claims, |field| source.get(field)))
            };
            (position, key, source.filter(visible))
        })
        .collect())
}

/// `_entities`: one `_mget` for every representation, results in representation order.
async fn resolve_entities<'a>(
    state: &State,
    ctx: &ResolverContext<'a>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let found = fetch_entities(
        state,
        ctx.args.try_get("representations")?.as_value(),
        RequestClaims::of(ctx),
    )
    .await?;
    let model = &state.model;
    Ok(Some(FieldValue::list(found.into_iter().map(
        |(position, key, source)| {
            let type_name = model.entity(position).type_name.clone();
            let value = match source {
                Some(source) => FieldValue::owned_any(source),
                None => FieldValue::owned_any(Missing(not_found(model, position, &key))),
            };
            value.with_type(type_name)
        },
    ))))
}

/// The error for a key with no document.
pub(crate) fn not_found(model: &Model, position: usize, key: &str) -> String {
    format!(
        "no {} with {} {key}",
        model.entity(position).type_name,
        model.indices[position].key
    )
}
