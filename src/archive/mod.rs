//! A container's files as tar archives, Docker's way: `docker cp` both ways
//! (`/containers/{id}/archive`), `docker export` and `docker diff`.
//!
//! Everything here works on a directory the host sees as the container's root (the merged
//! overlay, or `/proc/<pid>/root` of a running container: the container's actor hands it
//! out, `daemon::container::archive`). Paths are the container's: they are resolved inside
//! that root with its symlinks followed in it, never above it ([`scope`]), as moby's
//! `FollowSymlinkInScope` does. Plain file work, no daemon: it sits below the daemon and the
//! runtime, beside `image` and `logs`.

pub mod changes;
pub mod extract;
pub mod pack;
pub mod scope;

use std::io;
use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

/// Why a copy, an export or a diff could not be done.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// The container's runtime gives it no filesystem of its own (the process runtime runs
    /// on the host's `/`).
    #[error("the {runtime} runtime gives a container no filesystem of its own: docker cp, export and diff need a container of the runc runtime")]
    NoRootfs {
        /// The runtime's name.
        runtime: &'static str,
    },
    /// The container is in a state its files cannot be reached in.
    #[error("container {id} is {state}: its files cannot be copied now")]
    Busy {
        /// The container's id.
        id: String,
        /// Its state's name.
        state: &'static str,
    },
    /// The path does not exist in the container (Docker's text).
    #[error("Could not find the file {path} in container {container}")]
    NotFound {
        /// The path asked for.
        path: String,
        /// The container as the client named it.
        container: String,
    },
    /// A `PUT` whose path is not a directory (Docker's text).
    #[error("extraction point is not a directory: {path}")]
    NotADirectory {
        /// The path asked for.
        path: String,
    },
    /// `noOverwriteDirNonDir` and an entry that would replace a directory with a file or
    /// a file with a directory.
    #[error("cannot overwrite {existing} {path} with a {entry} (noOverwriteDirNonDir)")]
    DirNonDir {
        /// The path in the container.
        path: String,
        /// What is there.
        existing: &'static str,
        /// What the archive has.
        entry: &'static str,
    },
    /// A query parameter the endpoint does not implement.
    #[error("query parameter {name:?} is not supported by this endpoint")]
    UnknownParameter {
        /// The parameter.
        name: String,
    },
    /// The uploaded tar cannot be read: nothing of it was written.
    #[error("invalid tar archive at byte {offset}{}: {reason}", after(.entry))]
    BadTar {
        /// Where in the (uncompressed) archive it went wrong.
        offset: u64,
        /// The entry being read, or the last good one.
        entry: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// An entry moor will not write (an absolute path, `..`, a socket...): nothing of the
    /// archive was written.
    #[error("tar entry {entry:?} refused: {reason}")]
    UnsafeEntry {
        /// The entry's name.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The container's root filesystem could not be made reachable (mounted) or released.
    #[error("the container's filesystem cannot be reached: {reason}")]
    Root {
        /// The runtime's description of the failure, its causes included.
        reason: String,
    },
    /// A file operation failed.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path (host side).
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Which view of a container's files an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootView {
    /// As its processes see it (`docker cp`): a running container's mounts (volumes,
    /// binds, tmpfs) included, through `/proc/<pid>/root`.
    Process,
    /// Its own filesystem only, mounts left out (`docker export`).
    Own,
}

/// A container's root made reachable on the host for an archive operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedRoot {
    /// Where the host sees it.
    pub path: PathBuf,
    /// It was mounted for this operation (a stopped container): unmounted after it.
    pub mounted: bool,
}

/// ` (entry "x")` for an error that has an entry, else nothing.
fn after(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(" (entry {e:?})"))
        .unwrap_or_default()
}

impl ArchiveError {
    /// A 404: the path is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ArchiveError::NotFound { .. })
    }

    /// A 400: the client's request or archive cannot be used.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            ArchiveError::NoRootfs { .. }
                | ArchiveError::UnknownParameter { .. }
                | ArchiveError::NotADirectory { .. }
                | ArchiveError::DirNonDir { .. }
                | ArchiveError::BadTar { .. }
                | ArchiveError::UnsafeEntry { .. }
        )
    }

    /// A 409: the container's state does not allow it now.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ArchiveError::Busy { .. })
    }

    /// An I/O error on `path`, as a closure for `map_err`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| ArchiveError::Io { what, path, source }
    }
}

/// Docker's `X-Docker-Container-Path-Stat` (moby's `ContainerPathStat`), sent base64-encoded
/// JSON in that header by `HEAD` and `GET /containers/{id}/archive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    /// The last element of the path asked for.
    pub name: String,
    /// Its size in bytes.
    pub size: i64,
    /// Go's `os.FileMode` bits (the docker CLI decodes them as one).
    pub mode: u32,
    /// Modification time, RFC 3339 (Go's `time.Time` JSON).
    pub mtime: String,
    /// For a symlink: the path it resolves to inside the container; else empty.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` of a unix `st_mode` (type bits moved to Go's high bits).
pub fn go_mode(st_mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => DIR,
        libc::S_IFLNK => SYMLINK,
        libc::S_IFBLK => DEVICE,
        libc::S_IFCHR => DEVICE | CHAR,
        libc::S_IFIFO => PIPE,
        libc::S_IFSOCK => SOCKET,
        _ => 0,
    };
    for (bit, go) in [
        (libc::S_ISUID, SETUID),
        (libc::S_ISGID, SETGID),
        (libc::S_ISVTX, STICKY),
    ] {
        if st_mode & bit != 0 {
            mode |= go;
        }
    }
    mode
}

/// Whether Go's mode bits say directory (what the docker CLI checks).
pub fn go_is_dir(mode: u32) -> bool {
    mode & (1 << 31) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_go_file_modes() {
        assert_eq!(go_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_mode(libc::S_IFREG | 0o644), 0o644);
        assert_eq!(go_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(
            go_mode(libc::S_IFREG | libc::S_ISUID | 0o755),
            (1 << 23) | 0o755
        );
        assert!(go_is_dir(go_mode(libc::S_IFDIR)));
        let e = ArchiveError::BadTar {
            offset: 1024,
            entry: Some("a/b".into()),
            reason: "checksum mismatch".into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid tar archive at byte 1024 (entry \"a/b\"): checksum mismatch"
        );
    }
}
