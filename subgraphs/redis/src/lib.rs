//! A Federation v2 online feature store over Redis hashes: feature groups from config extend
//! other subgraphs' entities (`User.onlineFeatures`), `featureVector` serves matrices to ML
//! services, `putFeatures` writes online updates.

mod changes;
pub mod config;
mod engine;
mod errors;
pub mod model;
pub mod schema;
mod store;

use std::sync::Arc;

use anyhow::Context as _;
use polygraph_subgraph_core::config::redacted_url;
use polygraph_subgraph_core::recorder::Recorder;

pub use config::Config;

pub struct Subgraph {
    pub schema: async_graphql::dynamic::Schema,
    /// Answers every operation the schema validates.
    engine: Arc<engine::Features>,
    pub model: Arc<model::Model>,
    round_trips: Arc<Recorder>,
    client: redis::Client,
    changes: Arc<changes::Changes>,
}

impl Subgraph {
    /// Generates the schema from the configured groups and connects. Redis need not be up:
    /// until it answers, the subgraph serves errors where its features would be, and it
    /// connects by itself once Redis is back.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let url = config.url();
        let subgraph = Self::with_url(config, &url)?;
        let ping = redis::cmd("PING");
        let mut connection = subgraph.engine.store.connection.clone();
        match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            ping.query_async::<String>(&mut connection),
        )
        .await
        {
            Ok(Ok(_)) => {}
            // Redis answers, but not to us: a configuration mistake to stop on, not an outage.
            Ok(Err(error))
                if matches!(
                    error.kind(),
                    redis::ErrorKind::AuthenticationFailed
                        | redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
                ) =>
            {
                anyhow::bail!(
                    "Redis at {} refused this subgraph: {error}",
                    redacted_url(&url)
                );
            }
            Ok(Err(error)) => tracing::warn!(
                "Redis at {} does not answer yet ({error:?}); serving errors until it does",
                redacted_url(&url)
            ),
            Err(_) => tracing::warn!(
                "Redis at {} does not answer within 5 s; serving errors until it does",
                redacted_url(&url)
            ),
        }
        Ok(subgraph)
    }

    /// The subgraph over the Redis at `url`, connecting on first use: what start-up does
    /// before its first `PING`, and how the fuzz targets build the subgraph without Redis.
    pub fn with_url(config: &Config, url: &str) -> anyhow::Result<Self> {
        let model = Arc::new(model::build(config)?);
        let client = match config.ca_file() {
            Some(_) if !url.starts_with("rediss://") => {
                anyhow::bail!(
                    "a Redis CA file is given but {} is not a rediss:// (TLS) URL",
                    redacted_url(url)
                );
            }
            Some(ca_file) => {
                let root_cert = std::fs::read(&ca_file)
                    .with_context(|| format!("reading the Redis CA file {}", ca_file.display()))?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(url, certificates)
            }
            None => redis::Client::open(url),
        }
        .with_context(|| format!("the Redis URL {}", redacted_url(url)))?;
        // A connection manager: when Redis goes away, the calls meanwhile fail at once (one
        // attempt to connect, no retries to wait for), each failure starts a new attempt in
        // the background, and the connection is made again by itself once Redis is back.
        let reconnecting = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(5)))
            .set_number_of_retries(0);
        let connection =
            redis::aio::ConnectionManager::new_lazy_with_config(client.clone(), reconnecting)
                .with_context(|| format!("connecting to Redis at {}", redacted_url(url)))?;
        let round_trips = Arc::new(Recorder::new("redis", "redis"));
        let store = store::Store {
            connection,
            round_trips: round_trips.clone(),
        };
        let schema = schema::build(&model).context("generating the GraphQL schema")?;
        let changes = Arc::new(changes::Changes::default());
        let engine = Arc::new(engine::Features {
            model: model.clone(),
            store,
            changes: changes.clone(),
        });
        Ok(Self {
            schema,
            engine,
            model,
            round_trips,
            client,
            changes,
        })
    }

    /// Listens for writes to the hashes of the groups with subscription fields, handing each
    /// to their subscribers, until the process ends (at once done without `changes: true`
    /// groups). Serving with `polygraph subgraph` runs it.
    pub fn changes_listener(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        changes::listen(
            self.client.clone(),
            self.model.clone(),
            self.changes.clone(),
        )
    }

    /// The schema and its engine, ready to serve.
    pub fn served(&self) -> polygraph_subgraph_core::server::Served {
        polygraph_subgraph_core::server::Served::with_engine(
            self.schema.clone(),
            self.engine.clone(),
        )
    }

    /// Round trips to Redis since start-up (a pipeline is one).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.count()
    }

    /// Counts what it sends the database, and keeps their texts while a test asks it to.
    pub fn recorder(&self) -> &Recorder {
        &self.round_trips
    }

    pub fn sdl(&self) -> String {
        polygraph_subgraph_core::server::sdl(&self.schema)
    }
}

impl polygraph_subgraph_core::subgraph::Subgraph for Subgraph {
    type Config = Config;
    const NAME: &'static str = "redis";

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
        self.model.groups.iter().any(|group| group.rule.is_some())
    }

    fn alongside(&self, _config: &Config, _schema: polygraph_subgraph_core::server::SharedSchema) {
        tokio::spawn(self.changes_listener());
    }
}
