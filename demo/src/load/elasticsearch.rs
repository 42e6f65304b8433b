//! Elasticsearch / OpenSearch: the product search index, created with explicit mappings and
//! filled through `_bulk`.

use anyhow::{Context as _, bail};
use elasticsearch::http::transport::Transport;
use elasticsearch::indices::{IndicesCreateParts, IndicesDeleteParts, IndicesRefreshParts};
use elasticsearch::{BulkOperation, BulkParts, Elasticsearch, GetParts, IndexParts};
use serde_json::{Value, json};

use super::{DATA_VERSION, LoadOptions, Outcome, Progress, batches};
use crate::endpoints::Endpoints;
use crate::spec::DemoSpec;

const BATCH: u64 = 5_000;
pub const PRODUCTS_INDEX: &str = "products";
const MARKER_INDEX: &str = "polygraph-demo-loaded";

pub(super) async fn load(
    spec: DemoSpec,
    endpoints: &Endpoints,
    options: LoadOptions,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let transport = Transport::single_node(&endpoints.elasticsearch).with_context(|| {
        format!(
            "POLYGRAPH_ELASTICSEARCH_URL {}",
            polygraph_service::config::redacted_url(&endpoints.elasticsearch)
        )
    })?;
    let client = Elasticsearch::new(transport);
    progress.set_total(spec.products());

    let wanted = json!({ "seed": spec.seed, "scale": spec.scale, "version": DATA_VERSION });
    let marker = client
        .get(GetParts::IndexId(MARKER_INDEX, "demo"))
        .send()
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                polygraph_service::config::redacted_url(&endpoints.elasticsearch)
            )
        })?;
    if marker.status_code().is_success() {
        let body: Value = marker.json().await?;
        if !options.force && body["_source"] == wanted {
            return Ok(Outcome::AlreadyLoaded);
        }
    }

    for index in [MARKER_INDEX, PRODUCTS_INDEX] {
        // A missing index answers 404, which is what we want anyway.
        client
            .indices()
            .delete(IndicesDeleteParts::Index(&[index]))
            .send()
            .await?;
    }
    let created = client
        .indices()
        .create(IndicesCreateParts::Index(PRODUCTS_INDEX))
        .body(products_index())
        .send()
        .await?;
    ensure_success(created, "creating the products index").await?;

    for range in batches(spec.products(), BATCH) {
        let mut operations: Vec<BulkOperation<Value>> = Vec::with_capacity(BATCH as usize);
        for id in range {
            let product = spec.product(id);
            let features = spec.product_features(id);
            operations.push(
                BulkOperation::index(json!({
                    "id": id,
                    "name": product.name,
                    "description": product.description,
                    "category": product.category,
                    "brand": product.brand,
                    "price": product.price_cents as f64 / 100.0,
                    "tags": product.tags,
                    "in_stock": product.in_stock,
                    "popularity": features.popularity,
                    "created_at": product.created_at.to_rfc3339(),
                }))
                .id(id.to_string())
                .into(),
            );
        }
        let written = operations.len() as u64;
        let response = client
            .bulk(BulkParts::Index(PRODUCTS_INDEX))
            .body(operations)
            .send()
            .await?;
        let body: Value = ensure_success(response, "bulk indexing products").await?;
        if body["errors"].as_bool() == Some(true) {
            bail!(
                "bulk indexing reported item errors: {}",
                first_bulk_error(&body)
            );
        }
        progress.advance(written);
    }
    client
        .indices()
        .refresh(IndicesRefreshParts::Index(&[PRODUCTS_INDEX]))
        .send()
        .await?;
    let marker_written = client
        .index(IndexParts::IndexId(MARKER_INDEX, "demo"))
        .body(wanted)
        .refresh(elasticsearch::params::Refresh::True)
        .send()
        .await?;
    ensure_success(marker_written, "writing the load marker").await?;
    Ok(Outcome::Loaded)
}

/// Mappings of the product search index: full text where people search, keywords where they
/// filter and facet.
pub fn products_index() -> Value {
    json!({
        "settings": { "number_of_shards": 1, "number_of_replicas": 0 },
        "mappings": {
            "properties": {
                "id": { "type": "long" },
                "name": { "type": "text", "fields": { "keyword": { "type": "keyword" } } },
                "description": { "type": "text" },
                "category": { "type": "keyword" },
                "brand": { "type": "keyword" },
                "price": { "type": "double" },
                "tags": { "type": "keyword" },
                "in_stock": { "type": "boolean" },
                "popularity": { "type": "float" },
                "created_at": { "type": "date" }
            }
        }
    })
}

async fn ensure_success(
    response: elasticsearch::http::response::Response,
    what: &str,
) -> anyhow::Result<Value> {
    let status = response.status_code();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {body}");
    }
    Ok(body)
}

fn first_bulk_error(body: &Value) -> String {
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_object()?.values().next()?.get("error"))
        .map(ToString::to_string)
        .next()
        .unwrap_or_default()
}
