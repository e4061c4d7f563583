//! The shim's run files as the daemon and `moor admin` read them: started.json and
//! exit.json of a container's run directory (the current and the older protocol versions),
//! and process identities checked against /proc. Reading only: the shim writes them.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use moor_state::reconcile::{Liveness, ObservedExit};
use moor_state::{Exit, ProcessIdentity, Run};
use thiserror::Error;

use crate::identity;
use crate::shim::protocol::{self, ExitKind, ExitStatus, Identity, Started};

/// Why a run file could not be read.
#[derive(Debug, Error)]
pub enum RunFileError {
    /// A run file is not valid JSON of a known shape.
    #[error("read {path}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The parse failure.
        #[source]
        source: serde_json::Error,
    },
    /// A run file could not be read.
    #[error("read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// A timestamp written by the shim is not RFC 3339.
    #[error("bad timestamp {value:?} in {path}")]
    Time {
        /// The file.
        path: PathBuf,
        /// The text.
        value: String,
    },
}

/// Converts the shim's identity to the store's.
pub fn to_identity(i: &Identity) -> ProcessIdentity {
    ProcessIdentity {
        pid: i.pid,
        start_time: i.start_time,
        boot_id: i.boot_id.clone(),
    }
}

/// Converts the store's identity to the shim's.
pub fn from_identity(i: &ProcessIdentity) -> Identity {
    Identity {
        pid: i.pid,
        start_time: i.start_time,
        boot_id: i.boot_id.clone(),
    }
}

/// Checks a recorded identity against /proc.
pub fn liveness(i: &ProcessIdentity) -> Liveness {
    match identity::check(&from_identity(i)) {
        Ok(identity::Check::Alive) => Liveness::Alive,
        Ok(identity::Check::Gone) => Liveness::Gone,
        Ok(identity::Check::Reused) => Liveness::Reused,
        Err(e) => {
            // Unknown is treated like a stranger: never resumed, never signalled.
            tracing::warn!(pid = i.pid, error = %e, "cannot check a process identity");
            Liveness::Reused
        }
    }
}

fn parse_time(path: &Path, value: &str) -> Result<DateTime<Utc>, RunFileError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| RunFileError::Time {
            path: path.into(),
            value: value.into(),
        })
}

pub fn to_run(path: &Path, s: &Started) -> Result<Run, RunFileError> {
    Ok(Run {
        shim: to_identity(&s.shim),
        process: to_identity(&s.process),
        started_at: parse_time(path, &s.started_at)?,
    })
}

/// What the run directory says about the last run, as read (missing files are `None`).
#[derive(Debug, Clone, Default)]
pub struct RunFiles {
    /// started.json, when present and of a readable protocol.
    pub started: Option<Run>,
    /// exit.json, when present and of a readable protocol.
    pub exit: Option<ObservedExit>,
    /// Set when a file has a protocol version this daemon cannot read.
    pub unsupported_protocol: Option<u32>,
    /// The start error the shim recorded, if the start failed.
    pub start_error: Option<String>,
    /// The shim saw an OOM kill in the container's memory cgroup.
    pub oom_killed: bool,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, RunFileError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| RunFileError::Decode {
                    path: path.into(),
                    source,
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RunFileError::Read {
            path: path.into(),
            source,
        }),
    }
}

fn readable(version: u32) -> bool {
    (protocol::OLDEST_READABLE_PROTOCOL..=protocol::PROTOCOL).contains(&version)
}

/// Converts the shim's exit kind.
pub fn to_exit(kind: ExitKind) -> Exit {
    match kind {
        ExitKind::Code(c) => Exit::Code(c),
        ExitKind::Signal(s) => Exit::Signal(s),
    }
}

/// Reads started.json and exit.json of one container's run directory.
pub fn read_run_files(dir: &Path) -> Result<RunFiles, RunFileError> {
    let mut files = RunFiles::default();
    let started_path = dir.join(protocol::STARTED_FILE);
    if let Some(s) = read_json::<Started>(&started_path)? {
        if readable(s.protocol) {
            files.started = Some(to_run(&started_path, &s)?);
        } else {
            files.unsupported_protocol = Some(s.protocol);
        }
    }
    let exit_path = dir.join(protocol::EXIT_FILE);
    if let Some(e) = read_json::<ExitStatus>(&exit_path)? {
        if readable(e.protocol) {
            files.exit = Some(ObservedExit {
                exit: to_exit(e.exit),
                at: parse_time(&exit_path, &e.finished_at)?,
            });
            files.start_error = e.start_error;
            files.oom_killed = e.oom_killed;
        } else {
            files.unsupported_protocol = Some(e.protocol);
        }
    }
    Ok(files)
}
