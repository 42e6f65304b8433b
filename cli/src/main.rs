//! `polygraph`: one binary for every Polygraph service and tool.
//!
//! Subcommands are added as the services land; each lives in its own crate and this file only
//! parses arguments and hands over.

use std::process::ExitCode;

mod compose;
mod config;
mod registry;

/// mimalloc: the gateway allocates and frees many small JSON values per request on every
/// worker thread, where it is markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand};
use polygraph_demo::{DemoSpec, Endpoints, LoadOptions};

#[derive(Parser)]
#[command(
    name = "polygraph",
    version,
    about = "One GraphQL supergraph over many databases"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The demo ML shop's data.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Serve a database as a Federation v2 subgraph.
    #[command(subcommand)]
    Subgraph(SubgraphCommand),
    /// Serve a supergraph: one GraphQL API over its subgraphs.
    Gateway(GatewayArgs),
    /// Keys the gateway signs subgraph claims with.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Rego policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The gateway's response cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Schemas: composition, and what a change does to clients.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Compose subgraphs into a supergraph (the same as `polygraph schema compose`).
    Compose(ComposeArgs),
    /// The schema registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Configuration files: each service's JSON Schema, and checking a file.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Exit 0 when URL answers a GET with a 2xx status: a health check for images without curl.
    Probe(ProbeArgs),
}

#[derive(Args)]
struct ProbeArgs {
    /// What to ask, e.g. `http://127.0.0.1:4000/ready`.
    url: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Serve the registry's HTTP API: publish, check, fetch, list, diff, roll back.
    Serve(registry::ServeArgs),
}

#[derive(Args)]
struct ComposeArgs {
    /// YAML listing the subgraphs: `subgraphs: [{name, url, file?}]`; without `file`, the
    /// subgraph at `url` is asked for `_service { sdl }`.
    config: std::path::PathBuf,
    /// Write the supergraph here instead of to standard output.
    #[arg(long, short)]
    out: Option<std::path::PathBuf>,
    /// Errors as one JSON object per line on standard output.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// What the API schema of NEW changes for clients of OLD's: each change with its coordinate
    /// and severity (breaking, dangerous, safe). Either may be a supergraph (its API schema is
    /// compared) or a plain schema. Exits 1 when a change is breaking, 0 otherwise, 2 when a
    /// schema cannot be read.
    /// With `--registry`, OLD and NEW are version numbers there.
    Diff {
        old: String,
        new: String,
        /// One JSON object per change on standard output, instead of lines for people.
        #[arg(long)]
        json: bool,
        /// Compare two versions kept in the registry at this address.
        #[arg(long)]
        registry: Option<String>,
        /// The operations clients send (a persisted-document manifest, Apollo's or Relay's):
        /// a breaking change none of them can notice is reported as safe.
        #[arg(long, conflicts_with = "registry")]
        operations: Option<std::path::PathBuf>,
        #[arg(long, env = "POLYGRAPH_REGISTRY_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Publish a subgraph to the registry. Exits 1 when it does not compose with the others
    /// (the current version stays).
    Publish {
        #[command(flatten)]
        client: registry::Client,
        #[command(flatten)]
        candidate: registry::Candidate,
    },
    /// What publishing a subgraph would do: whether it composes, and its changes to the API
    /// schema. Exits 1 when it does not compose or a change is breaking.
    Check {
        #[command(flatten)]
        client: registry::Client,
        #[command(flatten)]
        candidate: registry::Candidate,
        /// The operations clients send (a persisted-document manifest): a breaking change none
        /// of them can notice is reported as safe.
        #[arg(long)]
        operations: Option<std::path::PathBuf>,
    },
    /// The current supergraph (or a version's) from the registry.
    Fetch {
        #[command(flatten)]
        client: registry::Client,
        #[arg(long)]
        version: Option<i64>,
        /// Write it here instead of to standard output.
        #[arg(long, short)]
        out: Option<std::path::PathBuf>,
    },
    /// The registry's versions, newest first.
    List {
        #[command(flatten)]
        client: registry::Client,
    },
    /// Make a new version with the subgraphs of an earlier one.
    Rollback {
        #[command(flatten)]
        client: registry::Client,
        version: i64,
    },
    /// Compose subgraphs into a supergraph the gateway loads. Exits 1 when they do not compose
    /// (each error with its code, subgraph and coordinate), 2 when the input cannot be read.
    Compose(ComposeArgs),
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Drop cached answers and entities holding a type, one entity of it, or all of them, on a
    /// running gateway, through its `POST /admin/cache/invalidate`; the token (`--token` or
    /// `POLYGRAPH_TOKEN`) must satisfy the gateway's `cache_admin` setting.
    Invalidate {
        /// The gateway's address, such as `http://127.0.0.1:4000`.
        #[arg(long, default_value = "http://127.0.0.1:4000")]
        gateway: String,
        /// Drop the answers holding this type.
        #[arg(long = "type", conflicts_with = "all", required_unless_present = "all")]
        type_name: Option<String>,
        /// Only the entity with these key fields, as JSON (`'{"id": "1"}'`); answers holding
        /// its type are dropped all the same.
        #[arg(long, requires = "type_name")]
        key: Option<String>,
        /// Drop every cached answer.
        #[arg(long)]
        all: bool,
        #[arg(long, env = "POLYGRAPH_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new Ed25519 key pair: DIR/gateway-claims.pem (private, for the gateway's
    /// `claims.signing_key_file`) and DIR/gateway-claims.jwks.json (public, for subgraphs'
    /// `POLYGRAPH_GATEWAY_JWKS`). Existing files are kept unless --force.
    Generate {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run the `test_*` rules of every package in the policies folder, as `opa test` does.
    Test {
        #[arg(default_value = "policies")]
        dir: std::path::PathBuf,
    },
}

#[derive(Args)]
struct GatewayArgs {
    /// The supergraph SDL: a file, or an http(s) URL to fetch it from (such as the registry's
    /// `/v1/supergraph`).
    #[arg(long, env = "POLYGRAPH_SUPERGRAPH")]
    supergraph: String,
    /// Check the supergraph for changes this often and serve a new one without a restart
    /// (a URL is polled with its entity tag). Default: every 10 s for a URL, never for a file.
    #[arg(long, env = "POLYGRAPH_SUPERGRAPH_POLL_SECONDS")]
    poll_seconds: Option<u64>,
    /// Bearer token for fetching the supergraph from a URL (a registry read token).
    #[arg(long, env = "POLYGRAPH_SUPERGRAPH_TOKEN", hide_env_values = true)]
    supergraph_token: Option<String>,
    /// Address to serve on (HOST:PORT).
    #[arg(long, env = "POLYGRAPH_LISTEN", default_value = "127.0.0.1:4000")]
    listen: std::net::SocketAddr,
    /// YAML settings: limits, timeouts, subgraph URL overrides.
    #[arg(long, env = "POLYGRAPH_GATEWAY_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Print the plan of the query in this file and exit.
    #[arg(long)]
    explain: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum SubgraphCommand {
    /// A subgraph generated from a PostgreSQL database.
    Postgres(SubgraphArgs),
    /// A subgraph generated from MongoDB collections.
    Mongodb(SubgraphArgs),
    /// A search subgraph over Elasticsearch / OpenSearch indices.
    Elasticsearch(SubgraphArgs),
    /// An online feature store over Redis hashes.
    Redis(SubgraphArgs),
    /// Analytics over ClickHouse: time series and point-in-time training rows.
    Clickhouse(SubgraphArgs),
    /// Relationships over Neo4j: follows, recommendations, bought-together.
    Neo4j(SubgraphArgs),
}

#[derive(Args)]
struct SubgraphArgs {
    /// The subgraph's YAML configuration.
    #[arg(long)]
    config: std::path::PathBuf,
    /// Override the configuration's listen address (HOST:PORT).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Print the subgraph's SDL and exit instead of serving.
    #[arg(long)]
    print_sdl: bool,
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Create every schema and load the demo data into all six databases (idempotent).
    Load(LoadArgs),
    /// Print how many records of each kind a seed and scale produce.
    Counts(SpecArgs),
}

#[derive(Args)]
struct SpecArgs {
    /// Seed of the deterministic generator.
    #[arg(long, env = "POLYGRAPH_DEMO_SEED", default_value_t = DemoSpec::default().seed)]
    seed: u64,
    /// Size: 1 is 200 users, 100 products and 1,000 orders; 1000 is a million orders.
    #[arg(long, env = "POLYGRAPH_DEMO_SCALE", default_value_t = DemoSpec::default().scale,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    scale: u64,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Reload even where the same seed and scale are already loaded.
    #[arg(long)]
    force: bool,
    /// Load only this database (a subgraph's init container loads its own before it starts).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(polygraph_demo::load::DATABASES))]
    only: Option<String>,
}

impl SpecArgs {
    fn spec(&self) -> DemoSpec {
        DemoSpec {
            seed: self.seed,
            scale: self.scale,
        }
    }
}

/// The `service.name` a command's spans carry.
fn service_name(command: &Command) -> &'static str {
    match command {
        Command::Gateway(_) => "polygraph-gateway",
        Command::Registry(_) => "polygraph-registry",
        Command::Subgraph(SubgraphCommand::Postgres(_)) => "polygraph-subgraph-postgres",
        Command::Subgraph(SubgraphCommand::Mongodb(_)) => "polygraph-subgraph-mongodb",
        Command::Subgraph(SubgraphCommand::Elasticsearch(_)) => "polygraph-subgraph-elasticsearch",
        Command::Subgraph(SubgraphCommand::Redis(_)) => "polygraph-subgraph-redis",
        Command::Subgraph(SubgraphCommand::Clickhouse(_)) => "polygraph-subgraph-clickhouse",
        Command::Subgraph(SubgraphCommand::Neo4j(_)) => "polygraph-subgraph-neo4j",
        _ => "polygraph",
    }
}

fn main() -> ExitCode {
    // One TLS crypto backend (aws-lc-rs) for every client that takes the process default:
    // with two compiled in, rustls would otherwise refuse to pick.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    // Logs and traces as the environment says; spans over gRPC need the runtime entered.
    let telemetry = {
        let _entered = runtime.enter();
        polygraph_service::traces::Settings::from_env(service_name(&cli.command)).and_then(
            |mut settings| {
                // The gateway is the edge: callers' sampling decisions are not taken unless
                // POLYGRAPH_TRACE_TRUST_CALLERS says so.
                if matches!(cli.command, Command::Gateway(_))
                    && std::env::var_os("POLYGRAPH_TRACE_TRUST_CALLERS").is_none()
                {
                    settings.trust_callers = false;
                }
                polygraph_service::traces::init(&settings)
            },
        )
    };
    if let Ok(value) = std::env::var("POLYGRAPH_METRICS") {
        let off = matches!(value.trim(), "0" | "false" | "no" | "off");
        polygraph_service::metrics().set_enabled(!off);
    }
    let _telemetry = match telemetry {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Demo(DemoCommand::Load(args)) => runtime.block_on(demo_load(&args)),
        Command::Probe(args) => runtime.block_on(probe(&args)),
        Command::Config(command) => config::run(&command),
        Command::Demo(DemoCommand::Counts(args)) => {
            println!("{:#?}", args.spec().counts());
            ExitCode::SUCCESS
        }
        Command::Subgraph(SubgraphCommand::Postgres(args)) => {
            report(runtime.block_on(subgraph::<polygraph_subgraph_postgres::Subgraph>(&args)))
        }
        Command::Subgraph(SubgraphCommand::Mongodb(args)) => {
            report(runtime.block_on(subgraph::<polygraph_subgraph_mongodb::Subgraph>(&args)))
        }
        Command::Subgraph(SubgraphCommand::Elasticsearch(args)) => report(runtime.block_on(
            subgraph::<polygraph_subgraph_elasticsearch::Subgraph>(&args),
        )),
        Command::Subgraph(SubgraphCommand::Redis(args)) => {
            report(runtime.block_on(subgraph::<polygraph_subgraph_redis::Subgraph>(&args)))
        }
        Command::Subgraph(SubgraphCommand::Clickhouse(args)) => {
            report(runtime.block_on(subgraph::<polygraph_subgraph_clickhouse::Subgraph>(&args)))
        }
        Command::Subgraph(SubgraphCommand::Neo4j(args)) => {
            report(runtime.block_on(subgraph::<polygraph_subgraph_neo4j::Subgraph>(&args)))
        }
        Command::Gateway(args) => report(runtime.block_on(gateway(&args))),
        Command::Keys(KeysCommand::Generate { dir, force }) => report(generate_keys(&dir, force)),
        Command::Policy(PolicyCommand::Test { dir }) => policy_test(&dir),
        Command::Cache(CacheCommand::Invalidate {
            gateway,
            type_name,
            key,
            all: _,
            token,
        }) => report(runtime.block_on(invalidate_cache(&gateway, type_name, key, token))),
        Command::Schema(command) => schema_command(&runtime, command),
        Command::Compose(args) => runtime.block_on(schema_compose(&args)),
        Command::Registry(RegistryCommand::Serve(args)) => {
            report(runtime.block_on(registry::serve(&args)))
        }
    }
}

/// `polygraph compose`: the supergraph, or why not as the exit code.
async fn schema_compose(args: &ComposeArgs) -> ExitCode {
    let inputs = match compose::inputs(&args.config).await {
        Ok(inputs) => inputs,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let supergraph = match polygraph_schema::compose::compose(&inputs) {
        Ok(supergraph) => supergraph,
        Err(errors) => {
            compose::print_errors(&errors, args.json);
            return ExitCode::from(1);
        }
    };
    match &args.out {
        Some(path) => {
            if let Err(error) = compose::write_atomically(path, &supergraph) {
                eprintln!("error: writing {}: {error}", path.display());
                return ExitCode::from(2);
            }
            eprintln!("wrote {} ({} subgraphs)", path.display(), inputs.len());
        }
        None => print!("{supergraph}"),
    }
    ExitCode::SUCCESS
}

/// `polygraph schema …`.
fn schema_command(runtime: &tokio::runtime::Runtime, command: SchemaCommand) -> ExitCode {
    match command {
        SchemaCommand::Compose(args) => runtime.block_on(schema_compose(&args)),
        SchemaCommand::Diff {
            old,
            new,
            json,
            registry: Some(address),
            token,
            ..
        } => {
            let client = registry::Client::new(address, token, json);
            runtime.block_on(registry::run(async {
                let (Ok(old), Ok(new)) = (old.parse(), new.parse()) else {
                    anyhow::bail!("with --registry, OLD and NEW are version numbers");
                };
                registry::diff(&client, old, new).await
            }))
        }
        SchemaCommand::Diff {
            old,
            new,
            json,
            operations,
            ..
        } => schema_diff(
            std::path::Path::new(&old),
            std::path::Path::new(&new),
            json,
            operations.as_deref(),
        ),
        SchemaCommand::Publish { client, candidate } => {
            runtime.block_on(registry::run(registry::publish(&client, &candidate)))
        }
        SchemaCommand::Check {
            client,
            candidate,
            operations,
        } => runtime.block_on(registry::run(registry::check(
            &client,
            &candidate,
            operations.as_deref(),
        ))),
        SchemaCommand::Fetch {
            client,
            version,
            out,
        } => runtime.block_on(registry::run(registry::fetch(
            &client,
            version,
            out.as_deref(),
        ))),
        SchemaCommand::List { client } => runtime.block_on(registry::run(registry::list(&client))),
        SchemaCommand::Rollback { client, version } => {
            runtime.block_on(registry::run(registry::rollback(&client, version)))
        }
    }
}

/// `polygraph schema diff`: the changes, and whether one is breaking, as the exit code.
fn schema_diff(
    old: &std::path::Path,
    new: &std::path::Path,
    json: bool,
    operations: Option<&std::path::Path>,
) -> ExitCode {
    use polygraph_schema::diff::{Severity, changes};
    use std::io::Write as _;
    let (old, new) = match (api_schema(old), api_schema(new)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let mut changes = changes(&old, &new);
    if let Some(manifest) = operations {
        match usage(&old, manifest) {
            Ok(usage) => changes = usage.judge(changes),
            Err(error) => {
                eprintln!("error: {error:#}");
                return ExitCode::from(2);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for change in &changes {
        let severity = change.severity.as_str();
        let written = if json {
            let line = serde_json::json!({
                "severity": severity,
                "coordinate": change.coordinate,
                "message": change.message,
            });
            writeln!(out, "{line}")
        } else {
            writeln!(
                out,
                "{severity:<9}  {:<40}  {}",
                change.coordinate, change.message
            )
        };
        if written.is_err() {
            break; // the reader went away (`| head`): the exit code still tells
        }
    }
    let breaking = changes
        .iter()
        .filter(|change| change.severity == Severity::Breaking)
        .count();
    if !json {
        eprintln!("{} changes, {breaking} breaking", changes.len());
    }
    ExitCode::from(u8::from(breaking > 0))
}

/// What the operations in the manifest at `path` use of `schema`.
pub(crate) fn usage(
    schema: &apollo_compiler::validation::Valid<apollo_compiler::Schema>,
    path: &std::path::Path,
) -> anyhow::Result<polygraph_schema::usage::Usage> {
    let manifest = polygraph_gateway::persisted::read_manifest(path).map_err(anyhow::Error::msg)?;
    polygraph_schema::usage::Usage::of(
        schema,
        manifest.iter().map(|(id, text)| (id.as_str(), &**text)),
    )
    .map_err(anyhow::Error::msg)
}

/// The API schema in `path`: a supergraph's (without its join and link machinery, and
/// `@inaccessible` parts), or a plain schema as it is.
fn api_schema(
    path: &std::path::Path,
) -> anyhow::Result<apollo_compiler::validation::Valid<apollo_compiler::Schema>> {
    use anyhow::Context as _;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.contains("https://specs.apollo.dev/join/") {
        return polygraph_gateway::supergraph::Supergraph::parse(&text)
            .map(|supergraph| supergraph.api_schema)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()));
    }
    apollo_compiler::Schema::parse_and_validate(&text, path)
        .map_err(|errors| anyhow::anyhow!("{}: {}", path.display(), errors.errors))
}

/// Asks the gateway at `gateway` to drop what it keeps of `type_name` (of its entity `key`
/// alone when given; everything without a type).
async fn invalidate_cache(
    gateway: &str,
    type_name: Option<String>,
    key: Option<String>,
    token: Option<String>,
) -> anyhow::Result<()> {
    let url = format!("{}/admin/cache/invalidate", gateway.trim_end_matches('/'));
    let mut body = serde_json::json!({ "type": type_name });
    if let Some(key) = key {
        let key: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&key)
            .map_err(|error| anyhow::anyhow!("--key must be a JSON object ({error})"))?;
        body["key"] = serde_json::Value::Object(key);
    }
    let mut request = reqwest::Client::new().post(&url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {body}");
    println!("{body}");
    Ok(())
}

fn generate_keys(dir: &std::path::Path, force: bool) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let private = dir.join("gateway-claims.pem");
    let public = dir.join("gateway-claims.jwks.json");
    if private.exists() && public.exists() && !force {
        eprintln!("keeping the keys in {}", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (pem, jwks) = polygraph_subgraph_core::claims::Signer::generate_pem();
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&private)
            .with_context(|| format!("writing {}", private.display()))?;
        file.write_all(pem.as_bytes())?;
    }
    std::fs::write(&public, serde_json::to_string_pretty(&jwks)? + "\n")
        .with_context(|| format!("writing {}", public.display()))?;
    eprintln!(
        "wrote {} (private) and {} (public)",
        private.display(),
        public.display()
    );
    Ok(())
}

fn policy_test(dir: &std::path::Path) -> ExitCode {
    let policies = match polygraph_gateway::policy::Policies::load(dir) {
        Ok(policies) => policies,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let results = policies.run_tests();
    let mut failed = 0;
    for (rule, outcome) in &results {
        match outcome {
            Ok(true) => println!("PASS {rule}"),
            Ok(false) => {
                failed += 1;
                println!("FAIL {rule}");
            }
            Err(error) => {
                failed += 1;
                println!("ERROR {rule}: {error}");
            }
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 && !results.is_empty() {
        ExitCode::SUCCESS
    } else {
        if results.is_empty() {
            eprintln!("error: no test_ rules in {}", dir.display());
        }
        ExitCode::FAILURE
    }
}

async fn gateway(args: &GatewayArgs) -> anyhow::Result<()> {
    use polygraph_gateway::gateway::{Gateway, Settings};
    use polygraph_gateway::live::{Live, Source, fetch};
    let settings = Settings::load(args.config.as_deref())?;
    let remote = args.supergraph.starts_with("http://") || args.supergraph.starts_with("https://");
    let source = if remote {
        Source::Url {
            url: args.supergraph.clone(),
            token: args.supergraph_token.clone(),
        }
    } else {
        Source::File(args.supergraph.clone().into())
    };
    let sdl = fetch(&reqwest::Client::new(), &source, &mut None)
        .await
        .map_err(anyhow::Error::msg)?
        .unwrap_or_default();
    let supergraph = polygraph_gateway::supergraph::Supergraph::parse(&sdl)?;
    let gateway =
        std::sync::Arc::new(Gateway::new(supergraph, settings).map_err(anyhow::Error::msg)?);
    gateway.start().await;
    if let Some(path) = &args.explain {
        let query = std::fs::read_to_string(path)?;
        match gateway.explain(&query, None) {
            Ok(plan) => println!("{plan}"),
            Err(errors) => {
                for error in errors {
                    eprintln!("error: {}", error.message);
                }
                anyhow::bail!("cannot plan {}", path.display());
            }
        }
        return Ok(());
    }
    let live = Live::new(gateway, &sdl);
    let every = args.poll_seconds.unwrap_or(if remote { 10 } else { 0 });
    if every > 0 {
        live.follow(source, std::time::Duration::from_secs(every));
    }
    let limits = live.current().settings().server.clone();
    polygraph_gateway::http::serve(
        polygraph_gateway::http::app_live(live),
        args.listen,
        &limits,
    )
    .await
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts subgraph `S` as the arguments say: its SDL printed, or served.
async fn subgraph<S: polygraph_subgraph_core::subgraph::Subgraph>(
    args: &SubgraphArgs,
) -> anyhow::Result<()> {
    polygraph_subgraph_core::subgraph::run::<S>(&args.config, args.listen, args.print_sdl).await
}

async fn probe(args: &ProbeArgs) -> ExitCode {
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(args.timeout_ms))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("polygraph probe: {error}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&args.url).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!(
                "polygraph probe: {} answered {}",
                args.url,
                response.status()
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("polygraph probe: {}: {error}", args.url);
            ExitCode::FAILURE
        }
    }
}

async fn demo_load(args: &LoadArgs) -> ExitCode {
    let spec = args.spec.spec();
    let endpoints = Endpoints::from_env();
    let options = LoadOptions {
        force: args.force,
        only: args.only.as_deref().and_then(|only| {
            polygraph_demo::load::DATABASES
                .into_iter()
                .find(|database| *database == only)
        }),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    eprintln!(
        "loading the demo shop (seed {}, scale {})",
        spec.seed, spec.scale
    );
    match polygraph_demo::load_all(spec, &endpoints, options).await {
        Ok(reports) => {
            print!("{}", polygraph_demo::load::format_reports(&reports));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in errors {
                eprintln!("error: {error}");
            }
            eprintln!("hint: are the servers up? `scripts/dev status` shows them");
            ExitCode::FAILURE
        }
    }
}
