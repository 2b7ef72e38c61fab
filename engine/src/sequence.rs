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

/// The digits of successive sequence numbers of one shard, as a read hands them out: a number
/// that follows the previous one costs a decimal increment of the offset digits instead of a
/// full conversion.
#[derive(Clone, Debug)]
pub struct DigitsCursor {
    digits: [u8; SEQUENCE_DIGITS],
    last: Option<SequenceNumber>,
}

impl Default for DigitsCursor {
    fn default() -> DigitsCursor {
        DigitsCursor::new()
    }
}

impl DigitsCursor {
    pub fn new() -> DigitsCursor {
        DigitsCursor { digits: [b'0'; SEQUENCE_DIGITS], last: None }
    }

    /// The digits of `seq` (equal to `seq.to_digits()`).
    pub fn digits(&mut self, seq: SequenceNumber) -> &[u8; SEQUENCE_DIGITS] {
        let follows = self.last.is_some_and(|last| {
            last.incarnation == seq.incarnation
                && last.shard_index == seq.shard_index
                && last.offset.checked_add(1) == Some(seq.offset)
        });
        if follows {
            // The offset fits 20 digits, so the carry stops inside them.
            for digit in self.digits[36..].iter_mut().rev() {
                if *digit == b'9' {
                    *digit = b'0';
                } else {
                    *digit += 1;
                    break;
                }
            }
        } else {
            self.digits = seq.to_digits();
        }
        self.last = Some(seq);
        &self.digits
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
    fn digits_cursor_matches_to_digits() {
        let mut cursor = DigitsCursor::new();
        let runs = [(1, 0, 0..2_000u64), (1, 0, 9_999..10_001), (7, 3, u64::MAX - 3..u64::MAX)];
        for (incarnation, shard_index, offsets) in runs {
            for offset in offsets.clone().chain(offsets.rev()) {
                let seq = SequenceNumber { incarnation, shard_index, offset };
                assert_eq!(cursor.digits(seq), &seq.to_digits(), "{seq:?}");
            }
        }
        let mut cursor = DigitsCursor::new();
        for shard_index in [0, 1, 1, 2] {
            let seq =
                SequenceNumber { incarnation: 5, shard_index, offset: u64::from(shard_index) };
            assert_eq!(cursor.digits(seq), &seq.to_digits());
        }
    }

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
