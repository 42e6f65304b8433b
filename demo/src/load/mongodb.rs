//! MongoDB: product reviews, through unordered `insert_many` batches into a collection with a
//! `$jsonSchema` validator (which the MongoDB subgraph reads to type the collection).

use anyhow::Context as _;
use mongodb::bson::{self, Document, doc, oid::ObjectId};
use mongodb::{Client, IndexModel, options::IndexOptions};

use super::{DATA_VERSION, LoadOptions, Outcome, Progress, batches};
use crate::endpoints::Endpoints;
use crate::spec::DemoSpec;

const BATCH: u64 = 5_000;
pub const REVIEWS: &str = "reviews";
const MARKER: &str = "polygraph_demo_loaded";

pub(super) async fn load(
    spec: DemoSpec,
    endpoints: &Endpoints,
    options: LoadOptions,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let client = Client::with_uri_str(&endpoints.mongodb)
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                polygraph_service::config::redacted_url(&endpoints.mongodb)
            )
        })?;
    let database = client.database(&endpoints.mongodb_database);
    progress.set_total(spec.reviews());

    let markers = database.collection::<Document>(MARKER);
    let wanted = doc! { "_id": "demo", "seed": spec.seed as i64, "scale": spec.scale as i64, "version": DATA_VERSION };
    if !options.force && markers.find_one(doc! { "_id": "demo" }).await? == Some(wanted.clone()) {
        return Ok(Outcome::AlreadyLoaded);
    }
    markers.delete_many(doc! {}).await?;

    let reviews = database.collection::<Document>(REVIEWS);
    reviews.drop().await.context("dropping reviews")?;
    database
        .create_collection(REVIEWS)
        .validator(review_schema())
        .await
        .context("creating reviews with its validator")?;
    reviews
        .create_indexes([
            IndexModel::builder()
                .keys(doc! { "review_id": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
            IndexModel::builder().keys(doc! { "product_id": 1 }).build(),
            IndexModel::builder().keys(doc! { "user_id": 1 }).build(),
        ])
        .await
        .context("creating indexes on reviews")?;

    for range in batches(spec.reviews(), BATCH) {
        let documents: Vec<Document> = range.map(|id| review_document(&spec, id)).collect();
        let written = documents.len() as u64;
        reviews.insert_many(documents).ordered(false).await?;
        progress.advance(written);
    }
    markers.insert_one(wanted).await?;
    Ok(Outcome::Loaded)
}

fn review_document(spec: &DemoSpec, id: u64) -> Document {
    let review = spec.review(id);
    doc! {
        "_id": ObjectId::from_bytes(review.object_id),
        "review_id": id as i64,
        "product_id": review.product_id as i64,
        "user_id": review.user_id as i64,
        "rating": review.rating as i32,
        "title": review.title,
        "body": review.body,
        "helpful_votes": review.helpful_votes as i32,
        "verified_purchase": review.verified_purchase,
        "created_at": bson::DateTime::from_millis(review.created_at.timestamp_millis()),
    }
}

/// The reviews collection's validator: the declared shape of a review.
pub fn review_schema() -> Document {
    doc! {
        "$jsonSchema": {
            "bsonType": "object",
            "title": "Review",
            "description": "A customer's review of a product.",
            "required": ["review_id", "product_id", "user_id", "rating", "title", "created_at"],
            "properties": {
                "review_id": { "bsonType": "long" },
                "product_id": { "bsonType": "long" },
                "user_id": { "bsonType": "long" },
                "rating": { "bsonType": "int", "minimum": 1, "maximum": 5 },
                "title": { "bsonType": "string" },
                "body": { "bsonType": "string" },
                "helpful_votes": { "bsonType": "int", "minimum": 0 },
                "verified_purchase": { "bsonType": "bool" },
                "created_at": { "bsonType": "date" },
            }
        }
    }
}
