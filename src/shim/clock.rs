//! Wall-clock timestamps as RFC 3339 UTC strings, with std only (no chrono in the shim).
//!
//! Two shapes: [`fixed_nanos`] always prints nine fractional digits (`started.json` and
//! `exit.json`), [`go_rfc3339_nano`] trims trailing zeros like Go's `time.RFC3339Nano`,
//! which is what Docker's json-file driver writes in each record's `time`.

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time as seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before it).
    pub secs: i64,
    /// Nanoseconds within the second, 0..1_000_000_000.
    pub nanos: u32,
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            // A clock set before 1970: clamp to the epoch rather than fail a log write.
            Err(_) => Timestamp { secs: 0, nanos: 0 },
        }
    }
}

/// `2026-11-27T16:00:00.123456789Z`: always nine fractional digits.
pub fn fixed_nanos(t: Timestamp) -> String {
    format!("{}.{:09}Z", date_time(t.secs), t.nanos)
}

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction trimmed, no `.` when zero.
pub fn go_rfc3339_nano(t: Timestamp) -> String {
    if t.nanos == 0 {
        return format!("{}Z", date_time(t.secs));
    }
    let frac = format!("{:09}", t.nanos);
    format!("{}.{}Z", date_time(t.secs), frac.trim_end_matches('0'))
}

/// The current time, [`fixed_nanos`] shape.
pub fn now_fixed() -> String {
    fixed_nanos(Timestamp::now())
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the epoch.
fn date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        (of_day / 60) % 60,
        of_day % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day) in the
/// proleptic Gregorian calendar. <https://howardhinnant.github.io/date_algorithms.html>
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both values are in range by construction (see the bracketed comments).
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64, nanos: u32) -> Timestamp {
        Timestamp { secs, nanos }
    }

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(fixed_nanos(ts(0, 0)), "1970-01-01T00:00:00.000000000Z");
        // date -u -d @1795795200 → 2026-11-27 16:00:00 UTC
        assert_eq!(
            fixed_nanos(ts(1_795_795_200, 123_456_789)),
            "2026-11-27T16:00:00.123456789Z"
        );
        // Leap day, and the last second of a leap year.
        assert_eq!(
            fixed_nanos(ts(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            fixed_nanos(ts(1_735_689_599, 0)),
            "2024-12-31T23:59:59.000000000Z"
        );
        // Before the epoch.
        assert_eq!(fixed_nanos(ts(-1, 0)), "1969-12-31T23:59:59.000000000Z");
    }

    #[test]
    fn civil_round_trip_over_many_days() {
        // Walk day by day from 1900 to 2200 and check the calendar advances correctly.
        let mut prev = civil_from_days(-25_567); // 1900-01-01
        assert_eq!(prev, (1900, 1, 1));
        for days in -25_566..84_000 {
            let cur = civil_from_days(days);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                cur == next_day || cur == next_month || cur == next_year,
                "{prev:?} -> {cur:?}"
            );
            prev = cur;
        }
    }

    #[test]
    fn go_style_trims_trailing_zeros() {
        assert_eq!(go_rfc3339_nano(ts(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            go_rfc3339_nano(ts(0, 120_000_000)),
            "1970-01-01T00:00:00.12Z"
        );
        assert_eq!(go_rfc3339_nano(ts(0, 1)), "1970-01-01T00:00:00.000000001Z");
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_fixed().as_str() > "2020-01-01T00:00:00.000000000Z");
    }
}
