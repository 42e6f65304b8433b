//! Neo4j itself: Cypher statements with bound parameters, run as auto-commit reads on the
//! driver's bounded threads, each ended by the server at the statement timeout.

use polygraph_subgraph_core::recorder::Recorder;
use std::collections::HashMap;
use std::sync::Arc;

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
    pub(crate) statements: Arc<Recorder>,
    /// How long a statement may run: the server ends its transaction then, and the request
    /// stops waiting shortly after even if the server does not.
    pub(crate) timeout: std::time::Duration,
}

/// How long past its timeout a statement is waited for, for the server's own answer.
const TIMEOUT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The related ids of each key, by key.
pub(crate) type Related = HashMap<RelatedKey, Arc<Vec<String>>>;

impl Graph {
    /// Checks that the server answers (a connection made or reused), for readiness.
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let driver = self.driver.clone();
        let check = move || {
            driver
                .verify_connectivity()
                .map_err(|error| error.to_string())
        };
        match self.pool.run(check).await {
            Ok(answered) => answered,
            Err(error) => Err(format!("{error:?}")),
        }
    }

    /// Runs `cypher` with `parameters` on a driver thread; returns each record's `key` and
    /// `items`.
    #[allow(clippy::result_large_err)] // the driver's own error type, in its own callbacks
    pub(crate) async fn related(
        &self,
        cypher: String,
        parameters: HashMap<String, ValueSend>,
    ) -> Result<Vec<(ValueReceive, Vec<ValueReceive>)>, FieldError> {
        self.statements.note(&cypher);
        let shape = cypher.clone();
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
        let trip = async {
            match tokio::time::timeout(timeout + TIMEOUT_GRACE, work).await {
                Err(_) => Err(timed_out(timeout)),
                Ok(Err(PoolError::Busy)) => Err(busy()),
                Ok(Err(error)) => Err(database_error(&error)),
                Ok(Ok(Err(error))) if is_timeout(&error) => Err(timed_out(timeout)),
                Ok(Ok(Err(error))) => Err(database_error(&error)),
                Ok(Ok(Ok(records))) => Ok(records),
            }
        };
        let records = self.statements.round_trip(&shape, trip).await?;
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

    /// The related ids of every key. One statement per relationship (at the largest limit
    /// asked, each key's list cut to its own), for at most `max_ids` distinct ids each; the
    /// relationships side by side on the driver's threads, a relationship's statements one
    /// after another, so one request holds at most a thread per relationship.
    pub(crate) async fn load(
        &self,
        model: &Model,
        keys: &[RelatedKey],
    ) -> Result<Related, FieldError> {
        let mut groups: HashMap<usize, (u64, Vec<&str>)> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            let (limit, ids) = groups.entry(key.relationship).or_default();
            *limit = (*limit).max(key.limit);
            // An id asked for twice (aliases, shared children, repeated references) is read once.
            if seen.insert((key.relationship, key.id.as_str())) {
                ids.push(&key.id);
            }
        }
        let statements = groups
            .into_iter()
            .map(|(relationship, (limit, ids))| async move {
                let mut related = HashMap::with_capacity(ids.len());
                for chunk in ids.chunks(model.max_ids.max(1)) {
                    related.extend(self.load_group(model, relationship, limit, chunk).await?);
                }
                Ok::<_, FieldError>((relationship, related))
            });
        let loaded: HashMap<usize, HashMap<String, Vec<String>>> =
            futures::future::try_join_all(statements)
                .await?
                .into_iter()
                .collect();
        Ok(keys
            .iter()
            .map(|key| {
                let related = loaded
                    .get(&key.relationship)
                    .and_then(|related| related.get(&key.id))
                    .map(|ids| ids.iter().take(key.limit_usize()).cloned().collect())
                    .unwrap_or_default();
                (key.clone(), Arc::new(related))
            })
            .collect())
    }

    /// One statement for `ids` over one relationship: each id's related ids, most relevant
    /// first, at most `limit` of them.
    async fn load_group(
        &self,
        model: &Model,
        relationship: usize,
        limit: u64,
        ids: &[&str],
    ) -> Result<HashMap<String, Vec<String>>, FieldError> {
        let spec = &model.relationships[relationship];
        let entity = model.entity(&spec.entity).expect("checked at start-up");
        // Keys become the stored type; one that cannot (a non-number for integer keys) matches
        // nothing rather than reaching Cypher.
        let bound: Vec<ValueSend> = ids
            .iter()
            .filter_map(|id| {
                if entity.integer_keys {
                    id.parse::<i64>().ok().map(ValueSend::Integer)
                } else {
                    Some(ValueSend::String((*id).to_owned()))
                }
            })
            .collect();
        let mut related = HashMap::new();
        if bound.is_empty() {
            return Ok(related);
        }
        let parameters = HashMap::from([
            ("keys".to_owned(), ValueSend::List(bound)),
            (
                "limit".to_owned(),
                ValueSend::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
            ),
        ]);
        for (key, items) in self.related(spec.cypher.clone(), parameters).await? {
            if let Some(key) = key_text(&key) {
                related.insert(key, items.iter().filter_map(key_text).collect());
            }
        }
        Ok(related)
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

impl RelatedKey {
    fn limit_usize(&self) -> usize {
        usize::try_from(self.limit).unwrap_or(usize::MAX)
    }
}
