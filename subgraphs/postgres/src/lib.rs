//! A Federation v2 subgraph generated from a PostgreSQL database, Hasura-style.
//!
//! Start-up reads the catalog ([`catalog`]), shapes it into a model with the configuration
//! ([`model`]) and generates the schema ([`schema`]); each request goes to the engine, which
//! lowers each root field's selection into the query IR (`ir`), translates that into one SQL
//! statement ([`translate`], [`mutate`], written by `sql`'s builder) and runs it with bound
//! parameters ([`execute`]).

pub mod catalog;
mod changes;
pub mod config;
mod connection;
mod engine;
mod entities;
mod errors;
pub mod execute;
mod extends;
mod ir;
mod lowering;
pub mod model;
pub mod mutate;
mod mutations;
pub mod schema;
mod sql;
mod state;
pub mod translate;
mod types;
mod writes;

use std::sync::Arc;

use anyhow::Context as _;
use polygraph_subgraph_core::config::redacted_url as redact;
use sqlx::postgres::PgPoolOptions;

pub use config::Config;

/// A running subgraph's schema and pool, built from a configuration.
pub struct Subgraph {
    pub schema: async_graphql::dynamic::Schema,
    pub pool: sqlx::PgPool,
    pub model: Arc<model::Model>,
    pub executor: Arc<execute::Executor>,
    engine: Arc<engine::Tables>,
    catalog: Introspection,
    /// Where the change listener hands changes to subscribers; kept across reloads.
    changes: Arc<changes::Changes>,
}

/// What start-up reads from PostgreSQL: the catalog of the configured schema.
pub type Introspection = catalog::Catalog;

impl Subgraph {
    /// Connects, introspects and generates the schema.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let url = config.database_url();
        let pool = pool(config, &url)?;
        let catalog = catalog::introspect(&pool, &config.schema)
            .await
            .with_context(|| format!("reading the catalog of PostgreSQL at {}", redact(&url)))?;
        Self::assemble(config, &catalog, pool, Arc::default())
    }

    /// Introspects through an existing pool and generates the schema.
    pub async fn with_pool(config: &Config, pool: sqlx::PgPool) -> anyhow::Result<Self> {
        Self::reload(config, pool, Arc::default()).await
    }

    /// [`Subgraph::with_pool`], its subscribers fed by `changes`.
    async fn reload(
        config: &Config,
        pool: sqlx::PgPool,
        changes: Arc<changes::Changes>,
    ) -> anyhow::Result<Self> {
        let catalog = catalog::introspect(&pool, &config.schema)
            .await
            .context("reading the database catalog")?;
        Self::assemble(config, &catalog, pool, changes)
    }

    /// The subgraph from a catalog read before (see [`catalog::introspect`]), its pool to
    /// `url` connecting on first use: what start-up does once the catalog is read, and how the
    /// fuzz targets build the subgraph without a database.
    pub fn from_introspection(
        config: &Config,
        catalog: &Introspection,
        url: &str,
    ) -> anyhow::Result<Self> {
        Self::assemble(config, catalog, pool(config, url)?, Arc::default())
    }

    fn assemble(
        config: &Config,
        catalog: &Introspection,
        pool: sqlx::PgPool,
        changes: Arc<changes::Changes>,
    ) -> anyhow::Result<Self> {
        let model = Arc::new(model::build(catalog, config)?);
        let executor = Arc::new(execute::Executor::new(pool.clone()));
        let schema = schema::build(&model).context("generating the GraphQL schema")?;
        let engine = Arc::new(engine::Tables::new(
            model.clone(),
            executor.clone(),
            changes.clone(),
        ));
        Ok(Self {
            schema,
            pool,
            model,
            executor,
            engine,
            catalog: catalog.clone(),
            changes,
        })
    }

    /// Installs the change triggers, then listens for changes and hands them to the
    /// subscription fields' subscribers until the process ends (at once done without
    /// `changes: true` tables). Serving with `polygraph subgraph` runs it.
    pub fn changes_listener(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        changes::listen(self.pool.clone(), self.model.clone(), self.changes.clone())
    }

    /// The schema and its engine, ready to serve and to swap on reload.
    pub fn served(&self) -> polygraph_subgraph_core::server::Served {
        polygraph_subgraph_core::server::Served::with_engine(
            self.schema.clone(),
            self.engine.clone(),
        )
    }

    /// The catalog start-up read, for [`Subgraph::from_introspection`].
    pub fn introspection(&self) -> &Introspection {
        &self.catalog
    }

    /// Statements run since start-up.
    pub fn statements(&self) -> u64 {
        self.executor.statements()
    }

    /// The subgraph's SDL, as `_service { sdl }` returns it.
    pub fn sdl(&self) -> String {
        polygraph_subgraph_core::server::sdl(&self.schema)
    }
}

/// A pool of connections to `url`, each made when first needed: a database that is down at
/// start-up fails the first statement (the catalog's), not the pool.
fn pool(config: &Config, url: &str) -> anyhow::Result<sqlx::PgPool> {
    let options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .with_context(|| format!("the PostgreSQL URL {}", redact(url)))?;
    let options = options.options([(
        "statement_timeout",
        format!("{}ms", config.statement_timeout_ms),
    )]);
    Ok(PgPoolOptions::new()
        .max_connections(config.pool_size)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_lazy_with(options))
}

impl polygraph_subgraph_core::subgraph::Subgraph for Subgraph {
    type Config = Config;
    const NAME: &'static str = "postgres";

    fn listen(config: &Config) -> std::net::SocketAddr {
        config.listen
    }

    fn server(config: &Config) -> &polygraph_service::serve::Limits {
        &config.server
    }

    async fn start(config: &Config) -> anyhow::Result<Self> {
        Subgraph::start(config).await
    }

    fn served(&self) -> polygraph_subgraph_core::server::Served {
        Subgraph::served(self)
    }

    fn has_rules(&self) -> bool {
        self.model.tables.iter().any(|table| table.rule.is_some())
    }

    fn alongside(&self, config: &Config, schema: polygraph_subgraph_core::server::SharedSchema) {
        let pool = self.pool.clone();
        let max = u64::from(config.pool_size);
        polygraph_service::metrics().sample_on_scrape(move |metrics| {
            let (size, idle) = (u64::from(pool.size()), pool.num_idle() as u64);
            metrics.pool("postgres", idle, size.saturating_sub(idle), max);
        });
        tokio::spawn(self.changes_listener());
        #[cfg(unix)]
        tokio::spawn(reload_on_hangup(
            config.clone(),
            self.pool.clone(),
            schema,
            self.changes.clone(),
        ));
        #[cfg(not(unix))]
        let _ = schema;
    }
}

/// Regenerates the schema from the database on each SIGHUP and swaps it in; a failed reload
/// keeps serving the old one.
#[cfg(unix)]
async fn reload_on_hangup(
    config: Config,
    pool: sqlx::PgPool,
    schema: polygraph_subgraph_core::server::SharedSchema,
    changes: Arc<changes::Changes>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload by restarting");
        return;
    };
    while hangups.recv().await.is_some() {
        match Subgraph::reload(&config, pool.clone(), changes.clone()).await {
            Ok(reloaded) => {
                schema.store(Arc::new(reloaded.served()));
                tracing::info!("postgres subgraph: schema reloaded from the database");
            }
            Err(error) => tracing::error!(
                "postgres subgraph: reload failed, still serving the old schema: {error:#}"
            ),
        }
    }
}
