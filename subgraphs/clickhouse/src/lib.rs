//! A Federation v2 analytics subgraph over ClickHouse (through its HTTP interface): configured
//! time series extend other subgraphs' entities (`Product.sales`, `User.activity`), and
//! `trainingRows` serves point-in-time correct training data.

pub mod config;
mod engine;
mod errors;
pub mod model;
pub mod schema;
mod warehouse;

use polygraph_subgraph_core::recorder::Recorder;
use std::sync::Arc;

use anyhow::Context as _;
use polygraph_subgraph_core::config::redacted_url;

pub use config::Config;

pub struct Subgraph {
    pub schema: async_graphql::dynamic::Schema,
    pub model: Arc<model::Model>,
    /// Answers every operation the schema validates.
    engine: Arc<engine::Analytics>,
    statements: Arc<Recorder>,
    columns: Introspection,
}

/// What start-up reads from ClickHouse: each table's columns and their types.
pub type Introspection = model::Columns;

/// A client of the configured database over the HTTP interface at `url`.
fn client(config: &Config, url: &str) -> clickhouse::Client {
    let mut client = clickhouse::Client::default()
        .with_url(url)
        .with_database(config.database())
        .with_validation(false);
    let (user, password) = config.credentials();
    if let Some(user) = user {
        client = client.with_user(user);
    }
    if let Some(password) = password {
        client = client.with_password(password);
    }
    client
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct ColumnRow {
    table: String,
    name: String,
    r#type: String,
}

impl Subgraph {
    /// Reads the tables' columns from `system.columns` and generates the schema.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let url = config.url();
        let database = config.database();
        let client = client(config, &url);
        let rows: Vec<ColumnRow> = client
            .query("SELECT table, name, type FROM system.columns WHERE database = ?")
            .bind(database.as_str())
            .fetch_all()
            .await
            .with_context(|| {
                format!(
                    "reading the columns of {database} at {}",
                    redacted_url(&url)
                )
            })?;
        let mut columns = model::Columns::new();
        for row in rows {
            columns
                .entry(row.table)
                .or_default()
                .push((row.name, row.r#type));
        }
        Self::assemble(config, columns, client)
    }

    /// The subgraph from columns read before (as [`Subgraph::introspection`] gives them), its
    /// client to `url`: what start-up does once the columns are read, and how the fuzz targets
    /// build the subgraph without a server.
    pub fn from_introspection(
        config: &Config,
        columns: &Introspection,
        url: &str,
    ) -> anyhow::Result<Self> {
        Self::assemble(config, columns.clone(), client(config, url))
    }

    fn assemble(
        config: &Config,
        columns: Introspection,
        client: clickhouse::Client,
    ) -> anyhow::Result<Self> {
        let model = Arc::new(model::build(config, &columns)?);
        let statements = Arc::new(Recorder::new("clickhouse", "clickhouse"));
        let warehouse = warehouse::Warehouse {
            client,
            statements: statements.clone(),
        };
        let schema = schema::build(&model).context("generating the GraphQL schema")?;
        let engine = Arc::new(engine::Analytics {
            model: model.clone(),
            warehouse,
        });
        Ok(Self {
            schema,
            model,
            engine,
            statements,
            columns,
        })
    }

    /// The columns start-up read, for [`Subgraph::from_introspection`].
    pub fn introspection(&self) -> &Introspection {
        &self.columns
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
    const NAME: &'static str = "clickhouse";

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
}
