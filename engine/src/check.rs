//! Offline verification of shard directories (used by `spate check` on a stopped server).
//!
//! Reads every segment and index file and reports each problem by file and byte position:
//! bad headers, frames failing their checksum, offsets out of order, gaps between segments,
//! and index entries that disagree with the frames they point at.

use std::path::{Path, PathBuf};

use crate::limits::{INDEX_ENTRY_BYTES, INDEX_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use crate::record::{self, Frame};
use crate::segment::{self, EntryKind, SegmentHeader, decode_index_header};
use crate::storage::{Storage, StorageFile, read_file};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub position: u64,
    pub detail: String,
}

/// What a check found in one shard directory.
#[derive(Clone, Debug, Default)]
pub struct ShardSummary {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
}

/// Checks one shard directory; returns the problems found (empty if healthy).
pub async fn check_shard<S: Storage>(storage: &S, dir: &Path) -> Vec<Problem> {
    check_shard_summary(storage, dir).await.1
}

pub async fn check_shard_summary<S: Storage>(
    storage: &S,
    dir: &Path,
) -> (ShardSummary, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut summary = ShardSummary::default();
    let mut report = |path: &Path, position: u64, detail: String| {
        problems.push(Problem { path: path.to_path_buf(), position, detail })
    };
    let names = match storage.list_dir(dir) {
        Ok(names) => names,
        Err(e) => {
            report(dir, 0, format!("cannot list directory: {e}"));
            return (summary, problems);
        }
    };
    let mut first_offsets: Vec<u64> =
        names.iter().filter_map(|n| segment::parse_segment_file_name(n)).collect();
    first_offsets.sort_unstable();
    // An empty newest segment left by a failed roll is removed by recovery: not damage.
    if let [.., previous_first, last_first] = first_offsets[..]
        && is_abandoned_roll(storage, dir, previous_first, last_first).await
    {
        first_offsets.pop();
    }
    let mut expected_next: Option<u64> = None;
    for (i, &first_offset) in first_offsets.iter().enumerate() {
        let is_last = i + 1 == first_offsets.len();
        let path = dir.join(segment::segment_file_name(first_offset));
        summary.segments += 1;
        let file = match storage.open(&path).await {
            Ok(f) => f,
            Err(e) => {
                report(&path, 0, format!("cannot open: {e}"));
                continue;
            }
        };
        let len = file.len();
        let bytes = match file.read(0, len as usize) {
            Ok(b) => b,
            Err(e) => {
                report(&path, 0, format!("cannot read: {e}"));
                continue;
            }
        };
        if is_last && crate::log::is_unwritten_segment(&bytes) {
            // A roll interrupted before the new header was synced: recovery removes the file.
            summary.segments -= 1;
            continue;
        }
        match SegmentHeader::decode(&bytes) {
            Ok(h) if h.first_offset == first_offset => {}
            Ok(_) => report(&path, 32, "header first offset disagrees with the file name".into()),
            Err(detail) => {
                report(&path, 0, detail.to_string());
                continue;
            }
        }
        if let Some(expected) = expected_next
            && expected != first_offset
        {
            report(&path, 0, format!("gap: previous segment ends at offset {expected}"));
        }
        // Index points, used to find where frames resume after damage.
        let index_path = dir.join(segment::index_file_name(first_offset));
        let hints: Vec<segment::IndexEntry> = match read_file(storage, &index_path).await {
            Ok(Some(index)) => segment::decode_index(&index).map(|(_, e)| e).unwrap_or_default(),
            _ => Vec::new(),
        };
        // Frames.
        let mut position = SEGMENT_HEADER_BYTES;
        let mut offset = first_offset;
        let mut last_arrival = i64::MIN;
        let mut frames: Vec<(u64, u64, i64)> = Vec::new();
        let mut damaged = false;
        // Offset ranges lost to damage: index entries inside them are not compared.
        let mut lost: Vec<(u64, u64)> = Vec::new();
        // In the newest segment, damage after the last frame flagged FLAG_SYNC_BARRIER lies in
        // an unsynced write that recovery cuts (see `log::recovery::recover_tail`): a torn tail.
        let barriers = segment::header_features(&bytes) & segment::FEATURE_SYNC_BARRIERS != 0;
        let mut last_barrier = 0u64;
        let mut tail_damage: Vec<(u64, &'static str, bool)> = Vec::new();
        loop {
            match record::check_frame(&bytes[position..]) {
                Frame::Valid { len, offset: found, arrival_ms, .. } => {
                    if found != offset {
                        report(
                            &path,
                            position as u64,
                            format!("offset {found}, expected {offset}"),
                        );
                        damaged = true;
                        break;
                    }
                    if arrival_ms < last_arrival {
                        report(&path, position as u64, "arrival time goes backwards".into());
                    }
                    last_arrival = arrival_ms;
                    if record::frame_flags(&bytes[position..]) & record::FLAG_SYNC_BARRIER != 0 {
                        last_barrier = position as u64;
                    }
                    frames.push((offset, position as u64, arrival_ms));
                    summary.records += 1;
                    summary.bytes += len as u64;
                    offset += 1;
                    position += len;
                }
                Frame::End => break,
                Frame::Invalid(detail) => {
                    // A torn tail of the newest segment is normal after a crash (recovery cuts
                    // it): nothing valid follows it. If valid frames follow, it is damage.
                    let resume = crate::log::resume_after_damage(
                        &bytes[position..],
                        position as u64,
                        offset,
                        &hints,
                    );
                    if resume.is_none() && is_last {
                        break;
                    }
                    if is_last && barriers {
                        let hole_end =
                            resume.map_or(bytes.len(), |(relative, ..)| position + relative);
                        let torn = crate::log::holds_unwritten_page(
                            &bytes[position..hole_end],
                            position as u64,
                        );
                        tail_damage.push((position as u64, detail, torn));
                    } else {
                        report(&path, position as u64, detail.to_string());
                    }
                    damaged = true;
                    match resume {
                        Some((relative, resume_offset, _)) if is_last => {
                            lost.push((offset, resume_offset));
                            position += relative;
                            offset = resume_offset;
                        }
                        _ => break,
                    }
                }
            }
        }
        // Recovery cuts at the first damage after the last barrier that holds an unwritten page
        // (a torn write); damage before it is reported.
        for &(at, detail, torn) in &tail_damage {
            if at > last_barrier && torn {
                break;
            }
            report(&path, at, detail.to_string());
        }
        if !is_last
            && let Some(&next) = first_offsets.get(i + 1)
            && offset != next
            && !damaged
        {
            report(
                &path,
                position as u64,
                format!("segment ends at offset {offset}, next begins at {next}"),
            );
        }
        expected_next = Some(offset);
        // Index.
        match read_file(storage, &index_path).await {
            Ok(Some(index)) => {
                if decode_index_header(&index) != Some(first_offset) {
                    report(&index_path, 0, "bad index header".into());
                    continue;
                }
                let mut at = INDEX_HEADER_BYTES;
                while at + INDEX_ENTRY_BYTES <= index.len() {
                    let raw = &index[at..at + INDEX_ENTRY_BYTES];
                    if raw.iter().all(|&b| b == 0) {
                        break;
                    }
                    match segment::IndexEntry::decode(raw) {
                        None => {
                            report(&index_path, at as u64, "index entry checksum mismatch".into())
                        }
                        Some(e) if e.kind == EntryKind::Point => {
                            let ok =
                                frames.binary_search_by_key(&e.offset, |f| f.0).ok().is_some_and(
                                    |k| frames[k].1 == e.position && frames[k].2 == e.arrival_ms,
                                );
                            let in_lost = lost.iter().any(|&(a, b)| (a..b).contains(&e.offset));
                            if !ok && !in_lost && e.offset < offset {
                                report(
                                    &index_path,
                                    at as u64,
                                    format!(
                                        "entry for offset {} disagrees with the segment",
                                        e.offset
                                    ),
                                );
                            }
                        }
                        Some(e) => {
                            // A seal that a frame of its offset follows was left by a roll
                            // that failed (appends went on here); recovery ignores it.
                            let stale = frames
                                .binary_search_by_key(&e.offset, |f| f.0)
                                .is_ok_and(|k| frames[k].1 == e.position);
                            if !stale && (e.offset != offset || e.position != position as u64) {
                                report(
                                    &index_path,
                                    at as u64,
                                    "seal entry disagrees with the segment end".into(),
                                );
                            }
                        }
                    }
                    at += INDEX_ENTRY_BYTES;
                }
            }
            Ok(None) => {} // A missing index is rebuilt on open; not damage.
            Err(e) => report(&index_path, 0, format!("cannot read: {e}")),
        }
    }
    (summary, problems)
}

async fn is_abandoned_roll<S: Storage>(
    storage: &S,
    dir: &Path,
    previous_first: u64,
    last_first: u64,
) -> bool {
    let whole = |first_offset: u64| async move {
        let file = storage.open(&dir.join(segment::segment_file_name(first_offset))).await.ok()?;
        file.read(0, file.len() as usize).ok()
    };
    let (Some(previous), Some(last)) = (whole(previous_first).await, whole(last_first).await)
    else {
        return false;
    };
    let index_path = dir.join(segment::index_file_name(previous_first));
    let hints = match read_file(storage, &index_path).await {
        Ok(Some(index)) => segment::decode_index(&index).map(|(_, e)| e).unwrap_or_default(),
        _ => Vec::new(),
    };
    crate::log::is_abandoned_roll(&previous, previous_first, &hints, &last, last_first)
}
