//! Neo4j itself: Cypher statements with bound parameters, run as auto-commit reads on the
//! driver's bounded threads, each ended by the server at the statement timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use neo4j::driver::Driver;
use neo4j::session::SessionConfig;
use neo4j::transaction::TransactionTimeout;
use neo4j::{ValueReceive, ValueSend};
use polygraph_subgraph_core::engine::FieldError;

use crate::errors::{busy, database_error, timed_out};
use crate::model::Model;
use crate::pool::{BlockingPool, PoolError};

/// The driver, its threads, and a count of statements run.
pub struct Graph {
    pub(crate) driver: Arc<Driver>,
    pub(crate) pool: BlockingPool,
    pub(crate) statements: Arc<AtomicU64>,
    /// How long a statement may run: the server ends its transaction then, and the request
    /// stops waiting shortly after even if the server does not.
    pub(crate) timeout: std::time::Duration,
}

/// How long past its timeout a statement is waited for, for the server's own answer.
const TIMEOUT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The related ids of each key, by key.
pub(crate) type Related = HashMap<RelatedKey, Arc<Vec<String>>>;

impl Graph {
    /// Runs `cypher` with `parameters` on a driver thread; returns each record's `key` and
    /// `items`.
    #[allow(clippy::result_large_err)] // the driver's own error type, in its own callbacks
    pub(crate) async fn related(
        &self,
        cypher: String,
        parameters: HashMap<String, ValueSend>,
    ) -> Result<Vec<(ValueReceive, Vec<ValueReceive>)>, FieldError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let driver = self.driver.clone();
        let timeout = self.timeout;
        let millis = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let work = self.pool.run(move || {
            let limit = TransactionTimeout::from_millis(millis).unwrap_or_default();
            // An auto-commit read: the server runs explicit transactions one at a time, so a
            // slow one would hold up every other request.
            let mut session = driver.session(SessionConfig::new());
            session
                .auto_commit(cypher.as_str())
                .with_parameters(&parameters)
                .with_transaction_timeout(limit)
                .with_receiver(|stream| stream.collect::<Result<Vec<_>, _>>())
                .run()
        });
        // Dropping `work` (the caller went away, or the wait ended) cancels it if no thread
        // has taken it yet.
        let records = match tokio::time::timeout(timeout + TIMEOUT_GRACE, work).await {
            Err(_) => return Err(timed_out(timeout)),
            Ok(Err(PoolError::Busy)) => return Err(busy()),
            Ok(Err(error)) => return Err(database_error(&error)),
            Ok(Ok(Err(error))) if is_timeout(&error) => return Err(timed_out(timeout)),
            Ok(Ok(Err(error))) => return Err(database_error(&error)),
            Ok(Ok(Ok(records))) => records,
        };
        Ok(records
            .into_iter()
            .map(|mut record| {
                let key = record.take_value("key").unwrap_or(ValueReceive::Null);
                let items = match record.take_value("items") {
                    Some(ValueReceive::List(items)) => items,
                    _ => Vec::new(),
                };
                (key, items)
            })
            .collect())
    }

    /// The related ids of every key: one statement per relationship and limit, side by side
    /// on the driver's threads.
    pub(crate) async fn load(
        &self,
        model: &Model,
        keys: &[RelatedKey],
    ) -> Result<Related, FieldError> {
        let mut groups: HashMap<(usize, u64), Vec<&RelatedKey>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.relationship, key.limit))
                .or_default()
                .push(key);
        }
        let statements = groups
            .into_iter()
            .map(|((relationship, limit), keys)| self.load_group(model, relationship, limit, keys));
        let mut loaded = HashMap::with_capacity(keys.len());
        for group in futures::future::try_join_all(statements).await? {
            loaded.extend(group);
        }
        Ok(loaded)
    }

    /// One statement for every key of one relationship with one limit.
    async fn load_group(
        &self,
        model: &Model,
        relationship: usize,
        limit: u64,
        keys: Vec<&RelatedKey>,
    ) -> Result<Vec<(RelatedKey, Arc<Vec<String>>)>, FieldError> {
        {
            let spec = &model.relationships[relationship];
            let entity = model.entity(&spec.entity).expect("checked at start-up");
            // Keys become the stored type; one that cannot (a non-number for integer keys)
            // matches nothing rather than reaching Cypher.
            let bound: Vec<ValueSend> = keys
                .iter()
                .filter_map(|key| {
                    if entity.integer_keys {
                        key.id.parse::<i64>().ok().map(ValueSend::Integer)
                    } else {
                        Some(ValueSend::String(key.id.clone()))
                    }
                })
                .collect();
            let mut related: HashMap<String, Vec<String>> = HashMap::new();
            if !bound.is_empty() {
                let parameters = HashMap::from([
                    ("keys".to_owned(), ValueSend::List(bound)),
                    ("limit".to_owned(), ValueSend::Integer(limit as i64)),
                ]);
                for (key, items) in self.related(spec.cypher.clone(), parameters).await? {
                    if let Some(key) = key_text(&key) {
                        related.insert(key, items.iter().filter_map(key_text).collect());
                    }
                }
            }
            Ok(keys
                .into_iter()
                .map(|key| {
                    (
                        key.clone(),
                        Arc::new(related.remove(&key.id).unwrap_or_default()),
                    )
                })
                .collect())
        }
    }
}

/// Whether the server ended the transaction for running past its timeout.
fn is_timeout(error: &neo4j::Neo4jError) -> bool {
    error.to_string().contains("TransactionTimedOut")
}

/// A key as the `ID` text GraphQL shows.
fn key_text(value: &ValueReceive) -> Option<String> {
    match value {
        ValueReceive::Integer(n) => Some(n.to_string()),
        ValueReceive::String(text) => Some(text.clone()),
        _ => None,
    }
}

/// One entity's relationship field with one `limit`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RelatedKey {
    pub(crate) relationship: usize,
    pub(crate) limit: u64,
    pub(crate) id: String,
}
