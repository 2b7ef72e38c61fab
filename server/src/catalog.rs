//! The durable catalog: streams, shards (hash ranges, lineage, placement), retention, tags and
//! consumers. Owned and changed only by core 0 (the controller); every core holds an immutable
//! `Arc<Catalog>` snapshot for routing, replaced whenever the controller publishes a new one.
//!
//! Persisted as `catalog.json` in the data directory by an atomic write (temp file, fdatasync,
//! rename, directory fsync). Stream names never become paths: a stream's shards live under
//! `streams/<incarnation>/<shard index>`, so `.`, `..` or any other valid name stays inside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    #[serde(rename = "CREATING")]
    Creating,
    #[serde(rename = "ACTIVE")]
    Active,
    #[serde(rename = "UPDATING")]
    Updating,
    #[serde(rename = "DELETING")]
    Deleting,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    #[serde(rename = "PROVISIONED")]
    Provisioned,
    #[serde(rename = "ON_DEMAND")]
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }
}

/// u128 as a decimal string in JSON (hash keys exceed what JSON numbers carry safely).
mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMeta {
    /// The number in `shardId-000000000007`; unique within the stream, never reused.
    pub index: u32,
    #[serde(with = "u128_string")]
    pub starting_hash_key: u128,
    #[serde(with = "u128_string")]
    pub ending_hash_key: u128,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    /// The core that owns this shard's log.
    pub core: usize,
    pub created_ms: i64,
    /// Set once the shard is closed by a reshard: the exclusive ending offset.
    pub ending_offset: Option<u64>,
    /// When the shard was closed.
    #[serde(default)]
    pub closed_ms: Option<i64>,
}

impl ShardMeta {
    pub fn shard_id(&self) -> String {
        shard_id(self.index)
    }
    pub fn is_open(&self) -> bool {
        self.ending_offset.is_none()
    }
    /// Closed before `retention_start` (see [`StreamMeta::retention_start_ms`]): every record
    /// it holds has passed retention, and AWS no longer lists it.
    pub fn expired(&self, retention_start_ms: i64) -> bool {
        self.closed_ms.is_some_and(|closed| closed < retention_start_ms)
    }
    pub fn contains(&self, hash_key: u128) -> bool {
        self.starting_hash_key <= hash_key && hash_key <= self.ending_hash_key
    }
}

pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// The shard a ShardId names. AWS resolves a ShardId by the number after its last hyphen, so
/// `shardId-000000000007`, `shardId-7` and `anything-7` all name shard 7 (error messages still
/// quote the id as the client wrote it).
pub fn parse_shard_id(id: &str) -> Option<u32> {
    let (_, digits) = id.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    digits.parse::<u32>().ok()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMeta {
    pub name: String,
    pub creation_epoch_seconds: i64,
    pub status: String,
    /// Tags set by RegisterStreamConsumer or TagResource on the consumer's ARN.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    /// Unique per created stream, never reused (also the sequence-number incarnation).
    pub incarnation: u64,
    pub created_ms: i64,
    pub status: StreamStatus,
    pub mode: StreamMode,
    pub retention_hours: u32,
    pub tags: BTreeMap<String, String>,
    pub shards: Vec<ShardMeta>,
    pub next_shard_index: u32,
    pub consumers: Vec<ConsumerMeta>,
    /// Times (ms) of recent UpdateShardCount calls, for the 10-per-24-hours limit.
    pub shard_count_updates_ms: Vec<i64>,
}

impl StreamMeta {
    pub fn retention_ms(&self) -> i64 {
        self.retention_hours as i64 * 3_600_000
    }

    /// The oldest arrival time still within retention at `now_ms`.
    pub fn retention_start_ms(&self, now_ms: i64) -> i64 {
        now_ms - self.retention_ms()
    }

    pub fn shard(&self, index: u32) -> Option<&ShardMeta> {
        self.shards.iter().find(|s| s.index == index)
    }
    pub fn open_shards(&self) -> impl Iterator<Item = &ShardMeta> {
        self.shards.iter().filter(|s| s.is_open())
    }
    pub fn open_shard_count(&self) -> usize {
        self.open_shards().count()
    }
    /// The open shard whose range holds `hash_key`.
    pub fn route(&self, hash_key: u128) -> Option<&ShardMeta> {
        self.open_shards().find(|s| s.contains(hash_key))
    }
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:kinesis:{region}:{account}:stream/{}", self.name)
    }
    pub fn consumer_arn(&self, region: &str, account: &str, consumer: &ConsumerMeta) -> String {
        format!(
            "{}/consumer/{}:{}",
            self.arn(region, account),
            consumer.name,
            consumer.creation_epoch_seconds
        )
    }
    pub fn children_of(&self, index: u32) -> Vec<&ShardMeta> {
        self.shards
            .iter()
            .filter(|s| s.parent == Some(index) || s.adjacent_parent == Some(index))
            .collect()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Bumped on every change; cores ignore snapshots older than the one they hold.
    pub version: u64,
    pub next_incarnation: u64,
    pub streams: BTreeMap<String, StreamMeta>,
}

impl Catalog {
    pub fn stream_by_incarnation(&self, incarnation: u64) -> Option<&StreamMeta> {
        self.streams.values().find(|s| s.incarnation == incarnation)
    }
    pub fn shard_count_total(&self) -> usize {
        self.streams.values().map(|s| s.open_shard_count()).sum()
    }
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("catalog serializes")
    }
    pub fn from_json(bytes: &[u8]) -> Result<Catalog, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("catalog.json is damaged: {e}"))
    }
}

pub const CATALOG_FILE: &str = "catalog.json";

/// Where a shard's log lives.
pub fn shard_dir(data_dir: &Path, incarnation: u64, shard_index: u32) -> PathBuf {
    data_dir.join("streams").join(incarnation.to_string()).join(format!("{shard_index:012}"))
}

pub fn stream_dir(data_dir: &Path, incarnation: u64) -> PathBuf {
    data_dir.join("streams").join(incarnation.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_and_paths() {
        assert_eq!(shard_id(7), "shardId-000000000007");
        assert_eq!(parse_shard_id("shardId-000000000007"), Some(7));
        // As AWS: the number after the last hyphen names the shard.
        assert_eq!(parse_shard_id("shardId-7"), Some(7));
        assert_eq!(parse_shard_id("shardId-0"), Some(0));
        assert_eq!(parse_shard_id("shardId-000000000000"), Some(0));
        assert_eq!(parse_shard_id("anything-0"), Some(0));
        assert_eq!(parse_shard_id("a-b-0000000000000000000042"), Some(42));
        for unknown in ["shardId-", "shardId-x1", "7", "shardId-99999999999"] {
            assert_eq!(parse_shard_id(unknown), None, "{unknown}");
        }
        let p = shard_dir(Path::new("/d"), 5, 2);
        assert_eq!(p, PathBuf::from("/d/streams/5/000000000002"));
    }

    #[test]
    fn json_round_trip_keeps_u128() {
        let mut c = Catalog::default();
        c.streams.insert(
            "..".into(),
            StreamMeta {
                name: "..".into(),
                incarnation: 1,
                created_ms: 0,
                status: StreamStatus::Active,
                mode: StreamMode::Provisioned,
                retention_hours: 24,
                tags: BTreeMap::new(),
                shards: vec![ShardMeta {
                    index: 0,
                    starting_hash_key: 0,
                    ending_hash_key: u128::MAX,
                    parent: None,
                    adjacent_parent: None,
                    core: 0,
                    created_ms: 0,
                    ending_offset: None,
                    closed_ms: None,
                }],
                next_shard_index: 1,
                consumers: vec![],
                shard_count_updates_ms: vec![],
            },
        );
        assert_eq!(Catalog::from_json(&c.to_json()).unwrap(), c);
    }
}
