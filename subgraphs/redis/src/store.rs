//! Redis itself: `HMGET` pipelines for reads, one `MULTI`/`EXEC` for writes, and a count of
//! round trips.

use std::sync::Arc;

use polygraph_subgraph_core::recorder::Recorder;
use redis::aio::ConnectionManager;
use serde_json::{Map, Value as Json};

use crate::model::Model;

/// The connection and a count of its round trips.
#[derive(Clone)]
pub struct Store {
    pub(crate) connection: ConnectionManager,
    pub(crate) round_trips: Arc<Recorder>,
}

/// One entity's group of features to read: which group, which of its features (indices, in
/// order), and the entity's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub group: usize,
    pub features: Arc<[usize]>,
    pub id: String,
}

/// A group's features as a JSON object by GraphQL field name; `None` when the entity has no
/// hash for it.
pub type GroupValues = Option<Arc<Json>>;

impl Store {
    /// `HMGET` of each (key, fields), in pipelines of at most `batch` commands sent one after
    /// another.
    pub async fn read(
        &self,
        reads: &[(String, Vec<&str>)],
        batch: usize,
    ) -> redis::RedisResult<Vec<Vec<Option<String>>>> {
        let mut rows = Vec::with_capacity(reads.len());
        for chunk in reads.chunks(batch.max(1)) {
            let mut pipe = redis::pipe();
            for (key, fields) in chunk {
                pipe.cmd("HMGET").arg(key).arg(fields);
            }
            self.round_trips.note_with(|| {
                let commands: Vec<String> = chunk
                    .iter()
                    .map(|(key, fields)| format!("HMGET {key} {}", fields.join(" ")))
                    .collect();
                commands.join("; ")
            });
            let chunk_rows: Vec<Vec<Option<String>>> = self
                .round_trips
                .round_trip(
                    &format!("HMGET x{}", chunk.len()),
                    pipe.query_async(&mut self.connection.clone()),
                )
                .await?;
            rows.extend(chunk_rows);
        }
        Ok(rows)
    }

    /// The groups of `keys`, in order, in one pipeline.
    pub async fn read_groups(
        &self,
        model: &Model,
        keys: &[GroupKey],
    ) -> redis::RedisResult<Vec<GroupValues>> {
        let reads: Vec<(String, Vec<&str>)> = keys
            .iter()
            .map(|key| {
                let group = &model.groups[key.group];
                let fields = key
                    .features
                    .iter()
                    .map(|index| group.features[*index].name.as_str())
                    .collect();
                (group.key(&key.id), fields)
            })
            .collect();
        let rows = self.read(&reads, model.max_ids).await?;
        Ok(keys
            .iter()
            .zip(rows)
            .map(|(key, row)| {
                let group = &model.groups[key.group];
                row.iter().any(Option::is_some).then(|| {
                    let values: Map<String, Json> = key
                        .features
                        .iter()
                        .map(|index| &group.features[*index])
                        .zip(&row)
                        .map(|(feature, stored)| {
                            let value = stored.as_deref().and_then(|s| feature.kind.read(s));
                            (feature.field.clone(), value.unwrap_or(Json::Null))
                        })
                        .collect();
                    Arc::new(Json::Object(values))
                })
            })
            .collect())
    }

    /// Writes each (group, fields) of entity `id` and sets the groups' TTLs, all or nothing;
    /// the shortest TTL set.
    pub async fn write(
        &self,
        model: &Model,
        id: &str,
        writes: &[(usize, Vec<(String, String)>)],
    ) -> redis::RedisResult<Option<u64>> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut expires = None;
        for (group, fields) in writes {
            let spec = &model.groups[*group];
            let key = spec.key(id);
            pipe.hset_multiple(&key, fields).ignore();
            if let Some(ttl) = spec.ttl_seconds {
                pipe.expire(&key, i64::try_from(ttl).unwrap_or(i64::MAX))
                    .ignore();
                expires = Some(expires.map_or(ttl, |e: u64| e.min(ttl)));
            }
        }
        if !writes.is_empty() {
            self.round_trips
                .note_with(|| format!("HSET {id}: {} groups", writes.len()));
            let () = self
                .round_trips
                .round_trip(
                    &format!("MULTI HSET x{} EXEC", writes.len()),
                    pipe.query_async(&mut self.connection.clone()),
                )
                .await?;
        }
        Ok(expires)
    }
}
