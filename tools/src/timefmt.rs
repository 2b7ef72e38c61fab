//! Wall-clock time as text: UTC calendar conversion (Howard Hinnant's days-from-civil), RFC 3339
//! stamps for reports, the `X-Amz-Date` form for requests, and parsing of human durations such as
//! `10s`, `1m30s` or `250ms`. No time zone database: everything printed is UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

fn utc(epoch_seconds: u64) -> Utc {
    let (year, month, day) = civil_from_days((epoch_seconds / 86_400) as i64);
    let seconds_of_day = epoch_seconds % 86_400;
    Utc {
        year,
        month,
        day,
        hour: seconds_of_day / 3600,
        minute: seconds_of_day / 60 % 60,
        second: seconds_of_day % 60,
    }
}

pub fn epoch_seconds_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn epoch_nanos_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// `2026-11-25T19:22:54Z`
pub fn rfc3339(epoch_seconds: u64) -> String {
    let t = utc(epoch_seconds);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `2026-11-25T19:22:54.123Z` from fractional epoch seconds (Kinesis timestamps).
pub fn rfc3339_millis(epoch_seconds: f64) -> String {
    let millis = (epoch_seconds * 1000.0).round().max(0.0) as u64;
    let t = utc(millis / 1000);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        millis % 1000
    )
}

/// `20261125T192254Z`, the SigV4 `X-Amz-Date` form.
pub fn amz_date(epoch_seconds: u64) -> String {
    let t = utc(epoch_seconds);
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// Parses `10s`, `2m`, `1m30s`, `250ms`, `1h`, or a bare number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let error = || format!("bad duration {text:?}: use e.g. 10s, 2m, 1m30s, 250ms");
    if text.is_empty() {
        return Err(error());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds.is_finite() && seconds >= 0.0 {
            Ok(Duration::from_secs_f64(seconds))
        } else {
            Err(error())
        };
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_length =
            rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(error)?;
        if number_length == 0 {
            return Err(error());
        }
        let number: f64 = rest[..number_length].parse().map_err(|_| error())?;
        rest = &rest[number_length..];
        let unit_length = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_length] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(error()),
        };
        rest = &rest[unit_length..];
        total += Duration::from_secs_f64(number * seconds_per_unit);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(rfc3339(1_795_634_575), "2026-11-25T19:22:55Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(rfc3339_millis(1_700_000_000.25), "2023-11-14T22:13:20.250Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        for bad in ["", "s", "10x", "ten seconds", "-1", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
