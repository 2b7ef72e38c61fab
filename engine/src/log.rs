//! One shard's log: ordered segments, group commit, sparse index, recovery, retention, seal.
//!
//! A `ShardLog` lives on exactly one core and is shared by that core's tasks through `Rc`.
//! Appends encode frames into a pending buffer and wait; one of the waiters becomes the flush
//! leader, writes everything pending in one `write_at`, issues one `fdatasync`, and wakes all
//! the appends it covered (group commit). Records become visible to readers only once durable
//! (under `Durability::Always`), so a reader never sees a record that a crash could take back.
//!
//! No `RefCell` borrow is ever held across an `.await`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::limits::*;
use crate::notify::Notify;
use crate::record::{self, Frame, NewRecord, Record};
use crate::segment::{
    self, EntryKind, IndexEntry, SegmentHeader, decode_index, encode_index_header,
};
use crate::storage::{Storage, StorageFile};

/// When an append is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After the `fdatasync` that covers it (the default; survives power loss).
    Always,
    /// After the write reaches the page cache; a timer syncs every `interval_ms`. Survives a
    /// process crash; a power loss may lose the last interval.
    Interval { interval_ms: u64 },
    /// After the write reaches the page cache; synced only on roll, seal and close. For
    /// benchmarks.
    Never,
}

#[derive(Clone, Copy, Debug)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub durability: Durability,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { segment_bytes: SEGMENT_BYTES_DEFAULT, durability: Durability::Always }
    }
}

/// Which shard a log belongs to; written into every segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardIdentity {
    pub incarnation: u64,
    pub shard_index: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    pub first_offset: u64,
    pub count: usize,
    pub arrival_ms: i64,
}

#[derive(Debug, Default)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    /// The offset to read next.
    pub next_offset: u64,
}

/// What [`ShardLog::read_each`] read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// The offset to read next.
    pub next_offset: u64,
    /// Records handed to the sink.
    pub records: usize,
    /// Their key and data bytes.
    pub bytes: usize,
}

/// Receives the records of [`ShardLog::read_each`], in offset order, each already verified.
pub trait ReadSink {
    /// Called once before the first record: at most about `frame_bytes` of frames (headers,
    /// keys and data) will follow. A capacity hint; it may overestimate.
    fn expect(&mut self, frame_bytes: usize) {
        let _ = frame_bytes;
    }

    fn record(&mut self, frame: FrameRef<'_>);
}

/// A verified record frame inside a segment view, valid for the duration of the call.
pub struct FrameRef<'a> {
    view: &'a Bytes,
    at: usize,
    pub offset: u64,
    pub arrival_ms: i64,
    key_len: usize,
    data_len: usize,
}

impl FrameRef<'_> {
    pub fn partition_key(&self) -> &[u8] {
        let start = self.at + crate::limits::FRAME_HEADER_BYTES;
        &self.view[start..start + self.key_len]
    }

    pub fn data(&self) -> &[u8] {
        let start = self.at + crate::limits::FRAME_HEADER_BYTES + self.key_len;
        &self.view[start..start + self.data_len]
    }

    /// The record as zero-copy views of the segment.
    pub fn to_record(&self) -> Record {
        let frame = self.view.slice(self.at..);
        record::record_from_frame(&frame, self.offset, self.arrival_ms, self.key_len, self.data_len)
    }
}

struct Segment<F> {
    first_offset: u64,
    path: PathBuf,
    index_path: PathBuf,
    file: Rc<F>,
    /// The index file, kept open while the segment is active.
    index_file: Option<Rc<F>>,
    /// Sparse points: always one for the first frame, then one at least every
    /// `INDEX_INTERVAL_BYTES`.
    points: Vec<IndexEntry>,
    /// Points already written to the index file.
    points_persisted: usize,
    /// The offset after the last written frame.
    next_offset: u64,
    /// The position after the last written frame.
    end_position: u64,
    last_arrival_ms: i64,
    allocated: u64,
    /// Every byte before this position is durable (the active segment's last sync). The next
    /// write that starts here flags its first frame `FLAG_SYNC_BARRIER`.
    synced_until: u64,
}

impl<F> Segment<F> {
    fn is_empty(&self) -> bool {
        self.next_offset == self.first_offset
    }
}

struct Inner<F> {
    segments: Vec<Segment<F>>,
    /// The next offset to assign (pending records included).
    next_offset: u64,
    /// Records below this offset are written (and synced, under `Always`): acknowledged and
    /// visible to readers.
    visible_next: u64,
    last_arrival_ms: i64,
    /// Encoded frames waiting for the flush leader.
    pending: Vec<u8>,
    flushing: bool,
    /// Bumped when a failed flush discards pending records; their appends fail.
    generation: u64,
    /// For the most recent failed flushes: (the generation that failed, `visible_next` when it
    /// failed). A waiter of that generation whose records all lie below it was acknowledged
    /// by an earlier chunk of the leader's flush: it succeeded, even though later chunks failed.
    /// Bounded by `FLUSH_FAILURES_REMEMBERED`; an older waiter is told its append failed.
    failed_generations: VecDeque<(u64, u64)>,
    last_error: Option<Error>,
    /// Bytes of the active segment past `end_position` up to here may hold garbage from a
    /// failed write; the next write zeroes them.
    dirty_until: u64,
    /// Set when `seal` starts: appends are rejected from then on.
    sealing: bool,
    /// The exclusive ending offset once sealed.
    sealed: Option<u64>,
    /// Written but not yet synced (Interval / Never).
    unsynced: bool,
    /// Set when the log was closed or deleted; everything is rejected.
    closed: bool,
}

/// One shard's append-only log.
pub struct ShardLog<S: Storage> {
    storage: S,
    clock: Rc<dyn Clock>,
    dir: PathBuf,
    identity: ShardIdentity,
    config: LogConfig,
    inner: RefCell<Inner<S::File>>,
    /// Woken after every flush attempt (group-commit waiters, backpressure).
    flushed: Notify,
    /// Woken when records become visible, or the log is sealed or closed (subscribers).
    appended: Notify,
    /// Damage recovery found and left in place (see [`ShardLog::anomalies`]).
    anomalies: Vec<Anomaly>,
}

/// Damage that recovery found in a shard directory and left in place: data is never deleted
/// because of it, and reads that reach it fail with `Error::Corruption`. `spate check` reports
/// the same damage offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    pub path: PathBuf,
    pub position: u64,
    pub detail: String,
}

const SEAL_FILE: &str = "sealed";
const SEAL_MAGIC: &[u8; 8] = b"SPATESEA";

fn corruption(path: &Path, position: u64, detail: impl Into<String>) -> Error {
    Error::Corruption { path: path.display().to_string(), position, detail: detail.into() }
}

impl<S: Storage> ShardLog<S> {
    /// Opens (recovering if needed) or creates the log in `dir`.
    pub async fn open(
        storage: S,
        clock: Rc<dyn Clock>,
        dir: PathBuf,
        identity: ShardIdentity,
        config: LogConfig,
    ) -> Result<ShardLog<S>> {
        assert!((SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&config.segment_bytes));
        storage.create_dir_all(&dir).await?;
        let sealed = read_seal_file(&storage, &dir).await?;
        let mut first_offsets: Vec<u64> = storage
            .list_dir(&dir)?
            .iter()
            .filter_map(|name| segment::parse_segment_file_name(name))
            .collect();
        first_offsets.sort_unstable();

        // A crash while rolling can leave a last segment whose header never became durable
        // (missing, all zero, or torn part way). Its header is synced before any frame is
        // written, so it holds no acknowledged record.
        let mut removed_any = false;
        while let Some(&first_offset) = first_offsets.last() {
            let path = dir.join(segment::segment_file_name(first_offset));
            let file = storage.open(&path).await?;
            let bytes = file.read(0, file.len() as usize)?;
            if !is_unwritten_segment(&bytes) {
                break;
            }
            drop(file);
            storage.remove(&path).await?;
            let index_path = dir.join(segment::index_file_name(first_offset));
            if storage.exists(&index_path) {
                storage.remove(&index_path).await?;
            }
            removed_any = true;
            first_offsets.pop();
        }
        // A roll that failed can leave an empty newest segment while appends went on into the
        // segment before it (see `abandon_roll`). It holds nothing; the older one is the tail.
        if let [.., previous_first, last_first] = first_offsets[..] {
            let path = dir.join(segment::segment_file_name(last_first));
            let last = storage.open(&path).await?;
            let last_bytes = last.read(0, last.len() as usize)?;
            let previous_path = dir.join(segment::segment_file_name(previous_first));
            let previous = storage.open(&previous_path).await?;
            let previous_bytes = previous.read(0, previous.len() as usize)?;
            let hints = read_file(&storage, &dir.join(segment::index_file_name(previous_first)))
                .await?
                .and_then(|bytes| decode_index(&bytes))
                .map(|(_, entries)| entries)
                .unwrap_or_default();
            if is_abandoned_roll(&previous_bytes, previous_first, &hints, &last_bytes, last_first) {
                tracing::warn!(
                    path = %path.display(),
                    "removing an empty segment left by a failed roll; the segment before it \
                     holds later records"
                );
                drop(last);
                storage.remove(&path).await?;
                let index_path = dir.join(segment::index_file_name(last_first));
                if storage.exists(&index_path) {
                    storage.remove(&index_path).await?;
                }
                removed_any = true;
                first_offsets.pop();
            }
        }
        let mut segments: Vec<Segment<S::File>> = Vec::new();
        for (i, &first_offset) in first_offsets.iter().enumerate() {
            let is_last = i + 1 == first_offsets.len();
            let path = dir.join(segment::segment_file_name(first_offset));
            let index_path = dir.join(segment::index_file_name(first_offset));
            let file = Rc::new(storage.open(&path).await?);
            let header_bytes =
                file.read(0, (SEGMENT_HEADER_BYTES as u64).min(file.len()) as usize)?;
            let header = match SegmentHeader::decode(&header_bytes) {
                Ok(header) => header,
                Err(detail) => {
                    return Err(corruption(&path, 0, detail));
                }
            };
            if header.first_offset != first_offset
                || header.incarnation != identity.incarnation
                || header.shard_index != identity.shard_index
            {
                return Err(corruption(&path, 0, "segment header names another shard or offset"));
            }
            let segment = if is_last {
                recover_tail(&storage, file, path, index_path, first_offset).await?
            } else {
                let next_first = first_offsets[i + 1];
                load_sealed_segment(&storage, file, path, index_path, first_offset, next_first)
                    .await?
            };
            segments.push(segment);
        }
        if removed_any {
            storage.sync_dir(&dir).await?;
        }
        // Retention removes segments oldest first and syncs the directory after each removal,
        // so a crash part way leaves a gap-free suffix. A gap between segments is therefore
        // damage (a lost file, an operator's mistake): report it and keep every segment. Reads
        // of the missing offsets fail with `Corruption`; the records around them stay readable.
        let mut anomalies = Vec::new();
        for pair in segments.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            if before.next_offset != after.first_offset {
                let detail = format!(
                    "gap between segments: offsets {}..{} are missing (previous segment ends at \
                     {}, this one begins at {})",
                    before.next_offset.min(after.first_offset),
                    after.first_offset.max(before.next_offset),
                    before.next_offset,
                    after.first_offset
                );
                tracing::error!(path = %after.path.display(), %detail, "shard log anomaly");
                anomalies.push(Anomaly { path: after.path.clone(), position: 0, detail });
            }
        }

        let next_offset = segments.last().map_or(0, |s| s.next_offset);
        let last_arrival_ms = segments.iter().map(|s| s.last_arrival_ms).max().unwrap_or(i64::MIN);
        let inner = Inner {
            segments,
            next_offset,
            visible_next: next_offset,
            last_arrival_ms,
            pending: Vec::new(),
            flushing: false,
            generation: 0,
            failed_generations: VecDeque::new(),
            last_error: None,
            dirty_until: 0,
            sealing: sealed.is_some(),
            sealed,
            unsynced: false,
            closed: false,
        };
        if let Some(end) = sealed
            && end > next_offset
        {
            return Err(corruption(&dir.join(SEAL_FILE), 0, "seal is past the end of the log"));
        }
        Ok(ShardLog {
            storage,
            clock,
            dir,
            identity,
            config,
            inner: RefCell::new(inner),
            flushed: Notify::default(),
            appended: Notify::default(),
            anomalies,
        })
    }

    pub fn identity(&self) -> ShardIdentity {
        self.identity
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The offset the next acknowledged record will get; records below it are readable
    /// (from the trim horizon on).
    // The next *acknowledged* offset: `inner.next_offset` is the next one handed out, which
    // may not be durable yet, so the name is right and the lint's guess is not.
    #[allow(clippy::misnamed_getters)]
    pub fn next_offset(&self) -> u64 {
        self.inner.borrow().visible_next
    }

    /// The oldest readable offset.
    pub fn trim_horizon(&self) -> u64 {
        let inner = self.inner.borrow();
        inner.segments.first().map_or(inner.visible_next, |s| s.first_offset)
    }

    /// Whether `close` has run (the log takes no more appends and wakes every waiter).
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().closed
    }

    /// The exclusive ending offset, once sealed.
    pub fn sealed(&self) -> Option<u64> {
        self.inner.borrow().sealed
    }

    /// Arrival time of the newest visible record.
    pub fn last_arrival_ms(&self) -> Option<i64> {
        let inner = self.inner.borrow();
        inner.segments.iter().rev().find(|s| !s.is_empty()).map(|s| s.last_arrival_ms)
    }

    /// Bytes on disk (logical, excluding preallocation).
    pub fn size_bytes(&self) -> u64 {
        self.inner.borrow().segments.iter().map(|s| s.end_position).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.inner.borrow().segments.len()
    }

    /// Damage recovery found when the log was opened and left in place (empty if healthy).
    /// For monitoring: the data around it is served; reads that reach it fail.
    pub fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    /// Appends records as one batch with consecutive offsets and one arrival time. Completes
    /// once the batch is acknowledged under the configured durability.
    // The backpressure loop drops its borrow (`drop(inner)`) before it awaits; the lint
    // cannot see a drop.
    #[allow(clippy::await_holding_refcell_ref)]
    pub async fn append(&self, records: &[NewRecord]) -> Result<AppendResult> {
        if records.is_empty() {
            return Err(Error::InvalidArgument("empty append".into()));
        }
        let mut batch_bytes = 0usize;
        for r in records {
            if r.data.len() > RECORD_DATA_BYTES_MAX {
                return Err(Error::LimitExceeded(format!(
                    "record data of {} bytes exceeds {RECORD_DATA_BYTES_MAX}",
                    r.data.len()
                )));
            }
            if r.partition_key.is_empty() || r.partition_key.len() > PARTITION_KEY_BYTES_MAX {
                return Err(Error::LimitExceeded(format!(
                    "partition key of {} bytes is outside 1..={PARTITION_KEY_BYTES_MAX}",
                    r.partition_key.len()
                )));
            }
            batch_bytes += r.frame_len();
        }
        if batch_bytes > PENDING_BYTES_MAX {
            return Err(Error::LimitExceeded(format!("batch of {batch_bytes} bytes is too large")));
        }
        // Backpressure: bound the bytes waiting for the disk.
        loop {
            let inner = self.inner.borrow();
            if inner.closed {
                return Err(Error::Io(std::io::Error::other("shard log is closed")));
            }
            if inner.sealing {
                return Err(Error::Sealed {
                    ending_offset: inner.sealed.unwrap_or(inner.next_offset),
                });
            }
            if inner.pending.len() + batch_bytes <= PENDING_BYTES_MAX {
                break;
            }
            let wait = self.flushed.wait();
            drop(inner);
            wait.await;
        }
        let (target, generation, first_offset, arrival_ms) = {
            let mut inner = self.inner.borrow_mut();
            let arrival_ms = self.clock.now_ms().max(inner.last_arrival_ms);
            inner.last_arrival_ms = arrival_ms;
            let first_offset = inner.next_offset;
            for (i, r) in records.iter().enumerate() {
                record::encode_frame(
                    &mut inner.pending,
                    first_offset + i as u64,
                    arrival_ms,
                    &r.partition_key,
                    &r.data,
                );
            }
            inner.next_offset += records.len() as u64;
            (inner.next_offset, inner.generation, first_offset, arrival_ms)
        };
        self.flush_to(target, generation).await?;
        Ok(AppendResult { first_offset, count: records.len(), arrival_ms })
    }

    /// Waits until every offset below `target` is acknowledged, leading flushes as needed.
    // Every borrow is dropped (`drop(inner)`) before its await; the lint cannot see a drop.
    #[allow(clippy::await_holding_refcell_ref)]
    async fn flush_to(&self, target: u64, generation: u64) -> Result<()> {
        loop {
            {
                let mut inner = self.inner.borrow_mut();
                if inner.generation != generation {
                    // A flush failed after this waiter's batch was enqueued. If an earlier chunk
                    // of that flush made the whole batch durable, it is acknowledged: reporting
                    // it failed would make the client retry and write a duplicate. (Offsets
                    // restart at `visible_next` after a failure, so only the `visible_next` of
                    // this waiter's own generation tells which batches landed.)
                    let durable_end = inner
                        .failed_generations
                        .iter()
                        .find(|&&(failed, _)| failed == generation)
                        .map(|&(_, visible_next)| visible_next);
                    if durable_end.is_some_and(|end| target <= end) {
                        return Ok(());
                    }
                    return Err(inner
                        .last_error
                        .as_ref()
                        .map(Error::duplicate)
                        .unwrap_or_else(|| Error::Io(std::io::Error::other("append discarded"))));
                }
                if inner.visible_next >= target {
                    return Ok(());
                }
                if inner.flushing {
                    let wait = self.flushed.wait();
                    drop(inner);
                    wait.await;
                    continue;
                }
                inner.flushing = true;
            }
            let result = self.flush_once().await;
            {
                let mut inner = self.inner.borrow_mut();
                inner.flushing = false;
                if let Err(error) = result {
                    // Discard everything pending: offsets restart at the last acknowledged one.
                    let failed = (inner.generation, inner.visible_next);
                    if inner.failed_generations.len() == FLUSH_FAILURES_REMEMBERED {
                        inner.failed_generations.pop_front();
                    }
                    inner.failed_generations.push_back(failed);
                    inner.generation += 1;
                    inner.pending.clear();
                    inner.next_offset = inner.visible_next;
                    inner.last_error = Some(error);
                }
            }
            self.flushed.notify_all();
        }
    }

    /// The flush leader's work: roll if needed, then write (and sync) one chunk of pending
    /// frames into the active segment.
    async fn flush_once(&self) -> Result<()> {
        let needs_roll = {
            let inner = self.inner.borrow();
            let first_frame_len = frame_len_at(&inner.pending, 0) as u64;
            match inner.segments.last() {
                None => true,
                Some(active) => {
                    !active.is_empty()
                        && active.end_position + first_frame_len > self.config.segment_bytes
                }
            }
        };
        if needs_roll {
            self.roll().await?;
        }
        let (file, position, mut chunk, allocated, dirty_until) = {
            let mut inner = self.inner.borrow_mut();
            let inner = &mut *inner;
            let active = inner.segments.last().expect("rolled above");
            let room = self.config.segment_bytes.saturating_sub(active.end_position) as usize;
            let mut take = 0usize;
            while take < inner.pending.len() {
                let len = frame_len_at(&inner.pending, take);
                if take > 0 && (take + len > room || take + len > FLUSH_BYTES_MAX) {
                    break;
                }
                take += len;
            }
            let file = active.file.clone();
            let barrier = active.synced_until >= active.end_position;
            let (end_position, allocated, dirty_until) =
                (active.end_position, active.allocated, inner.dirty_until);
            // Take the chunk out of the pending buffer without copying it. If the write fails,
            // everything pending is discarded anyway (see `flush_to`).
            let mut chunk = if take == inner.pending.len() {
                std::mem::take(&mut inner.pending)
            } else {
                let rest = inner.pending.split_off(take);
                std::mem::replace(&mut inner.pending, rest)
            };
            if barrier {
                // Everything before this write is durable: say so, for recovery.
                record::set_sync_barrier(&mut chunk);
            }
            (file, end_position, chunk, allocated, dirty_until)
        };
        // Frame boundaries of the chunk, for the index (the chunk itself goes to the kernel).
        let mut frames: Vec<(u64, i64, usize)> = Vec::new();
        let mut at = 0usize;
        while at < chunk.len() {
            let len = frame_len_at(&chunk, at);
            let (offset, arrival_ms) = record::frame_offset_and_time(&chunk[at..]);
            frames.push((offset, arrival_ms, len));
            at += len;
        }
        let chunk_len = chunk.len() as u64;
        let end = position + chunk_len;
        if end > allocated {
            let mut new_len = allocated.max(SEGMENT_HEADER_BYTES as u64);
            while new_len < end {
                let step =
                    (new_len / 2).clamp(SEGMENT_ALLOCATE_STEP_MIN, SEGMENT_ALLOCATE_STEP_MAX);
                new_len += step;
            }
            let new_len = new_len.min(self.config.segment_bytes.max(end));
            file.allocate(new_len).await?;
            self.inner.borrow_mut().segments.last_mut().expect("active").allocated = new_len;
        }
        if dirty_until > end {
            // Zero what a failed write may have left behind, so no stale frame can follow ours.
            chunk.resize((dirty_until - position) as usize, 0);
        }
        // If this write fails, the bytes up to here may hold garbage.
        self.inner.borrow_mut().dirty_until = dirty_until.max(end);
        file.write_at(position, chunk).await?;
        match self.config.durability {
            Durability::Always => {
                file.sync().await?;
                self.inner.borrow_mut().segments.last_mut().expect("active").synced_until = end;
            }
            Durability::Interval { .. } | Durability::Never => {
                self.inner.borrow_mut().unsynced = true;
            }
        }
        let new_points = {
            let mut inner = self.inner.borrow_mut();
            let inner = &mut *inner;
            let active = inner.segments.last_mut().expect("active");
            let mut at = 0usize;
            for &(offset, arrival_ms, len) in &frames {
                debug_assert_eq!(offset, active.next_offset);
                let frame_position = position + at as u64;
                let due = match active.points.last() {
                    None => true,
                    Some(p) => frame_position - p.position >= INDEX_INTERVAL_BYTES,
                };
                if due {
                    active.points.push(IndexEntry {
                        offset,
                        position: frame_position,
                        arrival_ms,
                        kind: EntryKind::Point,
                    });
                }
                active.next_offset = offset + 1;
                active.last_arrival_ms = arrival_ms;
                at += len;
            }
            active.end_position = end;
            let from = active.points_persisted;
            let mut bytes = Vec::new();
            for p in &active.points[from..] {
                p.encode(&mut bytes);
            }
            let new_points = (
                active.index_path.clone(),
                active.index_file.clone(),
                from,
                active.points.len(),
                bytes,
            );
            inner.visible_next = active.next_offset;
            inner.dirty_until = 0;
            new_points
        };
        self.appended.notify_all();
        // The index is a hint that recovery validates; it is synced when the segment rolls.
        let (index_path, index_file, from, to, bytes) = new_points;
        if !bytes.is_empty() {
            let index_file = match index_file {
                Some(file) => Some(file),
                None => self.storage.open(&index_path).await.ok().map(Rc::new),
            };
            if let Some(index) = index_file {
                let at = (INDEX_HEADER_BYTES + from * INDEX_ENTRY_BYTES) as u64;
                let written = index.write_at(at, bytes).await.is_ok();
                let mut inner = self.inner.borrow_mut();
                if let Some(active) = inner.segments.last_mut()
                    && active.index_path == index_path
                {
                    if written {
                        active.points_persisted = to;
                    }
                    active.index_file = Some(index);
                }
            }
        }
        Ok(())
    }

    /// Zeroes what a failed write may have left after the active segment's last frame, so that
    /// no frame whose append was reported failed can become durable behind a seal, a roll or a
    /// close (recovery would otherwise find it valid past the segment's end). The flush
    /// leader's next write does the same (`dirty_until`); a seal, roll or close ends writes to
    /// the segment, so they do it here. Only the leader calls this.
    async fn clear_failed_write(&self) -> Result<()> {
        let (file, from, until) = {
            let inner = self.inner.borrow();
            match inner.segments.last() {
                Some(active) if inner.dirty_until > active.end_position => {
                    (active.file.clone(), active.end_position, inner.dirty_until)
                }
                _ => return Ok(()),
            }
        };
        file.write_at(from, vec![0; (until - from) as usize]).await?;
        self.inner.borrow_mut().dirty_until = 0;
        Ok(())
    }

    /// Seals the active segment (sync, index seal entry) and starts a new one whose first
    /// offset is the next offset. Only the flush leader (or `seal`/retention holding the leader
    /// role) calls this.
    async fn roll(&self) -> Result<()> {
        self.clear_failed_write().await?;
        let (first_offset, previous) = {
            let inner = self.inner.borrow();
            let previous = inner.segments.last().map(|s| {
                (
                    s.file.clone(),
                    s.index_path.clone(),
                    s.points.clone(),
                    s.end_position,
                    s.next_offset,
                    s.last_arrival_ms,
                )
            });
            (inner.visible_next, previous)
        };
        let path = self.dir.join(segment::segment_file_name(first_offset));
        let index_path = self.dir.join(segment::index_file_name(first_offset));
        if let Some((file, previous_index_path, points, end_position, next_offset, arrival_ms)) =
            previous
        {
            file.sync().await?;
            let mut bytes = encode_index_header_vec(first_offset_of(&previous_index_path));
            for p in &points {
                p.encode(&mut bytes);
            }
            IndexEntry {
                offset: next_offset,
                position: end_position,
                arrival_ms,
                kind: EntryKind::Seal,
            }
            .encode(&mut bytes);
            if let Err(error) = write_file_synced(&self.storage, &previous_index_path, bytes).await
            {
                self.abandon_roll(&path, &index_path).await;
                return Err(error);
            }
        }
        let created = self.create_segment(&path, &index_path, first_offset).await;
        let (file, index, allocated) = match created {
            Ok(created) => created,
            Err(error) => {
                self.abandon_roll(&path, &index_path).await;
                return Err(error);
            }
        };
        let mut inner = self.inner.borrow_mut();
        inner.unsynced = false;
        inner.dirty_until = 0;
        inner.segments.push(Segment {
            first_offset,
            path,
            index_path,
            file: Rc::new(file),
            index_file: Some(Rc::new(index)),
            points: Vec::new(),
            points_persisted: 0,
            next_offset: first_offset,
            end_position: SEGMENT_HEADER_BYTES as u64,
            last_arrival_ms: i64::MIN,
            allocated,
            synced_until: SEGMENT_HEADER_BYTES as u64,
        });
        Ok(())
    }

    /// Undoes a roll that failed, so that appends can go on into the active segment: removes
    /// the new segment's files durably, then rewrites the active segment's index without the
    /// seal entry the roll may have synced. Otherwise a crash later could revive the new, empty
    /// segment and end the active one at the seal: the records appended from now on would be
    /// hidden and their offsets reused. Best effort (the roll's error is what the caller sees):
    /// recovery also ignores a seal that frames follow, and removes an empty newest segment the
    /// segment before it runs past (see `open` and `is_abandoned_roll`).
    async fn abandon_roll(&self, path: &Path, index_path: &Path) {
        for file in [path, index_path] {
            if self.storage.exists(file) {
                let _ = self.storage.remove(file).await;
            }
        }
        let _ = self.storage.sync_dir(&self.dir).await;
        let active = {
            let inner = self.inner.borrow();
            inner.segments.last().map(|s| (s.index_path.clone(), s.points.clone()))
        };
        let Some((active_index_path, points)) = active else { return };
        let mut bytes = encode_index_header_vec(first_offset_of(&active_index_path));
        for p in &points {
            p.encode(&mut bytes);
        }
        let Ok(index) = self.storage.create(&active_index_path).await else { return };
        let index = Rc::new(index);
        // The old handle may name a file the roll replaced: later points go to this one.
        {
            let mut inner = self.inner.borrow_mut();
            let active = inner.segments.last_mut().expect("the roll keeps the active segment");
            active.index_file = Some(index.clone());
            active.points_persisted = 0;
        }
        if index.write_at(0, bytes).await.is_ok() && index.sync().await.is_ok() {
            let mut inner = self.inner.borrow_mut();
            let active = inner.segments.last_mut().expect("the roll keeps the active segment");
            active.points_persisted = points.len().min(active.points.len());
        }
    }

    async fn create_segment(
        &self,
        path: &Path,
        index_path: &Path,
        first_offset: u64,
    ) -> Result<(S::File, S::File, u64)> {
        let file = self.storage.create(path).await?;
        let allocated = SEGMENT_ALLOCATE_STEP_MIN.min(self.config.segment_bytes);
        file.allocate(allocated).await?;
        let header = SegmentHeader {
            incarnation: self.identity.incarnation,
            shard_index: self.identity.shard_index,
            first_offset,
            created_ms: self.clock.now_ms(),
        };
        file.write_at(0, header.encode().to_vec()).await?;
        file.sync().await?;
        let index = self.storage.create(index_path).await?;
        index.write_at(0, encode_index_header_vec(first_offset)).await?;
        self.storage.sync_dir(&self.dir).await?;
        Ok((file, index, allocated))
    }

    /// Takes the flush leader role (waiting for a running flush), for maintenance work.
    async fn lead(&self) {
        loop {
            let wait = {
                let mut inner = self.inner.borrow_mut();
                if !inner.flushing {
                    inner.flushing = true;
                    return;
                }
                self.flushed.wait()
            };
            wait.await;
        }
    }

    fn unlead(&self) {
        self.inner.borrow_mut().flushing = false;
        self.flushed.notify_all();
    }

    /// Syncs written data (for `Durability::Interval`, called by a timer; and on shutdown).
    pub async fn sync(&self) -> Result<()> {
        let active = {
            let mut inner = self.inner.borrow_mut();
            if !inner.unsynced {
                return Ok(());
            }
            inner.unsynced = false;
            inner.segments.last().map(|s| (s.file.clone(), s.first_offset, s.end_position))
        };
        let Some((file, first_offset, end_position)) = active else { return Ok(()) };
        if let Err(error) = file.sync().await {
            self.inner.borrow_mut().unsynced = true;
            return Err(error.into());
        }
        // Everything written before the sync started is durable.
        let mut inner = self.inner.borrow_mut();
        if let Some(active) = inner.segments.last_mut()
            && active.first_offset == first_offset
        {
            active.synced_until = active.synced_until.max(end_position);
        }
        Ok(())
    }

    /// Seals the log: waits for pending appends, rejects new ones, and records the exclusive
    /// ending offset durably. Idempotent.
    pub async fn seal(&self) -> Result<u64> {
        if let Some(end) = self.sealed() {
            return Ok(end);
        }
        let (target, generation) = {
            let mut inner = self.inner.borrow_mut();
            inner.sealing = true;
            (inner.next_offset, inner.generation)
        };
        // Pending appends either land or fail; both are fine for a seal.
        let _ = self.flush_to(target, generation).await;
        self.lead().await;
        let result = async {
            self.clear_failed_write().await?;
            let end = self.inner.borrow().visible_next;
            let file = self.inner.borrow().segments.last().map(|s| s.file.clone());
            if let Some(file) = file {
                file.sync().await?;
            }
            let mut bytes = SEAL_MAGIC.to_vec();
            bytes.extend_from_slice(&end.to_le_bytes());
            let crc = crc32fast::hash(&bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
            write_file_atomic(&self.storage, &self.dir, SEAL_FILE, bytes).await?;
            Ok::<u64, Error>(end)
        }
        .await;
        self.unlead();
        let end = result?;
        {
            let mut inner = self.inner.borrow_mut();
            inner.sealed = Some(end);
            inner.unsynced = false;
        }
        self.appended.notify_all();
        Ok(end)
    }

    /// Reopens a sealed log for appends: used when a reshard sealed a shard but crashed before
    /// the catalog recorded it, so the catalog still lists the shard as open.
    pub async fn unseal(&self) -> Result<()> {
        self.lead().await;
        let path = self.dir.join(SEAL_FILE);
        let result = async {
            if self.storage.exists(&path) {
                self.storage.remove(&path).await?;
                self.storage.sync_dir(&self.dir).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        if result.is_ok() {
            let mut inner = self.inner.borrow_mut();
            inner.sealed = None;
            inner.sealing = false;
        }
        self.unlead();
        result
    }

    /// Deletes whole segments whose newest record is older than `retention_ms`. Returns how
    /// many were removed. The newest segment is never removed (it records the next offset);
    /// if it is expired and the log is open, it is rolled first so it can go next time.
    pub async fn enforce_retention(&self, retention_ms: i64) -> Result<usize> {
        let cutoff = self.clock.now_ms().saturating_sub(retention_ms);
        self.lead().await;
        let result = self.enforce_retention_led(cutoff).await;
        self.unlead();
        result
    }

    async fn enforce_retention_led(&self, cutoff: i64) -> Result<usize> {
        let roll_active = {
            let inner = self.inner.borrow();
            let active_expired =
                inner.segments.last().is_some_and(|s| !s.is_empty() && s.last_arrival_ms < cutoff);
            active_expired && !inner.sealing && inner.pending.is_empty() && !inner.closed
        };
        // Roll first so that an expired active segment can go too. If the roll fails (on a full
        // disk the next segment cannot be preallocated), still delete the older expired
        // segments: that frees the space the next pass needs to roll.
        let rolled = if roll_active { self.roll().await } else { Ok(()) };
        let doomed: Vec<Segment<S::File>> = {
            let mut inner = self.inner.borrow_mut();
            let keep_from = inner
                .segments
                .iter()
                .position(|s| s.is_empty() || s.last_arrival_ms >= cutoff)
                .unwrap_or(inner.segments.len())
                .min(inner.segments.len().saturating_sub(1));
            inner.segments.drain(..keep_from).collect()
        };
        if doomed.is_empty() {
            return rolled.map(|()| 0);
        }
        // Oldest first, each removal made durable before the next: removals in one directory
        // are not ordered on disk without a sync in between, and a crash part way must leave a
        // gap-free suffix (`open` reports a gap as damage).
        for segment in &doomed {
            self.storage.remove(&segment.path).await?;
            if self.storage.exists(&segment.index_path) {
                self.storage.remove(&segment.index_path).await?;
            }
            self.storage.sync_dir(&self.dir).await?;
        }
        rolled?;
        Ok(doomed.len())
    }

    /// Flushes and syncs everything, then rejects further appends.
    pub async fn close(&self) -> Result<()> {
        let (target, generation) = {
            let inner = self.inner.borrow();
            (inner.next_offset, inner.generation)
        };
        let _ = self.flush_to(target, generation).await;
        self.lead().await;
        // Zero what a failed append left after the last frame first, as a roll or seal does:
        // the sync below would otherwise make a frame reported failed durable, and recovery
        // would serve it. If that write fails, skip the sync: every acknowledged frame is
        // already synced under `Always`, and `Interval`/`Never` allow losing unsynced ones.
        let result = async {
            self.clear_failed_write().await?;
            self.inner.borrow_mut().unsynced = true;
            self.sync().await
        }
        .await;
        self.inner.borrow_mut().closed = true;
        self.unlead();
        self.appended.notify_all();
        result
    }

    /// Completes once a record at `offset` is readable, or the log is sealed or closed.
    pub async fn wait_for(&self, offset: u64) {
        loop {
            let wait = {
                let inner = self.inner.borrow();
                if inner.visible_next > offset || inner.sealed.is_some() || inner.closed {
                    return;
                }
                self.appended.wait()
            };
            wait.await;
        }
    }

    /// Reads up to `max_records` records and about `max_bytes` of keys and data (at least one
    /// record) starting at `from` (or the trim horizon, if later). Records are zero-copy views.
    pub fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Result<ReadBatch> {
        struct Collect(Vec<Record>);
        impl ReadSink for Collect {
            fn record(&mut self, frame: FrameRef<'_>) {
                self.0.push(frame.to_record());
            }
        }
        let mut sink = Collect(Vec::new());
        let next_offset = self.read_each(from, max_records, max_bytes, &mut sink)?.next_offset;
        Ok(ReadBatch { records: sink.0, next_offset })
    }

    /// Like [`ShardLog::read`], but hands each record to `sink` as soon as its checksum is
    /// verified, while its bytes are still in the CPU's cache (GetRecords base64-encodes them
    /// there instead of in a second pass over the whole page). On an error after the first
    /// record the read stops early and succeeds, as `read` does; `sink` saw only valid records.
    pub fn read_each(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
        sink: &mut impl ReadSink,
    ) -> Result<ReadSummary> {
        let inner = self.inner.borrow();
        let trim_horizon = inner.segments.first().map_or(inner.visible_next, |s| s.first_offset);
        let mut offset = from.max(trim_horizon);
        let end = inner.visible_next;
        let mut summary = ReadSummary { next_offset: offset, records: 0, bytes: 0 };
        if offset >= end || max_records == 0 {
            return Ok(summary);
        }
        let mut index = inner.segments.partition_point(|s| s.first_offset <= offset) - 1;
        'segments: while offset < end && index < inner.segments.len() {
            let segment = &inner.segments[index];
            if offset >= segment.next_offset {
                index += 1;
                continue;
            }
            if offset < segment.first_offset {
                // A gap between segments (see `open`): these offsets are lost.
                if summary.records > 0 {
                    break;
                }
                return Err(corruption(
                    &segment.path,
                    0,
                    format!("offset {offset} is missing: a gap before this segment"),
                ));
            }
            let start = match locate(segment, offset) {
                Ok(position) => position,
                Err(error) if summary.records == 0 => return Err(error),
                Err(_) => break,
            };
            let view = segment.file.read(start, (segment.end_position - start) as usize)?;
            if summary.records == 0 {
                sink.expect(view.len().min(max_bytes.saturating_add(
                    max_records.saturating_mul(crate::limits::FRAME_HEADER_BYTES),
                )));
            }
            let mut at = 0usize;
            while offset < segment.next_offset && offset < end {
                match record::check_frame(&view[at..]) {
                    Frame::Valid { len, offset: found, arrival_ms, key_len, data_len }
                        if found == offset =>
                    {
                        if summary.records >= max_records
                            || (summary.records > 0
                                && summary.bytes + key_len + data_len > max_bytes)
                        {
                            break 'segments;
                        }
                        sink.record(FrameRef {
                            view: &view,
                            at,
                            offset,
                            arrival_ms,
                            key_len,
                            data_len,
                        });
                        summary.records += 1;
                        summary.bytes += key_len + data_len;
                        offset += 1;
                        summary.next_offset = offset;
                        at += len;
                    }
                    other => {
                        if summary.records > 0 {
                            break 'segments;
                        }
                        let detail = match other {
                            Frame::Invalid(detail) => detail.to_string(),
                            Frame::End => "log ends early".to_string(),
                            Frame::Valid { offset: found, .. } => {
                                format!("expected offset {offset}, found {found}")
                            }
                        };
                        return Err(corruption(&segment.path, start + at as u64, detail));
                    }
                }
            }
            index += 1;
        }
        Ok(summary)
    }

    /// The first readable offset whose arrival time is at or after `timestamp_ms`, or the next
    /// offset if there is none.
    pub fn offset_at_timestamp(&self, timestamp_ms: i64) -> Result<u64> {
        let inner = self.inner.borrow();
        let end = inner.visible_next;
        let segments: Vec<&Segment<S::File>> =
            inner.segments.iter().filter(|s| !s.is_empty()).collect();
        let index = segments.partition_point(|s| s.last_arrival_ms < timestamp_ms);
        let Some(segment) = segments.get(index) else {
            return Ok(end);
        };
        let point = segment.points.partition_point(|p| p.arrival_ms < timestamp_ms);
        // Before the first point (or with none), scan from the segment's first frame.
        let from = match point.checked_sub(1) {
            Some(before) => segment.points[before],
            None => IndexEntry {
                offset: segment.first_offset,
                position: SEGMENT_HEADER_BYTES as u64,
                arrival_ms: i64::MIN,
                kind: EntryKind::Point,
            },
        };
        let view =
            segment.file.read(from.position, (segment.end_position - from.position) as usize)?;
        let mut at = 0usize;
        let mut offset = from.offset;
        while offset < segment.next_offset {
            let (len, found, arrival_ms) = frame_header(&view[at..]).ok_or_else(|| {
                corruption(&segment.path, from.position + at as u64, "bad frame header")
            })?;
            if found != offset {
                return Err(corruption(
                    &segment.path,
                    from.position + at as u64,
                    "offset out of order",
                ));
            }
            if arrival_ms >= timestamp_ms {
                return Ok(offset);
            }
            offset += 1;
            at += len;
        }
        Ok(segment.next_offset)
    }
}

/// Finds the position of the frame holding `offset` in `segment`: binary search over the
/// sparse points, then a bounded scan of frame headers (at most `INDEX_INTERVAL_BYTES` plus
/// one frame).
fn locate<F: StorageFile>(segment: &Segment<F>, offset: u64) -> Result<u64> {
    let point = segment.points.partition_point(|p| p.offset <= offset);
    let from = if point == 0 {
        IndexEntry {
            offset: segment.first_offset,
            position: SEGMENT_HEADER_BYTES as u64,
            arrival_ms: 0,
            kind: EntryKind::Point,
        }
    } else {
        segment.points[point - 1]
    };
    let view = segment.file.read(from.position, (segment.end_position - from.position) as usize)?;
    let mut at = 0usize;
    let mut current = from.offset;
    loop {
        let (len, found, _) = frame_header(&view[at..]).ok_or_else(|| {
            corruption(&segment.path, from.position + at as u64, "bad frame header")
        })?;
        if found != current {
            return Err(corruption(
                &segment.path,
                from.position + at as u64,
                "offset out of order",
            ));
        }
        if found == offset {
            return Ok(from.position + at as u64);
        }
        current += 1;
        at += len;
    }
}

/// Length, offset and arrival time of the frame at the start of `bytes`, checking bounds only
/// (the checksum is verified when a record is served).
fn frame_header(bytes: &[u8]) -> Option<(usize, u64, i64)> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return None;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    if !(FRAME_HEADER_BYTES..=FRAME_BYTES_MAX).contains(&len) || len > bytes.len() {
        return None;
    }
    let (offset, arrival_ms) = record::frame_offset_and_time(bytes);
    Some((len, offset, arrival_ms))
}

/// Whether `bytes` (a whole segment file) is a segment whose creation a crash interrupted: its
/// header does not check out (missing, all zero or torn) and nothing but zeros follows it. Such
/// a file holds no acknowledged record, because a segment's header is synced before any frame
/// is written to it. A bad header followed by anything else is damage, not a torn creation.
pub fn is_unwritten_segment(bytes: &[u8]) -> bool {
    let header_end = SEGMENT_HEADER_BYTES.min(bytes.len());
    SegmentHeader::decode(&bytes[..header_end]).is_err()
        && bytes[header_end..].iter().all(|&b| b == 0)
}

/// Length of the (self-encoded, trusted) frame at `at` in a pending buffer.
fn frame_len_at(buffer: &[u8], at: usize) -> usize {
    if at + 4 > buffer.len() {
        return 0;
    }
    u32::from_le_bytes(buffer[at..at + 4].try_into().unwrap()) as usize
}

fn encode_index_header_vec(first_offset: u64) -> Vec<u8> {
    encode_index_header(first_offset).to_vec()
}

fn first_offset_of(index_path: &Path) -> u64 {
    index_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".idx"))
        .and_then(|n| n.parse().ok())
        .expect("index paths are built by segment::index_file_name")
}

async fn write_file_synced<S: Storage>(storage: &S, path: &Path, bytes: Vec<u8>) -> Result<()> {
    let file = storage.create(path).await?;
    file.write_at(0, bytes).await?;
    file.sync().await?;
    Ok(())
}

/// Writes a small file atomically and durably: temp file, sync, rename, sync the directory.
pub async fn write_file_atomic<S: Storage>(
    storage: &S,
    dir: &Path,
    name: &str,
    bytes: Vec<u8>,
) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    write_file_synced(storage, &tmp, bytes).await?;
    storage.rename(&tmp, &dir.join(name)).await?;
    storage.sync_dir(dir).await?;
    Ok(())
}

/// Reads a whole small file, or `None` if it does not exist.
pub async fn read_file<S: Storage>(storage: &S, path: &Path) -> Result<Option<Bytes>> {
    if !storage.exists(path) {
        return Ok(None);
    }
    let file = storage.open(path).await?;
    Ok(Some(file.read(0, file.len() as usize)?))
}

async fn read_seal_file<S: Storage>(storage: &S, dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(SEAL_FILE);
    let Some(bytes) = read_file(storage, &path).await? else {
        return Ok(None);
    };
    if bytes.len() != 20 || &bytes[..8] != SEAL_MAGIC {
        return Err(corruption(&path, 0, "bad seal file"));
    }
    let crc = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
    if crc32fast::hash(&bytes[..16]) != crc {
        return Err(corruption(&path, 0, "seal file checksum mismatch"));
    }
    Ok(Some(u64::from_le_bytes(bytes[8..16].try_into().unwrap())))
}

/// Scans frames from (`position`, `offset`) while they are valid and consecutive. Adds points
/// to `points`, and raises `last_barrier` to the position of each frame flagged
/// `FLAG_SYNC_BARRIER`. Returns (end position, next offset, last arrival time).
fn scan<F: StorageFile>(
    file: &F,
    mut position: u64,
    mut offset: u64,
    points: &mut Vec<IndexEntry>,
    mut last_arrival_ms: i64,
    last_barrier: &mut u64,
) -> Result<(u64, u64, i64)> {
    let len = file.len();
    if position >= len {
        return Ok((position, offset, last_arrival_ms));
    }
    let view = file.read(position, (len - position) as usize)?;
    let base = position;
    loop {
        let at = (position - base) as usize;
        match record::check_frame(&view[at..]) {
            Frame::Valid { len, offset: found, arrival_ms, .. } if found == offset => {
                let due = match points.last() {
                    None => true,
                    Some(p) => position - p.position >= INDEX_INTERVAL_BYTES,
                };
                if due {
                    points.push(IndexEntry {
                        offset,
                        position,
                        arrival_ms,
                        kind: EntryKind::Point,
                    });
                }
                if record::frame_flags(&view[at..]) & record::FLAG_SYNC_BARRIER != 0 {
                    *last_barrier = position;
                }
                last_arrival_ms = arrival_ms;
                offset += 1;
                position += len as u64;
            }
            _ => return Ok((position, offset, last_arrival_ms)),
        }
    }
}

/// Whether the frame header at an index point's position names the point's offset and arrival
/// time, with a length that fits in the file. (The frame's checksum is verified when it is
/// served; a point only has to say where the frame starts.)
fn point_checks_out<F: StorageFile>(file: &F, point: &IndexEntry) -> Result<bool> {
    let len = file.len();
    if point.position.saturating_add(FRAME_HEADER_BYTES as u64) > len {
        return Ok(false);
    }
    let header = file.read(point.position, FRAME_HEADER_BYTES)?;
    let frame_len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    let (offset, arrival_ms) = record::frame_offset_and_time(&header);
    Ok((FRAME_HEADER_BYTES..=FRAME_BYTES_MAX).contains(&frame_len)
        && point.position + frame_len as u64 <= len
        && offset == point.offset
        && arrival_ms == point.arrival_ms)
}

/// Whether no frame follows `position` in `file` (the end of the file, or an end marker).
fn ends_at<F: StorageFile>(file: &F, position: u64) -> Result<bool> {
    let len = file.len();
    Ok(position >= len
        || record::check_frame(&file.read(position, (len - position) as usize)?) == Frame::End)
}

/// Whether the newest segment (`last`, a whole file starting at offset `last_first`) was left
/// behind by a roll that failed: it holds no frame (a valid header, then zeros), and the
/// segment before it (`previous`, a whole file starting at `previous_first`, with the entries
/// of its index as hints) holds the frame of `last_first`: appends went on into the older
/// segment after the roll failed. Removing it loses nothing.
pub fn is_abandoned_roll(
    previous: &[u8],
    previous_first: u64,
    previous_hints: &[IndexEntry],
    last: &[u8],
    last_first: u64,
) -> bool {
    let empty = last.len() >= SEGMENT_HEADER_BYTES
        && SegmentHeader::decode(&last[..SEGMENT_HEADER_BYTES]).is_ok()
        && last[SEGMENT_HEADER_BYTES..].iter().all(|&b| b == 0);
    if !empty || last_first <= previous_first || previous.len() < SEGMENT_HEADER_BYTES {
        return false;
    }
    // Walk frames from the nearest hint at or before `last_first` whose frame checks out (a
    // seal entry names `last_first` itself), else from the first frame.
    let checks_out = |e: &&IndexEntry| {
        e.offset <= last_first
            && e.offset >= previous_first
            && previous.get(e.position as usize..).is_some_and(|view| {
                matches!(record::check_frame(view), Frame::Valid { offset, .. } if offset == e.offset)
            })
    };
    let (mut position, mut offset) = previous_hints
        .iter()
        .filter(checks_out)
        .max_by_key(|e| e.offset)
        .map_or((SEGMENT_HEADER_BYTES, previous_first), |e| (e.position as usize, e.offset));
    loop {
        match record::check_frame(&previous[position..]) {
            Frame::Valid { len, offset: found, .. } if found == offset => {
                if found == last_first {
                    return true;
                }
                offset += 1;
                position += len;
            }
            _ => return false,
        }
    }
}

/// Loads a rolled (non-last) segment from its sealed index, or rebuilds the index by scanning.
async fn load_sealed_segment<S: Storage>(
    storage: &S,
    file: Rc<S::File>,
    path: PathBuf,
    index_path: PathBuf,
    first_offset: u64,
    next_first_offset: u64,
) -> Result<Segment<S::File>> {
    let loaded = read_file(storage, &index_path).await?.and_then(|bytes| decode_index(&bytes));
    if let Some((index_first, entries)) = loaded {
        let seal = entries.last().filter(|e| e.kind == EntryKind::Seal).copied();
        let points: Vec<IndexEntry> =
            entries.iter().filter(|e| e.kind == EntryKind::Point).copied().collect();
        if let Some(seal) = seal {
            // A seal that frames follow was left by a roll that failed (appends went on into
            // this segment): rescan. The segment must end at the seal.
            let plausible = index_first == first_offset
                && seal.offset == next_first_offset
                && seal.position <= file.len()
                && ends_at(&*file, seal.position)?
                && points.first().is_none_or(|p| p.offset == first_offset)
                && points
                    .windows(2)
                    .all(|w| w[0].offset < w[1].offset && w[0].position < w[1].position);
            let mut points_check_out = true;
            for p in &points {
                points_check_out = points_check_out && point_checks_out(&*file, p)?;
            }
            if plausible && points_check_out && (!points.is_empty() || seal.offset == first_offset)
            {
                return Ok(Segment {
                    first_offset,
                    path,
                    index_path,
                    file,
                    index_file: None,
                    points_persisted: points.len(),
                    points,
                    next_offset: seal.offset,
                    end_position: seal.position,
                    last_arrival_ms: seal.arrival_ms,
                    allocated: u64::MAX,
                    synced_until: seal.position,
                });
            }
        }
    }
    // Missing or damaged index: rebuild it from the segment.
    let mut points = Vec::new();
    let (end_position, next_offset, last_arrival_ms) =
        scan(&*file, SEGMENT_HEADER_BYTES as u64, first_offset, &mut points, i64::MIN, &mut 0)?;
    let mut bytes = encode_index_header_vec(first_offset);
    for p in &points {
        p.encode(&mut bytes);
    }
    IndexEntry {
        offset: next_offset,
        position: end_position,
        arrival_ms: last_arrival_ms,
        kind: EntryKind::Seal,
    }
    .encode(&mut bytes);
    write_file_synced(storage, &index_path, bytes).await?;
    // If the scan stopped early at damage inside the segment, keep the offsets the next segment
    // implies: reads that reach the damage report it instead of skipping records silently. If
    // it stopped where the frames cleanly end, the segment is whole and the offsets up to the
    // next segment are missing: `open` reports that gap.
    let ends_cleanly = ends_at(&*file, end_position)?;
    let (end_position, next_offset) = if next_offset < next_first_offset && !ends_cleanly {
        (file.len(), next_first_offset)
    } else {
        (end_position, next_offset)
    };
    Ok(Segment {
        first_offset,
        path,
        index_path,
        file,
        index_file: None,
        points_persisted: points.len(),
        points,
        next_offset,
        end_position,
        last_arrival_ms,
        allocated: u64::MAX,
        synced_until: end_position,
    })
}

/// Recovers the last segment: start from the last index point that checks out, scan the tail,
/// cut off whatever follows the last valid frame, and rewrite the index.
async fn recover_tail<S: Storage>(
    storage: &S,
    file: Rc<S::File>,
    path: PathBuf,
    index_path: PathBuf,
    first_offset: u64,
) -> Result<Segment<S::File>> {
    let entries = read_file(storage, &index_path)
        .await?
        .and_then(|bytes| decode_index(&bytes))
        .filter(|(index_first, _)| *index_first == first_offset)
        .map(|(_, entries)| entries)
        .unwrap_or_default();
    let len = file.len();
    // Points must be increasing; keep the longest such prefix.
    let mut points: Vec<IndexEntry> = Vec::new();
    for e in entries.iter().filter(|e| e.kind == EntryKind::Point) {
        let ordered = points.last().is_none_or(|p| p.offset < e.offset && p.position < e.position);
        let first_ok = !points.is_empty()
            || (e.offset == first_offset && e.position == SEGMENT_HEADER_BYTES as u64);
        if !ordered || !first_ok || e.position >= len {
            break;
        }
        points.push(*e);
    }
    // The newest point whose frame checks out is where the scan starts.
    let mut start = (SEGMENT_HEADER_BYTES as u64, first_offset, i64::MIN);
    while let Some(p) = points.last().copied() {
        let view = file.read(p.position, (len - p.position) as usize)?;
        match record::check_frame(&view) {
            Frame::Valid { offset, arrival_ms, .. }
                if offset == p.offset && arrival_ms == p.arrival_ms =>
            {
                points.pop();
                start = (p.position, p.offset, i64::MIN);
                break;
            }
            _ => {
                points.pop();
            }
        }
    }
    // The older points are kept only if their frames check out too: lookups trust them (an
    // AT_TIMESTAMP lookup that trusted a wrong arrival time would start late).
    let mut checked = Vec::with_capacity(points.len());
    for p in points {
        if point_checks_out(&*file, &p)? {
            checked.push(p);
        }
    }
    let mut points = checked;
    // Scan to the end. An invalid frame is a torn tail if no valid, consecutive frame follows
    // it; otherwise it is damage inside acknowledged data: keep going past it (reads of the
    // damaged records report `Corruption`), never cut acknowledged records off.
    let (mut position, mut offset, mut last_arrival) = start;
    let mut last_barrier = 0u64;
    // Each stretch of damage skipped: (position, offset due there, arrival time before it,
    // points before it, position of the next valid frame).
    let mut damage: Vec<(u64, u64, i64, usize, u64)> = Vec::new();
    let (mut end_position, mut next_offset, mut last_arrival_ms) = loop {
        let (end, next, last) =
            scan(&*file, position, offset, &mut points, last_arrival, &mut last_barrier)?;
        last_arrival = last;
        if end >= len {
            break (end, next, last);
        }
        let view = file.read(end, (len - end) as usize)?;
        if record::check_frame(&view) == Frame::End {
            break (end, next, last);
        }
        match resume_after_damage(&view, end, next, &entries) {
            Some((relative, resume_offset, arrival_ms)) => {
                damage.push((end, next, last, points.len(), end + relative as u64));
                // A point at the resume position lets lookups jump over the damage.
                points.push(IndexEntry {
                    offset: resume_offset,
                    position: end + relative as u64,
                    arrival_ms,
                    kind: EntryKind::Point,
                });
                position = end + relative as u64;
                offset = resume_offset;
            }
            None => break (end, next, last),
        }
    };
    // Page-cache writeback does not keep unsynced writes a prefix: a later page of the last
    // write can reach the disk without an earlier one, leaving valid frames after a hole. Those
    // frames were never acknowledged (nothing after the last sync is, under `Always`). A frame
    // flagged `FLAG_SYNC_BARRIER` was written after everything before it was synced, so damage
    // before the last such frame lies in synced data and is kept as damage; damage after it
    // may lie in the unsynced tail. It is cut there only if it holds a page that never reached
    // the disk (`holds_unwritten_page`): the last write may also have been synced and
    // acknowledged with nothing written since, and then a bit flip in it is damage to keep,
    // not a torn write to cut. (Segments written before the flag existed keep every stretch of
    // damage, as before.)
    let header = file.read(0, SEGMENT_HEADER_BYTES)?;
    let torn = |at: u64, resume: u64| -> Result<bool> {
        Ok(holds_unwritten_page(&file.read(at, (resume - at) as usize)?, at))
    };
    let mut cut = None;
    if segment::header_features(&header) & segment::FEATURE_SYNC_BARRIERS != 0 {
        for &(at, due, arrival_ms, points_before, resume) in &damage {
            if at > last_barrier && torn(at, resume)? {
                cut = Some((at, due, arrival_ms, points_before));
                break;
            }
        }
    }
    if let Some((at, due, arrival_ms, points_before)) = cut {
        (end_position, next_offset, last_arrival_ms) = (at, due, arrival_ms);
        points.truncate(points_before);
    }
    // Cut stale or torn bytes after the last valid frame, keeping the preallocation.
    if len > end_position {
        file.truncate(end_position).await?;
        file.allocate(len).await?;
    }
    // The frames kept may have reached only the page cache before the crash (written, not yet
    // synced, so never acknowledged). Make them durable before anyone can read them: a reader
    // must never see a record a power loss could still take back.
    file.sync().await?;
    let mut bytes = encode_index_header_vec(first_offset);
    for p in &points {
        p.encode(&mut bytes);
    }
    let index = storage.create(&index_path).await?;
    index.write_at(0, bytes).await?;
    Ok(Segment {
        first_offset,
        path,
        index_path,
        file,
        index_file: Some(Rc::new(index)),
        points_persisted: points.len(),
        points,
        next_offset,
        end_position,
        last_arrival_ms,
        allocated: len.max(end_position),
        synced_until: end_position,
    })
}

/// True if `bytes` (starting at file position `position`) hold a whole page-cache page of
/// zeros: a page of an unsynced write that never reached the disk (segments are preallocated
/// with zeros, and recovery and failed writes zero what lies past the last frame, so an
/// unwritten page reads as zeros). Damage without such a page is not a torn write. (A record
/// whose own data holds a page of zeros, damaged by a bit flip in the last write, would be
/// taken for torn: the ambiguity `docs/format.md` names.)
pub fn holds_unwritten_page(bytes: &[u8], position: u64) -> bool {
    let first_page = position.div_ceil(PAGE_BYTES) * PAGE_BYTES;
    let mut page = first_page;
    while page + PAGE_BYTES <= position + bytes.len() as u64 {
        let at = (page - position) as usize;
        if bytes[at..at + PAGE_BYTES as usize].iter().all(|&b| b == 0) {
            return true;
        }
        page += PAGE_BYTES;
    }
    false
}

/// After an invalid frame at the start of `view` (which begins at byte `base` of its segment),
/// where offset `expected` was due, finds where valid consecutive frames resume: right after
/// the damaged frame if its length field survived; else the first valid frame of offset
/// `expected + 1` within the largest frame's length (the length field itself was damaged); else
/// a later index point whose frame checks out. Returns (position in `view`, offset, arrival
/// time) or `None` if nothing valid follows (a torn tail).
pub fn resume_after_damage(
    view: &[u8],
    base: u64,
    expected: u64,
    hints: &[IndexEntry],
) -> Option<(usize, u64, i64)> {
    let next = expected.checked_add(1)?;
    if view.len() >= FRAME_HEADER_BYTES {
        let len = u32::from_le_bytes(view[0..4].try_into().unwrap()) as usize;
        if (FRAME_HEADER_BYTES..=FRAME_BYTES_MAX).contains(&len)
            && len < view.len()
            && let Frame::Valid { offset, arrival_ms, .. } = record::check_frame(&view[len..])
            && offset == next
        {
            return Some((len, offset, arrival_ms));
        }
    }
    // The next frame starts at most FRAME_BYTES_MAX bytes in. Compare the offset field first
    // (eight bytes per position), and check the whole frame only where it matches.
    let last_start = FRAME_BYTES_MAX.min(view.len().saturating_sub(FRAME_HEADER_BYTES));
    let wanted = next.to_le_bytes();
    for relative in FRAME_HEADER_BYTES..=last_start {
        if view[relative + 8..relative + 16] == wanted
            && let Frame::Valid { offset, arrival_ms, .. } = record::check_frame(&view[relative..])
            && offset == next
        {
            return Some((relative, offset, arrival_ms));
        }
    }
    hints
        .iter()
        .filter(|p| p.kind == EntryKind::Point && p.position > base && p.offset > expected)
        .find_map(|p| {
            let relative = (p.position - base) as usize;
            match record::check_frame(view.get(relative..)?) {
                Frame::Valid { offset, arrival_ms, .. }
                    if offset == p.offset && arrival_ms == p.arrival_ms =>
                {
                    Some((relative, offset, arrival_ms))
                }
                _ => None,
            }
        })
}
