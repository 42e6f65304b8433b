//! Change events for subscriptions (`<group>_changed`), from Redis keyspace notifications: a
//! write to a group's hash (`HSET` and its kin) hands the entity's id to the group's
//! subscribers, who read the entity's features as they may see them.
//!
//! Keyspace notifications are off by default in Redis: at start the subgraph adds the events
//! it needs (`K` and `h`) to `notify-keyspace-events` with `CONFIG SET`, keeping those already
//! on; a server that refuses (`CONFIG` is often disabled where Redis is managed) is logged,
//! and its operators turn them on instead. Notifications are fire and forget: those sent while
//! the subscriber connection is down are lost.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;

use crate::model::Model;

/// Where the listener hands changes to subscribers: entity ids, by group name.
pub type Changes = polygraph_subgraph_core::changes::Hub<String>;

/// The hash commands whose notifications are changes.
const WRITES: [&str; 5] = ["hset", "hsetnx", "hincrby", "hincrbyfloat", "hdel"];

/// `flags` with keyspace (`K`) and hash (`h`) events added, unless `A` (all) covers them.
fn with_hash_events(flags: &str) -> String {
    let mut flags = flags.to_owned();
    if !flags.contains('K') {
        flags.push('K');
    }
    if !flags.contains('h') && !flags.contains('A') {
        flags.push('h');
    }
    flags
}

/// Turns on the notifications the listener needs, keeping those already on.
async fn notifications_on(connection: &mut redis::aio::MultiplexedConnection) {
    let current: Result<Vec<String>, _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(connection)
        .await;
    let flags = current
        .ok()
        .and_then(|pair| pair.get(1).cloned())
        .unwrap_or_default();
    let wanted = with_hash_events(&flags);
    if wanted == flags {
        return;
    }
    let set: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(&wanted)
        .query_async(connection)
        .await;
    if let Err(error) = set {
        tracing::error!(%error, "redis subgraph: cannot turn on keyspace notifications (notify-keyspace-events Kh); the subscription fields hear of no change until they are on");
    }
}

/// Listens for writes to the hashes of every group with a subscription field until the
/// process ends, reconnecting when the connection is lost.
pub async fn listen(client: redis::Client, model: Arc<Model>, changes: Arc<Changes>) {
    if model
        .groups
        .iter()
        .all(|group| group.changed_field.is_none())
    {
        return;
    }
    let database = client.get_connection_info().redis_settings().db();
    loop {
        if let Err(error) = follow(&client, database, &model, &changes).await {
            tracing::warn!(%error, "redis subgraph: keyspace notifications stopped; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow(
    client: &redis::Client,
    database: i64,
    model: &Model,
    changes: &Changes,
) -> redis::RedisResult<()> {
    let mut connection = client.get_multiplexed_async_connection().await?;
    notifications_on(&mut connection).await;
    let mut pubsub = client.get_async_pubsub().await?;
    let channel = format!("__keyspace@{database}__:");
    for group in model.groups.iter().filter(|g| g.changed_field.is_some()) {
        pubsub
            .psubscribe(format!("{channel}{}*{}", group.prefix, group.suffix))
            .await?;
    }
    tracing::info!("redis subgraph: following feature writes");
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let Ok(event) = message.get_payload::<String>() else {
            continue;
        };
        if !WRITES.contains(&event.as_str()) {
            continue;
        }
        let Some(key) = message.get_channel_name().strip_prefix(channel.as_str()) else {
            continue;
        };
        for group in model.groups.iter().filter(|g| g.changed_field.is_some()) {
            if let Some(id) = group.id_of(key) {
                changes.publish(&group.name, id.to_owned());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_events_are_added_to_what_is_on() {
        assert_eq!(with_hash_events(""), "Kh");
        assert_eq!(with_hash_events("Ex"), "ExKh");
        assert_eq!(with_hash_events("KA"), "KA");
        assert_eq!(with_hash_events("Kh"), "Kh");
    }
}
