//! The json-file log options (`--log-opt`, HostConfig.LogConfig.Config, daemon.json
//! `log-opts`), checked as Docker's json-file driver checks them
//! (moby `daemon/logger/jsonfilelog/jsonfilelog.go`: `ValidateLogOpt` and `New`), with
//! the same messages, plus two bounds of moor's own:
//!
//! - `max-size`: Docker's human size (`units.FromHumanSize`: decimal units, `10m` is
//!   10,000,000 bytes; `k`, `m`, `g`, `t`, `p`, an optional `b` or `ib`, a fraction allowed),
//!   a positive number of bytes;
//! - `max-file`: an integer, at least 1 and (moor's bound, Docker has none) at most
//!   [`MAX_FILE_LIMIT`]: every rotation renames each kept file, so the count bounds the work
//!   one rotation does; `max-file` above 1 without `max-size` is refused (Docker accepts and
//!   ignores it: a log without a size is never rotated);
//! - the other keys Docker's driver knows (`compress`, `labels`, `labels-regex`, `env`,
//!   `env-regex`, `tag`) are refused as not implemented; any other key is refused with
//!   Docker's "unknown log opt" message.

use std::collections::BTreeMap;

use thiserror::Error;

/// The most files `max-file` may keep (moor's bound; see the module header). The shim
/// clamps to the same bound.
pub use crate::shim::log_file::MAX_FILE_LIMIT;

/// Keys Docker's json-file driver accepts that moor does not implement.
const NOT_IMPLEMENTED: &[&str] = &[
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

/// A log option refused, named in the message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LogOptError {
    /// A key the json-file driver does not know (Docker's message).
    #[error("unknown log opt '{0}' for json-file log driver")]
    Unknown(String),
    /// A key Docker's driver knows that moor does not implement.
    #[error("log opt '{0}' is not implemented by moor (it implements max-size and max-file)")]
    NotImplemented(String),
    /// `max-size` is not a size (Docker's message, prefixed with the option).
    #[error("max-size: invalid size: '{0}'")]
    Size(String),
    /// `max-size` is zero (Docker's message).
    #[error("max-size must be a positive number")]
    SizeNotPositive,
    /// `max-file` is not an integer.
    #[error("max-file: invalid number: '{0}'")]
    File(String),
    /// `max-file` is below 1 (Docker's message).
    #[error("max-file cannot be less than 1")]
    FileTooSmall,
    /// `max-file` is above [`MAX_FILE_LIMIT`].
    #[error("max-file cannot be more than {MAX_FILE_LIMIT} (got {0})")]
    FileTooLarge(String),
    /// `max-file` above 1 without `max-size`.
    #[error("max-file {0} needs max-size: without it the log is never rotated")]
    FileWithoutSize(u32),
}

/// Checked log options, ready for the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOpts {
    /// Rotate before the file would exceed this many bytes (None: never).
    pub max_size: Option<u64>,
    /// How many files to keep, the current one included (1 to [`MAX_FILE_LIMIT`]).
    pub max_file: u32,
}

impl Default for LogOpts {
    fn default() -> Self {
        LogOpts {
            max_size: None,
            max_file: 1,
        }
    }
}

impl LogOpts {
    /// Checks a `log-opts` map; see the module header for the rules.
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<LogOpts, LogOptError> {
        for key in opts.keys() {
            match key.as_str() {
                "max-size" | "max-file" => {}
                k if NOT_IMPLEMENTED.contains(&k) => {
                    return Err(LogOptError::NotImplemented(key.clone()))
                }
                _ => return Err(LogOptError::Unknown(key.clone())),
            }
        }
        let max_size = match opts.get("max-size") {
            None => None,
            Some(v) => match from_human_size(v) {
                None => return Err(LogOptError::Size(v.clone())),
                Some(0) => return Err(LogOptError::SizeNotPositive),
                Some(n) => Some(n),
            },
        };
        let max_file = match opts.get("max-file") {
            None => 1,
            Some(v) => match v.parse::<i64>() {
                Err(_) => return Err(LogOptError::File(v.clone())),
                Ok(n) if n < 1 => return Err(LogOptError::FileTooSmall),
                Ok(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| *n <= MAX_FILE_LIMIT)
                    .ok_or_else(|| LogOptError::FileTooLarge(v.clone()))?,
            },
        };
        if max_file > 1 && max_size.is_none() {
            return Err(LogOptError::FileWithoutSize(max_file));
        }
        Ok(LogOpts { max_size, max_file })
    }
}

/// Docker's `units.FromHumanSize`: `(?i)^(\d+(\.\d+)*) ?([kmgtp])?i?b?$` with decimal
/// multipliers; None when it does not parse or does not fit in an i64 (Go's int64).
pub fn from_human_size(text: &str) -> Option<u64> {
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(digits_end);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let mut chars = rest.chars().peekable();
    let mult = match chars.peek() {
        Some('k') => 1e3,
        Some('m') => 1e6,
        Some('g') => 1e9,
        Some('t') => 1e12,
        Some('p') => 1e15,
        _ => 1.0,
    };
    if mult != 1.0 {
        chars.next();
    }
    let suffix: String = chars.collect();
    if !matches!(suffix.as_str(), "" | "b" | "ib" | "i") {
        return None;
    }
    let bytes = value * mult;
    // Go converts with int64(size): past i64 it is garbage, so refuse it here.
    (bytes.is_finite() && bytes < i64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Result<LogOpts, LogOptError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogOpts::parse(&map)
    }

    #[test]
    fn docker_sizes() {
        for (text, want) in [
            ("1", 1),
            ("10m", 10_000_000),
            ("10MB", 10_000_000),
            ("10mib", 10_000_000),
            ("1.5k", 1500),
            ("2 g", 2_000_000_000),
            ("3b", 3),
        ] {
            assert_eq!(from_human_size(text), Some(want), "{text}");
        }
        for bad in [
            "",
            "garbage",
            "m",
            "1x",
            "1.2.3",
            "-1",
            "1mbb",
            " 1",
            "99999999999p",
        ] {
            assert_eq!(from_human_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn rules_and_messages() {
        assert_eq!(opts(&[]), Ok(LogOpts::default()));
        assert_eq!(
            opts(&[("max-size", "1k"), ("max-file", "3")]),
            Ok(LogOpts {
                max_size: Some(1000),
                max_file: 3
            })
        );
        let err = |pairs: &[(&str, &str)]| opts(pairs).unwrap_err().to_string();
        assert_eq!(
            err(&[("max-size", "garbage")]),
            "max-size: invalid size: 'garbage'"
        );
        assert_eq!(
            err(&[("max-size", "0")]),
            "max-size must be a positive number"
        );
        assert_eq!(err(&[("max-file", "0")]), "max-file cannot be less than 1");
        assert_eq!(err(&[("max-file", "x")]), "max-file: invalid number: 'x'");
        assert_eq!(
            err(&[("max-size", "1"), ("max-file", "4294967295")]),
            "max-file cannot be more than 1000 (got 4294967295)"
        );
        assert!(err(&[("max-file", "3")]).contains("needs max-size"));
        assert_eq!(
            err(&[("x", "1")]),
            "unknown log opt 'x' for json-file log driver"
        );
        assert!(err(&[("compress", "true")]).contains("'compress' is not implemented"));
        assert_eq!(opts(&[("max-file", "1")]), Ok(LogOpts::default()));
    }
}
