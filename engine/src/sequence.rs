//! The Kinesis-visible sequence number: a fixed-width 56-digit decimal string.
//!
//! ```text
//!  digits: 0-1   2-21                 22-31              32-35   36-55
//!          "49"  stream incarnation   shard index        "0000"  offset within the shard
//!                (20 digits, u64)     (10 digits, u32)           (20 digits, u64)
//! ```
//! Fixed width makes string order equal numeric order. Within a shard, order follows the
//! offset. The incarnation (unique per created stream) and the shard index let the server
//! reject a number from another shard or from a deleted-and-recreated stream of the same name.

use std::fmt;

pub const SEQUENCE_DIGITS: usize = 56;
const PREFIX: &str = "49";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber {
    pub incarnation: u64,
    pub shard_index: u32,
    pub offset: u64,
}

/// Writes `value` as zero-padded decimal filling all of `out`.
fn put_digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl SequenceNumber {
    /// The 56 digits, without going through the formatter (this is on the hot path of every
    /// PutRecords and GetRecords response).
    pub fn to_digits(&self) -> [u8; SEQUENCE_DIGITS] {
        let mut out = [b'0'; SEQUENCE_DIGITS];
        out[0..2].copy_from_slice(PREFIX.as_bytes());
        put_digits(&mut out[2..22], self.incarnation);
        put_digits(&mut out[22..32], self.shard_index as u64);
        put_digits(&mut out[36..56], self.offset);
        out
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.to_digits();
        f.write_str(std::str::from_utf8(&digits).expect("ASCII digits"))
    }
}

impl SequenceNumber {
    /// Parses a string produced by `Display`. `None` for anything else.
    pub fn parse(s: &str) -> Option<SequenceNumber> {
        if s.len() != SEQUENCE_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if &s[0..2] != PREFIX || &s[32..36] != "0000" {
            return None;
        }
        Some(SequenceNumber {
            incarnation: s[2..22].parse().ok()?,
            shard_index: s[22..32].parse().ok()?,
            offset: s[36..56].parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_order() {
        let a = SequenceNumber { incarnation: 1_700_000_000_000, shard_index: 3, offset: 9 };
        let b = SequenceNumber { offset: 10, ..a };
        let (sa, sb) = (a.to_string(), b.to_string());
        assert_eq!(sa.len(), SEQUENCE_DIGITS);
        assert_eq!(
            sa,
            format!("49{:020}{:010}0000{:020}", a.incarnation, a.shard_index, a.offset),
            "the layout documented above"
        );
        assert!(sa < sb);
        assert_eq!(SequenceNumber::parse(&sa), Some(a));
        let max = SequenceNumber { incarnation: u64::MAX, shard_index: u32::MAX, offset: u64::MAX };
        assert_eq!(SequenceNumber::parse(&max.to_string()), Some(max));
        assert_eq!(SequenceNumber::parse("123"), None);
        assert_eq!(SequenceNumber::parse(&sa.replace("49", "50")), None);
    }
}
