//! Recovery: what opening a shard directory does to bring its segments back into memory.
//!
//! Removes a newest segment that a crash while rolling left unwritten or a failed roll left
//! empty; loads rolled segments from their sealed indexes (or rebuilds an index that does not
//! check out by scanning); recovers the newest segment's tail (scan from the last good point,
//! keep damage inside synced data, cut a torn unsynced tail, sync, rewrite the index); and
//! reports gaps between segments as anomalies without deleting anything. Its rules are stated
//! in `docs/format.md` ("Recovery"). The pure functions (`is_unwritten_segment`,
//! `is_abandoned_roll`, `resume_after_damage`) are shared with `check.rs`, so `spate check`
//! judges damage the way `open` does.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::index::{encode_index, point_checks_out, point_due};
use super::{Anomaly, Segment, ShardIdentity, corruption};
use crate::error::Result;
use crate::limits::*;
use crate::record::{self, Frame};
use crate::segment::{self, EntryKind, IndexEntry, SegmentHeader, decode_index};
use crate::storage::{Storage, StorageFile, read_file, write_file_synced};

/// Opens every segment in `dir` (after `ShardLog::open` read the seal file) and recovers it:
/// removes a newest segment a crash while rolling left unwritten or a failed roll left empty,
/// loads each rolled segment from its sealed index (or rebuilds that), recovers the tail of the
/// newest, and reports gaps between segments as anomalies without deleting anything.
pub(super) async fn recover_segments<S: Storage>(
    storage: &S,
    dir: &Path,
    identity: ShardIdentity,
) -> Result<(Vec<Segment<S::File>>, Vec<Anomaly>)> {
    let mut first_offsets: Vec<u64> = storage
        .list_dir(dir)?
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
        let hints = read_file(storage, &dir.join(segment::index_file_name(previous_first)))
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
        let header_bytes = file.read(0, (SEGMENT_HEADER_BYTES as u64).min(file.len()) as usize)?;
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
            recover_tail(storage, file, path, index_path, first_offset).await?
        } else {
            let next_first = first_offsets[i + 1];
            load_sealed_segment(storage, file, path, index_path, first_offset, next_first).await?
        };
        assert!(
            segment
                .points
                .windows(2)
                .all(|w| w[0].offset < w[1].offset && w[0].position < w[1].position)
        );
        segment.assert_bounds();
        segments.push(segment);
    }
    if removed_any {
        storage.sync_dir(dir).await?;
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
    Ok((segments, anomalies))
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
                if point_due(points, position) {
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
                && (SEGMENT_HEADER_BYTES as u64..=file.len()).contains(&seal.position)
                && ends_at(&*file, seal.position)?
                && points.first().is_none_or(|p| {
                    p.offset == first_offset && p.position >= SEGMENT_HEADER_BYTES as u64
                })
                && points
                    .last()
                    .is_none_or(|p| p.offset < seal.offset && p.position < seal.position)
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
    let seal = IndexEntry {
        offset: next_offset,
        position: end_position,
        arrival_ms: last_arrival_ms,
        kind: EntryKind::Seal,
    };
    let bytes = encode_index(first_offset, &points, Some(seal));
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
    let bytes = encode_index(first_offset, &points, None);
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
