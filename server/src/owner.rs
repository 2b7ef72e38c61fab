//! What a core does with the shards it owns: open their logs, append, read, find positions,
//! seal, unseal and drop them, and its periodic maintenance (retention, reclaiming closed
//! shards, interval syncs). The messages that ask for this work (`msg::DataMsg`,
//! `msg::AdminMsg`) are routed here by `node::serve`; quotas are checked here, on the owner, so
//! their accounting needs no shared state.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use engine::{
    AppendResult, DigitsCursor, FrameRef, GlommioStorage, LogConfig, NewRecord, ReadSink,
    SequenceNumber, ShardIdentity, ShardLog, Storage,
};
use spate_proto::limits::GET_RECORDS_BYTES_MAX;
use spate_proto::responses::RecordsWriter;
use spate_proto::types::Timestamp;

use crate::catalog::{self, ShardMeta, StreamStatus};
use crate::config::Durability;
use crate::core::{Core, OwnedShard};
use crate::msg::{AppendOutcome, ControlMsg, Msg, PositionQuery, ReadReply, ShardError};
use crate::quota::ShardQuotas;

/// Writes records as GetRecords JSON as the log verifies them (see `ReadReply::records`).
struct JsonSink {
    writer: RecordsWriter,
    digits: DigitsCursor,
    incarnation: u64,
    shard: u32,
    limit: usize,
    last_arrival_ms: Option<i64>,
}

impl ReadSink for JsonSink {
    fn expect(&mut self, frame_bytes: usize) {
        // Base64 of whole frames (a 32-byte header more than covers a record's digits and
        // timestamp), plus the member names of at most one record per minimal frame. An
        // overestimate only reserves address space; pages are touched as they are written.
        let records = self.limit.min(frame_bytes / engine::limits::FRAME_HEADER_BYTES);
        self.writer.reserve(frame_bytes / 3 * 4 + 4 + records.saturating_mul(112));
    }

    fn record(&mut self, frame: FrameRef<'_>) {
        let sequence = SequenceNumber {
            incarnation: self.incarnation,
            shard_index: self.shard,
            offset: frame.offset,
        };
        self.writer.record(
            self.digits.digits(sequence),
            Timestamp::from_millis(frame.arrival_ms),
            frame.data(),
            frame.partition_key(),
            None,
        );
        self.last_arrival_ms = Some(frame.arrival_ms);
    }
}

fn log_config(core: &Core) -> LogConfig {
    LogConfig { segment_bytes: core.config().segment_bytes, durability: core.config().durability }
}

pub async fn open_shard(core: &Core, incarnation: u64, index: u32) -> Result<(), String> {
    if core.owned(incarnation, index).is_some() {
        return Ok(());
    }
    let catalog = core.catalog();
    let (stream, shard_id) = match catalog.stream_by_incarnation(incarnation) {
        Some(s) => (s.name.clone(), catalog::shard_id(index)),
        None => (format!("incarnation-{incarnation}"), catalog::shard_id(index)),
    };
    let dir: PathBuf = catalog::shard_dir(&core.config().data_dir, incarnation, index);
    let log = ShardLog::open(
        GlommioStorage,
        core.clock().clone(),
        dir.clone(),
        ShardIdentity { incarnation, shard_index: index },
        log_config(core),
    )
    .await
    .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let quotas = ShardQuotas::new(
        &crate::quota::QuotaLimits::from_config(core.config()),
        core.clock().monotonic_ns(),
    );
    let owned = OwnedShard { log: Rc::new(log), quotas, stream, shard_id };
    let anomalies = owned.log.anomalies().len() as u64;
    core.metrics().shard(&owned.stream, &owned.shard_id, |c| {
        c.open = Some(true);
        c.log_anomalies = anomalies;
    });
    core.adopt(incarnation, index, owned);
    Ok(())
}

pub async fn append(
    core: &Core,
    incarnation: u64,
    shard: u32,
    records: Vec<NewRecord>,
) -> Result<AppendOutcome, ShardError> {
    let owned = core.owned(incarnation, shard).ok_or(ShardError::Missing)?;
    let now = core.clock().monotonic_ns();
    // Quotas decide per record, in order; throttled records are left out of the batch.
    let accepted: Vec<bool> = records
        .iter()
        .map(|r| owned.quotas.try_write(now, (r.data.len() + r.partition_key.len()) as u64))
        .collect();
    let throttled = accepted.iter().filter(|a| !**a).count() as u64;
    let batch: Vec<NewRecord> =
        records.into_iter().zip(accepted.iter()).filter_map(|(r, a)| a.then_some(r)).collect();
    let bytes: u64 = batch.iter().map(|r| (r.data.len() + r.partition_key.len()) as u64).sum();
    let count = batch.len() as u64;
    let (result, failed) = if batch.is_empty() {
        (None, None)
    } else {
        match owned.log.append(&batch).await {
            Ok(result) => (Some(result), None),
            // The first records landed (durable, visible): they get their sequence numbers.
            Err(engine::Error::PartiallyAppended { first_offset, count, arrival_ms, cause }) => {
                (Some(AppendResult { first_offset, count, arrival_ms }), Some(*cause))
            }
            Err(e) => return Err(ShardError::Engine(e)),
        }
    };
    core.metrics().shard(&owned.stream, &owned.shard_id, |c| {
        c.incoming_bytes += bytes;
        c.incoming_records += count;
        c.write_throttled += throttled;
        c.write_utilization = owned.quotas.write_utilization(now);
    });
    Ok(AppendOutcome { result, failed, accepted })
}

pub fn read(
    core: &Core,
    incarnation: u64,
    shard: u32,
    offset: u64,
    limit: usize,
) -> Result<ReadReply, ShardError> {
    let owned = core.owned(incarnation, shard).ok_or(ShardError::Missing)?;
    let now = core.clock().monotonic_ns();
    if !owned.quotas.try_read_call(now) {
        core.metrics().shard(&owned.stream, &owned.shard_id, |c| c.read_throttled += 1);
        return Err(ShardError::Throttled);
    }
    let mut sink = JsonSink {
        writer: RecordsWriter::with_capacity(0),
        digits: DigitsCursor::new(),
        incarnation,
        shard,
        limit,
        last_arrival_ms: None,
    };
    let read = owned
        .log
        .read_each(offset, limit, GET_RECORDS_BYTES_MAX, &mut sink)
        .map_err(ShardError::Engine)?;
    let bytes = read.bytes as u64;
    owned.quotas.charge_read_bytes(now, bytes);
    let tip = owned.log.next_offset();
    let tip_arrival_ms = owned.log.last_arrival_ms();
    core.metrics().shard(&owned.stream, &owned.shard_id, |c| {
        c.outgoing_bytes += bytes;
        c.outgoing_records += read.records as u64;
        c.get_records_calls += 1;
        c.read_utilization = owned.quotas.read_utilization(now);
    });
    Ok(ReadReply {
        records: sink.writer,
        last_arrival_ms: sink.last_arrival_ms,
        next_offset: read.next_offset,
        tip,
        tip_arrival_ms,
        sealed: owned.log.sealed(),
    })
}

/// The offset a GetShardIterator position names, charging the shard's iterator quota if asked.
pub fn position(
    core: &Core,
    incarnation: u64,
    shard: u32,
    query: PositionQuery,
    charge_iterator: bool,
) -> Result<u64, ShardError> {
    let now_ns = core.clock().monotonic_ns();
    match core.owned(incarnation, shard) {
        None => Err(ShardError::Missing),
        Some(owned) if charge_iterator && !owned.quotas.try_get_shard_iterator(now_ns) => {
            Err(ShardError::Throttled)
        }
        Some(owned) => match query {
            PositionQuery::Latest => Ok(owned.log.next_offset()),
            PositionQuery::TrimHorizon => Ok(owned.log.trim_horizon()),
            PositionQuery::Timestamp(ms) => {
                owned.log.offset_at_timestamp(ms).map_err(ShardError::Engine)
            }
        },
    }
}

/// Opens the given shards' logs, in order; stops at the first failure.
pub async fn open_shards(core: &Core, shards: Vec<(u64, u32)>) -> Result<(), String> {
    for (incarnation, index) in shards {
        open_shard(core, incarnation, index).await?;
    }
    Ok(())
}

/// Seals a shard's log (a reshard's parent); answers its ending offset.
pub async fn seal(core: &Core, incarnation: u64, shard: u32) -> Result<u64, String> {
    let result = match core.owned(incarnation, shard) {
        None => Err(format!("shard {shard} of {incarnation} is not on core {}", core.id())),
        Some(owned) => owned.log.seal().await.map_err(|e| e.to_string()),
    };
    // A seal whose reply is slow (a slow disk): the shard is already sealed meanwhile.
    crate::failpoint::slow("seal").await;
    if let Some(owned) = core.owned(incarnation, shard) {
        core.metrics().shard(&owned.stream, &owned.shard_id, |c| c.open = Some(false));
    }
    result
}

/// Reopens a sealed shard whose reshard never reached the catalog.
pub async fn unseal(core: &Core, incarnation: u64, shard: u32) -> Result<(), String> {
    match core.owned(incarnation, shard) {
        None => Err(format!("shard {shard} of {incarnation} is not on core {}", core.id())),
        Some(owned) => owned.log.unseal().await.map_err(|e| e.to_string()),
    }
}

/// Closes a deleted stream's logs on this core and removes their directories. (Its live
/// subscriptions are ended first, by the caller.)
pub async fn drop_stream(core: &Core, incarnation: u64) {
    let doomed = core.release(|k| k.0 == incarnation);
    for owned in &doomed {
        let _ = owned.log.close().await;
        core.metrics().forget_stream(&owned.stream);
        let _ = std::fs::remove_dir_all(owned.log.dir());
    }
}

/// Closes reclaimed shards' logs and deletes their directories, then syncs the stream's
/// directory so the deletion survives a power loss. (If it does not finish, startup removes
/// what the catalog no longer names.)
pub async fn drop_shards(core: &Core, incarnation: u64, shards: &[u32]) {
    let doomed = core.release(|k| k.0 == incarnation && shards.contains(&k.1));
    for owned in &doomed {
        let _ = owned.log.close().await;
        core.metrics().forget_shard(&owned.stream, &owned.shard_id);
        if let Err(e) = std::fs::remove_dir_all(owned.log.dir()) {
            tracing::warn!("removing {}: {e}", owned.log.dir().display());
        }
    }
    let stream_dir = catalog::stream_dir(&core.config().data_dir, incarnation);
    if !doomed.is_empty()
        && let Err(e) = GlommioStorage.sync_dir(&stream_dir).await
    {
        tracing::warn!("syncing {}: {e}", stream_dir.display());
    }
}

/// How often each core enforces retention and looks for closed shards to reclaim.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);

/// One retention pass over this core's shards; closed shards whose every record has passed
/// retention are handed to the controller to be reclaimed, as Kinesis drops them.
async fn retention_pass(core: &Rc<Core>) {
    let catalog = core.catalog();
    let owned = core.owned_shards();
    let now = core.now_ms();
    let mut reclaim: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for ((incarnation, index), shard) in owned {
        let Some(stream) = catalog.stream_by_incarnation(incarnation) else { continue };
        if let Err(e) = shard.log.enforce_retention(stream.retention_ms()).await {
            tracing::warn!("retention on {}: {e}", shard.log.dir().display());
        }
        let Some(meta) = stream.shard(index) else { continue };
        if stream.status == StreamStatus::Active
            && reclaimable(meta, shard.log.last_arrival_ms(), stream.retention_ms(), now)
        {
            reclaim.entry(incarnation).or_default().push(index);
        }
    }
    for (incarnation, shards) in reclaim {
        core.call(0, |reply| Msg::Control(ControlMsg::Reclaim { incarnation, shards, reply }))
            .await;
    }
}

/// A closed shard is reclaimed once retention has passed its newest record (or its closing, if
/// it holds none): nothing in it can be read any more.
pub fn reclaimable(
    shard: &ShardMeta,
    last_arrival_ms: Option<i64>,
    retention_ms: i64,
    now_ms: i64,
) -> bool {
    if shard.is_open() {
        return false;
    }
    let newest = last_arrival_ms.or(shard.closed_ms).unwrap_or(shard.created_ms);
    newest.saturating_add(retention_ms) <= now_ms
}

/// Periodic work on each core: retention trims and reclaiming (at start, then every
/// [`MAINTENANCE_INTERVAL`]), interval syncs.
pub fn spawn_maintenance(core: &Rc<Core>) {
    let retention_core = core.clone();
    glommio::spawn_local(async move {
        loop {
            if retention_core.shutdown().is_triggered() {
                break;
            }
            retention_pass(&retention_core).await;
            glommio::timer::sleep(MAINTENANCE_INTERVAL).await;
        }
    })
    .detach();
    if let Durability::Interval { interval_ms } = core.config().durability {
        let interval = Duration::from_millis(interval_ms);
        let sync_core = core.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(interval).await;
                if sync_core.shutdown().is_triggered() {
                    break;
                }
                for (_, shard) in sync_core.owned_shards() {
                    if let Err(e) = shard.log.sync().await {
                        tracing::warn!("sync of {}: {e}", shard.log.dir().display());
                    }
                }
            }
        })
        .detach();
    }
}
