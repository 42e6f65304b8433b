//! A Federation v2 subgraph generated from MongoDB collections.
//!
//! Start-up reads each configured collection's shape ([`model`]: declared in the config, else
//! its `$jsonSchema` validator, else inferred from sample documents) and generates the schema
//! ([`schema`]); requests translate their arguments into query documents ([`translate`]) and run
//! one operation per root field, per `_entities` type, and per batch of extension fields
//! ([`loader`]).

mod changes;
pub mod config;
pub mod convert;
mod cursor;
mod documents;
mod engine;
mod errors;
pub mod model;
pub mod schema;
mod shape;
mod store;
pub mod translate;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::TryStreamExt as _;
use mongodb::bson::{Document, doc};
use mongodb::event::EventHandler;
use mongodb::event::cmap::CmapEvent;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use polygraph_subgraph_core::config::redacted_url;
use polygraph_subgraph_core::recorder::Recorder;

pub use config::Config;

/// Commands that read or write documents, counted for tests and metrics.
const COUNTED: &[&str] = &[
    "find",
    "aggregate",
    "insert",
    "update",
    "delete",
    "findAndModify",
    "getMore",
];

/// What start-up reads from MongoDB: each configured collection's shape (a JSON schema), in
/// the config's order.
pub type Introspection = Vec<serde_json::Value>;

/// A running subgraph: its schema and the engine that answers it.
pub struct Subgraph {
    pub schema: async_graphql::dynamic::Schema,
    pub model: Arc<model::Model>,
    engine: Arc<engine::Documents>,
    commands: Arc<Recorder>,
    shapes: Introspection,
    changes: Arc<changes::Changes>,
}

impl Subgraph {
    /// Connects, reads each collection's shape and generates the schema.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let url = config.url();
        let (database, commands) = database(config, &url).await?;
        database
            .run_command(doc! { "ping": 1 })
            .await
            .with_context(|| format!("connecting to MongoDB at {}", redacted_url(&url)))?;
        let mut schemas = Vec::with_capacity(config.collections.len());
        for (name, collection) in &config.collections {
            let schema = match &collection.schema {
                Some(schema) => schema.clone(),
                None => collection_schema(&database, name, config.sample_size)
                    .await
                    .with_context(|| format!("reading the shape of collection {name}"))?,
            };
            schemas.push(schema);
        }
        Self::assemble(config, &schemas, database, commands)
    }

    /// The subgraph from collection shapes read before (one JSON schema per configured
    /// collection, in the config's order, as [`Subgraph::introspection`] gives them), its client to
    /// `url` connecting on first use: what start-up does once the shapes are read, and how the
    /// fuzz targets build the subgraph without a database.
    pub async fn from_introspection(
        config: &Config,
        schemas: &Introspection,
        url: &str,
    ) -> anyhow::Result<Self> {
        let (database, commands) = database(config, url).await?;
        Self::assemble(config, schemas, database, commands)
    }

    fn assemble(
        config: &Config,
        schemas: &[serde_json::Value],
        database: mongodb::Database,
        commands: Arc<Recorder>,
    ) -> anyhow::Result<Self> {
        let model = Arc::new(model::build(config, schemas)?);
        let schema = schema::build(&model).context("generating the GraphQL schema")?;
        let changes = Arc::new(changes::Changes::default());
        let engine = Arc::new(engine::Documents::new(
            store::Store {
                model: model.clone(),
                database,
            },
            changes.clone(),
        ));
        Ok(Self {
            schema,
            model,
            engine,
            commands,
            shapes: schemas.to_vec(),
            changes,
        })
    }

    /// Follows the change streams of the collections with subscription fields, handing each
    /// change to their subscribers, until the process ends (at once done without
    /// `changes: true` collections). Serving with `polygraph subgraph` runs it.
    pub fn changes_listener(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        changes::listen(
            self.engine.store.database.clone(),
            self.model.clone(),
            self.changes.clone(),
        )
    }

    /// Each configured collection's shape as start-up read it, for [`Subgraph::from_introspection`].
    pub fn introspection(&self) -> &Introspection {
        &self.shapes
    }

    /// Database commands that read or wrote documents since start-up.
    pub fn commands(&self) -> u64 {
        self.commands.count()
    }

    /// Counts what it sends the database, and keeps their texts while a test asks it to.
    pub fn recorder(&self) -> &Recorder {
        &self.commands
    }

    /// The schema and its engine, ready to serve.
    pub fn served(&self) -> polygraph_subgraph_core::server::Served {
        polygraph_subgraph_core::server::Served::with_engine(
            self.schema.clone(),
            self.engine.clone(),
        )
    }

    /// The subgraph's SDL, as `_service { sdl }` returns it.
    pub fn sdl(&self) -> String {
        polygraph_subgraph_core::server::sdl(&self.schema)
    }
}

/// A client to `url` (connecting on first use) and the configured database, with a count of
/// the commands that read or write documents. Server selection and connecting wait 5 s
/// unless the URL says otherwise.
async fn database(
    config: &Config,
    url: &str,
) -> anyhow::Result<(mongodb::Database, Arc<Recorder>)> {
    let mut options = ClientOptions::parse(url)
        .await
        .with_context(|| format!("the MongoDB URL {}", redacted_url(url)))?;
    let commands = Arc::new(Recorder::new("mongodb", "mongodb"));
    let counter = commands.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        match event {
            CommandEvent::Started(started) if COUNTED.contains(&started.command_name.as_str()) => {
                counter.note_with(|| described(&started.command_name, &started.command));
            }
            // The driver times each command; spans are not made here (the event comes after).
            CommandEvent::Succeeded(done) if COUNTED.contains(&done.command_name.as_str()) => {
                counter.timed(done.duration, true);
            }
            CommandEvent::Failed(failed) if COUNTED.contains(&failed.command_name.as_str()) => {
                counter.timed(failed.duration, false);
            }
            _ => {}
        }
    }));
    options.cmap_event_handler = Some(pool_gauge(u64::from(
        options.max_pool_size.unwrap_or(DRIVER_MAX_POOL_SIZE),
    )));
    options
        .server_selection_timeout
        .get_or_insert(Duration::from_secs(5));
    options
        .connect_timeout
        .get_or_insert(Duration::from_secs(5));
    options.app_name = Some("polygraph-subgraph-mongodb".to_owned());
    let client = mongodb::Client::with_options(options)?;
    Ok((client.database(&config.database()), commands))
}

/// The driver's pool size per server when the URL sets none (`maxPoolSize`).
const DRIVER_MAX_POOL_SIZE: u32 = 10;

/// The driver's pools as its events tell them, process-wide: open connections, connections
/// checked out, and pools (one per server).
static POOL: [std::sync::atomic::AtomicI64; 3] =
    [const { std::sync::atomic::AtomicI64::new(0) }; 3];

/// Follows the driver's connection pools through their events, for the pool gauge read at each
/// scrape (registered once per process, however many clients are made); `max` is a pool's
/// size, so the gauge's max is that times the servers.
fn pool_gauge(max: u64) -> EventHandler<CmapEvent> {
    use std::sync::atomic::Ordering::Relaxed;
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        polygraph_service::metrics().sample_on_scrape(move |metrics| {
            let [open, in_use, pools] = POOL
                .each_ref()
                .map(|count| count.load(Relaxed).max(0).cast_unsigned());
            metrics.pool(
                "mongodb",
                open.saturating_sub(in_use),
                in_use,
                max * pools.max(1),
            );
        });
    });
    EventHandler::callback(|event: CmapEvent| {
        let (count, change) = match event {
            CmapEvent::ConnectionCreated(_) => (0, 1),
            CmapEvent::ConnectionClosed(_) => (0, -1),
            CmapEvent::ConnectionCheckedOut(_) => (1, 1),
            CmapEvent::ConnectionCheckedIn(_) => (1, -1),
            CmapEvent::PoolCreated(_) => (2, 1),
            CmapEvent::PoolClosed(_) => (2, -1),
            _ => return,
        };
        POOL[count].fetch_add(change, Relaxed);
    })
}

/// A collection's `$jsonSchema` validator, or a schema inferred from its first documents.
async fn collection_schema(
    database: &mongodb::Database,
    name: &str,
    sample_size: u32,
) -> anyhow::Result<serde_json::Value> {
    let specs: Vec<_> = database
        .list_collections()
        .filter(doc! { "name": name })
        .await?
        .try_collect()
        .await?;
    if let Some(validator) = specs
        .first()
        .and_then(|spec| spec.options.validator.as_ref())
        .and_then(|validator| validator.get_document("$jsonSchema").ok())
    {
        return Ok(serde_json::to_value(validator)?);
    }
    let samples: Vec<Document> = database
        .collection::<Document>(name)
        .find(doc! {})
        .limit(i64::from(sample_size))
        .await?
        .try_collect()
        .await?;
    if samples.is_empty() {
        anyhow::bail!(
            "collection {name} has no validator and no documents to infer its shape from: declare `schema` in the config"
        );
    }
    Ok(model::infer_schema(&samples))
}

impl polygraph_subgraph_core::subgraph::Subgraph for Subgraph {
    type Config = Config;
    const NAME: &'static str = "mongodb";

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
        self.model
            .collections
            .iter()
            .any(|collection| collection.rule.is_some())
    }

    fn alongside(&self, _config: &Config, _schema: polygraph_subgraph_core::server::SharedSchema) {
        tokio::spawn(self.changes_listener());
    }
}

/// A command as the corpus snapshots it: its name and body, without what changes from one
/// run to the next (the session, the cluster time, the driver's `$`-fields).
fn described(name: &str, command: &Document) -> String {
    let stable: Document = command
        .iter()
        .filter(|(key, _)| !key.starts_with('$') && *key != "lsid" && *key != "txnNumber")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    format!("{name} {stable}")
}
