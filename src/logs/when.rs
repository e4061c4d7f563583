//! `--since` and `--until`: RFC 3339 times, unix timestamps (`SECONDS[.NANOS]`, what the
//! docker CLI sends) and Go durations counted back from now (`10m`, `1h30m`).
//!
//! The CLI turns a duration into a timestamp with its own clock ([`to_api`]), as docker does;
//! the API also accepts every form ([`parse`]), for clients such as curl.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

use super::LogsError;

/// Go's largest duration (`time.Duration` is an i64 of nanoseconds: about 2,562,047 h).
const GO_MAX_SECONDS: f64 = i64::MAX as f64 / 1e9;

/// Parses a `since`/`until` value into a point in time; durations count back from `now`
/// (to the epoch at the earliest). Every client number goes through checked conversions: a
/// value past what Go or chrono can represent is [`LogsError::TimeRange`], never a panic.
pub fn parse(text: &str, now: SystemTime) -> Result<DateTime<Utc>, LogsError> {
    let bad = || LogsError::Time { value: text.into() };
    let range = || LogsError::TimeRange { value: text.into() };
    if let Some(seconds) = go_seconds(text) {
        let ago = Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|_| seconds <= GO_MAX_SECONDS)
            .ok_or_else(range)?;
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        return timestamp(since_epoch.saturating_sub(ago)).ok_or_else(range);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let (secs, frac) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs.strip_prefix('-').unwrap_or(secs)) || !(frac.is_empty() || digits(frac)) {
        return Err(bad());
    }
    let secs: i64 = secs.parse().map_err(|_| range())?;
    let nanos: u32 = format!("{frac:0<9}")
        .get(..9)
        .and_then(|f| f.parse().ok())
        .ok_or_else(bad)?;
    DateTime::from_timestamp(secs, nanos).ok_or_else(range)
}

/// A time `since_epoch` after the epoch, if chrono can represent it.
fn timestamp(since_epoch: Duration) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(since_epoch.as_secs()).ok()?;
    DateTime::from_timestamp(secs, since_epoch.subsec_nanos())
}

/// The value as the API's `SECONDS.NANOS` (durations resolved against `now`).
pub fn to_api(text: &str, now: SystemTime) -> Result<String, LogsError> {
    let t = parse(text, now)?;
    Ok(format!(
        "{}.{:09}",
        t.timestamp(),
        t.timestamp_subsec_nanos()
    ))
}

/// Go's `time.ParseDuration` for non-negative values: `[number unit]...`, units ns us µs ms
/// s m h; `None` past Go's largest duration, as Go refuses it.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    go_seconds(text)
        .filter(|s| *s <= GO_MAX_SECONDS)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// The seconds a duration in Go's syntax spells (possibly infinite); `None` when it is not
/// one.
fn go_seconds(text: &str) -> Option<f64> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|len| *len > 0)?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("42m"), Some(Duration::from_secs(42 * 60)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("2024-01-01"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn every_form() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(to_api("10s", now).unwrap(), "999990.000000000");
        assert_eq!(to_api("1h30m", now).unwrap(), "994600.000000000");
        assert_eq!(
            to_api("1970-01-02T00:00:00.5Z", now).unwrap(),
            "86400.500000000"
        );
        assert_eq!(to_api("1700000000", now).unwrap(), "1700000000.000000000");
        assert_eq!(
            to_api("1700000000.25", now).unwrap(),
            "1700000000.250000000"
        );
        let a = parse("1700000000.5", now).unwrap();
        assert_eq!(parse("2023-11-14T22:13:20.5Z", now).unwrap(), a);
        for bad in ["yesterday", "", ".5", "1.x", "12abc", "-", "--5", "1.-5"] {
            assert!(
                matches!(parse(bad, now), Err(LogsError::Time { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn values_past_the_calendar_are_refused_not_panics() {
        let now = SystemTime::now();
        for far in [
            "99999999999h",
            "2562048h",
            "1000000000000000000000000000000h",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
            "9000000000000",
        ] {
            assert!(
                matches!(parse(far, now), Err(LogsError::TimeRange { .. })),
                "{far:?}: {:?}",
                parse(far, now)
            );
        }
        // Go's largest duration reaches back to the epoch at the earliest.
        assert_eq!(parse("2562047h", now).unwrap(), DateTime::UNIX_EPOCH);
        assert_eq!(parse("-5", now).unwrap().timestamp(), -5);
        assert_eq!(parse("5.", now).unwrap().timestamp(), 5);
        assert_eq!(parse_go_duration("2562048h"), None);
    }
}
