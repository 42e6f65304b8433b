//! The search subgraph against the real server (OpenSearch API): the demo's products index, and
//! a scratch index for batching.

mod common;

use async_graphql::Variables;
use common::{SERVERS_HINT, endpoints, expected_spec, repo_root};
use elasticsearch::http::transport::Transport;
use elasticsearch::indices::{IndicesCreateParts, IndicesDeleteParts};
use elasticsearch::{BulkOperation, BulkParts, Elasticsearch};
use polygraph_subgraph_elasticsearch::{Config, Subgraph};
use serde_json::{Value, json};

/// The demo index with every mapped field exposed, so tests can check what filters kept.
async fn all_fields() -> Subgraph {
    let mut config = Config::from_file(&repo_root().join("config/elasticsearch.yaml")).unwrap();
    config.indices["products"].expose = None;
    Subgraph::start(&config)
        .await
        .unwrap_or_else(|error| panic!("starting the search subgraph: {error:#}; {SERVERS_HINT}"))
}

async fn run(subgraph: &Subgraph, query: &str, variables: Value) -> Value {
    subgraph
        .served()
        .execute(query, None, &Variables::from_json(variables), None)
        .await
        .json()
}

async fn search(subgraph: &Subgraph, arguments: Value) -> Value {
    let response = run(
        subgraph,
        "query($q: String, $f: ProductSearchFilter, $facets: ProductFacetsInput, $s: [ProductSearchSort!], $from: Int, $size: Int, $after: String) {
           searchProducts(query: $q, filters: $f, facets: $facets, sort: $s, from: $from, size: $size, after: $after) {
             total
             hits { score cursor highlights { field fragments } product { id name category brand price tags in_stock popularity created_at } }
             facets { terms { field other buckets { value count } } ranges { field buckets { key from to count } } stats { field count min max avg sum } }
           } }",
        arguments,
    )
    .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"]["searchProducts"].clone()
}

fn products(result: &Value) -> Vec<Value> {
    result["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["product"].clone())
        .collect()
}

#[tokio::test]
async fn full_text_search_ranks_and_highlights() {
    let subgraph = all_fields().await;
    let result = search(&subgraph, json!({ "q": "lamp", "size": 100 })).await;
    let total = result["total"].as_u64().unwrap();
    assert!(total > 0, "{result}");
    let hits = result["hits"].as_array().unwrap();
    assert_eq!(hits.len() as u64, total.min(100));
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|pair| pair[0] >= pair[1]),
        "{scores:?}"
    );
    for hit in hits {
        let highlighted = hit["highlights"].as_array().unwrap();
        assert!(!highlighted.is_empty(), "{hit}");
        assert!(
            highlighted.iter().any(|h| h["fragments"]
                .to_string()
                .to_lowercase()
                .contains("<em>lamp</em>")),
            "{hit}"
        );
    }
    let everything = search(&subgraph, json!({ "size": 0 })).await;
    assert_eq!(
        everything["total"].as_u64().unwrap(),
        expected_spec().products()
    );
}

#[tokio::test]
async fn typed_filters_keep_only_matching_documents() {
    let subgraph = all_fields().await;
    let filters = json!({
        "category": { "in": ["garden", "books", "sports"] },
        "price": { "gte": 20, "lt": 400 },
        "in_stock": true,
        "created_at": { "gte": "2024-01-01T00:00:00Z" },
    });
    let result = search(&subgraph, json!({ "f": filters, "size": 100 })).await;
    let kept = products(&result);
    assert!(!kept.is_empty(), "{result}");
    assert_eq!(kept.len() as u64, result["total"].as_u64().unwrap());
    for product in &kept {
        assert!(
            ["garden", "books", "sports"].contains(&product["category"].as_str().unwrap()),
            "{product}"
        );
        let price = product["price"].as_f64().unwrap();
        assert!((20.0..400.0).contains(&price), "{product}");
        assert_eq!(product["in_stock"], true);
        assert!(product["created_at"].as_str().unwrap() >= "2024");
    }
    // Every one of them, not just some: the complement has none that match.
    let all = products(&search(&subgraph, json!({ "size": 100 })).await);
    let matching = all
        .iter()
        .filter(|p| {
            ["garden", "books", "sports"].contains(&p["category"].as_str().unwrap())
                && (20.0..400.0).contains(&p["price"].as_f64().unwrap())
                && p["in_stock"] == true
                && p["created_at"].as_str().unwrap() >= "2024"
        })
        .count();
    assert_eq!(matching, kept.len());
    let brand = kept[0]["brand"].clone();
    let one_brand = search(
        &subgraph,
        json!({ "f": { "brand": { "eq": brand } }, "size": 100 }),
    )
    .await;
    assert!(products(&one_brand).iter().all(|p| p["brand"] == brand));
}

#[tokio::test]
async fn facets_count_every_match() {
    let subgraph = all_fields().await;
    let facets = json!({
        "terms": [{ "field": "category", "size": 3 }],
        "ranges": [{ "field": "price", "ranges": [{ "key": "cheap", "to": 100 }, { "from": 100 }] }],
        "stats": ["price"],
    });
    let result = search(&subgraph, json!({ "facets": facets, "size": 100 })).await;
    let total = result["total"].as_u64().unwrap();
    let terms = &result["facets"]["terms"][0];
    assert_eq!(terms["field"], "category");
    assert_eq!(terms["buckets"].as_array().unwrap().len(), 3);
    let counted: u64 = terms["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted + terms["other"].as_u64().unwrap(), total);
    let all = products(&result);
    let first = &terms["buckets"][0];
    assert_eq!(
        all.iter()
            .filter(|p| p["category"] == first["value"])
            .count() as u64,
        first["count"].as_u64().unwrap()
    );
    let ranges = result["facets"]["ranges"][0]["buckets"].as_array().unwrap();
    assert_eq!(ranges[0]["key"], "cheap");
    let cheap = all
        .iter()
        .filter(|p| p["price"].as_f64().unwrap() < 100.0)
        .count() as u64;
    assert_eq!(ranges[0]["count"].as_u64().unwrap(), cheap);
    assert_eq!(ranges[1]["count"].as_u64().unwrap(), total - cheap);
    let stats = &result["facets"]["stats"][0];
    assert_eq!(stats["count"].as_u64().unwrap(), total);
    let max = all
        .iter()
        .map(|p| p["price"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert!((stats["max"].as_f64().unwrap() - max).abs() < 1e-6);
}

#[tokio::test]
async fn pages_by_from_and_by_cursor_agree() {
    let subgraph = all_fields().await;
    let sort = json!([{ "field": "price", "direction": "DESC" }]);
    let whole = search(&subgraph, json!({ "s": sort, "size": 20 })).await;
    let first = search(&subgraph, json!({ "s": sort, "size": 10 })).await;
    let second = search(&subgraph, json!({ "s": sort, "size": 10, "from": 10 })).await;
    let cursor = first["hits"][9]["cursor"].as_str().unwrap().to_owned();
    let after = search(&subgraph, json!({ "s": sort, "size": 10, "after": cursor })).await;
    let ids = |result: &Value| {
        products(result)
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!([ids(&first), ids(&second)].concat(), ids(&whole));
    assert_eq!(ids(&after), ids(&second));
    let prices: Vec<f64> = products(&whole)
        .iter()
        .map(|p| p["price"].as_f64().unwrap())
        .collect();
    assert!(
        prices.windows(2).all(|pair| pair[0] >= pair[1]),
        "{prices:?}"
    );
}

#[tokio::test]
async fn hostile_and_oversized_input_is_text_or_a_clean_error() {
    let subgraph = all_fields().await;
    let all = expected_spec().products();
    for text in [
        "*:*",
        "name:* OR id:*",
        "lamp\" OR \"*",
        "\\",
        "((((",
        "/.*/",
        "category:garden AND NOT x",
    ] {
        let result = search(&subgraph, json!({ "q": text, "size": 0 })).await;
        assert!(
            result["total"].as_u64().unwrap() < all,
            "{text:?} matched everything: {result}"
        );
    }
    for (arguments, what) in [
        (json!({ "size": 100_000 }), "size"),
        (json!({ "after": "not a cursor" }), "after"),
        (json!({ "after": "[{\"script\": 1}]" }), "after"),
        (json!({ "after": "[1, 2]", "from": 5 }), "after"),
    ] {
        let response = run(
            &subgraph,
            "query($size: Int, $after: String, $from: Int) { searchProducts(size: $size, after: $after, from: $from) { total } }",
            arguments,
        )
        .await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{what}: {response}"
        );
    }
}

#[tokio::test]
async fn a_thousand_entities_are_one_mget() {
    let transport = Transport::single_node(&endpoints().elasticsearch).unwrap();
    let client = Elasticsearch::new(transport);
    let index = format!("polygraph-scratch-{}", std::process::id());
    client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&index]))
        .send()
        .await
        .unwrap();
    client
        .indices()
        .create(IndicesCreateParts::Index(&index))
        .body(json!({ "mappings": { "properties": { "sku": { "type": "long" }, "title": { "type": "text" }, "colour": { "type": "keyword" } } } }))
        .send()
        .await
        .unwrap();
    let operations: Vec<BulkOperation<Value>> = (1..=1000)
        .map(|n| {
            BulkOperation::index(json!({ "sku": n, "title": format!("item {n}"), "colour": "red" }))
                .id(n.to_string())
                .into()
        })
        .collect();
    client
        .bulk(BulkParts::Index(&index))
        .body(operations)
        .refresh(elasticsearch::params::Refresh::True)
        .send()
        .await
        .unwrap();
    let yaml = format!(
        "url: {}\nindices: {{ {index}: {{ type: Item, key: sku, field: searchItems }} }}",
        endpoints().elasticsearch
    );
    let subgraph = Subgraph::start(&Config::from_yaml(&yaml).unwrap())
        .await
        .unwrap();
    let mut representations: Vec<Value> = (1..=1000)
        .rev()
        .map(|n| json!({ "__typename": "Item", "sku": n.to_string() }))
        .collect();
    representations.push(json!({ "__typename": "Item", "sku": "5000" }));
    let before = subgraph.requests();
    let response = run(
        &subgraph,
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { sku title colour } } }",
        json!({ "r": representations }),
    )
    .await;
    assert_eq!(subgraph.requests() - before, 1);
    let entities = response["data"]["_entities"].as_array().unwrap();
    assert_eq!(
        entities[0],
        json!({ "sku": "1000", "title": "item 1000", "colour": "red" })
    );
    assert_eq!(entities[999]["sku"], "1");
    assert!(entities[1000].is_null());
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{response}"
    );
    client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&index]))
        .send()
        .await
        .unwrap();
}

/// The corpus in `tests/corpus/elasticsearch/`, over HTTP against the demo index with every
/// field exposed: every answer, first sight and repeat, equals its golden answer, in the same
/// requests to the search server.
#[tokio::test]
async fn the_corpus_answers_as_recorded() {
    let subgraph = all_fields().await;
    let server = common::HttpSubgraph::start(subgraph.served()).await;
    common::corpus::check(&server, "elasticsearch", subgraph.recorder()).await;
}

/// `category in claims.categories` on the demo index, over HTTP with the tests' gateway key:
/// searches (hits, totals, facets) and `_entities` see only the caller's categories, on the
/// first sight and repeat alike.
#[tokio::test]
async fn row_rules_hold_for_searches_facets_and_entities() {
    let everything = all_fields().await;
    let facets = search(
        &everything,
        json!({ "size": 0, "facets": { "terms": [{ "field": "category", "size": 50 }] } }),
    )
    .await;
    let buckets = facets["facets"]["terms"][0]["buckets"].as_array().unwrap();
    assert!(buckets.len() > 1, "{facets}");
    let (mine, count) = (buckets[0]["value"].clone(), buckets[0]["count"].clone());

    let mut config = Config::from_file(&repo_root().join("config/elasticsearch.yaml")).unwrap();
    config.indices["products"].rule = Some("category in claims.categories".into());
    config.indices["products"].expose = None;
    let ruled = Subgraph::start(&config).await.unwrap();
    let server =
        common::HttpSubgraph::with_trust(ruled.served(), common::trusting("elasticsearch")).await;
    let token = common::gateway_token(
        "elasticsearch",
        &json!({ "sub": "1", "categories": [mine] }),
    );
    let query = json!({ "query": "{ searchProducts(size: 100, facets: { terms: [{ field: category }] }) { total hits { product { id category } } facets { terms { buckets { value count } } } } }" });
    let (status, _, regular) = server.exchange(&query, Some(&token)).await;
    assert_eq!(status, 200, "{regular}");
    let (_, _, repeat) = server.exchange(&query, Some(&token)).await;
    assert_eq!(repeat, regular);
    let result = &regular["data"]["searchProducts"];
    assert_eq!(result["total"], count, "{regular}");
    assert!(
        result["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|hit| hit["product"]["category"] == mine),
        "{regular}"
    );
    assert_eq!(
        result["facets"]["terms"][0]["buckets"],
        json!([{ "value": mine, "count": count }])
    );

    // _entities: another category's product is as absent as a missing one, every time.
    let theirs = search(
        &everything,
        json!({ "size": 1, "f": { "category": { "in": [buckets[1]["value"]] } } }),
    )
    .await;
    let theirs = products(&theirs)[0]["id"].clone();
    let own = result["hits"][0]["product"]["id"].clone();
    let entities = json!({
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id } } }",
        "variables": { "r": [{ "__typename": "Product", "id": own }, { "__typename": "Product", "id": theirs }] },
    });
    for _ in 0..2 {
        let (_, _, body) = server.exchange(&entities, Some(&token)).await;
        assert_eq!(body["data"]["_entities"][0]["id"], own, "{body}");
        assert_eq!(body["data"]["_entities"][1], Value::Null, "{body}");
    }

    // No claims: refused; claims without the one the rule reads: nothing.
    let (_, _, body) = server.exchange(&query, None).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    let nobody = common::gateway_token("elasticsearch", &json!({ "sub": "2" }));
    let (_, _, body) = server.exchange(&query, Some(&nobody)).await;
    assert_eq!(body["data"]["searchProducts"]["total"], 0, "{body}");
}
