//! Human-readable durations as Docker prints them (`docker ps`, `Status`), shared by the
//! API and the CLI.

use std::fmt::{self, Write};
use std::time::Duration;

/// Go's `units.HumanDuration` (github.com/docker/go-units), thresholds copied.
pub fn human_duration(duration: Duration) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_human_duration(&mut out, duration);
    out
}

/// [`human_duration`] written into `out`, without allocating (the container list writes one
/// per container per request).
pub fn write_human_duration(out: &mut impl Write, duration: Duration) -> fmt::Result {
    let seconds = duration.as_secs();
    if seconds < 1 {
        return out.write_str("Less than a second");
    }
    if seconds == 1 {
        return out.write_str("1 second");
    }
    if seconds < 60 {
        return write!(out, "{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return out.write_str("About a minute");
    }
    if minutes < 60 {
        return write!(out, "{minutes} minutes");
    }
    // Go rounds to the nearest hour here (half away from zero).
    let hours = (duration.as_secs_f64() / 3600.0).round() as u64;
    if hours == 1 {
        return out.write_str("About an hour");
    }
    if hours < 48 {
        return write!(out, "{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return write!(out, "{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return write!(out, "{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return write!(out, "{} months", hours / 24 / 30);
    }
    write!(out, "{} years", seconds / 3600 / 24 / 365)
}

/// Parses a size such as `10m`, `512k`, `1g` or `1024` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (digits, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn human_durations_follow_go_units() {
        assert_eq!(
            human_duration(Duration::from_millis(400)),
            "Less than a second"
        );
        assert_eq!(human_duration(secs(1)), "1 second");
        assert_eq!(human_duration(secs(5)), "5 seconds");
        assert_eq!(human_duration(secs(59)), "59 seconds");
        assert_eq!(human_duration(secs(60)), "About a minute");
        assert_eq!(human_duration(secs(119)), "About a minute");
        assert_eq!(human_duration(secs(120)), "2 minutes");
        assert_eq!(human_duration(secs(59 * 60)), "59 minutes");
        assert_eq!(human_duration(secs(60 * 60)), "About an hour");
        assert_eq!(human_duration(secs(89 * 60)), "About an hour");
        assert_eq!(human_duration(secs(90 * 60)), "2 hours");
        assert_eq!(human_duration(secs(47 * 3600)), "47 hours");
        assert_eq!(human_duration(secs(48 * 3600)), "2 days");
        assert_eq!(human_duration(secs(14 * 24 * 3600)), "2 weeks");
        assert_eq!(human_duration(secs(60 * 24 * 3600)), "2 months");
        assert_eq!(human_duration(secs(730 * 24 * 3600)), "2 years");
    }
}
