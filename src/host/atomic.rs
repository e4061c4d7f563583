//! Atomic JSON files in the container's run directory (`started.json`, `exit.json`).
//!
//! A reader (the daemon, maybe restarted mid-write) sees the old content or the new one,
//! never a torn file: write a temp file in the same directory, fsync it, rename it over the
//! target, fsync the directory so the rename itself survives a crash.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Writing a run-directory file failed.
#[derive(Debug)]
pub enum ExitFileError {
    /// The value could not be serialized.
    Encode {
        /// The file it was meant for.
        path: PathBuf,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// A file system step failed.
    Io {
        /// What was being done, e.g. "fsync".
        step: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for ExitFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitFileError::Encode { path, .. } => write!(f, "encode {}", path.display()),
            ExitFileError::Io { step, path, .. } => write!(f, "{step} {}", path.display()),
        }
    }
}

impl std::error::Error for ExitFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExitFileError::Encode { source, .. } => Some(source),
            ExitFileError::Io { source, .. } => Some(source),
        }
    }
}

/// Writes `value` as JSON (plus a newline) to `dir/name`, atomically and durably.
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), ExitFileError> {
    replace(dir, name, value, true)
}

/// Writes `value` like [`write_json`], atomically for every reader, but without waiting for
/// the disk: it is durable once [`sync_file`] returns. For a file whose durability can be
/// awaited later, off the path of an answer (the daemon's spec file: before the start).
pub fn write_json_unsynced<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
) -> Result<(), ExitFileError> {
    replace(dir, name, value, false)
}

/// Makes `dir/name` and its directory entry durable (fsync of both).
pub fn sync_file(dir: &Path, name: &str) -> Result<(), ExitFileError> {
    let path = dir.join(name);
    File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(|source| ExitFileError::Io {
            step: "fsync",
            path,
            source,
        })?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), ExitFileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| ExitFileError::Io {
            step: "fsync directory",
            path: dir.to_owned(),
            source,
        })
}

/// A temp file in `dir`, renamed over `dir/name`; with `durable`, fsynced before the rename
/// and the directory after it.
fn replace<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
    durable: bool,
) -> Result<(), ExitFileError> {
    let path = dir.join(name);
    let mut text = serde_json::to_vec(value).map_err(|source| ExitFileError::Encode {
        path: path.clone(),
        source,
    })?;
    text.push(b'\n');
    let tmp = dir.join(format!(".{name}.tmp"));
    let io_err = |step, path: &Path| {
        let path = path.to_owned();
        move |source| ExitFileError::Io { step, path, source }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        // 0600: the spec files hold the container's environment (often secrets).
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    file.write_all(&text).map_err(io_err("write", &tmp))?;
    if durable {
        file.sync_all().map_err(io_err("fsync", &tmp))?;
    }
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::protocol::{ExitKind, ExitStatus, PROTOCOL};

    #[test]
    fn writes_and_replaces_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = ExitStatus {
            protocol: PROTOCOL,
            exit: ExitKind::Signal(9),
            finished_at: "1970-01-01T00:00:00.000000000Z".into(),
            start_error: None,
            oom_killed: false,
        };
        write_json(dir.path(), "exit.json", &status).expect("write");
        let again = ExitStatus {
            exit: ExitKind::Code(3),
            ..status
        };
        write_json(dir.path(), "exit.json", &again).expect("rewrite");
        let text = fs::read_to_string(dir.path().join("exit.json")).expect("read");
        let back: ExitStatus = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, again);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["exit.json"], "no temp file left behind");
    }

    #[test]
    fn missing_directory_is_an_error_with_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write_json(&dir.path().join("nope"), "exit.json", &1).expect_err("must fail");
        assert!(err.to_string().starts_with("create "), "{err}");
    }
}
