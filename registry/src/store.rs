//! Where the registry keeps its versions: PostgreSQL for production, a JSON file for one
//! machine. A version is the whole state (every subgraph and the supergraph they compose to),
//! so a rollback is a new version with an old state, and history only grows.
//!
//! Appending is atomic and conditional: it names the version it was composed against and is
//! refused when another publish got there first, so two publishers never lose each other's
//! subgraph.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Mutex;

/// One subgraph as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub name: String,
    pub url: String,
    pub sdl: String,
}

/// One change to the API schema, as recorded with the version that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub severity: String,
    pub coordinate: String,
    pub message: String,
}

/// A state of the registry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Version {
    pub id: i64,
    /// RFC 3339.
    pub created_at: String,
    /// The name of the token that made it.
    pub author: String,
    /// `publish NAME`, `remove NAME` or `rollback to ID`.
    pub action: String,
    pub subgraphs: Vec<Published>,
    pub supergraph: String,
    /// What it changed in the API schema of the version before it.
    pub changes: Vec<Recorded>,
}

/// A version without its schemas, for listings.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub id: i64,
    pub created_at: String,
    pub author: String,
    pub action: String,
    pub subgraphs: Vec<String>,
    pub breaking: usize,
    pub changes: usize,
}

impl From<&Version> for Summary {
    fn from(version: &Version) -> Self {
        Self {
            id: version.id,
            created_at: version.created_at.clone(),
            author: version.author.clone(),
            action: version.action.clone(),
            subgraphs: version.subgraphs.iter().map(|s| s.name.clone()).collect(),
            breaking: version
                .changes
                .iter()
                .filter(|c| c.severity == polygraph_schema::diff::Severity::Breaking.as_str())
                .count(),
            changes: version.changes.len(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another publish made version {0} first; compose again against it")]
    Conflict(i64),
    #[error("registry storage: {0}")]
    Storage(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Storage(error.to_string())
    }
}

impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        Self::Storage(error.to_string())
    }
}

/// The registry's storage.
pub enum Store {
    /// Every version in one JSON file, rewritten whole (to a temporary file, then renamed)
    /// on each append.
    File {
        path: PathBuf,
        versions: Mutex<Vec<Version>>,
        /// `PATH.lock`, held exclusively while the store is open: one registry per file.
        _lock: std::fs::File,
    },
    Postgres(PgPool),
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS polygraph_registry_versions (
    id BIGINT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    author TEXT NOT NULL,
    action TEXT NOT NULL,
    subgraphs JSONB NOT NULL,
    supergraph TEXT NOT NULL,
    changes JSONB NOT NULL
)";

impl Store {
    /// The file store at `path` (created on the first append).
    pub fn file(path: PathBuf) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock_path = path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Storage(format!(
                "{} is in use by another registry (its lock {} is held)",
                path.display(),
                lock_path.display()
            )));
        }
        let versions = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Storage(format!("{}: {e}", path.display())))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(StoreError::Storage(format!("{}: {error}", path.display()))),
        };
        Ok(Self::File {
            path,
            versions: Mutex::new(versions),
            _lock: lock,
        })
    }

    /// The PostgreSQL store, its table created when missing.
    pub async fn postgres(pool: PgPool) -> Result<Self, StoreError> {
        sqlx::query(SCHEMA).execute(&pool).await?;
        Ok(Self::Postgres(pool))
    }

    /// The newest version.
    pub async fn current(&self) -> Result<Option<Version>, StoreError> {
        match self {
            Self::File { versions, .. } => Ok(versions.lock().await.last().cloned()),
            Self::Postgres(pool) => {
                let row: Option<Row> = sqlx::query_as(
                    "SELECT id, created_at, author, action, subgraphs, supergraph, changes
                     FROM polygraph_registry_versions ORDER BY id DESC LIMIT 1",
                )
                .fetch_optional(pool)
                .await?;
                row.map(Version::try_from).transpose()
            }
        }
    }

    pub async fn get(&self, id: i64) -> Result<Option<Version>, StoreError> {
        match self {
            Self::File { versions, .. } => {
                Ok(versions.lock().await.iter().find(|v| v.id == id).cloned())
            }
            Self::Postgres(pool) => {
                let row: Option<Row> = sqlx::query_as(
                    "SELECT id, created_at, author, action, subgraphs, supergraph, changes
                     FROM polygraph_registry_versions WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await?;
                row.map(Version::try_from).transpose()
            }
        }
    }

    /// Every version, newest first.
    pub async fn list(&self) -> Result<Vec<Summary>, StoreError> {
        match self {
            Self::File { versions, .. } => Ok(versions
                .lock()
                .await
                .iter()
                .rev()
                .map(Summary::from)
                .collect()),
            Self::Postgres(pool) => {
                // Names only: a listing need not load every SDL ever published.
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, created_at, author, action,
                            (SELECT coalesce(jsonb_agg(jsonb_build_object('name', s->'name', 'url', '', 'sdl', '')), '[]'::jsonb)
                             FROM jsonb_array_elements(subgraphs) AS s) AS subgraphs,
                            '' AS supergraph, changes
                     FROM polygraph_registry_versions ORDER BY id DESC",
                )
                .fetch_all(pool)
                .await?;
                rows.into_iter()
                    .map(|row| Version::try_from(row).map(|v| Summary::from(&v)))
                    .collect()
            }
        }
    }

    /// Appends `version` as the one after `after` (`None`: the first), or says who was first.
    pub async fn append(
        &self,
        after: Option<i64>,
        mut version: Version,
    ) -> Result<Version, StoreError> {
        version.id = after.unwrap_or(0) + 1;
        match self {
            Self::File { path, versions, .. } => {
                let mut versions = versions.lock().await;
                let last = versions.last().map(|v| v.id);
                if last != after {
                    return Err(StoreError::Conflict(last.unwrap_or(0)));
                }
                versions.push(version.clone());
                let (path, all) = (path.clone(), versions.clone());
                let written = tokio::task::spawn_blocking(move || write_atomically(&path, &all))
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Storage(e.to_string())));
                if let Err(error) = written {
                    versions.pop();
                    return Err(error);
                }
                Ok(version)
            }
            Self::Postgres(pool) => {
                let created_at = chrono::DateTime::parse_from_rfc3339(&version.created_at)
                    .map_err(|e| StoreError::Storage(e.to_string()))?;
                let inserted = sqlx::query(
                    "INSERT INTO polygraph_registry_versions
                     (id, created_at, author, action, subgraphs, supergraph, changes)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                )
                .bind(version.id)
                .bind(created_at)
                .bind(&version.author)
                .bind(&version.action)
                .bind(sqlx::types::Json(&version.subgraphs))
                .bind(&version.supergraph)
                .bind(sqlx::types::Json(&version.changes))
                .execute(pool)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::Conflict(version.id));
                }
                Ok(version)
            }
        }
    }
}

/// Writes `versions` to a new file readable by its owner only, flushes it to disk, and puts
/// it in place of `path` (then flushes the folder), so a crash leaves the old file or the new.
fn write_atomically(path: &std::path::Path, versions: &[Version]) -> Result<(), StoreError> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let bytes =
        serde_json::to_vec_pretty(versions).map_err(|e| StoreError::Storage(e.to_string()))?;
    let temporary = path.with_extension("json.new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    author: String,
    action: String,
    subgraphs: sqlx::types::Json<Vec<Published>>,
    supergraph: String,
    changes: sqlx::types::Json<Vec<Recorded>>,
}

impl TryFrom<Row> for Version {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id,
            created_at: row.created_at.to_rfc3339(),
            author: row.author,
            action: row.action,
            subgraphs: row.subgraphs.0,
            supergraph: row.supergraph,
            changes: row.changes.0,
        })
    }
}
