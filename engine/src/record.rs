//! The on-disk record frame: encode, decode, checksum. Fixed little-endian.
//!
//! ```text
//!  0       4       8               16              24      26      28      32
//!  +-------+-------+---------------+---------------+-------+-------+-------+---------+------+
//!  | len   | crc32 | offset (u64)  | arrival_ms    | key   | flags | data  | key     | data |
//!  | (u32) | (u32) |               | (i64)         | len   | (u16) | len   | bytes   | bytes|
//!  |       |       |               |               | (u16) |       | (u32) |         |      |
//!  +-------+-------+---------------+---------------+-------+-------+-------+---------+------+
//! ```
//! `len` is the whole frame (32 + key len + data len). `crc32` (crc32fast, IEEE) covers bytes
//! 8..len. A frame whose first 8 bytes are zero marks the end of the log (preallocated space
//! reads as zeros).
//!
//! `flags` bit 0 (`FLAG_SYNC_BARRIER`): everything before this frame in its segment was synced
//! before this frame was written. Recovery uses it to tell a torn unsynced tail from damage in
//! acknowledged data (see `log::recovery::recover_tail`). Other bits are zero.

use bytes::Bytes;

use crate::limits::{FRAME_BYTES_MAX, FRAME_HEADER_BYTES};

/// A record as stored and served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the shard, strictly increasing from 0.
    pub offset: u64,
    /// Arrival time, milliseconds since the Unix epoch; never decreases within a shard.
    pub arrival_ms: i64,
    pub partition_key: Bytes,
    pub data: Bytes,
}

/// A record to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecord {
    pub partition_key: Bytes,
    pub data: Bytes,
}

impl NewRecord {
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER_BYTES + self.partition_key.len() + self.data.len()
    }
}

pub fn encode_frame(out: &mut Vec<u8>, offset: u64, arrival_ms: i64, key: &[u8], data: &[u8]) {
    debug_assert!(key.len() <= u16::MAX as usize);
    let len = FRAME_HEADER_BYTES + key.len() + data.len();
    assert!(len <= FRAME_BYTES_MAX, "frame too large: callers check limits");
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&arrival_ms.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Frame flag: every byte before this frame in its segment was durable when it was written.
pub const FLAG_SYNC_BARRIER: u16 = 1;

/// The flags of a frame already known valid.
pub fn frame_flags(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[26], bytes[27]])
}

/// Sets `FLAG_SYNC_BARRIER` on the (self-encoded, valid) frame at the start of `frame` and
/// updates its checksum.
pub fn set_sync_barrier(frame: &mut [u8]) {
    let len = u32_at(frame, 0) as usize;
    let flags = frame_flags(frame) | FLAG_SYNC_BARRIER;
    frame[26..28].copy_from_slice(&flags.to_le_bytes());
    let crc = crc32fast::hash(&frame[8..len]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// What lies at a position in a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A frame that passed every check.
    Valid { len: usize, offset: u64, arrival_ms: i64, key_len: usize, data_len: usize },
    /// Zeros or too few bytes for a header: the end of the written log.
    End,
    /// Bytes that are not a valid frame (torn write, bit flip, garbage).
    Invalid(&'static str),
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Checks the frame at the start of `bytes` (which may extend past the frame).
pub fn check_frame(bytes: &[u8]) -> Frame {
    let frame = check_frame_header(bytes);
    if let Frame::Valid { len, .. } = frame
        && crc32fast::hash(&bytes[8..len]) != u32_at(bytes, 4)
    {
        return Frame::Invalid("frame checksum mismatch");
    }
    frame
}

/// Checks everything [`check_frame`] does except the checksum: the header's lengths agree
/// with each other and with `bytes`. Reads only the 32 header bytes.
#[inline]
pub fn check_frame_header(bytes: &[u8]) -> Frame {
    if bytes.len() < FRAME_HEADER_BYTES {
        if bytes.iter().all(|&b| b == 0) {
            return Frame::End;
        }
        return Frame::Invalid("truncated frame header");
    }
    let len = u32_at(bytes, 0) as usize;
    let crc = u32_at(bytes, 4);
    if len == 0 && crc == 0 {
        return Frame::End;
    }
    if !(FRAME_HEADER_BYTES..=FRAME_BYTES_MAX).contains(&len) {
        return Frame::Invalid("frame length out of range");
    }
    if len > bytes.len() {
        return Frame::Invalid("frame extends past the end of the segment");
    }
    let key_len = u16::from_le_bytes([bytes[24], bytes[25]]) as usize;
    let data_len = u32_at(bytes, 28) as usize;
    if FRAME_HEADER_BYTES + key_len + data_len != len {
        return Frame::Invalid("frame lengths disagree");
    }
    Frame::Valid {
        len,
        offset: u64_at(bytes, 8),
        arrival_ms: u64_at(bytes, 16) as i64,
        key_len,
        data_len,
    }
}

/// Reads only the offset and arrival time of a frame already known valid.
pub fn frame_offset_and_time(bytes: &[u8]) -> (u64, i64) {
    (u64_at(bytes, 8), u64_at(bytes, 16) as i64)
}

/// Builds a zero-copy record from a valid frame at the start of `frame`.
pub fn record_from_frame(
    frame: &Bytes,
    offset: u64,
    arrival_ms: i64,
    key_len: usize,
    data_len: usize,
) -> Record {
    let key_start = FRAME_HEADER_BYTES;
    let data_start = key_start + key_len;
    Record {
        offset,
        arrival_ms,
        partition_key: frame.slice(key_start..data_start),
        data: frame.slice(data_start..data_start + data_len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_damage() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 42, 1_700_000_000_123, b"key", b"hello");
        assert_eq!(buf.len(), 32 + 3 + 5);
        let Frame::Valid { len, offset, arrival_ms, key_len, data_len } = check_frame(&buf) else {
            panic!("valid frame rejected")
        };
        assert_eq!((len, offset, arrival_ms, key_len, data_len), (40, 42, 1_700_000_000_123, 3, 5));
        let bytes = Bytes::from(buf.clone());
        let record = record_from_frame(&bytes, offset, arrival_ms, key_len, data_len);
        assert_eq!(&record.partition_key[..], b"key");
        assert_eq!(&record.data[..], b"hello");
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[i] ^= 1 << bit;
                assert!(
                    !matches!(check_frame(&damaged), Frame::Valid { .. }),
                    "bit flip at {i}:{bit} not detected"
                );
            }
        }
        assert_eq!(check_frame(&[0u8; 40]), Frame::End);
        let mut flagged = buf.clone();
        set_sync_barrier(&mut flagged);
        assert!(matches!(check_frame(&flagged), Frame::Valid { .. }));
        assert_eq!((frame_flags(&buf), frame_flags(&flagged)), (0, FLAG_SYNC_BARRIER));
        assert_eq!(check_frame(&buf[..20]), Frame::Invalid("truncated frame header"));
        assert!(matches!(check_frame(&buf[..39]), Frame::Invalid(_)));
    }
}
