//! Change events for subscriptions (`<list>_changed`), from PostgreSQL itself: a trigger on
//! each table configured with `changes: true` sends the changed row's primary key with
//! `NOTIFY` after every insert or update, and one `LISTEN`ing connection per subgraph hands
//! each key to that table's subscribers, who read the row as they may see it.
//!
//! Notifications are delivered on commit, in commit order, never for a rolled-back
//! transaction. Those sent while the listening connection is lost (before it reconnects) are
//! lost: the log says so, and subscribers see the next change.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use sqlx::PgPool;

use crate::model::Model;
use crate::sql::quote;

/// The channel every trigger of ours notifies.
const CHANNEL: &str = "polygraph_changes";

/// One changed row: its primary key, by column name.
pub(crate) type Key = Arc<Map<String, Json>>;

/// Where the listener hands changes to subscribers, by table name.
pub type Changes = polygraph_subgraph_core::changes::Hub<Key>;

/// The trigger function and a trigger per table with changes, replaced in place, under a lock
/// so that replicas starting together do not trip over each other.
fn install_statements(model: &Model) -> Vec<String> {
    let schema = quote(&model.schema);
    let mut statements = vec![
        format!("SELECT pg_advisory_xact_lock(hashtext('{CHANNEL}'))"),
        format!(
            "CREATE OR REPLACE FUNCTION {schema}.polygraph_notify_change() RETURNS trigger \
             LANGUAGE plpgsql AS $polygraph$
DECLARE
  row_data jsonb := to_jsonb(NEW);
  key jsonb := '{{}}'::jsonb;
  name text;
BEGIN
  FOREACH name IN ARRAY TG_ARGV LOOP
    key := key || jsonb_build_object(name, row_data -> name);
  END LOOP;
  PERFORM pg_notify('{CHANNEL}', jsonb_build_object(
    'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', TG_OP, 'key', key)::text);
  RETURN NULL;
END
$polygraph$"
        ),
    ];
    for table in model.tables.iter().filter(|t| t.changed_field.is_some()) {
        let columns: Vec<String> = table
            .primary_key
            .iter()
            .map(|&column| format!("'{}'", table.columns[column].column.replace('\'', "''")))
            .collect();
        statements.push(format!(
            "CREATE OR REPLACE TRIGGER polygraph_changes AFTER INSERT OR UPDATE ON {schema}.{} \
             FOR EACH ROW EXECUTE FUNCTION {schema}.polygraph_notify_change({})",
            quote(&table.table),
            columns.join(", ")
        ));
    }
    statements
}

/// Runs [`install_statements`] in one transaction (one round trip).
async fn install(pool: &PgPool, model: &Model) -> Result<(), sqlx::Error> {
    let script = format!(
        "BEGIN;\n{};\nCOMMIT;",
        install_statements(model).join(";\n")
    );
    sqlx::raw_sql(&script).execute(pool).await.map(|_| ())
}

/// Installs the triggers, then listens for changes and hands them to `changes` until the
/// process ends; retries (and logs) whatever fails on the way.
pub async fn listen(pool: PgPool, model: Arc<Model>, changes: Arc<Changes>) {
    if model.tables.iter().all(|t| t.changed_field.is_none()) {
        return;
    }
    let mut wait = Duration::from_millis(250);
    while let Err(error) = install(&pool, &model).await {
        tracing::error!(%error, "postgres subgraph: cannot install the change triggers; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "postgres subgraph: cannot listen for changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "postgres subgraph: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        tracing::info!("postgres subgraph: listening for changes");
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => dispatch(&model, &changes, notification.payload()),
                Ok(None) => {
                    tracing::warn!(
                        "postgres subgraph: the change listener lost its connection; changes until it reconnects are not delivered"
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "postgres subgraph: the change listener failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Hands one notification's change to its table's subscribers.
fn dispatch(model: &Model, changes: &Changes, payload: &str) {
    #[derive(serde::Deserialize)]
    struct Notified {
        schema: String,
        table: String,
        key: Map<String, Json>,
    }
    let Ok(notified) = serde_json::from_str::<Notified>(payload) else {
        tracing::warn!(
            payload,
            "postgres subgraph: a change notification that is not ours"
        );
        return;
    };
    if notified.schema == model.schema {
        changes.publish(&notified.table, Arc::new(notified.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_only_their_tables_subscribers() {
        let model = Model {
            schema: "public".to_owned(),
            tables: Vec::new(),
            max_limit: 10,
            max_depth: 10,
            max_complexity: 100,
            foreign: Vec::new(),
        };
        let changes = Changes::default();
        let mut products = changes.subscribe("products");
        let mut users = changes.subscribe("users");
        dispatch(
            &model,
            &changes,
            r#"{"schema":"public","table":"products","op":"UPDATE","key":{"id":7}}"#,
        );
        dispatch(
            &model,
            &changes,
            r#"{"schema":"other","table":"users","op":"INSERT","key":{"id":1}}"#,
        );
        dispatch(&model, &changes, "not json");
        assert_eq!(products.try_recv().unwrap()["id"], 7);
        assert!(products.try_recv().is_err());
        assert!(users.try_recv().is_err());
    }
}
