//! PostgreSQL: users, products, orders and order items, through `COPY … FROM STDIN` in one
//! transaction, so a failed load leaves the previous data as it was.

use std::fmt::Write as _;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection};

use super::{DATA_VERSION, LoadOptions, Outcome, Progress, batches};
use crate::endpoints::Endpoints;
use crate::spec::DemoSpec;

const BATCH: u64 = 20_000;

/// The schema the demo needs, applied idempotently (sqlx records what has run).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub(super) async fn load(
    spec: DemoSpec,
    endpoints: &Endpoints,
    options: LoadOptions,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let connect: PgConnectOptions = endpoints
        .postgres
        .parse()
        .context("POLYGRAPH_POSTGRES_URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(connect)
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                polygraph_service::config::redacted_url(&endpoints.postgres)
            )
        })?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;

    let counts = spec.counts();
    progress.set_total(counts.users + counts.products + counts.orders + counts.order_items);
    let marker: Option<(i64, i64, i32)> =
        sqlx::query_as("SELECT seed, scale, version FROM polygraph_demo.loaded")
            .fetch_optional(&pool)
            .await?;
    if !options.force && marker == Some((spec.seed as i64, spec.scale as i64, DATA_VERSION as i32))
    {
        return Ok(Outcome::AlreadyLoaded);
    }

    let mut connection = pool.acquire().await?;
    let mut tx = connection.begin().await?;
    sqlx::query("TRUNCATE users, products, orders, order_items, polygraph_demo.loaded")
        .execute(&mut *tx)
        .await?;

    copy_tables(&mut tx, spec, progress).await?;

    sqlx::query("INSERT INTO polygraph_demo.loaded (seed, scale, version) VALUES ($1, $2, $3)")
        .bind(spec.seed as i64)
        .bind(spec.scale as i64)
        .bind(DATA_VERSION as i32)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE users, products, orders, order_items")
        .execute(&pool)
        .await?;
    Ok(Outcome::Loaded)
}

/// Copies every table's rows, parents before children.
async fn copy_tables(
    connection: &mut PgConnection,
    spec: DemoSpec,
    progress: &Progress,
) -> anyhow::Result<()> {
    progress.message("users");
    copy(
        connection,
        "users (id, name, email, country, created_at)",
        spec.users(),
        progress,
        |id, out| {
            let user = spec.user(id);
            row(
                out,
                &[
                    &id.to_string(),
                    &user.name,
                    &user.email,
                    user.country,
                    &user.created_at.to_rfc3339(),
                ],
            );
            1
        },
    )
    .await?;

    progress.message("products");
    copy(
        connection,
        "products (id, name, category, brand, price, description, in_stock, created_at)",
        spec.products(),
        progress,
        |id, out| {
            let product = spec.product(id);
            row(
                out,
                &[
                    &id.to_string(),
                    &product.name,
                    product.category,
                    product.brand,
                    &cents(product.price_cents),
                    &product.description,
                    if product.in_stock { "t" } else { "f" },
                    &product.created_at.to_rfc3339(),
                ],
            );
            1
        },
    )
    .await?;

    progress.message("orders");
    copy(
        connection,
        "orders (id, user_id, status, total, created_at)",
        spec.orders(),
        progress,
        |id, out| {
            let order = spec.order(id);
            row(
                out,
                &[
                    &id.to_string(),
                    &order.user_id.to_string(),
                    order.status,
                    &cents(order.total_cents()),
                    &order.created_at.to_rfc3339(),
                ],
            );
            1
        },
    )
    .await?;

    progress.message("order items");
    copy(
        connection,
        "order_items (order_id, line, product_id, quantity, unit_price)",
        spec.orders(),
        progress,
        |id, out| {
            let order = spec.order(id);
            for item in &order.items {
                row(
                    out,
                    &[
                        &id.to_string(),
                        &item.line.to_string(),
                        &item.product_id.to_string(),
                        &item.quantity.to_string(),
                        &cents(item.unit_price_cents),
                    ],
                );
            }
            order.items.len() as u64
        },
    )
    .await?;
    Ok(())
}

/// Streams `ids` 1..=count through one `COPY`, in batches; `write` appends a record's rows and
/// returns how many it wrote.
async fn copy(
    connection: &mut PgConnection,
    target: &str,
    count: u64,
    progress: &Progress,
    write: impl Fn(u64, &mut String) -> u64,
) -> anyhow::Result<()> {
    let mut copy = connection
        .copy_in_raw(&format!("COPY {target} FROM STDIN WITH (FORMAT text)"))
        .await
        .with_context(|| format!("starting COPY {target}"))?;
    for range in batches(count, BATCH) {
        let mut buffer = String::with_capacity(BATCH as usize * 96);
        let mut rows = 0;
        for id in range {
            rows += write(id, &mut buffer);
        }
        copy.send(buffer.into_bytes()).await?;
        progress.advance(rows);
    }
    copy.finish()
        .await
        .with_context(|| format!("finishing COPY {target}"))?;
    Ok(())
}

/// Appends one row in COPY's text format, escaping what that format treats specially.
fn row(out: &mut String, fields: &[&str]) {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push('\t');
        }
        for character in field.chars() {
            match character {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                other => out.push(other),
            }
        }
    }
    out.push('\n');
}

fn cents(value: u64) -> String {
    let mut out = String::new();
    let _ = write!(out, "{}.{:02}", value / 100, value % 100);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_special_characters() {
        let mut out = String::new();
        row(&mut out, &["1", "tab\there", "back\\slash\nnewline"]);
        assert_eq!(out, "1\ttab\\there\tback\\\\slash\\nnewline\n");
    }

    #[test]
    fn cents_render_as_decimals() {
        assert_eq!(cents(199), "1.99");
        assert_eq!(cents(5), "0.05");
        assert_eq!(cents(49_999), "499.99");
    }
}
