//! The daemon: the Supervisor actor, one Container actor per container, the reconciler.

use std::path::PathBuf;

use thiserror::Error;

/// How `moor daemon` was asked to run (command line over daemon.json over defaults).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// State root (sled store, container directories, logs).
    pub root: Option<PathBuf>,
    /// Run directory (shim files, socket): gone at reboot.
    pub run_dir: Option<PathBuf>,
    /// API socket path.
    pub socket: Option<PathBuf>,
    /// daemon.json path.
    pub config: Option<PathBuf>,
    /// Default runtime for new containers: `process` or `runc`.
    pub runtime: Option<String>,
}

/// Why the daemon could not run.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// Placeholder until the daemon lands.
    #[error("the daemon is not built yet")]
    NotBuilt,
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(_opts: Options) -> Result<(), DaemonError> {
    Err(DaemonError::NotBuilt)
}
