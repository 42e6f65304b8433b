//! A Federation v2 relationships subgraph over Neo4j, through the `neo4j` driver (Bolt 4.4 and
//! 5.x). Configured relationship fields (`User.follows`, `User.recommendedProducts`,
//! `Product.boughtTogether`) extend other subgraphs' entities; each batch of entities is one
//! `UNWIND $keys` statement, run on the driver's own bounded threads.

pub mod config;
mod engine;
mod errors;
mod graph;
pub mod model;
pub mod pool;
pub mod schema;

use polygraph_subgraph_core::recorder::Recorder;
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use neo4j::ValueReceive;
use neo4j::address::Address;
use neo4j::driver::auth::AuthToken;
use neo4j::driver::{ConnectionConfig, Driver, DriverConfig};
use polygraph_subgraph_core::config::redacted_url;

pub use config::Config;

pub struct Subgraph {
    pub schema: async_graphql::dynamic::Schema,
    pub model: Arc<model::Model>,
    /// Answers every operation the schema validates.
    engine: Arc<engine::Relationships>,
    statements: Arc<Recorder>,
    catalog: Introspection,
}

/// What start-up reads from Neo4j: its labels and relationship types (`None` where the server
/// has no procedure to list them).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Introspection {
    pub labels: Option<Vec<String>>,
    pub types: Option<Vec<String>>,
}

/// A driver of the server at `url` (connecting on first use) and the threads it runs on.
fn driver(config: &Config, url: &str) -> anyhow::Result<(Arc<Driver>, pool::BlockingPool)> {
    let (host, port) = host_port(url)?;
    let auth = AuthToken::new_basic_auth(config.user(), config.password());
    let mut connection = ConnectionConfig::new(Address::from((host.as_str(), port)));
    // `neo4j+s://` and `bolt+s://`: TLS, the server's certificate checked against
    // `POLYGRAPH_NEO4J_CA_FILE` when given, the system's roots otherwise.
    let scheme = url
        .split_once("://")
        .map_or("", |(scheme, _)| scheme)
        .to_ascii_lowercase();
    if !matches!(
        scheme.as_str(),
        "" | "neo4j" | "bolt" | "neo4j+s" | "bolt+s"
    ) {
        // `+ssc` would accept any certificate: not offered; anything else is a mistake.
        return Err(anyhow!(
            "the Neo4j URL scheme {scheme:?}: use neo4j://, bolt://, neo4j+s:// or bolt+s://"
        ));
    }
    if scheme.ends_with("+s") {
        connection = match std::env::var_os("POLYGRAPH_NEO4J_CA_FILE").filter(|v| !v.is_empty()) {
            Some(ca_file) => connection.with_encryption_trust_custom_cas(&[ca_file]),
            None => connection.with_encryption_trust_default_cas(),
        }
        .map_err(|error| anyhow!("TLS to Neo4j at {}: {error}", redacted_url(url)))?;
    }
    let driver = Arc::new(Driver::new(
        connection,
        DriverConfig::new().with_auth(Arc::new(auth)),
    ));
    let pool = pool::BlockingPool::new(config.threads, config.queue.max(1))
        .context("starting the driver's threads")?;
    // The pool gauge counts the driver's threads: a busy one holds a connection.
    let (threads, busy) = pool.usage();
    polygraph_service::metrics().sample_on_scrape(move |metrics| {
        let (threads, busy) = (
            threads as u64,
            busy.load(std::sync::atomic::Ordering::Relaxed) as u64,
        );
        metrics.pool("neo4j", threads.saturating_sub(busy), busy, threads);
    });
    Ok((driver, pool))
}

fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "7687"));
    Ok((
        host.to_owned(),
        port.parse()
            .map_err(|_| anyhow!("the port in {}", redacted_url(url)))?,
    ))
}

/// The names a catalog procedure lists (`db.labels()`, `db.relationshipTypes()`), or `None`
/// when the server has no such procedure; an unreachable server is an error.
async fn catalog(
    pool: &pool::BlockingPool,
    driver: &Arc<Driver>,
    procedure: &'static str,
    column: &'static str,
) -> anyhow::Result<Option<Vec<String>>> {
    let driver = driver.clone();
    let listed = pool
        .run(move || {
            driver
                .execute_query(procedure)
                .with_parameters(&HashMap::<String, neo4j::ValueSend>::new())
                .run()
                .map(|result| result.records)
                .map_err(|error| error.to_string())
        })
        .await
        .map_err(anyhow::Error::msg)?;
    match listed {
        Ok(records) => Ok(Some(
            records
                .into_iter()
                .filter_map(|mut record| match record.take_value(column) {
                    Some(ValueReceive::String(name)) => Some(name),
                    _ => None,
                })
                .collect(),
        )),
        Err(error) if error.contains("onnect") => Err(anyhow!(error)),
        // Servers without the procedure still work; the check is a convenience.
        Err(_) => Ok(None),
    }
}

impl Subgraph {
    /// Connects, checks the configured labels against the server's, and generates the schema.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let url = config.url();
        let (driver, pool) = driver(config, &url)?;
        let labels = catalog(&pool, &driver, "CALL db.labels()", "label")
            .await
            .with_context(|| format!("connecting to Neo4j at {}", redacted_url(&url)))?;
        let types = catalog(
            &pool,
            &driver,
            "CALL db.relationshipTypes()",
            "relationshipType",
        )
        .await
        .with_context(|| format!("connecting to Neo4j at {}", redacted_url(&url)))?;
        Self::assemble(config, Introspection { labels, types }, driver, pool)
    }

    /// The subgraph from the catalog read before (as [`Subgraph::introspection`] gives it), its
    /// driver to `url` connecting on first use: what start-up does once the labels are read,
    /// and how the fuzz targets build the subgraph without a server.
    pub fn from_introspection(
        config: &Config,
        catalog: &Introspection,
        url: &str,
    ) -> anyhow::Result<Self> {
        let (driver, pool) = driver(config, url)?;
        Self::assemble(config, catalog.clone(), driver, pool)
    }

    fn assemble(
        config: &Config,
        catalog: Introspection,
        driver: Arc<Driver>,
        pool: pool::BlockingPool,
    ) -> anyhow::Result<Self> {
        let model = Arc::new(model::build(
            config,
            catalog.labels.as_deref(),
            catalog.types.as_deref(),
        )?);
        let statements = Arc::new(Recorder::new("neo4j", "neo4j"));
        let graph = Arc::new(graph::Graph {
            driver,
            pool,
            statements: statements.clone(),
            timeout: std::time::Duration::from_millis(config.statement_timeout_ms.max(1)),
        });
        let schema = schema::build(&model).context("generating the GraphQL schema")?;
        let engine = Arc::new(engine::Relationships {
            model: model.clone(),
            graph,
        });
        Ok(Self {
            schema,
            model,
            engine,
            statements,
            catalog,
        })
    }

    /// The labels and relationship types start-up read, for
    /// [`Subgraph::from_introspection`].
    pub fn introspection(&self) -> &Introspection {
        &self.catalog
    }

    /// Statements sent since start-up (start-up's own reads not counted).
    pub fn statements(&self) -> u64 {
        self.statements.count()
    }

    /// Counts what it sends the database, and keeps their texts while a test asks it to.
    pub fn recorder(&self) -> &Recorder {
        &self.statements
    }

    /// The schema and its engine, ready to serve.
    pub fn served(&self) -> polygraph_subgraph_core::server::Served {
        polygraph_subgraph_core::server::Served::with_engine(
            self.schema.clone(),
            self.engine.clone(),
        )
    }

    pub fn sdl(&self) -> String {
        polygraph_subgraph_core::server::sdl(&self.schema)
    }
}

impl polygraph_subgraph_core::subgraph::Subgraph for Subgraph {
    type Config = Config;
    const NAME: &'static str = "neo4j";

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
        self.model.rules.iter().any(Option::is_some)
    }
}
