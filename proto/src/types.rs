//! Small value types shared by requests and responses: the epoch-millisecond [`Timestamp`]
//! (wire form: epoch seconds as a JSON number with a millisecond fraction), the model's string
//! enums with their exact wire spellings, and [`StreamModeDetails`].

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with millisecond precision, as milliseconds since the Unix epoch.
///
/// Serializes as epoch seconds, e.g. `1700000000.123` (a whole second prints as `1700000000.0`).
/// Deserializes from a JSON number of epoch seconds (fractional allowed), or from a string
/// holding either such a number or an ISO-8601 date-time (`2016-04-04T19:58:46.480-00:00`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// From (possibly fractional) epoch seconds, rounded to the nearest millisecond and
    /// saturated to the `i64` range (NaN maps to 0).
    pub fn from_secs_f64(secs: f64) -> Self {
        // `as` saturates and maps NaN to 0: no panic on any input.
        Timestamp((secs * 1000.0).round() as i64)
    }

    /// Epoch seconds as a float (exact to the millisecond when printed shortest-round-trip).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Parses epoch seconds written as a decimal string, or an ISO-8601 / RFC 3339 date-time
    /// (`YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm|±hhmm]`, `T` or space separator).
    pub fn parse_str(s: &str) -> Option<Self> {
        let t = s.trim();
        if t.is_empty() {
            return None;
        }
        if t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
            && let Ok(secs) = t.parse::<f64>()
        {
            return secs.is_finite().then(|| Timestamp::from_secs_f64(secs));
        }
        parse_iso8601(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch seconds as a number, or an ISO-8601 date-time string")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Ok(Timestamp::from_secs_f64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v.saturating_mul(1000)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(i64::try_from(v).unwrap_or(i64::MAX).saturating_mul(1000)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_str(v).ok_or_else(|| {
                    E::custom(
                        "class java.lang.String can not be converted to milliseconds since epoch",
                    )
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1-12, day 1-31) for days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn parse_iso8601(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds from the first three fraction digits, rounding on the fourth.
        let frac = &b[start..i];
        for k in 0..3 {
            millis = millis * 10 + frac.get(k).map_or(0, |d| i64::from(d - b'0'));
        }
        if frac.get(3).is_some_and(|&d| d >= b'5') {
            millis += 1;
        }
    }
    let offset_secs = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &s[i + 1..];
            let (hh, mm) = match rest.len() {
                5 if rest.as_bytes()[2] == b':' => (num(i + 1..i + 3)?, num(i + 4..i + 6)?),
                4 => (num(i + 1..i + 3)?, num(i + 3..i + 5)?),
                2 => (num(i + 1..i + 3)?, 0),
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let off = hh * 3600 + mm * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(Timestamp(secs.saturating_mul(1000).saturating_add(millis)))
}

/// Formats epoch milliseconds like `java.util.Date#toString` in UTC, which AWS uses in some
/// messages: `Thu Jan 22 01:22:02 UTC 2015`.
pub fn format_java_utc(millis: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = millis.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let wd = (days + 4).rem_euclid(7) as usize;
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[wd],
        MONTHS[(m as usize).saturating_sub(1).min(11)],
        d,
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        y
    )
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in the model's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses the wire spelling (exact, case-sensitive).
            pub fn from_wire(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// `StreamStatus`.
    StreamStatus {
        Creating => "CREATING",
        Deleting => "DELETING",
        Active => "ACTIVE",
        Updating => "UPDATING",
    }
);

wire_enum!(
    /// `StreamMode`: the capacity mode of a stream.
    StreamMode {
        Provisioned => "PROVISIONED",
        OnDemand => "ON_DEMAND",
    }
);

wire_enum!(
    /// `ConsumerStatus`.
    ConsumerStatus {
        Creating => "CREATING",
        Deleting => "DELETING",
        Active => "ACTIVE",
    }
);

wire_enum!(
    /// `EncryptionType`.
    EncryptionType {
        None => "NONE",
        Kms => "KMS",
    }
);

wire_enum!(
    /// `ShardIteratorType` (GetShardIterator and SubscribeToShard's `StartingPosition.Type`).
    ShardIteratorType {
        AtSequenceNumber => "AT_SEQUENCE_NUMBER",
        AfterSequenceNumber => "AFTER_SEQUENCE_NUMBER",
        TrimHorizon => "TRIM_HORIZON",
        Latest => "LATEST",
        AtTimestamp => "AT_TIMESTAMP",
    }
);

wire_enum!(
    /// `ShardFilterType` (ListShards' `ShardFilter.Type`).
    ShardFilterType {
        AfterShardId => "AFTER_SHARD_ID",
        AtTrimHorizon => "AT_TRIM_HORIZON",
        FromTrimHorizon => "FROM_TRIM_HORIZON",
        AtLatest => "AT_LATEST",
        AtTimestamp => "AT_TIMESTAMP",
        FromTimestamp => "FROM_TIMESTAMP",
    }
);

wire_enum!(
    /// `ScalingType` (UpdateShardCount).
    ScalingType {
        UniformScaling => "UNIFORM_SCALING",
    }
);

/// `StreamModeDetails { StreamMode }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamModeDetails {
    /// The capacity mode.
    #[serde(rename = "StreamMode")]
    pub stream_mode: StreamMode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_wire_form() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000.123");
        assert_eq!(serde_json::to_string(&Timestamp(1_700_000_000_000)).unwrap(), "1700000000.0");
        assert_eq!(serde_json::to_string(&Timestamp(1_459_799_926_480)).unwrap(), "1459799926.48");
        let back: Timestamp = serde_json::from_str("1700000000.123").unwrap();
        assert_eq!(back, t);
        let back: Timestamp = serde_json::from_str("1459799926.480").unwrap();
        assert_eq!(back.as_millis(), 1_459_799_926_480);
        let back: Timestamp = serde_json::from_str("1700000000").unwrap();
        assert_eq!(back.as_millis(), 1_700_000_000_000);
        // Every millisecond in a range prints and parses back exactly.
        for ms in 1_700_000_000_000i64..1_700_000_002_000 {
            let s = serde_json::to_string(&Timestamp(ms)).unwrap();
            assert!(s.split('.').nth(1).is_some_and(|f| f.len() <= 3), "{s}");
            assert_eq!(serde_json::from_str::<Timestamp>(&s).unwrap().as_millis(), ms);
        }
    }

    #[test]
    fn timestamp_strings() {
        let want = Timestamp(1_459_799_926_480);
        assert_eq!(Timestamp::parse_str("2016-04-04T19:58:46.480-00:00"), Some(want));
        assert_eq!(Timestamp::parse_str("2016-04-04T19:58:46.480Z"), Some(want));
        assert_eq!(Timestamp::parse_str("2016-04-04T21:58:46.480+02:00"), Some(want));
        assert_eq!(Timestamp::parse_str("2016-04-04T21:58:46.480+0200"), Some(want));
        assert_eq!(Timestamp::parse_str("1459799926.480"), Some(want));
        assert_eq!(
            Timestamp::parse_str("2016-04-04T19:58:46Z"),
            Some(Timestamp(1_459_799_926_000))
        );
        assert_eq!(Timestamp::parse_str("1970-01-01T00:00:00Z"), Some(Timestamp(0)));
        for bad in ["", "abc", "2016-13-04T19:58:46Z", "2016-04-04T19:58:46X", "2016-04-04", "NaN"]
        {
            assert_eq!(Timestamp::parse_str(bad), None, "{bad}");
        }
        let t: Timestamp = serde_json::from_str("\"2016-04-04T19:58:46.480Z\"").unwrap();
        assert_eq!(t, want);
    }

    #[test]
    fn civil_round_trip_and_java_format() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 16_457, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // Thu Jan 22 01:22:02 UTC 2015 (example from an AWS ExpiredIteratorException).
        assert_eq!(format_java_utc(1_421_889_722_000), "Thu Jan 22 01:22:02 UTC 2015");
        assert_eq!(format_java_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert!(!format_java_utc(i64::MIN).is_empty());
        assert!(!format_java_utc(i64::MAX).is_empty());
    }

    #[test]
    fn enum_wire_names() {
        assert_eq!(serde_json::to_string(&StreamMode::OnDemand).unwrap(), "\"ON_DEMAND\"");
        assert_eq!(serde_json::to_string(&EncryptionType::Kms).unwrap(), "\"KMS\"");
        assert_eq!(
            ShardIteratorType::from_wire("AT_TIMESTAMP"),
            Some(ShardIteratorType::AtTimestamp)
        );
        assert_eq!(ShardFilterType::from_wire("at_latest"), None);
        assert_eq!(
            serde_json::to_string(&StreamModeDetails { stream_mode: StreamMode::Provisioned })
                .unwrap(),
            r#"{"StreamMode":"PROVISIONED"}"#
        );
    }
}
