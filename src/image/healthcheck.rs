//! The `HEALTHCHECK` line of an import's `changes`, read as Docker's Dockerfile parser reads
//! it (buildkit `parseHealthcheck`): `HEALTHCHECK NONE`, or flags (`--interval`,
//! `--timeout`, `--start-period`, `--start-interval` as Go durations, `--retries`), then
//! `CMD` and the command: a JSON array (`["CMD", ...]`) or a shell line
//! (`["CMD-SHELL", line]`). The result is the image's `Healthcheck`.

use moor_state::health::{HealthConfig, MIN_DURATION_NS};
use thiserror::Error;

/// Why a `HEALTHCHECK` line is refused (Docker's texts).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HealthcheckLineError {
    /// `HEALTHCHECK NONE x`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    NoneTakesNoArguments,
    /// `HEALTHCHECK RUN x`.
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    UnknownType(String),
    /// `HEALTHCHECK CMD` alone.
    #[error("Missing command after HEALTHCHECK CMD")]
    MissingCommand,
    /// A flag HEALTHCHECK does not have.
    #[error("Unknown flag: {0}")]
    UnknownFlag(String),
    /// `--interval` without `=VALUE`.
    #[error("Missing a value on flag: {0}")]
    MissingValue(String),
    /// A duration Go's `time.ParseDuration` refuses.
    #[error("time: invalid duration {0:?}")]
    Duration(String),
    /// A duration under 1 ms (or negative).
    #[error("Interval {0:?} cannot be less than 1ms")]
    TooShort(String),
    /// `--retries` that is not a number.
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    Retries(String),
    /// `--retries=-1`.
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
}

/// The check of a `HEALTHCHECK` line's arguments (`rest`, after the instruction).
pub fn parse(rest: &str) -> Result<HealthConfig, HealthcheckLineError> {
    let mut config = HealthConfig::default();
    let mut rest = rest.trim_start();
    let mut flags = Vec::new();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        flags.push(&flag[..end]);
        rest = flag[end..].trim_start();
    }
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (kind, command) = (rest[..end].to_ascii_uppercase(), rest[end..].trim());
    if kind == "NONE" {
        if !command.is_empty() {
            return Err(HealthcheckLineError::NoneTakesNoArguments);
        }
        config.test = vec![kind];
        return Ok(config);
    }
    for flag in flags {
        set_flag(&mut config, flag)?;
    }
    if kind != "CMD" {
        return Err(HealthcheckLineError::UnknownType(kind));
    }
    config.test = match json_array(command) {
        Some(argv) if argv.is_empty() => return Err(HealthcheckLineError::MissingCommand),
        Some(argv) => std::iter::once("CMD".to_string()).chain(argv).collect(),
        None if command.is_empty() => return Err(HealthcheckLineError::MissingCommand),
        None => vec!["CMD-SHELL".into(), command.to_string()],
    };
    Ok(config)
}

/// A JSON array of strings, or None (the shell form).
fn json_array(text: &str) -> Option<Vec<String>> {
    serde_json::from_str::<Vec<String>>(text).ok()
}

/// One `--name=value` flag into `config`.
fn set_flag(config: &mut HealthConfig, flag: &str) -> Result<(), HealthcheckLineError> {
    let (name, value) = match flag.split_once('=') {
        Some(pair) => pair,
        None if is_known(flag) => return Err(HealthcheckLineError::MissingValue(flag.into())),
        None => return Err(HealthcheckLineError::UnknownFlag(flag.into())),
    };
    let slot = match name {
        "interval" => &mut config.interval,
        "timeout" => &mut config.timeout,
        "start-period" => &mut config.start_period,
        "start-interval" => &mut config.start_interval,
        "retries" => {
            let n: i64 = value
                .parse()
                .map_err(|_| HealthcheckLineError::Retries(value.into()))?;
            if n < 0 {
                return Err(HealthcheckLineError::NegativeRetries(n));
            }
            config.retries = n;
            return Ok(());
        }
        other => return Err(HealthcheckLineError::UnknownFlag(other.into())),
    };
    if value.is_empty() {
        return Ok(());
    }
    let ns = go_duration(value).ok_or_else(|| HealthcheckLineError::Duration(value.into()))?;
    if ns != 0 && ns < MIN_DURATION_NS {
        return Err(HealthcheckLineError::TooShort(name.into()));
    }
    *slot = ns;
    Ok(())
}

fn is_known(flag: &str) -> bool {
    matches!(
        flag,
        "interval" | "timeout" | "start-period" | "start-interval" | "retries"
    )
}

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers, each with an optional
/// fraction and a unit (ns, us, µs, ms, s, m, h); `0` alone. Nanoseconds, None when
/// malformed or out of range.
pub fn go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if negative { -ns } else { ns })
}

/// Go's `time.Duration.String` for the durations of a healthcheck's texts: `1s`, `1.5s`,
/// `2m30s`, `500ms`.
pub fn go_duration_text(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let trim = |whole: u128, frac: u128, width: usize| {
        let frac = format!("{frac:0width$}");
        let frac = frac.trim_end_matches('0');
        match frac.is_empty() {
            true => whole.to_string(),
            false => format!("{whole}.{frac}"),
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim(ns / 1_000, ns % 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim(ns / 1_000_000, ns % 1_000_000, 6));
    }
    let secs = ns / 1_000_000_000;
    let seconds = trim(secs % 60, ns % 1_000_000_000, 9);
    match (secs / 3600, secs / 60 % 60) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_every_form() {
        let c = parse("--interval=1s --retries=2 CMD test -f /ok").unwrap();
        assert_eq!(c.test, ["CMD-SHELL", "test -f /ok"]);
        assert_eq!((c.interval, c.retries), (1_000_000_000, 2));
        let c = parse(r#"--timeout=1m30s --start-period=500ms cmd ["true", "x"]"#).unwrap();
        assert_eq!(c.test, ["CMD", "true", "x"]);
        assert_eq!((c.timeout, c.start_period), (90_000_000_000, 500_000_000));
        assert_eq!(parse("NONE").unwrap().test, ["NONE"]);
        let c = parse("--start-interval=2s CMD x").unwrap();
        assert_eq!(c.start_interval, 2_000_000_000);
    }

    #[test]
    fn refusals_are_dockers() {
        let err = |l: &str| parse(l).unwrap_err().to_string();
        assert_eq!(err("NONE x"), "HEALTHCHECK NONE takes no arguments");
        assert_eq!(
            err("RUN x"),
            r#"Unknown type "RUN" in HEALTHCHECK (try CMD)"#
        );
        assert_eq!(err("CMD"), "Missing command after HEALTHCHECK CMD");
        assert_eq!(err("CMD []"), "Missing command after HEALTHCHECK CMD");
        assert_eq!(err("--nope=1 CMD x"), "Unknown flag: nope");
        assert_eq!(err("--interval CMD x"), "Missing a value on flag: interval");
        assert_eq!(err("--interval=5 CMD x"), r#"time: invalid duration "5""#);
        assert_eq!(
            err("--timeout=-1s CMD x"),
            r#"Interval "timeout" cannot be less than 1ms"#
        );
        assert_eq!(
            err("--retries=-1 CMD x"),
            "--retries cannot be negative (-1)"
        );
    }

    #[test]
    fn go_durations_both_ways() {
        assert_eq!(go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(go_duration("1h2m3s4ms"), Some(3_723_004_000_000));
        assert_eq!(go_duration("0"), Some(0));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("1x"), None);
        assert_eq!(go_duration(""), None);
        let text = |ms| go_duration_text(std::time::Duration::from_millis(ms));
        assert_eq!(text(1000), "1s");
        assert_eq!(text(1500), "1.5s");
        assert_eq!(text(150_000), "2m30s");
        assert_eq!(text(500), "500ms");
        assert_eq!(text(3_600_000), "1h0m0s");
    }
}
