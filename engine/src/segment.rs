//! Segment, index and seal file formats: headers, sparse index entries, the seal marker. Fixed
//! little-endian.
//!
//! Segment file `<first_offset:020>.log`:
//! ```text
//!  0        8        12       16            24       28       32            40           60    64
//!  +--------+--------+--------+-------------+--------+--------+-------------+---- ... ---+-----+
//!  | magic  | version| header | incarnation | shard  | (zero) | first_offset| created_ms | crc |
//!  |SPATELOG| (u32=1)| len=64 | (u64)       | (u32)  |features| (u64)       | (i64), 0.. | u32 |
//!  +--------+--------+--------+-------------+--------+--------+-------------+---- ... ---+-----+
//!  then frames (see record.rs), then zeros (preallocated space).
//!  features (u32) bit 0 = FEATURE_SYNC_BARRIERS: frames carry `record::FLAG_SYNC_BARRIER`.
//!  Older segments have zero here; readers that do not know a bit ignore it.
//! ```
//! Index file `<first_offset:020>.idx`: a 32-byte header, then 32-byte entries.
//! ```text
//!  header: magic "SPATEIDX" | version u32 | zero u32 | first_offset u64 | zero u32 | crc32 u32
//!  entry:  offset u64 | position u64 | arrival_ms i64 | kind u32 | crc32 u32 (over bytes 0..28)
//!          kind 1 = point: the frame of `offset` starts at `position`.
//!          kind 2 = seal:  the segment ends at `position`; `offset` is the next offset and
//!                          `arrival_ms` the newest arrival time. Always the last entry.
//! ```
//! Seal file `sealed` (one per shard directory, present once the shard is sealed), 20 bytes:
//! ```text
//!  magic "SPATESEA" (8) | ending offset u64 (exclusive) | crc32 u32 of bytes 0..16
//! ```
//! The seal is a file of its own, not an index entry, because it ends the whole log rather
//! than one segment; `log` writes it atomically (`storage::write_file_atomic`).

use crate::limits::{INDEX_ENTRY_BYTES, INDEX_HEADER_BYTES, SEGMENT_HEADER_BYTES};

pub const SEGMENT_MAGIC: &[u8; 8] = b"SPATELOG";
pub const INDEX_MAGIC: &[u8; 8] = b"SPATEIDX";
pub const FORMAT_VERSION: u32 = 1;
/// Header feature bit: the segment's writer set `record::FLAG_SYNC_BARRIER` on the first frame
/// of every write issued after a sync, so recovery can trust the flag's absence.
pub const FEATURE_SYNC_BARRIERS: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub incarnation: u64,
    pub shard_index: u32,
    pub first_offset: u64,
    pub created_ms: i64,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut b = [0u8; SEGMENT_HEADER_BYTES];
        b[0..8].copy_from_slice(SEGMENT_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.incarnation.to_le_bytes());
        b[24..28].copy_from_slice(&self.shard_index.to_le_bytes());
        b[28..32].copy_from_slice(&FEATURE_SYNC_BARRIERS.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_offset.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32fast::hash(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<SegmentHeader, &'static str> {
        if b.len() < SEGMENT_HEADER_BYTES {
            return Err("segment shorter than its header");
        }
        if &b[0..8] != SEGMENT_MAGIC {
            return Err("bad segment magic");
        }
        let crc = u32::from_le_bytes(b[60..64].try_into().unwrap());
        if crc32fast::hash(&b[..60]) != crc {
            return Err("segment header checksum mismatch");
        }
        let version = u32::from_le_bytes(b[8..12].try_into().unwrap());
        if version != FORMAT_VERSION {
            return Err("unsupported segment format version");
        }
        Ok(SegmentHeader {
            incarnation: u64::from_le_bytes(b[16..24].try_into().unwrap()),
            shard_index: u32::from_le_bytes(b[24..28].try_into().unwrap()),
            first_offset: u64::from_le_bytes(b[32..40].try_into().unwrap()),
            created_ms: i64::from_le_bytes(b[40..48].try_into().unwrap()),
        })
    }
}

/// The feature bits of a segment header (bytes 28..32; zero in segments written before them).
pub fn header_features(header: &[u8]) -> u32 {
    u32::from_le_bytes(header[28..32].try_into().unwrap())
}

pub fn encode_index_header(first_offset: u64) -> [u8; INDEX_HEADER_BYTES] {
    let mut b = [0u8; INDEX_HEADER_BYTES];
    b[0..8].copy_from_slice(INDEX_MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&first_offset.to_le_bytes());
    let crc = crc32fast::hash(&b[..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

pub fn decode_index_header(b: &[u8]) -> Option<u64> {
    if b.len() < INDEX_HEADER_BYTES || &b[0..8] != INDEX_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(b[28..32].try_into().unwrap());
    if crc32fast::hash(&b[..28]) != crc {
        return None;
    }
    Some(u64::from_le_bytes(b[16..24].try_into().unwrap()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Point = 1,
    Seal = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    pub arrival_ms: i64,
    pub kind: EntryKind,
}

impl IndexEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.arrival_ms.to_le_bytes());
        out.extend_from_slice(&(self.kind as u32).to_le_bytes());
        let crc = crc32fast::hash(&out[start..start + 28]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    pub fn decode(b: &[u8]) -> Option<IndexEntry> {
        if b.len() < INDEX_ENTRY_BYTES {
            return None;
        }
        let crc = u32::from_le_bytes(b[28..32].try_into().unwrap());
        if crc32fast::hash(&b[..28]) != crc {
            return None;
        }
        let kind = match u32::from_le_bytes(b[24..28].try_into().unwrap()) {
            1 => EntryKind::Point,
            2 => EntryKind::Seal,
            _ => return None,
        };
        Some(IndexEntry {
            offset: u64::from_le_bytes(b[0..8].try_into().unwrap()),
            position: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            arrival_ms: i64::from_le_bytes(b[16..24].try_into().unwrap()),
            kind,
        })
    }
}

/// Decodes the valid prefix of an index file. `None` if the header is bad.
pub fn decode_index(bytes: &[u8]) -> Option<(u64, Vec<IndexEntry>)> {
    let first_offset = decode_index_header(bytes)?;
    let mut entries = Vec::new();
    let mut at = INDEX_HEADER_BYTES;
    while at + INDEX_ENTRY_BYTES <= bytes.len() {
        match IndexEntry::decode(&bytes[at..at + INDEX_ENTRY_BYTES]) {
            Some(e) => entries.push(e),
            None => break,
        }
        at += INDEX_ENTRY_BYTES;
    }
    Some((first_offset, entries))
}

/// Name of the seal file in a shard directory.
pub const SEAL_FILE: &str = "sealed";
pub const SEAL_MAGIC: &[u8; 8] = b"SPATESEA";
pub const SEAL_FILE_BYTES: usize = 20;

/// The seal file's bytes for a log whose exclusive ending offset is `ending_offset`.
pub fn encode_seal(ending_offset: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SEAL_FILE_BYTES);
    bytes.extend_from_slice(SEAL_MAGIC);
    bytes.extend_from_slice(&ending_offset.to_le_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The exclusive ending offset a seal file records, or what is wrong with it.
pub fn decode_seal(bytes: &[u8]) -> Result<u64, &'static str> {
    if bytes.len() != SEAL_FILE_BYTES || &bytes[..8] != SEAL_MAGIC {
        return Err("bad seal file");
    }
    let crc = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
    if crc32fast::hash(&bytes[..16]) != crc {
        return Err("seal file checksum mismatch");
    }
    Ok(u64::from_le_bytes(bytes[8..16].try_into().unwrap()))
}

pub fn segment_file_name(first_offset: u64) -> String {
    format!("{first_offset:020}.log")
}
pub fn index_file_name(first_offset: u64) -> String {
    format!("{first_offset:020}.idx")
}
/// Parses `<20 digits>.log`.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_entries_round_trip() {
        let h = SegmentHeader { incarnation: 7, shard_index: 3, first_offset: 99, created_ms: 5 };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        let mut bad = b;
        bad[33] ^= 1;
        assert!(SegmentHeader::decode(&bad).is_err());
        let e = IndexEntry { offset: 1, position: 64, arrival_ms: 9, kind: EntryKind::Seal };
        let mut out = Vec::new();
        e.encode(&mut out);
        assert_eq!(IndexEntry::decode(&out), Some(e));
        out[3] ^= 4;
        assert_eq!(IndexEntry::decode(&out), None);
        assert_eq!(parse_segment_file_name(&segment_file_name(123)), Some(123));
        assert_eq!(parse_segment_file_name("x.log"), None);
        let seal = encode_seal(1234);
        assert_eq!(seal.len(), SEAL_FILE_BYTES);
        assert_eq!(decode_seal(&seal), Ok(1234));
        let mut bad = seal.clone();
        bad[9] ^= 1;
        assert_eq!(decode_seal(&bad), Err("seal file checksum mismatch"));
        assert_eq!(decode_seal(&seal[..19]), Err("bad seal file"));
    }
}
