//! One shard's log: ordered segments, group commit, sparse index, recovery, retention, seal.
//!
//! A `ShardLog` lives on exactly one core and is shared by that core's tasks through `Rc`.
//! Appends encode frames into a pending buffer and wait; one of the waiters becomes the flush
//! leader, writes everything pending in one `write_at`, issues one `fdatasync`, and wakes all
//! the appends it covered (group commit). Records become visible to readers only once durable
//! (under `Durability::Always`), so a reader never sees a record that a crash could take back.
//!
//! This file owns the `ShardLog` type and its state (`Inner`, `Segment`), its configuration,
//! `open`, and the lifecycle that ends writes (`seal`, `unseal`, `close`): those three share
//! the `sealing`/`sealed`/`closed` flags and the leader role, are short, and read best next to
//! the state they change. The rest is cut along its seams, each file an `impl ShardLog` block
//! or free functions over `Segment`: `append` (group commit, flush, roll, sync), `read`,
//! `index` (sparse points, `locate`, `offset_at_timestamp`), `recovery` (what `open` does to a
//! directory) and `retention`.
//!
//! No `RefCell` borrow is ever held across an `.await`.

mod append;
mod index;
mod read;
mod recovery;
mod retention;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::limits::*;
use crate::notify::Notify;
use crate::segment::{self, IndexEntry, SEAL_FILE};
use crate::storage::{Storage, StorageFile};

pub use append::AppendResult;
pub use read::{FrameRef, ReadBatch, ReadSink, ReadSummary};
pub use recovery::{
    holds_unwritten_page, is_abandoned_roll, is_unwritten_segment, resume_after_damage,
};
// Re-exported where they used to live: `engine::log::{read_file, write_file_atomic}` are public.
pub use crate::storage::{read_file, write_file_atomic};

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

impl<F: StorageFile> Segment<F> {
    /// The bounds every read and lookup relies on: frames lie between the header and
    /// `end_position`, which lies inside the file, and every point lies among the frames.
    /// Recovery establishes them (it checks what it loads and rebuilds what does not check
    /// out); the flush keeps them. Checked where a segment is built or grows; the first and
    /// last points bound the rest, which are ordered.
    fn assert_bounds(&self) {
        assert!(self.first_offset <= self.next_offset, "{}", self.path.display());
        assert!(
            SEGMENT_HEADER_BYTES as u64 <= self.end_position
                && self.end_position <= self.file.len(),
            "{}: end position {} outside the file ({} bytes)",
            self.path.display(),
            self.end_position,
            self.file.len()
        );
        if let (Some(first), Some(last)) = (self.points.first(), self.points.last()) {
            assert!(
                first.offset >= self.first_offset
                    && first.position >= SEGMENT_HEADER_BYTES as u64
                    && last.offset < self.next_offset
                    && last.position < self.end_position,
                "{}: index points outside the segment's frames",
                self.path.display()
            );
        }
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
        let (segments, anomalies) = recovery::recover_segments(&storage, &dir, identity).await?;
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
            let bytes = segment::encode_seal(end);
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
}

async fn read_seal_file<S: Storage>(storage: &S, dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(SEAL_FILE);
    let Some(bytes) = read_file(storage, &path).await? else {
        return Ok(None);
    };
    segment::decode_seal(&bytes).map(Some).map_err(|detail| corruption(&path, 0, detail))
}
