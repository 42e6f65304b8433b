//! Redis: online features for every user and product, as hashes written through pipelines
//! (`features:user:{id}`, `features:product:{id}`), plus a marker key.

use anyhow::Context as _;
use redis::AsyncCommands as _;

use super::{DATA_VERSION, LoadOptions, Outcome, Progress, batches};
use crate::endpoints::Endpoints;
use crate::spec::DemoSpec;

const BATCH: u64 = 2_000;
const MARKER: &str = "polygraph:demo:loaded";

pub(super) async fn load(
    spec: DemoSpec,
    endpoints: &Endpoints,
    options: LoadOptions,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let client = redis::Client::open(endpoints.redis.as_str()).context("POLYGRAPH_REDIS_URL")?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                polygraph_service::config::redacted_url(&endpoints.redis)
            )
        })?;
    progress.set_total(spec.users() + spec.products());

    let wanted = format!(
        "seed={} scale={} version={DATA_VERSION}",
        spec.seed, spec.scale
    );
    let marker: Option<String> = connection.get(MARKER).await?;
    if !options.force && marker.as_deref() == Some(wanted.as_str()) {
        return Ok(Outcome::AlreadyLoaded);
    }
    let _: () = connection.del(MARKER).await?;
    delete_matching(&mut connection, "features:*").await?;

    for range in batches(spec.users(), BATCH) {
        let mut pipe = redis::pipe();
        let written = range.clone().count() as u64;
        for id in range {
            let f = spec.user_features(id);
            pipe.hset_multiple(
                format!("features:user:{id}"),
                &[
                    ("click_rate_7d", f.click_rate_7d.to_string()),
                    ("orders_30d", f.orders_30d.to_string()),
                    ("avg_order_value", f.avg_order_value.to_string()),
                    ("segment", f.segment.to_owned()),
                    ("is_premium", f.is_premium.to_string()),
                    ("embedding", serde_json::to_string(&f.embedding)?),
                ],
            )
            .ignore();
        }
        let _: () = pipe.query_async(&mut connection).await?;
        progress.advance(written);
    }
    for range in batches(spec.products(), BATCH) {
        let mut pipe = redis::pipe();
        let written = range.clone().count() as u64;
        for id in range {
            let f = spec.product_features(id);
            pipe.hset_multiple(
                format!("features:product:{id}"),
                &[
                    ("ctr_7d", f.ctr_7d.to_string()),
                    ("views_24h", f.views_24h.to_string()),
                    ("conversion_rate", f.conversion_rate.to_string()),
                    ("popularity", f.popularity.to_string()),
                    ("embedding", serde_json::to_string(&f.embedding)?),
                ],
            )
            .ignore();
        }
        let _: () = pipe.query_async(&mut connection).await?;
        progress.advance(written);
    }
    let _: () = connection.set(MARKER, wanted).await?;
    Ok(Outcome::Loaded)
}

/// Deletes every key matching `pattern`, walking the keyspace with SCAN (never KEYS).
async fn delete_matching(
    connection: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> anyhow::Result<()> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(5_000)
            .query_async(connection)
            .await?;
        if !keys.is_empty() {
            let _: () = connection.unlink(keys).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
