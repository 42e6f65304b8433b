//! Where the six databases are: one URL each, from the environment, defaulting to the loopback
//! ports `scripts/dev up` starts them on (see `scripts/ports.sh`).
//!
//! Pointing Polygraph at real servers is a matter of setting these variables, for example
//! `POLYGRAPH_POSTGRES_URL=postgres://app:secret@db.internal:5432/shop`.

/// Connection URLs for every database the demo and the subgraphs use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub postgres: String,
    pub redis: String,
    pub mongodb: String,
    /// Database name inside MongoDB.
    pub mongodb_database: String,
    pub elasticsearch: String,
    pub clickhouse: String,
    /// Database name inside ClickHouse.
    pub clickhouse_database: String,
    pub neo4j: String,
    pub neo4j_user: String,
    pub neo4j_password: String,
}

/// Environment variables and their development defaults, in one table so the two never drift.
const VARIABLES: &[(&str, &str)] = &[
    (
        "POLYGRAPH_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:55432/polygraph",
    ),
    ("POLYGRAPH_REDIS_URL", "redis://127.0.0.1:56379"),
    ("POLYGRAPH_MONGODB_URL", "mongodb://127.0.0.1:57017"),
    ("POLYGRAPH_MONGODB_DATABASE", "polygraph"),
    ("POLYGRAPH_ELASTICSEARCH_URL", "http://127.0.0.1:59200"),
    ("POLYGRAPH_CLICKHOUSE_URL", "http://127.0.0.1:58123"),
    ("POLYGRAPH_CLICKHOUSE_DATABASE", "polygraph"),
    ("POLYGRAPH_NEO4J_URL", "bolt://127.0.0.1:57687"),
    ("POLYGRAPH_NEO4J_USER", "neo4j"),
    ("POLYGRAPH_NEO4J_PASSWORD", "polygraph"),
];

impl Endpoints {
    /// Reads every URL from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every URL through `lookup`, falling back to the development default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            let default = VARIABLES
                .iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, default)| *default)
                .expect("every variable has a default");
            lookup(name)
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Self {
            postgres: get("POLYGRAPH_POSTGRES_URL"),
            redis: get("POLYGRAPH_REDIS_URL"),
            mongodb: get("POLYGRAPH_MONGODB_URL"),
            mongodb_database: get("POLYGRAPH_MONGODB_DATABASE"),
            elasticsearch: get("POLYGRAPH_ELASTICSEARCH_URL"),
            clickhouse: get("POLYGRAPH_CLICKHOUSE_URL"),
            clickhouse_database: get("POLYGRAPH_CLICKHOUSE_DATABASE"),
            neo4j: get("POLYGRAPH_NEO4J_URL"),
            neo4j_user: get("POLYGRAPH_NEO4J_USER"),
            neo4j_password: get("POLYGRAPH_NEO4J_PASSWORD"),
        }
    }

    /// Host and port of the Bolt URL, for drivers that take them apart.
    pub fn neo4j_host_port(&self) -> Result<(String, u16), String> {
        let rest = self
            .neo4j
            .split_once("://")
            .map_or(self.neo4j.as_str(), |(_, rest)| rest);
        let rest = rest.split('/').next().unwrap_or(rest);
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "7687"));
        let port = port.parse().map_err(|_| {
            format!(
                "bad port in POLYGRAPH_NEO4J_URL {:?}",
                polygraph_service::config::redacted_url(&self.neo4j)
            )
        })?;
        Ok((host.to_owned(), port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let endpoints = Endpoints::from_lookup(|name| {
            (name == "POLYGRAPH_REDIS_URL").then(|| "redis://cache:6379".to_owned())
        });
        assert_eq!(endpoints.redis, "redis://cache:6379");
        assert_eq!(
            endpoints.postgres,
            "postgres://postgres@127.0.0.1:55432/polygraph"
        );
        assert_eq!(
            endpoints.neo4j_host_port().unwrap(),
            ("127.0.0.1".to_owned(), 57687)
        );
    }

    #[test]
    fn bolt_url_without_port_uses_the_bolt_default() {
        let endpoints = Endpoints::from_lookup(|name| {
            (name == "POLYGRAPH_NEO4J_URL").then(|| "neo4j://graph.internal".to_owned())
        });
        assert_eq!(
            endpoints.neo4j_host_port().unwrap(),
            ("graph.internal".to_owned(), 7687)
        );
    }
}
