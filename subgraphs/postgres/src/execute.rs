//! Execution: one statement, its parameters bound, one round trip.

use polygraph_subgraph_core::recorder::Recorder;
use serde_json::Value as Json;
use sqlx::PgPool;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;

use crate::translate::{Param, Statement};

fn bind(statement: &Statement) -> Query<'_, sqlx::Postgres, PgArguments> {
    statement
        .params
        .iter()
        .fold(sqlx::query(&statement.sql), |query, param| match param {
            Param::Text(text) => query.bind(text.as_deref()),
            Param::TextArray(texts) => query.bind(texts.as_slice()),
        })
}

/// Runs statements on a pool and counts them (keeping their SQL when asked), so tests and
/// metrics can check the round trips a request took.
#[derive(Debug)]
pub struct Executor {
    pool: PgPool,
    recorder: Recorder,
}

impl Executor {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            recorder: Recorder::new("postgres", "postgresql"),
        }
    }

    /// Statements run since start-up.
    pub fn statements(&self) -> u64 {
        self.recorder.count()
    }

    /// Counts statements, and keeps their texts while a test asks it to.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// `SELECT 1`, for readiness.
    pub async fn ping(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }

    fn pool(&self, sql: &str) -> &PgPool {
        self.recorder.note(sql);
        &self.pool
    }
}

/// Runs a statement whose rows have one `doc` column (JSON as text); returns the documents in
/// order (a SQL null, as from a mutation that matched no row, is a JSON null).
pub async fn documents(
    executor: &Executor,
    statement: &Statement,
) -> Result<Vec<Json>, sqlx::Error> {
    document_texts(executor, statement)
        .await?
        .into_iter()
        .map(|text| {
            text.map_or(Ok(Json::Null), |text| {
                serde_json::from_str(&text).map_err(|error| sqlx::Error::Decode(Box::new(error)))
            })
        })
        .collect()
}

/// The documents of [`documents`] as PostgreSQL wrote them, unparsed, for splicing into a
/// response.
pub async fn document_texts(
    executor: &Executor,
    statement: &Statement,
) -> Result<Vec<Option<String>>, sqlx::Error> {
    use sqlx::Row as _;
    tracing::debug!(sql = %statement.sql, "query");
    let rows = executor
        .recorder
        .round_trip(
            &statement.sql,
            bind(statement).fetch_all(executor.pool(&statement.sql)),
        )
        .await?;
    rows.iter().map(|row| row.try_get("doc")).collect()
}

/// Runs an entities statement; returns `(key, doc)` pairs as text: the key as
/// [`crate::translate::key_text`] writes it, the document as JSON text, unparsed.
pub async fn keyed_documents(
    executor: &Executor,
    statement: &Statement,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    use sqlx::Row as _;
    tracing::debug!(sql = %statement.sql, "entities query");
    let rows = executor
        .recorder
        .round_trip(
            &statement.sql,
            bind(statement).fetch_all(executor.pool(&statement.sql)),
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("key")?, row.try_get("doc")?)))
        .collect()
}
