//! `polygraph config`: the JSON Schema of each service's configuration file, and checking a
//! file the way the service reads it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use polygraph_subgraph_core::config::ENV_PREFIX as SUBGRAPH_PREFIX;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON Schema of a service's configuration file (for editors and CI checks).
    Schema { service: Service },
    /// Read FILE as SERVICE would at start (`${NAME}` expanded, `POLYGRAPH_…__` overrides from
    /// the environment applied); errors name the key and the line.
    Check { service: Service, file: PathBuf },
}

/// A service with a configuration file.
#[derive(Clone, Copy, ValueEnum)]
pub enum Service {
    Gateway,
    Postgres,
    Mongodb,
    Elasticsearch,
    Redis,
    Clickhouse,
    Neo4j,
}

pub fn run(command: &ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Schema { service } => {
            let schema = match service {
                Service::Gateway => schema::<polygraph_gateway::gateway::Settings>(),
                Service::Postgres => schema::<polygraph_subgraph_postgres::Config>(),
                Service::Mongodb => schema::<polygraph_subgraph_mongodb::Config>(),
                Service::Elasticsearch => schema::<polygraph_subgraph_elasticsearch::Config>(),
                Service::Redis => schema::<polygraph_subgraph_redis::Config>(),
                Service::Clickhouse => schema::<polygraph_subgraph_clickhouse::Config>(),
                Service::Neo4j => schema::<polygraph_subgraph_neo4j::Config>(),
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{schema:#}");
            ExitCode::SUCCESS
        }
        ConfigCommand::Check { service, file } => {
            let checked = match service {
                Service::Gateway => {
                    polygraph_gateway::gateway::Settings::load(Some(file)).map(|_| ())
                }
                Service::Postgres => check::<polygraph_subgraph_postgres::Config>(file),
                Service::Mongodb => check::<polygraph_subgraph_mongodb::Config>(file),
                Service::Elasticsearch => check::<polygraph_subgraph_elasticsearch::Config>(file),
                Service::Redis => check::<polygraph_subgraph_redis::Config>(file),
                Service::Clickhouse => check::<polygraph_subgraph_clickhouse::Config>(file),
                Service::Neo4j => check::<polygraph_subgraph_neo4j::Config>(file),
            };
            match checked {
                Ok(()) => {
                    println!("{}: ok", file.display());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn schema<T: schemars::JsonSchema>() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    serde_json::to_value(schema).expect("a schema is JSON")
}

fn check<T: serde::de::DeserializeOwned>(
    file: &Path,
) -> Result<(), polygraph_service::config::ConfigError> {
    polygraph_service::config::from_file::<T>(file, SUBGRAPH_PREFIX).map(|_| ())
}
