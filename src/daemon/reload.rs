//! Configuration reload (SIGHUP, `systemctl reload moor`): daemon.json is read again; the
//! reloadable options (`live-restore`, `debug`, `log-level`, `log-opts`, `shutdown-timeout`,
//! `labels`) apply at once, the others (`data-root`, `exec-root`, `default-runtime`,
//! `runtimes`) keep their running value with a warning naming each. An invalid file keeps the
//! whole old configuration; the error is logged and shown in systemd's STATUS=.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use actix::Addr;
use tracing::{error, info, warn};

use crate::config::{self, ConfigError, DaemonConfig};
use crate::daemon::notify;
use crate::daemon::supervisor::Supervisor;
use crate::daemon::Shared;

/// The daemon's configuration: read by every actor, swapped whole by a reload.
#[derive(Debug)]
pub struct ConfigCell {
    /// daemon.json, read again on every reload.
    path: PathBuf,
    /// The configuration in force.
    current: RwLock<Arc<DaemonConfig>>,
    /// The last reload's error, until a reload succeeds (shown in STATUS=).
    reload_error: Mutex<Option<String>>,
    /// `moor daemon --live-restore`: holds across reloads (the file must not set the key).
    live_restore_flag: bool,
}

impl ConfigCell {
    /// A cell holding `config`, read from `path`.
    pub fn new(config: DaemonConfig, path: PathBuf) -> ConfigCell {
        ConfigCell {
            path,
            current: RwLock::new(Arc::new(config)),
            reload_error: Mutex::new(None),
            live_restore_flag: false,
        }
    }

    /// The cell of a daemon started with `--live-restore` (`flag` true).
    pub fn with_live_restore_flag(mut self, flag: bool) -> ConfigCell {
        self.live_restore_flag = flag;
        self
    }

    /// The configuration in force (a snapshot: a reload does not change it under the caller).
    pub fn get(&self) -> Arc<DaemonConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The file reloads read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last reload's error, if the last reload failed.
    pub fn reload_error(&self) -> Option<String> {
        self.reload_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the file again and swaps in its reloadable part. On error nothing changes.
    pub fn reload(&self) -> Result<Reloaded, ConfigError> {
        let result = config::load(&self.path)
            .and_then(|l| l.with_live_restore_flag(&self.path, self.live_restore_flag));
        let mut slot = self.reload_error.lock().unwrap_or_else(|p| p.into_inner());
        let loaded = match result {
            Ok(l) => l,
            Err(e) => {
                *slot = Some(crate::host::chain(&e));
                return Err(e);
            }
        };
        *slot = None;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let (merged, kept) = merge(&current, loaded.config);
        *current = Arc::new(merged);
        Ok(Reloaded { kept })
    }
}

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Options that changed in the file but keep their running value until a restart.
    pub kept: Vec<&'static str>,
}

/// The new configuration with every non-reloadable option taken from `old`, and the names
/// of those whose value in `new` differs (they need a restart).
pub fn merge(old: &DaemonConfig, mut new: DaemonConfig) -> (DaemonConfig, Vec<&'static str>) {
    let mut kept = Vec::new();
    if new.data_root != old.data_root {
        kept.push("data-root");
        new.data_root.clone_from(&old.data_root);
    }
    if new.exec_root != old.exec_root {
        kept.push("exec-root");
        new.exec_root.clone_from(&old.exec_root);
    }
    if new.default_runtime != old.default_runtime {
        kept.push("default-runtime");
        new.default_runtime.clone_from(&old.default_runtime);
    }
    if new.runtimes != old.runtimes {
        kept.push("runtimes");
        new.runtimes.clone_from(&old.runtimes);
    }
    if (&new.bridge, &new.bip) != (&old.bridge, &old.bip) {
        kept.push("bridge/bip");
        new.bridge.clone_from(&old.bridge);
        new.bip.clone_from(&old.bip);
    }
    (new, kept)
}

/// Handles one SIGHUP: RELOADING=1, reload, log what changed, READY=1 with the new status.
pub async fn on_sighup(shared: &Arc<Shared>, supervisor: &Addr<Supervisor>) {
    notify::reloading();
    let cell = &shared.config;
    let before = cell.get();
    match cell.reload() {
        Ok(reloaded) => {
            for key in &reloaded.kept {
                warn!(
                    option = key,
                    "daemon.json: {key} changed: not reloadable, takes effect after a restart"
                );
            }
            let after = cell.get();
            crate::logging::apply_config(&after);
            info!(
                path = %cell.path().display(),
                live_restore = after.live_restore,
                changed = *before != *after,
                "configuration reloaded"
            );
        }
        Err(e) => {
            error!(error = %crate::host::chain(&e), "configuration reload failed: the previous configuration stays in force");
        }
    }
    notify::ready(&notify::current_status(shared, supervisor).await);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> DaemonConfig {
        config::parse(Path::new("d.json"), json).unwrap().config
    }

    #[test]
    fn reloadable_options_apply_others_are_kept() {
        let old = cfg(r#"{"data-root": "/a", "live-restore": false}"#);
        let new = cfg(
            r#"{"data-root": "/b", "exec-root": "/r", "live-restore": true, "shutdown-timeout": 3}"#,
        );
        let (merged, kept) = merge(&old, new);
        assert_eq!(kept, vec!["data-root", "exec-root"]);
        assert_eq!(merged.data_root, old.data_root);
        assert_eq!(merged.exec_root, None);
        assert!(merged.live_restore);
        assert_eq!(merged.shutdown_timeout, Some(3));
    }

    #[test]
    fn an_invalid_file_keeps_the_old_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, r#"{"live-restore": true}"#).unwrap();
        let cell = ConfigCell::new(config::load(&path).unwrap().config, path.clone());
        std::fs::write(&path, "{\"live-restore\": false,,}").unwrap();
        let e = cell.reload().unwrap_err();
        let e = crate::host::chain(&e);
        assert!(e.contains("line 1 column"), "{e}");
        assert!(cell.get().live_restore);
        assert!(cell.reload_error().is_some());
        std::fs::write(&path, r#"{"live-restore": false, "runtimes": {}}"#).unwrap();
        let r = cell.reload().unwrap();
        assert!(r.kept.is_empty());
        assert!(!cell.get().live_restore);
        assert_eq!(cell.reload_error(), None);
    }
}
