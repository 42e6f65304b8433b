//! `polygraph registry serve` and the registry client commands of `polygraph schema`: exit 0
//! when all is well, 1 when a change is refused or breaking, 2 when the command could not do
//! its work (bad arguments, registry unreachable, storage down).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to serve on (HOST:PORT).
    #[arg(
        long,
        env = "POLYGRAPH_REGISTRY_LISTEN",
        default_value = "127.0.0.1:4400"
    )]
    listen: std::net::SocketAddr,
    /// Keep versions in this PostgreSQL database (`postgres://…`) instead of a file.
    #[arg(long, env = "POLYGRAPH_REGISTRY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Keep versions in this JSON file (the default store).
    #[arg(
        long,
        env = "POLYGRAPH_REGISTRY_FILE",
        default_value = "polygraph-registry.json"
    )]
    file: std::path::PathBuf,
    /// Tokens that may publish, remove and roll back (and read): `NAME=SECRET,…`, each secret
    /// at least 16 characters. Required.
    #[arg(
        long,
        env = "POLYGRAPH_REGISTRY_PUBLISH_TOKENS",
        hide_env_values = true
    )]
    publish_tokens: String,
    /// Tokens that may only read: `NAME=SECRET,…`.
    #[arg(
        long,
        env = "POLYGRAPH_REGISTRY_READ_TOKENS",
        hide_env_values = true,
        default_value = ""
    )]
    read_tokens: String,
    /// Let anyone who reaches the registry read the supergraph and versions without a token.
    #[arg(long)]
    anonymous_reads: bool,
}

/// `polygraph registry serve`.
pub async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let mut tokens = polygraph_registry::Tokens::parse(&args.publish_tokens, &args.read_tokens)?;
    anyhow::ensure!(
        tokens.can_publish(),
        "no publish token: set POLYGRAPH_REGISTRY_PUBLISH_TOKENS=NAME=SECRET"
    );
    tokens.anonymous_reads = args.anonymous_reads;
    let store = if let Some(url) = &args.database_url {
        // The error names what failed, never the URL (it can hold a password).
        let pool = sqlx::PgPool::connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the registry's PostgreSQL: {e}"))?;
        tracing::info!("versions kept in PostgreSQL");
        polygraph_registry::Store::postgres(pool).await?
    } else {
        tracing::info!(file = %args.file.display(), "versions kept in a file");
        polygraph_registry::Store::file(args.file.clone())?
    };
    let app = polygraph_registry::router(polygraph_registry::Registry::new(store, tokens));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, "registry serving");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Where the registry is and the token to show it.
#[derive(Args)]
pub struct Client {
    /// The registry's address.
    #[arg(
        long,
        env = "POLYGRAPH_REGISTRY_URL",
        default_value = "http://127.0.0.1:4400"
    )]
    registry: String,
    #[arg(long, env = "POLYGRAPH_REGISTRY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// JSON on standard output instead of lines for people.
    #[arg(long)]
    json: bool,
}

/// A subgraph to publish or check.
#[derive(Args)]
pub struct Candidate {
    /// The subgraph's name.
    #[arg(long)]
    name: String,
    /// Where the gateway reaches it.
    #[arg(long)]
    url: String,
    /// Its SDL; without it, `--url` is asked for `_service { sdl }`.
    #[arg(long, conflicts_with = "from_url")]
    file: Option<std::path::PathBuf>,
    /// Ask the running subgraph at `--url` for `_service { sdl }` (what happens without
    /// `--file`; this says so explicitly).
    #[arg(long)]
    from_url: bool,
}

impl Client {
    pub fn new(registry: String, token: Option<String>, json: bool) -> Self {
        Self {
            registry,
            token,
            json,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.registry.trim_end_matches('/'));
        let request = reqwest::Client::new()
            .request(method, url)
            .timeout(std::time::Duration::from_mins(1));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// POSTs `body` to `path`; see [`Client::call`].
    async fn post(
        &self,
        path: &str,
        body: &Value,
        accepted: &[u16],
    ) -> anyhow::Result<(u16, Value)> {
        self.call(
            self.request(reqwest::Method::POST, path).json(body),
            accepted,
        )
        .await
    }

    /// Sends, and returns the status and JSON body (an error for statuses other than the
    /// `accepted` ones).
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        accepted: &[u16],
    ) -> anyhow::Result<(u16, Value)> {
        let response = request
            .send()
            .await
            .with_context(|| format!("reaching the registry at {}", self.registry))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !accepted.contains(&status) {
            let message = body
                .get("error")
                .and_then(Value::as_str)
                .map_or_else(|| body.to_string(), str::to_owned);
            anyhow::bail!("the registry answered {status}: {message}");
        }
        Ok((status, body))
    }
}

async fn sdl_of(candidate: &Candidate) -> anyhow::Result<String> {
    match &candidate.file {
        Some(file) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
        }
        None => crate::compose::service_sdl(
            &reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            &candidate.url,
        )
        .await
        .with_context(|| format!("asking {} for _service {{ sdl }}", candidate.url)),
    }
}

fn print_changes(changes: &Value) {
    for change in changes.as_array().into_iter().flatten() {
        let field = |name: &str| {
            change
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        println!(
            "{:<9}  {:<40}  {}",
            field("severity"),
            field("coordinate"),
            field("message")
        );
    }
}

fn print_errors(errors: &Value) {
    for error in errors.as_array().into_iter().flatten() {
        let field = |name: &str| {
            error
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let at = [field("subgraph"), field("coordinate")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!("error: [{}] {at}: {}", field("code"), field("message"));
    }
}

/// Runs a client command, turning failures into exit code 2.
pub async fn run(work: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    match work.await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

pub async fn publish(client: &Client, candidate: &Candidate) -> anyhow::Result<ExitCode> {
    let body =
        json!({ "name": candidate.name, "url": candidate.url, "sdl": sdl_of(candidate).await? });
    let (status, answer) = client.post("/v1/publish", &body, &[200, 422]).await?;
    if client.json {
        println!("{answer}");
    }
    if status == 422 {
        if !client.json {
            print_errors(&answer["errors"]);
            eprintln!(
                "refused: {} does not compose; the current version stays",
                candidate.name
            );
        }
        return Ok(ExitCode::from(1));
    }
    if !client.json {
        print_changes(&answer["changes"]);
        if answer["unchanged"] == true {
            eprintln!(
                "unchanged: version {} already has this subgraph",
                answer["version"]
            );
        } else {
            eprintln!(
                "published {} as version {}",
                candidate.name, answer["version"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn check(
    client: &Client,
    candidate: &Candidate,
    operations: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let body =
        json!({ "name": candidate.name, "url": candidate.url, "sdl": sdl_of(candidate).await? });
    let (_, mut answer) = client.post("/v1/check", &body, &[200]).await?;
    if let Some(manifest) = operations
        && answer["composes"] == true
    {
        judge(client, manifest, &mut answer).await?;
    }
    let composes = answer["composes"] == true;
    let breaking = answer["breaking"].as_u64().unwrap_or(0);
    if client.json {
        println!("{answer}");
    } else if composes {
        print_changes(&answer["changes"]);
        eprintln!("{} composes; {breaking} breaking changes", candidate.name);
    } else {
        print_errors(&answer["errors"]);
        eprintln!("{} does not compose", candidate.name);
    }
    Ok(ExitCode::from(u8::from(!composes || breaking > 0)))
}

/// Judges a check's changes by what the manifest's operations use of the current API schema
/// (when something is published).
async fn judge(
    client: &Client,
    manifest: &std::path::Path,
    answer: &mut Value,
) -> anyhow::Result<()> {
    use polygraph_schema::diff::{Change, Severity};
    let response = client
        .request(reqwest::Method::GET, "/v1/supergraph")
        .send()
        .await?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    anyhow::ensure!(
        response.status().is_success(),
        "fetching the current supergraph answered {}",
        response.status()
    );
    let current = polygraph_gateway::supergraph::Supergraph::parse(&response.text().await?)
        .map_err(|error| anyhow::anyhow!("the current supergraph: {error}"))?;
    let usage = crate::usage(&current.api_schema, manifest)?;
    let changes: Vec<Change> = answer["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Change {
            severity: Severity::parse(c["severity"].as_str().unwrap_or_default())
                .unwrap_or(Severity::Safe),
            coordinate: c["coordinate"].as_str().unwrap_or_default().to_owned(),
            message: c["message"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    let judged = usage.judge(changes);
    let breaking = judged
        .iter()
        .filter(|c| c.severity == Severity::Breaking)
        .count();
    answer["breaking"] = json!(breaking);
    answer["changes"] = judged
        .iter()
        .map(|c| {
            json!({ "severity": c.severity.as_str(), "coordinate": c.coordinate, "message": c.message })
        })
        .collect();
    Ok(())
}

pub async fn fetch(
    client: &Client,
    version: Option<i64>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let supergraph = match version {
        None => {
            let response = client
                .request(reqwest::Method::GET, "/v1/supergraph")
                .send()
                .await
                .with_context(|| format!("reaching the registry at {}", client.registry))?;
            let status = response.status();
            let text = response.text().await?;
            anyhow::ensure!(
                status.is_success(),
                "the registry answered {status}: {text}"
            );
            text
        }
        Some(id) => {
            let (_, answer) = client
                .call(
                    client.request(reqwest::Method::GET, &format!("/v1/versions/{id}")),
                    &[200],
                )
                .await?;
            answer["supergraph"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("version {id} came without a supergraph"))?
                .to_owned()
        }
    };
    match out {
        Some(path) => crate::compose::write_atomically(path, &supergraph)
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{supergraph}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(client: &Client) -> anyhow::Result<ExitCode> {
    let (_, answer) = client
        .call(client.request(reqwest::Method::GET, "/v1/versions"), &[200])
        .await?;
    if client.json {
        println!("{answer}");
        return Ok(ExitCode::SUCCESS);
    }
    for version in answer.as_array().into_iter().flatten() {
        println!(
            "{:>5}  {}  {:<12}  {:<28}  {} changes, {} breaking",
            version["id"],
            version["created_at"].as_str().unwrap_or_default(),
            version["author"].as_str().unwrap_or_default(),
            version["action"].as_str().unwrap_or_default(),
            version["changes"],
            version["breaking"],
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn diff(client: &Client, from: i64, to: i64) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/diff?from={from}&to={to}");
    let (_, answer) = client
        .call(client.request(reqwest::Method::GET, &path), &[200])
        .await?;
    let breaking = answer["changes"].as_array().map_or(0, |changes| {
        changes
            .iter()
            .filter(|c| c["severity"] == "breaking")
            .count()
    });
    if client.json {
        println!("{answer}");
    } else {
        print_changes(&answer["changes"]);
        eprintln!("{breaking} breaking changes from version {from} to {to}");
    }
    Ok(ExitCode::from(u8::from(breaking > 0)))
}

pub async fn rollback(client: &Client, version: i64) -> anyhow::Result<ExitCode> {
    let body = json!({ "version": version });
    let (status, answer) = client.post("/v1/rollback", &body, &[200, 422]).await?;
    if client.json {
        println!("{answer}");
    } else if status == 422 {
        print_errors(&answer["errors"]);
    } else {
        print_changes(&answer["changes"]);
        eprintln!(
            "version {} has the subgraphs of version {version}",
            answer["version"]
        );
    }
    Ok(ExitCode::from(u8::from(status == 422)))
}
