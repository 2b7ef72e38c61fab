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
//!
//! A shard's start, the position before its first record, has a number of its own: the first
//! record's number minus one. It is the shard's `StartingSequenceNumber` and the continuation a
//! subscription hands out before it has delivered any record, so `AFTER_SEQUENCE_NUMBER` with it
//! starts at the first record, as on Kinesis. Its reserved digits are `9999` and its offset digits
//! all `9` (more than any u64), so no record has it:
//!
//! ```text
//!  shard 5, incarnation 7:  "49" 00000000000000000007 0000000004 9999 99999999999999999999
//!  shard 0, incarnation 7:  "49" 00000000000000000006 9999999999 9999 99999999999999999999
//! ```

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

/// What a sequence number names within its shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequencePosition {
    /// The shard's start, before its first record (see the module comment).
    Start,
    /// The record at this offset.
    Record(u64),
}

/// A parsed sequence number: a record's, or a shard's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedSequence {
    pub incarnation: u64,
    pub shard_index: u32,
    pub position: SequencePosition,
}

impl ParsedSequence {
    /// The first offset an iterator at (`after` false) or after (`after` true) this number
    /// reads; `None` past the largest offset.
    pub fn first_offset(&self, after: bool) -> Option<u64> {
        match self.position {
            SequencePosition::Start => Some(0),
            SequencePosition::Record(offset) if after => offset.checked_add(1),
            SequencePosition::Record(offset) => Some(offset),
        }
    }
}

/// The number of a shard's start: its first record's number minus one.
pub fn shard_start(incarnation: u64, shard_index: u32) -> String {
    let mut digits = SequenceNumber { incarnation, shard_index, offset: 0 }.to_digits();
    // Decimal decrement. Incarnations start at 1, so the borrow stops inside them and the
    // prefix stays "49" (an incarnation of 0 is not produced; it would borrow into the prefix).
    for digit in digits.iter_mut().rev() {
        if *digit == b'0' {
            *digit = b'9';
        } else {
            *digit -= 1;
            break;
        }
    }
    String::from_utf8(digits.to_vec()).expect("ASCII digits")
}

/// Parses a record's number or a shard's start. `None` for anything else.
pub fn parse_position(s: &str) -> Option<ParsedSequence> {
    if let Some(seq) = SequenceNumber::parse(s) {
        return Some(ParsedSequence {
            incarnation: seq.incarnation,
            shard_index: seq.shard_index,
            position: SequencePosition::Record(seq.offset),
        });
    }
    if s.len() != SEQUENCE_DIGITS
        || &s[0..2] != PREFIX
        || &s[32..36] != "9999"
        || !s[36..].bytes().all(|b| b == b'9')
        || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let incarnation: u64 = s[2..22].parse().ok()?;
    let shard_below: u64 = s[22..32].parse().ok()?;
    let (incarnation, shard_index) = if shard_below == 9_999_999_999 {
        (incarnation.checked_add(1)?, 0)
    } else {
        (incarnation, u32::try_from(shard_below + 1).ok()?)
    };
    Some(ParsedSequence { incarnation, shard_index, position: SequencePosition::Start })
}

impl SequenceNumber {
    /// Parses a record's number as produced by `Display`. `None` for anything else (a shard's
    /// start included: see `parse_position`).
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
    fn shard_start_sorts_before_the_first_record_and_parses_back() {
        for (incarnation, shard_index) in [(7, 5), (7, 0), (1, 0), (1, u32::MAX), (u64::MAX, 3)] {
            let start = shard_start(incarnation, shard_index);
            assert_eq!(start.len(), SEQUENCE_DIGITS);
            let first = SequenceNumber { incarnation, shard_index, offset: 0 }.to_string();
            assert!(start < first, "{start} < {first}");
            assert_eq!(SequenceNumber::parse(&start), None, "no record has it");
            let parsed = parse_position(&start).expect("parses");
            assert_eq!(
                parsed,
                ParsedSequence { incarnation, shard_index, position: SequencePosition::Start }
            );
            assert_eq!(parsed.first_offset(false), Some(0));
            assert_eq!(parsed.first_offset(true), Some(0));
            // After every record of the shard before it (or of the stream created before it).
            let below = if shard_index > 0 {
                SequenceNumber { incarnation, shard_index: shard_index - 1, offset: u64::MAX }
            } else {
                SequenceNumber { incarnation: incarnation - 1, shard_index: u32::MAX, offset: 0 }
            };
            assert!(below.to_string() < start);
        }
        assert_eq!(
            shard_start(7, 5),
            "49000000000000000000070000000004999999999999999999999999",
            "the layout documented above"
        );
        assert_eq!(shard_start(7, 0), "49000000000000000000069999999999999999999999999999999999");
        // The marker of a shard index past u32 is no number of ours.
        let past = "49000000000000000000074294967295999999999999999999999999";
        assert_eq!(parse_position(past), None);
        let mut not_all_nines = shard_start(7, 5).into_bytes();
        not_all_nines[40] = b'8';
        assert_eq!(parse_position(std::str::from_utf8(&not_all_nines).unwrap()), None);
        let record = SequenceNumber { incarnation: 7, shard_index: 5, offset: 41 };
        let parsed = parse_position(&record.to_string()).unwrap();
        assert_eq!(parsed.position, SequencePosition::Record(41));
        assert_eq!((parsed.first_offset(false), parsed.first_offset(true)), (Some(41), Some(42)));
        let last = SequenceNumber { offset: u64::MAX, ..record };
        assert_eq!(parse_position(&last.to_string()).unwrap().first_offset(true), None);
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
