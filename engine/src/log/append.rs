//! Appending: group commit, the flush leader's write, rolling to a new segment, and syncing.
//!
//! An append encodes its frames into `Inner::pending` and waits; the first waiter to find no
//! flush running becomes the leader (`flush_to`), writes one chunk of pending frames with one
//! `write_at` (and one `fdatasync` under `Durability::Always`), makes them visible, and wakes
//! everyone. A failed write or sync discards everything pending, so offsets restart at the last
//! acknowledged one. The leader role (`lead`/`unlead`) also serializes roll, seal, retention
//! and close, which is why rolling lives here, beside the writes it must not overlap.

use std::path::Path;
use std::rc::Rc;

use super::index::{encode_index, first_offset_of, point_due};
use super::{Durability, Segment, ShardLog};
use crate::error::{Error, Result};
use crate::limits::*;
use crate::record::{self, Frame, NewRecord};
use crate::segment::{self, EntryKind, IndexEntry, SegmentHeader};
use crate::storage::{Storage, StorageFile, write_file_synced};

/// Why `flush_to` gave up on a waiter: the failed flush's cause, and how far that flush made
/// the log durable (`visible_next` when it failed), if this waiter's generation is remembered.
pub(super) struct Failed {
    pub(super) durable_end: Option<u64>,
    pub(super) cause: Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    pub first_offset: u64,
    pub count: usize,
    pub arrival_ms: i64,
}

impl<S: Storage> ShardLog<S> {
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
            let pending_before = inner.pending.len();
            for (i, r) in records.iter().enumerate() {
                record::encode_frame(
                    &mut inner.pending,
                    first_offset + i as u64,
                    arrival_ms,
                    &r.partition_key,
                    &r.data,
                );
            }
            // The backpressure bound above counted `frame_len`; the flush walks the buffer by
            // the lengths the frames carry. Both must agree with what was encoded.
            assert_eq!(inner.pending.len() - pending_before, batch_bytes);
            inner.next_offset += records.len() as u64;
            (inner.next_offset, inner.generation, first_offset, arrival_ms)
        };
        match self.flush_to(target, generation).await {
            Ok(()) => Ok(AppendResult { first_offset, count: records.len(), arrival_ms }),
            // An earlier chunk of a failed flush made the batch's first records durable and
            // visible: they are acknowledged, so the caller must hand out their sequence
            // numbers (a client told they failed would write them again).
            Err(Failed { durable_end: Some(end), cause }) if end > first_offset => {
                Err(Error::PartiallyAppended {
                    first_offset,
                    count: (end - first_offset) as usize,
                    arrival_ms,
                    cause: Box::new(cause),
                })
            }
            Err(Failed { cause, .. }) => Err(cause),
        }
    }

    /// Waits until every offset below `target` is acknowledged, leading flushes as needed.
    // Every borrow is dropped (`drop(inner)`) before its await; the lint cannot see a drop.
    #[allow(clippy::await_holding_refcell_ref)]
    pub(super) async fn flush_to(&self, target: u64, generation: u64) -> Result<(), Failed> {
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
                    let cause =
                        inner.last_error.as_ref().map(Error::duplicate).unwrap_or_else(|| {
                            Error::Io(std::io::Error::other("append discarded"))
                        });
                    return Err(Failed { durable_end, cause });
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
        let (file, position, mut chunk, allocated, dirty_until, next_offset, last_arrival_ms) = {
            let mut inner = self.inner.borrow_mut();
            let inner = &mut *inner;
            let active = inner.segments.last().expect("rolled above");
            // The active segment ends where the acknowledged records end: pending frames (whose
            // offsets start at `visible_next`) continue it.
            assert_eq!(active.next_offset, inner.visible_next);
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
            let (next_offset, last_arrival_ms) = (active.next_offset, active.last_arrival_ms);
            (file, end_position, chunk, allocated, dirty_until, next_offset, last_arrival_ms)
        };
        // Check every frame again right before its bytes go to the disk (pairs with the check
        // of every frame read, `read_each`); also yields the frame boundaries for the index.
        let frames = verify_chunk(&chunk, next_offset, last_arrival_ms);
        let chunk_len = chunk.len() as u64;
        let end = position + chunk_len;
        // Where the write lands: right after the header or the last frame, one chunk of at most
        // `FLUSH_BYTES_MAX`, within the segment size (a frame larger than the whole segment
        // goes alone into an empty one).
        assert!(position >= SEGMENT_HEADER_BYTES as u64);
        assert!(chunk.len() <= FLUSH_BYTES_MAX);
        assert!(
            end <= self.config.segment_bytes
                || (position == SEGMENT_HEADER_BYTES as u64 && frames.len() == 1),
            "a write of {chunk_len} bytes at {position} overruns the segment size"
        );
        let mut allocated = allocated;
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
            allocated = new_len;
        }
        if dirty_until > end {
            // Zero what a failed write may have left behind, so no stale frame can follow ours.
            chunk.resize((dirty_until - position) as usize, 0);
        }
        // If this write fails, the bytes up to here may hold garbage.
        self.inner.borrow_mut().dirty_until = dirty_until.max(end);
        assert!(
            position + chunk.len() as u64 <= allocated,
            "a write of {} bytes at {position} runs past the {allocated} bytes allocated",
            chunk.len()
        );
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
                assert_eq!(offset, active.next_offset, "offsets run on without a gap");
                let frame_position = position + at as u64;
                if point_due(&active.points, frame_position) {
                    assert!(active.points.last().is_none_or(|p| p.offset < offset));
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
            assert_eq!(position + at as u64, end);
            active.end_position = end;
            active.assert_bounds();
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
    pub(super) async fn clear_failed_write(&self) -> Result<()> {
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
    pub(super) async fn roll(&self) -> Result<()> {
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
            let seal = IndexEntry {
                offset: next_offset,
                position: end_position,
                arrival_ms,
                kind: EntryKind::Seal,
            };
            let bytes = encode_index(first_offset_of(&previous_index_path), &points, Some(seal));
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
        let bytes = encode_index(first_offset_of(&active_index_path), &points, None);
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
        index.write_at(0, encode_index(first_offset, &[], None)).await?;
        self.storage.sync_dir(&self.dir).await?;
        Ok((file, index, allocated))
    }

    /// Takes the flush leader role (waiting for a running flush), for maintenance work.
    pub(super) async fn lead(&self) {
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

    pub(super) fn unlead(&self) {
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
}

/// Length of the (self-encoded, trusted) frame at `at` in a pending buffer.
fn frame_len_at(buffer: &[u8], at: usize) -> usize {
    if at + 4 > buffer.len() {
        return 0;
    }
    u32::from_le_bytes(buffer[at..at + 4].try_into().unwrap()) as usize
}

/// Checks the frames of a chunk about to be written the way a reader will check them, and
/// that their offsets run on from `next_offset` with no gap and their arrival times never go
/// back from `last_arrival_ms`. Returns each frame's (offset, arrival time, length), for the
/// index. A failure is a bug in encoding or in the pending buffer's bookkeeping, caught before
/// its bytes reach the disk.
///
/// Every frame's header is checked (`record::check_frame_header`: lengths, in bounds). The
/// checksum is verified again for the first frame, whose flags and checksum the flush itself
/// rewrote (`set_sync_barrier`), and, in debug builds (every test), for every frame. A second
/// checksum pass over every byte cost about a fifth more user CPU per appended byte in the
/// engine benchmark (`ARCHITECTURE.md`, "Assertions"), for bytes that nothing touches between
/// `encode_frame` and here.
fn verify_chunk(chunk: &[u8], next_offset: u64, last_arrival_ms: i64) -> Vec<(u64, i64, usize)> {
    let mut frames = Vec::new();
    let (mut expected, mut arrival_floor) = (next_offset, last_arrival_ms);
    let mut at = 0usize;
    while at < chunk.len() {
        let frame = if at == 0 || cfg!(debug_assertions) {
            record::check_frame(&chunk[at..])
        } else {
            record::check_frame_header(&chunk[at..])
        };
        match frame {
            Frame::Valid { len, offset, arrival_ms, .. } => {
                assert_eq!(offset, expected, "frame at byte {at} of a write: offset out of order");
                assert!(arrival_ms >= arrival_floor, "frame at byte {at}: arrival time goes back");
                frames.push((offset, arrival_ms, len));
                expected += 1;
                arrival_floor = arrival_ms;
                at += len;
            }
            other => panic!("frame at byte {at} of a write fails its check: {other:?}"),
        }
    }
    assert!(!frames.is_empty());
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk() -> Vec<u8> {
        let mut chunk = Vec::new();
        record::encode_frame(&mut chunk, 7, 100, b"key", b"data");
        record::encode_frame(&mut chunk, 8, 100, b"key", b"more data");
        chunk
    }

    #[test]
    fn verify_chunk_accepts_what_append_encodes() {
        assert_eq!(verify_chunk(&chunk(), 7, 0), vec![(7, 100, 39), (8, 100, 44)]);
    }

    #[test]
    #[should_panic(expected = "fails its check")]
    fn verify_chunk_catches_a_flipped_bit() {
        let mut chunk = chunk();
        chunk[45] ^= 1;
        verify_chunk(&chunk, 7, 0);
    }

    #[test]
    #[should_panic(expected = "offset out of order")]
    fn verify_chunk_catches_a_gap() {
        verify_chunk(&chunk(), 6, 0);
    }
}
