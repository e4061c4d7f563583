//! `moor logs`: `GET /containers/{id}/logs?stdout=1&stderr=1&follow=&tail=&timestamps=&since=`,
//! demultiplexed to our stdout and stderr.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use super::container_path;
use crate::cli::args::LogsArgs;
use crate::cli::client::{encode, BodyStream, Client};
use crate::cli::demux::copy_stream;

/// Prints the container's logs.
pub fn execute(client: &Client, args: &LogsArgs) -> anyhow::Result<i32> {
    let mut query = String::from("?stdout=1&stderr=1");
    if args.follow {
        query.push_str("&follow=1");
    }
    if let Some(tail) = &args.tail {
        query.push_str(&format!("&tail={}", encode(tail)));
    }
    if args.timestamps {
        query.push_str("&timestamps=1");
    }
    if let Some(since) = &args.since {
        let since = since_timestamp(since, SystemTime::now())?;
        query.push_str(&format!("&since={}", encode(&since)));
    }
    copy_logs(
        client,
        &container_path(&args.name, &format!("/logs{query}")),
    )?;
    Ok(0)
}

/// Opens a container's output, followed until it stops (what `run` and `start -a`
/// show while attach is not there). Opened before the start, so nothing is missed even
/// when a `--rm` container ends and is removed at once.
pub fn open_output<'c>(client: &'c Client, name: &str) -> anyhow::Result<BodyStream<'c>> {
    Ok(client.get_stream(&container_path(name, "/logs?follow=1&stdout=1&stderr=1"))?)
}

/// Copies an opened output stream to our stdout and stderr.
pub fn copy_output(mut stream: BodyStream<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    copy_stream(&mut stream, &mut out, &mut err).context("copy the container's output")?;
    Ok(())
}

/// Streams one logs answer to stdout and stderr.
fn copy_logs(client: &Client, path: &str) -> anyhow::Result<()> {
    copy_output(client.get_stream(path)?)
}

/// `--since` as the API's `SECONDS.NANOS`: a Go duration (`42m`, `1h30m`) counts back from
/// `now`, an RFC 3339 time is converted, a unix timestamp is passed on (docker's rules).
pub fn since_timestamp(text: &str, now: SystemTime) -> anyhow::Result<String> {
    if let Some(ago) = parse_go_duration(text) {
        let at = now.checked_sub(ago).unwrap_or(UNIX_EPOCH);
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        return Ok(format!("{}.{:09}", since.as_secs(), since.subsec_nanos()));
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(format!(
            "{}.{:09}",
            time.timestamp(),
            time.timestamp_subsec_nanos()
        ));
    }
    let numeric = text.split_once('.').map_or(text, |(secs, _)| secs);
    if !numeric.is_empty() && text.parse::<f64>().is_ok() {
        return Ok(text.to_string());
    }
    bail!("invalid value for \"since\": {text:?} is not a duration, RFC 3339 time or timestamp")
}

/// Go's `time.ParseDuration` for non-negative values: `[number unit]...`, units ns us µs ms
/// s m h.
fn parse_go_duration(text: &str) -> Option<Duration> {
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
    Some(Duration::from_secs_f64(total))
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
    fn since_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(since_timestamp("10s", now).unwrap(), "999990.000000000");
        assert_eq!(
            since_timestamp("1970-01-02T00:00:00.5Z", now).unwrap(),
            "86400.500000000"
        );
        assert_eq!(since_timestamp("1700000000", now).unwrap(), "1700000000");
        assert_eq!(
            since_timestamp("1700000000.25", now).unwrap(),
            "1700000000.25"
        );
        assert!(since_timestamp("yesterday", now).is_err());
    }
}
