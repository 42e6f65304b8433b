//! Change events for subscription fields, shared by the subgraphs whose databases announce
//! changes (PostgreSQL's `NOTIFY`, MongoDB's change streams): one listener per subgraph hands
//! each changed record's key to a [`Hub`], and each subscriber [`follow`]s its source's keys,
//! reading every record back as it may see it.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::engine::{FieldError, Resolved};

/// Changes queued per source for subscribers that have not read them yet; one that falls
/// further behind loses its subscription (with `SUBSCRIPTION_LAGGED`), never the subgraph's
/// memory.
pub const BUFFER: usize = 1024;

/// Where changes go: a channel per source (a table, a collection), made when its first
/// subscriber comes.
pub struct Hub<K> {
    sources: Mutex<HashMap<String, broadcast::Sender<K>>>,
}

impl<K> Default for Hub<K> {
    fn default() -> Self {
        Self {
            sources: Mutex::default(),
        }
    }
}

impl<K> std::fmt::Debug for Hub<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl<K: Clone> Hub<K> {
    /// The changes of `source` from now on.
    pub fn subscribe(&self, source: &str) -> broadcast::Receiver<K> {
        let mut sources = self.sources.lock().expect("not poisoned");
        sources
            .entry(source.to_owned())
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    /// Hands a change of `source` to its subscribers, if it has any.
    pub fn publish(&self, source: &str, key: K) {
        let sources = self.sources.lock().expect("not poisoned");
        if let Some(sender) = sources.get(source) {
            // No receiver left is not an error: nobody is listening right now.
            let _ = sender.send(key);
        }
    }
}

/// A subscriber's events: each change's record as `read` gives it. A record the subscriber may
/// not see (`null` without errors) is no event; a read that fails ends the subscription with
/// its error, as does falling more than [`BUFFER`] changes behind.
pub fn follow<'a, K, F, R>(receiver: broadcast::Receiver<K>, read: F) -> BoxStream<'a, Resolved>
where
    K: Clone + Send + 'a,
    F: Fn(K) -> R + Send + Sync + 'a,
    R: std::future::Future<Output = Resolved> + Send + 'a,
{
    use broadcast::error::RecvError;
    let read = std::sync::Arc::new(read);
    futures::stream::unfold(Some(receiver), move |receiver| {
        let read = read.clone();
        async move {
            let mut receiver = receiver?;
            loop {
                match receiver.recv().await {
                    Ok(key) => {
                        let resolved = read(key).await;
                        if resolved.is_null() && resolved.errors.is_empty() {
                            continue;
                        }
                        let failed = resolved.is_null();
                        return Some((resolved, (!failed).then_some(receiver)));
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let message = format!(
                            "{missed} changes were dropped because this subscriber fell behind"
                        );
                        let error = FieldError::new(message).code("SUBSCRIPTION_LAGGED");
                        return Some((Resolved::failed(error), None));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
    .boxed()
}

/// A subscription field the engine answers (async-graphql only validates it): `name` of type
/// `type_name!`.
pub fn field(
    name: &str,
    type_name: &str,
    description: String,
) -> async_graphql::dynamic::SubscriptionField {
    use async_graphql::dynamic::{SubscriptionField, SubscriptionFieldFuture, TypeRef};
    SubscriptionField::new(name, TypeRef::named_nn(type_name), |_| {
        SubscriptionFieldFuture::new(async {
            Ok(futures::stream::empty::<
                async_graphql::Result<async_graphql::Value>,
            >())
        })
    })
    .description(description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_skip_what_they_may_not_see_and_stop_when_behind() {
        let hub: Hub<u32> = Hub::default();
        let receiver = hub.subscribe("items");
        // Odd keys are records the subscriber may not see.
        let mut events = follow(receiver, |key: u32| async move {
            if key % 2 == 1 {
                Resolved::json(serde_json::Value::Null)
            } else {
                Resolved::json(serde_json::json!(key))
            }
        });
        hub.publish("other", 100);
        for key in 1..=4 {
            hub.publish("items", key);
        }
        assert_eq!(events.next().await.unwrap().value, 2);
        assert_eq!(events.next().await.unwrap().value, 4);
        for key in 0..(BUFFER as u32 + 10) {
            hub.publish("items", key * 2);
        }
        let lagged = events.next().await.unwrap();
        assert_eq!(lagged.errors[0].extensions["code"], "SUBSCRIPTION_LAGGED");
        assert!(events.next().await.is_none());
    }
}
