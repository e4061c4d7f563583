//! Where the daemon keeps things: the state root, the run directory and the shim binary.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

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
    /// Takes the root's lock without waiting (creating the root if needed).
    pub fn try_lock(&self) -> io::Result<RootLock> {
        std::fs::create_dir_all(&self.root)?;
        let path = self.lock_file();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
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
