//! One json-file record turned into what `logs` shows: a frame of Docker's multiplexed
//! stream (stream byte, three zero bytes, big-endian length, payload), filtered by stream and
//! time, with the record's time in front (nine fractional digits, Docker's
//! `RFC3339NanoFixed`) when timestamps are asked for.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// What the client asked to read.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Include stdout records.
    pub stdout: bool,
    /// Include stderr records.
    pub stderr: bool,
    /// Prefix each line with its RFC 3339 timestamp (nine fractional digits).
    pub timestamps: bool,
    /// Only the last N records (None: all).
    pub tail: Option<u64>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Stop at the first record after this time.
    pub until: Option<DateTime<Utc>>,
    /// The payloads alone, without the 8-byte frame headers: a Tty container's one stream,
    /// as Docker sends it.
    pub raw: bool,
}

/// One json-file record.
#[derive(Debug, Deserialize)]
struct Record<'a> {
    /// The text, with its newline if it had one.
    #[serde(borrow)]
    log: Cow<'a, str>,
    /// `stdout` or `stderr`.
    #[serde(borrow)]
    stream: Cow<'a, str>,
    /// RFC 3339 with up to nine fractional digits.
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// What one record means for the reader.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The frame was appended to the output.
    Shown,
    /// Filtered out (other stream, before `since`, not a record).
    Skipped,
    /// After `until`: nothing more is to be shown.
    Past,
}

/// Appends the frame of json-file `line` to `out`, unless filtered out.
pub fn frame(line: &[u8], opts: &LogOptions, out: &mut Vec<u8>) -> Verdict {
    let Ok(rec) = serde_json::from_slice::<Record<'_>>(line) else {
        return Verdict::Skipped;
    };
    let kind = match &*rec.stream {
        "stdout" if opts.stdout => 1u8,
        "stderr" if opts.stderr => 2u8,
        _ => return Verdict::Skipped,
    };
    if opts.since.is_some() || opts.until.is_some() {
        let Ok(t) = DateTime::parse_from_rfc3339(&rec.time) else {
            return Verdict::Skipped;
        };
        let t = t.with_timezone(&Utc);
        if opts.until.is_some_and(|u| t > u) {
            return Verdict::Past;
        }
        if opts.since.is_some_and(|s| t < s) {
            return Verdict::Skipped;
        }
    }
    let time = if opts.timestamps {
        Some(fixed_nanos(&rec.time))
    } else {
        None
    };
    if !opts.raw {
        let len = rec.log.len() + time.as_ref().map_or(0, |t| t.len() + 1);
        out.extend_from_slice(&[kind, 0, 0, 0]);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    if let Some(time) = time {
        out.extend_from_slice(time.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(rec.log.as_bytes());
    Verdict::Shown
}

/// A record's time with exactly nine fractional digits, in UTC.
pub fn fixed_nanos(time: &str) -> Cow<'_, str> {
    if let Some(rest) = time.strip_suffix('Z') {
        let (whole, frac) = rest.split_once('.').unwrap_or((rest, ""));
        if frac.len() == 9 {
            return Cow::Borrowed(time);
        }
        if frac.len() < 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
            return Cow::Owned(format!("{whole}.{frac:0<9}Z"));
        }
    }
    match DateTime::parse_from_rfc3339(time) {
        Ok(t) => Cow::Owned(
            t.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                .to_string(),
        ),
        Err(_) => Cow::Borrowed(time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LogOptions {
        LogOptions {
            stdout: true,
            stderr: true,
            ..LogOptions::default()
        }
    }

    #[test]
    fn raw_frames_have_no_header() {
        let raw = LogOptions {
            raw: true,
            ..opts()
        };
        let line = br#"{"log":"/ # ","stream":"stdout","time":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(one(line, &raw), (Verdict::Shown, b"/ # ".to_vec()));
        let (_, framed) = one(line, &opts());
        assert_eq!(framed, b"\x01\0\0\0\0\0\0\x04/ # ");
    }

    fn one(line: &[u8], o: &LogOptions) -> (Verdict, Vec<u8>) {
        let mut out = Vec::new();
        let v = frame(line, o, &mut out);
        (v, out)
    }

    #[test]
    fn frames_carry_stream_and_length() {
        let line = br#"{"log":"hi \"x\"\n","stream":"stderr","time":"2026-11-27T16:00:00.1Z"}"#;
        let (v, f) = one(line, &opts());
        assert_eq!(v, Verdict::Shown);
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(&f[8..], b"hi \"x\"\n");
        let mut o = opts();
        o.stderr = false;
        assert_eq!(one(line, &o), (Verdict::Skipped, vec![]));
        o.stderr = true;
        o.timestamps = true;
        let (_, f) = one(line, &o);
        assert_eq!(&f[8..], b"2026-11-27T16:00:00.100000000Z hi \"x\"\n");
        assert_eq!(one(b"not json\n", &o), (Verdict::Skipped, vec![]));
    }

    #[test]
    fn since_skips_and_until_ends() {
        let line = br#"{"log":"x\n","stream":"stdout","time":"2026-01-01T00:00:10Z"}"#;
        let at = |s: &str| Some(s.parse::<DateTime<Utc>>().expect("time"));
        let mut o = opts();
        o.since = at("2026-01-01T00:00:10Z");
        assert_eq!(one(line, &o).0, Verdict::Shown);
        o.since = at("2026-01-01T00:00:11Z");
        assert_eq!(one(line, &o).0, Verdict::Skipped);
        o.since = None;
        o.until = at("2026-01-01T00:00:10Z");
        assert_eq!(one(line, &o).0, Verdict::Shown);
        o.until = at("2026-01-01T00:00:09.999Z");
        assert_eq!(one(line, &o).0, Verdict::Past);
    }

    #[test]
    fn nine_fractional_digits() {
        assert_eq!(
            fixed_nanos("2026-01-01T00:00:00Z"),
            "2026-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            fixed_nanos("2026-01-01T00:00:00.000005Z"),
            "2026-01-01T00:00:00.000005000Z"
        );
        assert_eq!(
            fixed_nanos("2026-01-01T00:00:00.123456789Z"),
            "2026-01-01T00:00:00.123456789Z"
        );
        assert_eq!(
            fixed_nanos("2026-01-01T02:00:00.5+02:00"),
            "2026-01-01T00:00:00.500000000Z"
        );
    }
}
