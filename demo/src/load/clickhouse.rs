//! ClickHouse: order and click events and the monthly history of user features, through
//! `RowBinary` inserts. The SQL here runs on ClickHouse 18.16 (the server on these machines)
//! and on current releases alike.

use anyhow::Context as _;
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use super::{DATA_VERSION, LoadOptions, Outcome, Progress, batches};
use crate::endpoints::Endpoints;
use crate::spec::DemoSpec;

const BATCH: u64 = 50_000;

/// Table definitions, in creation order.
pub const TABLES: &[(&str, &str)] = &[
    (
        "order_events",
        "CREATE TABLE IF NOT EXISTS order_events (
            event_time DateTime,
            order_id UInt64,
            line UInt32,
            user_id UInt64,
            product_id UInt64,
            quantity UInt32,
            amount Float64,
            status String
        ) ENGINE = MergeTree ORDER BY (product_id, event_time)",
    ),
    (
        "click_events",
        "CREATE TABLE IF NOT EXISTS click_events (
            event_time DateTime,
            click_id UInt64,
            user_id UInt64,
            product_id UInt64,
            session_id String,
            event_type String
        ) ENGINE = MergeTree ORDER BY (user_id, event_time)",
    ),
    (
        "feature_history",
        "CREATE TABLE IF NOT EXISTS feature_history (
            entity String,
            entity_id UInt64,
            feature String,
            value Float64,
            event_time DateTime
        ) ENGINE = MergeTree ORDER BY (entity, entity_id, feature, event_time)",
    ),
    (
        "polygraph_demo_loaded",
        "CREATE TABLE IF NOT EXISTS polygraph_demo_loaded (
            seed UInt64,
            scale UInt64,
            version Int64
        ) ENGINE = TinyLog",
    ),
];

#[derive(Row, Serialize)]
struct OrderEvent<'a> {
    event_time: u32,
    order_id: u64,
    line: u32,
    user_id: u64,
    product_id: u64,
    quantity: u32,
    amount: f64,
    status: &'a str,
}

#[derive(Row, Serialize)]
struct ClickEvent<'a> {
    event_time: u32,
    click_id: u64,
    user_id: u64,
    product_id: u64,
    session_id: &'a str,
    event_type: &'a str,
}

#[derive(Row, Serialize)]
struct FeatureValue<'a> {
    entity: &'a str,
    entity_id: u64,
    feature: &'a str,
    value: f64,
    event_time: u32,
}

#[derive(Row, Serialize, Deserialize, PartialEq, Debug, Clone, Copy)]
struct Marker {
    seed: u64,
    scale: u64,
    version: i64,
}

/// A client for `endpoints`' ClickHouse, in the demo database. Validation of inserts is off
/// because it needs `RowBinaryWithNamesAndTypes`, which ClickHouse 18.16 lacks.
pub fn client(endpoints: &Endpoints) -> Client {
    Client::default()
        .with_url(&endpoints.clickhouse)
        .with_database(&endpoints.clickhouse_database)
        .with_validation(false)
}

pub(super) async fn load(
    spec: DemoSpec,
    endpoints: &Endpoints,
    options: LoadOptions,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let server = Client::default()
        .with_url(&endpoints.clickhouse)
        .with_validation(false);
    server
        .query("CREATE DATABASE IF NOT EXISTS ?")
        .bind(clickhouse::sql::Identifier(&endpoints.clickhouse_database))
        .execute()
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                polygraph_service::config::redacted_url(&endpoints.clickhouse)
            )
        })?;
    let client = client(endpoints);
    for (name, ddl) in TABLES {
        client
            .query(ddl)
            .execute()
            .await
            .with_context(|| format!("creating table {name}"))?;
    }
    let counts = spec.counts();
    progress.set_total(counts.order_items + counts.clicks + counts.feature_history);

    let wanted = Marker {
        seed: spec.seed,
        scale: spec.scale,
        version: DATA_VERSION,
    };
    let markers: Vec<Marker> = client
        .query("SELECT seed, scale, version FROM polygraph_demo_loaded")
        .fetch_all()
        .await?;
    if !options.force && markers.as_slice() == [wanted] {
        return Ok(Outcome::AlreadyLoaded);
    }
    // Dropped and created again rather than truncated: ClickHouse 18.16's TRUNCATE of a
    // MergeTree table leaves most of its parts behind.
    for (name, ddl) in TABLES {
        client
            .query("DROP TABLE IF EXISTS ?")
            .bind(clickhouse::sql::Identifier(name))
            .execute()
            .await
            .with_context(|| format!("dropping table {name}"))?;
        client
            .query(ddl)
            .execute()
            .await
            .with_context(|| format!("creating table {name}"))?;
    }

    insert_events(&client, spec, progress).await?;

    let mut insert = client.insert::<Marker>("polygraph_demo_loaded").await?;
    insert.write(&wanted).await?;
    insert.end().await?;
    Ok(Outcome::Loaded)
}

/// Inserts order events, click events and feature history, one `INSERT` per batch.
async fn insert_events(client: &Client, spec: DemoSpec, progress: &Progress) -> anyhow::Result<()> {
    let counts = spec.counts();
    progress.message("order events");
    for range in batches(spec.orders(), BATCH) {
        let mut insert = client.insert::<OrderEvent<'_>>("order_events").await?;
        let mut written = 0;
        for id in range {
            let order = spec.order(id);
            for item in &order.items {
                insert
                    .write(&OrderEvent {
                        event_time: order.created_at.timestamp() as u32,
                        order_id: id,
                        line: item.line,
                        user_id: order.user_id,
                        product_id: item.product_id,
                        quantity: item.quantity,
                        amount: (item.unit_price_cents * u64::from(item.quantity)) as f64 / 100.0,
                        status: order.status,
                    })
                    .await?;
                written += 1;
            }
        }
        insert.end().await.context("inserting order events")?;
        progress.advance(written);
    }

    progress.message("click events");
    for range in batches(spec.clicks(), BATCH) {
        let mut insert = client.insert::<ClickEvent<'_>>("click_events").await?;
        let written = range.clone().count() as u64;
        for id in range {
            let click = spec.click(id);
            insert
                .write(&ClickEvent {
                    event_time: click.event_time.timestamp() as u32,
                    click_id: id,
                    user_id: click.user_id,
                    product_id: click.product_id,
                    session_id: &click.session_id,
                    event_type: click.event_type,
                })
                .await?;
        }
        insert.end().await.context("inserting click events")?;
        progress.advance(written);
    }

    progress.message("feature history");
    let users_per_batch = BATCH / (counts.feature_history / spec.users().max(1)).max(1);
    for range in batches(spec.users(), users_per_batch.max(1)) {
        let mut insert = client.insert::<FeatureValue<'_>>("feature_history").await?;
        let mut written = 0;
        for id in range {
            for snapshot in spec.feature_history(id) {
                insert
                    .write(&FeatureValue {
                        entity: "user",
                        entity_id: id,
                        feature: snapshot.feature,
                        value: snapshot.value,
                        event_time: snapshot.event_time.timestamp() as u32,
                    })
                    .await?;
                written += 1;
            }
        }
        insert.end().await.context("inserting feature history")?;
        progress.advance(written);
    }
    Ok(())
}
