//! How `moor daemon` is asked to run: the command line over daemon.json over this user's
//! defaults, resolved to absolute paths. The daemon starts from it, and `moor admin` finds
//! the same root and run directory with it while the daemon is down.

use std::path::PathBuf;

use thiserror::Error;

use crate::config::{self, ConfigError, DaemonConfig};
use crate::host::layout::Layout;
use crate::host::paths::Paths;

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
    /// `--live-restore`: on whatever daemon.json says (which must then not set it).
    pub live_restore: bool,
}

/// Why the options could not be resolved.
#[derive(Debug, Error)]
pub enum OptionsError {
    /// daemon.json is invalid.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// A path could not be made absolute.
    #[error("resolve {path}")]
    Resolve {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Resolves paths: command line, then daemon.json, then the defaults for this user.
pub fn resolve(opts: &Options) -> Result<(Layout, DaemonConfig), OptionsError> {
    let defaults = Paths::default_for_current_user();
    let path = config_path(opts);
    let loaded = config::load(&path)?.with_live_restore_flag(&path, opts.live_restore)?;
    let config = loaded.config;
    let root = opts
        .root
        .clone()
        .or_else(|| config.data_root.clone())
        .unwrap_or(defaults.root);
    let run_dir = opts
        .run_dir
        .clone()
        .or_else(|| config.exec_root.clone())
        .unwrap_or(defaults.run_dir);
    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(|| run_dir.join("moor.sock"));
    // Absolute from here on: shims and runc run in other working directories.
    let absolute = |path: PathBuf| {
        std::path::absolute(&path).map_err(|source| OptionsError::Resolve { path, source })
    };
    let layout = Layout {
        root: absolute(root)?,
        run_dir: absolute(run_dir)?,
        socket: absolute(socket)?,
        shim_bin: Layout::default_shim_bin(),
    };
    Ok((layout, config))
}

/// daemon.json: the command line's, else this user's default.
pub fn config_path(opts: &Options) -> PathBuf {
    opts.config
        .clone()
        .unwrap_or_else(|| Paths::default_for_current_user().config)
}

/// Checks daemon.json and the options as a start would, without starting (`--validate`).
pub fn validate(opts: &Options) -> Result<(), OptionsError> {
    // A file named on the command line must be there; the default one may be absent.
    if let Some(path) = opts.config.as_ref().filter(|p| !p.exists()) {
        return Err(ConfigError::Missing { path: path.clone() }.into());
    }
    resolve(opts).map(|_| ())
}

/// Where the daemon with these options keeps things (for `moor admin`).
pub fn layout(opts: &Options) -> Result<Layout, OptionsError> {
    resolve(opts).map(|(layout, _)| layout)
}
