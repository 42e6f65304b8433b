//! A search's arguments lowered to a [`Search`], its answer read back as the result type's
//! JSON, row rules added as filters, and `_mget` for entities. Pure but for `fetch_entities`.

use async_graphql::{ErrorExtensions as _, Value};
use elasticsearch::MgetParts;
use polygraph_subgraph_core::claims::Claims;
use polygraph_subgraph_core::engine::FieldError;
use polygraph_subgraph_core::rules::{self, RowRule};
use serde_json::{Value as Json, json};

use crate::client::Client;
use crate::model::{DocField, Indexed, Model};
use crate::query::{Bucket, Filter, Search};

fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into())
        .extend_with(|_, extensions| extensions.set("code", "BAD_USER_INPUT"))
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
    state: &Client,
    representations: &Value,
    claims: Option<&Claims>,
) -> Result<Vec<(usize, String, Option<Json>)>, FieldError> {
    let Value::List(representations) = representations else {
        return Err(FieldError::bad_input("representations must be a list"));
    };
    let model = &state.model;
    let mut wanted = Vec::with_capacity(representations.len());
    for representation in representations {
        let Value::Object(representation) = representation else {
            return Err(FieldError::bad_input(
                "each representation must be an object",
            ));
        };
        let Some(Value::String(typename)) = representation.get("__typename") else {
            return Err(FieldError::bad_input("a representation has no __typename"));
        };
        let position = model
            .indices
            .iter()
            .position(|index| model.objects[index.object].type_name == *typename)
            .ok_or_else(|| {
                FieldError::bad_input(format!("{typename} is not an entity of this subgraph"))
            })?;
        let key = match representation.get(model.indices[position].key.as_str()) {
            Some(Value::String(key)) => key.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => {
                return Err(FieldError::bad_input(format!(
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
    let body = json!({ "docs": docs });
    let mut answer = state
        .send(
            || format!("mget {body}"),
            state.server.mget(MgetParts::None).body(body.clone()).send(),
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

/// The error for a key with no document.
pub(crate) fn not_found(model: &Model, position: usize, key: &str) -> String {
    format!(
        "no {} with {} {key}",
        model.entity(position).type_name,
        model.indices[position].key
    )
}
