//! Translation, pure: a search request → the JSON body of one `_search`. The search text goes
//! into `multi_match` (which never interprets query-string syntax), filters into `bool.filter`
//! clauses, facets into `aggs`; field names come only from the model.

use serde_json::{Map, Value as Json, json};

use crate::model::IndexModel;

/// A parsed search request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Search {
    pub text: Option<String>,
    pub filters: Vec<Filter>,
    /// Terms facets: field and how many buckets.
    pub terms: Vec<(String, u64)>,
    pub ranges: Vec<(String, Vec<Bucket>)>,
    pub stats: Vec<String>,
    /// Sort keys: field (or `_score`) and whether descending.
    pub sort: Vec<(String, bool)>,
    pub from: u64,
    pub size: u64,
    /// `search_after` values: the cursor of the last hit of the previous page.
    pub after: Option<Vec<Json>>,
    /// Whether the hits' highlights are asked for (highlighting costs the server work).
    pub highlight: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Term {
        field: String,
        value: Json,
    },
    Terms {
        field: String,
        values: Vec<Json>,
    },
    /// Bounds by operator: `gt`, `gte`, `lt`, `lte`.
    Range {
        field: String,
        bounds: Vec<(String, Json)>,
    },
}

/// A range facet's bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub key: Option<String>,
    pub from: Option<f64>,
    pub to: Option<f64>,
}

/// The `_search` body for `search` on `index`.
pub fn body(index: &IndexModel, search: &Search) -> Json {
    let must = match search.text.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => {
            let fields: Vec<String> = index
                .search
                .iter()
                .map(|(field, boost)| format!("{field}^{boost}"))
                .collect();
            json!({ "multi_match": { "query": text, "fields": fields, "type": "best_fields" } })
        }
        _ => json!({ "match_all": {} }),
    };
    let filters: Vec<Json> = search
        .filters
        .iter()
        .map(|filter| match filter {
            Filter::Term { field, value } => json!({ "term": { field.clone(): value } }),
            Filter::Terms { field, values } => json!({ "terms": { field.clone(): values } }),
            Filter::Range { field, bounds } => {
                let bounds: Map<String, Json> = bounds.iter().cloned().collect();
                json!({ "range": { field.clone(): bounds } })
            }
        })
        .collect();
    let mut sort: Vec<Json> = search
        .sort
        .iter()
        .map(|(field, descending)| json!({ field.clone(): if *descending { "desc" } else { "asc" } }))
        .collect();
    if sort.is_empty() && search.text.is_some() {
        sort.push(json!({ "_score": "desc" }));
    }
    // The key last: equal scores and values still page in a stable order.
    sort.push(json!({ index.key.clone(): "asc" }));
    let mut aggs = Map::new();
    for (position, (field, size)) in search.terms.iter().enumerate() {
        aggs.insert(
            format!("t{position}"),
            json!({ "terms": { "field": field, "size": size } }),
        );
    }
    for (position, (field, buckets)) in search.ranges.iter().enumerate() {
        let ranges: Vec<Json> = buckets
            .iter()
            .map(|bucket| {
                let mut range = Map::new();
                if let Some(key) = &bucket.key {
                    range.insert("key".into(), json!(key));
                }
                if let Some(from) = bucket.from {
                    range.insert("from".into(), json!(from));
                }
                if let Some(to) = bucket.to {
                    range.insert("to".into(), json!(to));
                }
                Json::Object(range)
            })
            .collect();
        aggs.insert(
            format!("r{position}"),
            json!({ "range": { "field": field, "ranges": ranges } }),
        );
    }
    for (position, field) in search.stats.iter().enumerate() {
        aggs.insert(
            format!("s{position}"),
            json!({ "stats": { "field": field } }),
        );
    }
    let mut body = json!({
        "query": { "bool": { "must": [must], "filter": filters } },
        "size": search.size,
        "sort": sort,
        "track_total_hits": true,
    });
    match &search.after {
        Some(after) => body["search_after"] = json!(after),
        None => body["from"] = json!(search.from),
    }
    if !aggs.is_empty() {
        body["aggs"] = Json::Object(aggs);
    }
    if search.highlight && search.text.is_some() && !index.highlight.is_empty() {
        let fields: Map<String, Json> = index
            .highlight
            .iter()
            .map(|field| (field.clone(), json!({})))
            .collect();
        body["highlight"] = json!({ "fields": fields });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model;

    #[test]
    fn a_search_becomes_one_body() {
        let config = Config::from_yaml(
            "indices: { products: { type: Product, search: { name: 3, description: 1 }, highlight: [name] } }",
        )
        .unwrap();
        let properties = json!({
            "id": { "type": "long" }, "name": { "type": "text" }, "description": { "type": "text" },
            "category": { "type": "keyword" }, "price": { "type": "double" }, "in_stock": { "type": "boolean" },
        });
        let model = model::build(
            &config,
            &[(properties, std::collections::BTreeSet::default())],
        )
        .unwrap();
        let search = Search {
            text: Some("name:lamp OR *:* AND \"desk".into()),
            filters: vec![
                Filter::Terms {
                    field: "category".into(),
                    values: vec![json!("garden"), json!("books")],
                },
                Filter::Range {
                    field: "price".into(),
                    bounds: vec![("gte".into(), json!(10.0)), ("lt".into(), json!(50.0))],
                },
                Filter::Term {
                    field: "in_stock".into(),
                    value: json!(true),
                },
            ],
            terms: vec![("category".into(), 5)],
            ranges: vec![(
                "price".into(),
                vec![
                    Bucket {
                        key: Some("cheap".into()),
                        from: None,
                        to: Some(20.0),
                    },
                    Bucket {
                        key: None,
                        from: Some(20.0),
                        to: None,
                    },
                ],
            )],
            stats: vec!["price".into()],
            sort: vec![("price".into(), true)],
            from: 0,
            size: 10,
            after: Some(vec![json!(12.5), json!(7)]),
            highlight: true,
        };
        insta::assert_snapshot!(
            serde_json::to_string_pretty(&body(&model.indices[0], &search)).unwrap()
        );
    }
}
