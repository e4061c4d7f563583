//! Reading containers' json-file logs (the shim writes them: `crate::shim::log_writer`).
//!
//! - [`files`]: the log's files as the shim rotates them, opened without tearing;
//! - [`reader`]: records in order across those files, `tail`, following across rotations;
//! - [`record`]: a record as a multiplexed-stream frame, filtered by stream and time;
//! - [`stream`]: the reading thread behind the HTTP answer, bounded in memory;
//! - [`when`]: `--since`/`--until` values.

pub mod files;
pub mod reader;
pub mod record;
pub mod stream;
pub mod when;

use std::io;
use std::path::PathBuf;

pub use reader::LogReader;
pub use record::LogOptions;

/// Why a log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// A log file could not be listed or opened.
    #[error("open log {}", path.display())]
    Open {
        /// The log's path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Reading or seeking in a log file failed.
    #[error("read log {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A `since`/`until` value is neither a time, a timestamp nor a duration.
    #[error("{value:?} is not an RFC 3339 time, a unix timestamp or a duration such as 10m")]
    Time {
        /// The value given.
        value: String,
    },
    /// A `since`/`until` value of a valid form that no date can represent.
    #[error("{value:?} is out of range: durations up to 2562047h, dates between the years -262143 and 262142")]
    TimeRange {
        /// The value given.
        value: String,
    },
    /// The reading thread could not be started.
    #[error("start the log reading thread")]
    Thread {
        /// The error.
        #[source]
        source: io::Error,
    },
}
