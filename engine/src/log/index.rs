//! The sparse index in memory: points (offset, position, arrival time) every
//! `INDEX_INTERVAL_BYTES` of log, and the lookups built on them: `locate` (offset to position)
//! and `offset_at_timestamp` (arrival time to offset).
//!
//! A point is a hint: lookups scan frame headers from the nearest point, and recovery keeps
//! only points whose frames check out (`point_checks_out`). The index file's byte format is
//! `segment.rs`'s; this module builds its contents.

use std::path::Path;

use super::{Segment, ShardLog, corruption};
use crate::error::Result;
use crate::limits::*;
use crate::record;
use crate::segment::{EntryKind, IndexEntry, encode_index_header};
use crate::storage::{Storage, StorageFile};

impl<S: Storage> ShardLog<S> {
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
        assert!(
            from.position <= segment.end_position && segment.end_position <= segment.file.len()
        );
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
pub(super) fn locate<F: StorageFile>(segment: &Segment<F>, offset: u64) -> Result<u64> {
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
    // Points lie among the frames (see `Segment::assert_bounds`).
    assert!(from.position <= segment.end_position && segment.end_position <= segment.file.len());
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

/// Whether the frame header at an index point's position names the point's offset and arrival
/// time, with a length that fits in the file. (The frame's checksum is verified when it is
/// served; a point only has to say where the frame starts.)
pub(super) fn point_checks_out<F: StorageFile>(file: &F, point: &IndexEntry) -> Result<bool> {
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

/// Whether the frame at `position` gets an index point: a segment's first frame does, and then
/// one frame at least every `INDEX_INTERVAL_BYTES`.
pub(super) fn point_due(points: &[IndexEntry], position: u64) -> bool {
    match points.last() {
        None => true,
        Some(p) => position - p.position >= INDEX_INTERVAL_BYTES,
    }
}

/// An index file's contents: the header, the points, then the seal entry of a rolled segment.
pub(super) fn encode_index(
    first_offset: u64,
    points: &[IndexEntry],
    seal: Option<IndexEntry>,
) -> Vec<u8> {
    let mut bytes = encode_index_header(first_offset).to_vec();
    for entry in points.iter().chain(&seal) {
        entry.encode(&mut bytes);
    }
    bytes
}

pub(super) fn first_offset_of(index_path: &Path) -> u64 {
    index_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".idx"))
        .and_then(|n| n.parse().ok())
        .expect("index paths are built by segment::index_file_name")
}
