//! What a database subgraph crate offers the `polygraph` binary, so one generic function
//! starts any of them: its configuration, start-up, SDL and what it serves.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use crate::server::{Served, SharedSchema, Trust};

/// A database subgraph.
pub trait Subgraph: Sized + Send + Sync + 'static {
    type Config: serde::de::DeserializeOwned + Send + Sync + 'static;

    /// Its name: the command, the audience of its claims tokens, the log's label.
    const NAME: &'static str;

    /// Its configuration, read from a YAML file.
    fn config(path: &Path) -> anyhow::Result<Self::Config> {
        Ok(crate::config::from_file(path)?)
    }

    /// The address the configuration says to listen on.
    fn listen(config: &Self::Config) -> SocketAddr;

    /// The configuration's `server` settings: timeouts, load shedding, shutdown grace.
    fn server(config: &Self::Config) -> &polygraph_service::serve::Limits;

    /// Connects to the database and generates the schema.
    fn start(config: &Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// The schema's SDL as `_service { sdl }` serves it.
    fn sdl(&self) -> String {
        crate::server::sdl(&self.served().schema)
    }

    /// The schema and its engine, ready to serve.
    fn served(&self) -> Served;

    /// Whether a row rule is configured anywhere (then claims must be verifiable).
    fn has_rules(&self) -> bool {
        false
    }

    /// Work that runs beside serving, given what is served (as a schema reload on a signal).
    fn alongside(&self, _config: &Self::Config, _schema: SharedSchema) {}
}

/// Starts `S` from the configuration at `path` and serves it on `listen` (or the configured
/// address) until Ctrl-C or SIGTERM; with `print_sdl`, prints its SDL instead.
pub async fn run<S: Subgraph>(
    path: &Path,
    listen: Option<SocketAddr>,
    print_sdl: bool,
) -> anyhow::Result<()> {
    let config = S::config(path)?;
    let subgraph = S::start(&config).await?;
    if print_sdl {
        print!("{}", subgraph.sdl());
        return Ok(());
    }
    let schema = crate::server::share(subgraph.served());
    subgraph.alongside(&config, schema.clone());
    let trust = Trust::from_env(S::NAME)?;
    if trust.verifier.is_none() && subgraph.has_rules() {
        tracing::warn!(
            subgraph = S::NAME,
            "row rules are configured but POLYGRAPH_GATEWAY_JWKS is not: ruled data is refused to every request"
        );
    }
    let limits = S::server(&config);
    let app = crate::server::app_with(schema, trust, limits);
    let listen = listen.unwrap_or(S::listen(&config));
    crate::server::serve(app, listen, S::NAME, limits).await
}
