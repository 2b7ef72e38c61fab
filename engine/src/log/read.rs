//! Reading: records at an offset, zero-copy, each frame's checksum verified as it is served.
//!
//! Reads borrow the log's state only synchronously (no `.await` inside), find the segment and
//! the frame's position through the sparse index (`index::locate`), and walk consecutive
//! frames in the segment's mapped view. Damage found on the way is an `Error::Corruption` for
//! the first record and ends the read early after it; a reader never gets a record that failed
//! its check. `wait_for` is how subscribers wait for the next record.

use bytes::Bytes;

use super::index::locate;
use super::{ShardLog, corruption};
use crate::error::Result;
use crate::limits::SEGMENT_HEADER_BYTES;
use crate::record::{self, Frame, Record};
use crate::storage::{Storage, StorageFile};

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

impl<S: Storage> ShardLog<S> {
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
        let first_offset = offset;
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
            // Within the frames, inside the file (the mapped length): see `Segment::assert_bounds`.
            assert!(
                SEGMENT_HEADER_BYTES as u64 <= start
                    && start < segment.end_position
                    && segment.end_position <= segment.file.len()
            );
            let view = segment.file.read(start, (segment.end_position - start) as usize)?;
            if summary.records == 0 {
                sink.expect(view.len().min(max_bytes.saturating_add(
                    max_records.saturating_mul(crate::limits::FRAME_HEADER_BYTES),
                )));
            }
            let mut at = 0usize;
            while offset < segment.next_offset && offset < end {
                // Every frame is checked before it is served (pairs with `append::verify_chunk`,
                // which checked it before it was written).
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
        // The records handed out were consecutive and all visible.
        assert_eq!(summary.next_offset - first_offset, summary.records as u64);
        assert!(summary.next_offset <= end);
        Ok(summary)
    }
}
