//! `polygraph compose`: subgraphs listed in a small YAML file, each read from a file or from
//! the running subgraph's `_service { sdl }`, composed into a supergraph with their real URLs.
//!
//! ```yaml
//! subgraphs:
//!   - name: postgres
//!     url: http://127.0.0.1:4001/graphql   # where the gateway reaches it
//!   - name: mongodb
//!     url: http://127.0.0.1:4002/graphql
//!     file: schema/subgraphs/mongodb.graphql   # its SDL, instead of asking the URL
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use polygraph_schema::compose::{Error, Input};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    subgraphs: Vec<Entry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    url: String,
    /// The SDL, relative to the config file; without it the URL is asked for `_service { sdl }`.
    file: Option<PathBuf>,
}

/// The subgraphs `config` lists, with their SDLs.
pub async fn inputs(config: &Path) -> anyhow::Result<Vec<Input>> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let parsed: Config =
        serde_yaml::from_str(&text).with_context(|| format!("reading {}", config.display()))?;
    if parsed.subgraphs.is_empty() {
        bail!("{} lists no subgraphs", config.display());
    }
    let base = config.parent().unwrap_or(Path::new("."));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let mut inputs = Vec::new();
    for entry in parsed.subgraphs {
        let sdl = match &entry.file {
            Some(file) => {
                let path = base.join(file);
                std::fs::read_to_string(&path).with_context(|| {
                    format!("subgraph {}: reading {}", entry.name, path.display())
                })?
            }
            None => service_sdl(&client, &entry.url).await.with_context(|| {
                format!(
                    "subgraph {}: asking {} for _service {{ sdl }}",
                    entry.name, entry.url
                )
            })?,
        };
        inputs.push(Input {
            name: entry.name,
            url: entry.url,
            sdl,
        });
    }
    Ok(inputs)
}

/// What a running subgraph answers to `{ _service { sdl } }`.
pub async fn service_sdl(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = client
        .post(url)
        .json(&serde_json::json!({ "query": "{ _service { sdl } }" }))
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("the answer ({status}) is not JSON"))?;
    match body
        .pointer("/data/_service/sdl")
        .and_then(serde_json::Value::as_str)
    {
        Some(sdl) => Ok(sdl.to_owned()),
        None => bail!("the answer ({status}) has no data._service.sdl: {body}"),
    }
}

/// Writes `text` to `path` through a temporary file renamed into place, so a gateway that
/// re-reads the file never sees half of it.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// Prints composition errors, one per line (or one JSON object per line).
pub fn print_errors(errors: &[Error], json: bool) {
    for error in errors {
        if json {
            println!("{}", serde_json::to_string(error).unwrap_or_default());
        } else {
            eprintln!("error: {error}");
        }
    }
    if !json {
        eprintln!("{} composition errors", errors.len());
    }
}
