//! Where the daemon keeps things: the state root, the run directory and the shim binary,
//! and who may read them.
//!
//! Modes (README "Security"): the state root and its directories 0700 (containers' specs
//! hold their environment, often secrets; an image's rootfs may hold setuid binaries that no
//! local user may run from the host), the run directory 0700, or 0711 when the API socket is
//! in it: the members of the socket's group must traverse it to connect, and 0711 lets them
//! reach the socket by name without listing or reading anything else (its subdirectories
//! stay 0700). The socket is 0660, group `moor` when that group exists (as Docker's
//! `docker` group), else the daemon's own group. At every start the directories are created
//! with these modes, and one found more open (made by an older build, 0755) is fixed, with one
//! warning per directory.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{chown, Group};
use thiserror::Error;
use tracing::warn;

/// Mode of the state root, its directories and the run directory's subdirectories.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of the run directory when the socket is in it (see the module header).
pub const TRAVERSABLE_DIR_MODE: u32 = 0o711;
/// Mode of the API socket.
pub const SOCKET_MODE: u32 = 0o660;
/// The group given the socket when it exists (Docker's is `docker`).
pub const SOCKET_GROUP: &str = "moor";

/// Why the daemon's directories or socket could not be set up.
#[derive(Debug, Error)]
pub enum LayoutError {
    /// A file operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn layout_io(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LayoutError {
    let path = path.to_path_buf();
    move |source| LayoutError::Io { what, path, source }
}

/// Creates `dir` (and missing parents) with `mode`; an existing `dir` whose mode differs is
/// set to `mode`, with a warning. Returns whether it had to be fixed.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<bool, LayoutError> {
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(layout_io("create", dir))?;
    let meta = std::fs::metadata(dir).map_err(layout_io("stat", dir))?;
    let found = meta.permissions().mode() & 0o7777;
    if found == mode {
        return Ok(false);
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(layout_io("chmod", dir))?;
    warn!(
        path = %dir.display(),
        found = format!("{found:04o}"),
        now = format!("{mode:04o}"),
        "directory mode fixed (made by an older moor, or by hand)"
    );
    Ok(true)
}

/// The daemon's directories, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct Layout {
    /// State root: the store, one directory per container (spec, logs).
    pub root: PathBuf,
    /// Run directory: shim files per container; gone at reboot like the processes.
    pub run_dir: PathBuf,
    /// The API socket.
    pub socket: PathBuf,
    /// The moor-shim binary the daemon starts for each container.
    pub shim_bin: PathBuf,
}

/// The spec file written once, atomically, at create (Docker's config.v2.json).
pub const SPEC_FILE: &str = "config.v2.json";

/// The root's lock file (`<root>/moor.lock`): one daemon, or one `moor admin`, at a time.
pub enum RootLock {
    /// This process holds it until the value is dropped.
    Taken(Flock<File>),
    /// Another process holds it; the pid it wrote, possibly empty.
    HeldBy(String),
}

impl Layout {
    /// Takes the root's lock without waiting (creating the root, mode 0700, if needed).
    pub fn try_lock(&self) -> io::Result<RootLock> {
        DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(&self.root)?;
        let path = self.lock_file();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        Ok(match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => RootLock::Taken(lock),
            Err(_) => RootLock::HeldBy(
                std::fs::read_to_string(&path)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default(),
            ),
        })
    }

    /// The run directory's mode: 0711 when the socket is in it, else 0700 (module header).
    pub fn run_dir_mode(&self) -> u32 {
        if self.socket.parent() == Some(self.run_dir.as_path()) {
            TRAVERSABLE_DIR_MODE
        } else {
            PRIVATE_DIR_MODE
        }
    }

    /// Creates the daemon's directories with their modes, fixing those found more open
    /// ([`ensure_dir`]); the socket's directory is created if missing (its mode is left to
    /// whoever chose it, unless it is the run directory). Returns how many were fixed.
    pub fn prepare(&self) -> Result<usize, LayoutError> {
        // Parents first: a parent created on the way to a child would get the child's mode.
        let mut fixed = usize::from(ensure_dir(&self.run_dir, self.run_dir_mode())?);
        for dir in [
            self.root.clone(),
            self.root.join("containers"),
            self.root.join("images"),
            self.store(),
            self.run_containers(),
            self.run_dir.join("runc"),
        ] {
            fixed += usize::from(ensure_dir(&dir, PRIVATE_DIR_MODE)?);
        }
        if let Some(parent) = self.socket.parent() {
            std::fs::create_dir_all(parent).map_err(layout_io("create", parent))?;
        }
        Ok(fixed)
    }

    /// Gives the bound socket its mode (0660) and group (`moor` when it exists, else the
    /// daemon's own group, as the file already has).
    pub fn secure_socket(&self) -> Result<(), LayoutError> {
        let path = &self.socket;
        if let Ok(Some(group)) = Group::from_name(SOCKET_GROUP) {
            chown(path, None, Some(group.gid)).map_err(|e| LayoutError::Io {
                what: "chgrp",
                path: path.clone(),
                source: e.into(),
            })?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(layout_io("chmod", path))
    }

    /// The sled store directory.
    pub fn store(&self) -> PathBuf {
        self.root.join("moor.db")
    }

    /// The lock file that keeps a second daemon off this root.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("moor.lock")
    }

    /// A container's persistent directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// A container's spec file.
    pub fn spec_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(SPEC_FILE)
    }

    /// A container's json-file log.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// The parent of the per-container run directories.
    pub fn run_containers(&self) -> PathBuf {
        self.run_dir.join("containers")
    }

    /// A container's run directory (shim spec, started and exit files).
    pub fn run_container_dir(&self, id: &str) -> PathBuf {
        self.run_containers().join(id)
    }

    /// These paths as the container `rec` was started under them: its recorded run
    /// directory (shim files, runc's state, network namespace), when it has one (README
    /// "Changing daemon options"); the state root, socket and shim stay this daemon's.
    pub fn as_recorded(&self, rec: &moor_state::ContainerRecord) -> Layout {
        match &rec.settings {
            Some(s) => Layout {
                run_dir: PathBuf::from(&s.run_dir),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// The shim binary next to the running executable, unless `MOOR_SHIM` names one.
    pub fn default_shim_bin() -> PathBuf {
        if let Some(p) = std::env::var_os("MOOR_SHIM") {
            return PathBuf::from(p);
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .map(|dir| dir.join("moor-shim"))
            .unwrap_or_else(|| PathBuf::from("moor-shim"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
    }

    #[test]
    fn the_run_dir_is_traversable_only_when_the_socket_is_in_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run_dir = dir.path().join("run");
        let mut layout = Layout {
            root: dir.path().join("root"),
            socket: run_dir.join("moor.sock"),
            run_dir,
            shim_bin: PathBuf::from("moor-shim"),
        };
        assert_eq!(layout.prepare().expect("prepare"), 0);
        assert_eq!(mode(&layout.run_dir), 0o711);
        assert_eq!(mode(&layout.run_containers()), 0o700);
        assert_eq!(mode(&layout.root), 0o700);
        assert_eq!(mode(&layout.store()), 0o700);
        layout.socket = dir.path().join("elsewhere/moor.sock");
        assert_eq!(layout.prepare().expect("prepare"), 1, "0711 fixed to 0700");
        assert_eq!(mode(&layout.run_dir), 0o700);
        assert!(dir.path().join("elsewhere").is_dir());
    }
}
