//! Loads a [`DemoSpec`] into all six databases at once, each through its bulk path.
//!
//! Every loader follows the same steps: create its schema (tables, indices, constraints) if
//! missing; if the database already holds this exact spec (a marker written last, after all
//! rows) skip it; otherwise wipe the demo's objects and stream the records in batches. Writing
//! the marker last makes an interrupted load redo itself on the next run, and skipping on a
//! matching marker makes a second run cheap and free of duplicates.

pub mod clickhouse;
pub mod elasticsearch;
pub mod mongodb;
mod neo4j;

pub use neo4j::driver as neo4j_driver;
pub mod postgres;
mod redis;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::endpoints::Endpoints;
use crate::spec::DemoSpec;

/// Bumped whenever the generator or a layout changes, so stale demo data is reloaded.
pub const DATA_VERSION: i64 = 1;

/// The databases `load_all` fills, in the order it reports them.
pub const DATABASES: [&str; 6] = [
    "postgres",
    "mongodb",
    "elasticsearch",
    "redis",
    "clickhouse",
    "neo4j",
];

/// What `load` does besides loading.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Reload even where the marker says the spec is already there.
    pub force: bool,
    /// Draw progress bars (on a terminal) instead of staying quiet until the report.
    pub progress: bool,
    /// Load only this database (one of [`DATABASES`]); each one's data stands alone, so a
    /// subgraph can load its own before it starts.
    pub only: Option<&'static str>,
}

/// How one database's load went.
#[derive(Clone, Debug)]
pub struct Report {
    pub database: &'static str,
    /// Records written (zero when skipped).
    pub rows: u64,
    pub elapsed: Duration,
    pub skipped: bool,
}

impl Report {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The loader of one database failed; names the database so the message says where to look.
#[derive(Debug, thiserror::Error)]
#[error("loading the demo into {database} failed: {source:#}")]
pub struct LoadError {
    pub database: &'static str,
    #[source]
    pub source: anyhow::Error,
}

/// A loader's view of its progress bar and clock.
pub(crate) struct Progress {
    bar: ProgressBar,
    started: Instant,
    database: &'static str,
}

impl Progress {
    fn new(database: &'static str, multi: &MultiProgress) -> Self {
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>13} [{bar:30}] {human_pos:>10}/{human_len:10} {per_sec:>12} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(database);
        Self {
            bar,
            started: Instant::now(),
            database,
        }
    }

    pub(crate) fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub(crate) fn advance(&self, rows: u64) {
        self.bar.inc(rows);
    }

    pub(crate) fn message(&self, message: &'static str) {
        self.bar.set_message(message);
    }

    fn finish(self, skipped: bool, finished: Instant) -> Report {
        let rows = if skipped { 0 } else { self.bar.position() };
        self.bar
            .finish_with_message(if skipped { "already loaded" } else { "done" });
        Report {
            database: self.database,
            rows,
            elapsed: finished.duration_since(self.started),
            skipped,
        }
    }
}

/// Whether a loader found its data already there or wrote it.
pub(crate) enum Outcome {
    Loaded,
    AlreadyLoaded,
}

/// Loads every database concurrently; returns one report per database, or the first failures.
pub async fn load_all(
    spec: DemoSpec,
    endpoints: &Endpoints,
    options: LoadOptions,
) -> Result<Vec<Report>, Vec<LoadError>> {
    let multi = MultiProgress::with_draw_target(if options.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let run = |database: &'static str| (database, Progress::new(database, &multi));

    let wanted = |database: &str| options.only.is_none_or(|only| only == database);
    let (name, progress) = run("postgres");
    let postgres = finish(
        name,
        timed(
            wanted(name),
            postgres::load(spec, endpoints, options, &progress),
        )
        .await,
        progress,
    );
    // PostgreSQL goes first on its own: it is the system of record, and a failure there usually
    // means nothing else is worth trying. The others share the two cores after it.
    let (mongo, search, redis, clickhouse, neo4j) = {
        let (n1, p1) = run("mongodb");
        let (n2, p2) = run("elasticsearch");
        let (n3, p3) = run("redis");
        let (n4, p4) = run("clickhouse");
        let (n5, p5) = run("neo4j");
        let (r1, r2, r3, r4, r5) = tokio::join!(
            timed(wanted(n1), mongodb::load(spec, endpoints, options, &p1)),
            timed(
                wanted(n2),
                elasticsearch::load(spec, endpoints, options, &p2)
            ),
            timed(wanted(n3), redis::load(spec, endpoints, options, &p3)),
            timed(wanted(n4), clickhouse::load(spec, endpoints, options, &p4)),
            timed(wanted(n5), neo4j::load(spec, endpoints, options, &p5)),
        );
        (
            finish(n1, r1, p1),
            finish(n2, r2, p2),
            finish(n3, r3, p3),
            finish(n4, r4, p4),
            finish(n5, r5, p5),
        )
    };
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for result in [postgres, mongo, search, redis, clickhouse, neo4j] {
        match result {
            Some(Ok(report)) => reports.push(report),
            Some(Err(error)) => errors.push(error),
            None => {}
        }
    }
    if errors.is_empty() {
        Ok(reports)
    } else {
        Err(errors)
    }
}

/// Runs a loader if its database is wanted and notes how long it took by itself, before it
/// waits on the others.
async fn timed(
    wanted: bool,
    loader: impl std::future::Future<Output = anyhow::Result<Outcome>>,
) -> Option<(anyhow::Result<Outcome>, Instant)> {
    if !wanted {
        return None;
    }
    let result = loader.await;
    Some((result, Instant::now()))
}

fn finish(
    database: &'static str,
    ran: Option<(anyhow::Result<Outcome>, Instant)>,
    progress: Progress,
) -> Option<Result<Report, LoadError>> {
    let Some((result, finished)) = ran else {
        progress.bar.finish_and_clear();
        return None;
    };
    Some(match result {
        Ok(outcome) => Ok(progress.finish(matches!(outcome, Outcome::AlreadyLoaded), finished)),
        Err(source) => {
            progress.bar.abandon_with_message("failed");
            Err(LoadError { database, source })
        }
    })
}

/// The reports as a plain-text table, one line per database.
pub fn format_reports(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>12} {:>10} {:>14}  status",
        "database", "rows", "seconds", "rows/s"
    );
    for report in reports {
        let status = if report.skipped {
            "already loaded"
        } else {
            "loaded"
        };
        let _ = writeln!(
            out,
            "{:<14} {:>12} {:>10.2} {:>14.0}  {status}",
            report.database,
            report.rows,
            report.elapsed.as_secs_f64(),
            report.rows_per_second(),
        );
    }
    out
}

/// Splits `1..=total` into batches of at most `size` ids.
pub(crate) fn batches(
    total: u64,
    size: u64,
) -> impl Iterator<Item = std::ops::RangeInclusive<u64>> {
    (0..total.div_ceil(size)).map(move |index| {
        let start = index * size + 1;
        start..=(start + size - 1).min(total)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_id_once() {
        let ranges: Vec<_> = batches(10, 4).collect();
        assert_eq!(ranges, vec![1..=4, 5..=8, 9..=10]);
        assert_eq!(batches(0, 4).count(), 0);
        assert_eq!(batches(8, 4).count(), 2);
    }
}
