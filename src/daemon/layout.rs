//! Where the daemon keeps things: the state root, the run directory and the shim binary.

use std::path::{Path, PathBuf};

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

impl Layout {
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
