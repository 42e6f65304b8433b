//! Change events for subscriptions (`<list>_changed`), from each configured collection's
//! change stream: inserts, updates and replaces, their `_id`s handed to the collection's
//! subscribers, who read each document as they may see it. A stream that breaks is opened
//! again after the last change it delivered (its resume token), so nothing is lost while the
//! server keeps that change in its oplog.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use mongodb::bson::{Bson, Document, doc};

use crate::model::Model;

/// Where the listeners hand changes to subscribers: documents' `_id`s, by collection name.
pub type Changes = polygraph_subgraph_core::changes::Hub<Bson>;

/// Follows the change stream of every collection with a subscription field until the process
/// ends.
pub async fn listen(database: mongodb::Database, model: Arc<Model>, changes: Arc<Changes>) {
    let followed = model
        .collections
        .iter()
        .filter(|collection| collection.changed_field.is_some())
        .map(|collection| {
            follow(
                database.clone(),
                collection.collection.clone(),
                changes.clone(),
            )
        });
    futures::future::join_all(followed).await;
}

/// Follows one collection's change stream, opening it again (where it left off) when it
/// breaks.
async fn follow(database: mongodb::Database, name: String, changes: Arc<Changes>) {
    let collection = database.collection::<Document>(&name);
    let mut resume = None;
    loop {
        let pipeline =
            [doc! { "$match": { "operationType": { "$in": ["insert", "update", "replace"] } } }];
        let mut watch = collection.watch().pipeline(pipeline);
        if let Some(token) = resume.clone() {
            watch = watch.start_after(token);
        }
        let mut stream = match watch.await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, collection = %name, "mongodb subgraph: cannot follow the change stream; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tracing::info!(collection = %name, "mongodb subgraph: following changes");
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    resume = Some(event.id.clone());
                    if let Some(id) = event.document_key.and_then(|key| key.get("_id").cloned()) {
                        changes.publish(&name, id);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, collection = %name, "mongodb subgraph: the change stream broke; resuming");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
