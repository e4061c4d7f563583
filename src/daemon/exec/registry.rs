//! The registry of exec instances: every instance of the daemon by id, in memory only (as
//! Docker's), with where it is in its life and how to kill it while it runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::{ExecConfig, ExecError};

/// Where an exec instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStatus {
    /// Created, not started.
    Created,
    /// Started; the pid is 0 until the process is spawned.
    Running {
        /// Its host pid.
        pid: i32,
    },
    /// Ended (or could not start).
    Exited {
        /// Its host pid (0 if it never started).
        pid: i32,
        /// Its exit code (128 + signal for a signal death).
        code: i32,
    },
}

/// One exec instance.
#[derive(Debug, Clone)]
pub struct ExecEntry {
    /// What it runs.
    pub config: ExecConfig,
    /// Where it is.
    pub status: ExecStatus,
    /// Wakes its supervising task to kill it (set while it runs).
    pub(super) kill: Option<Arc<Notify>>,
    /// Its terminal's master (Tty, while it runs), for resizes.
    pub(super) console: Option<Arc<std::os::fd::OwnedFd>>,
}

/// Every exec instance of the daemon, by exec id.
#[derive(Default)]
pub struct ExecRegistry {
    /// The instances; short critical sections only, never held across an await.
    entries: Mutex<HashMap<String, ExecEntry>>,
}

impl ExecRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new instance; its id.
    pub fn insert(&self, config: ExecConfig) -> String {
        let id = new_id();
        self.lock().insert(
            id.clone(),
            ExecEntry {
                config,
                status: ExecStatus::Created,
                kill: None,
                console: None,
            },
        );
        id
    }

    /// A copy of an instance.
    pub fn get(&self, id: &str) -> Option<ExecEntry> {
        self.lock().get(id).cloned()
    }

    /// Marks an instance as started: only a created one can be.
    pub fn begin(&self, id: &str) -> Result<ExecConfig, ExecError> {
        let mut entries = self.lock();
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| ExecError::NotFound(id.into()))?;
        match entry.status {
            ExecStatus::Created => {
                entry.status = ExecStatus::Running { pid: 0 };
                Ok(entry.config.clone())
            }
            ExecStatus::Running { .. } => Err(ExecError::Running(id.into())),
            ExecStatus::Exited { .. } => Err(ExecError::Ran(id.into())),
        }
    }

    pub(super) fn set(&self, id: &str, status: ExecStatus) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.status = status;
            if !matches!(status, ExecStatus::Running { .. }) {
                entry.kill = None;
                entry.console = None;
            }
        }
    }

    /// Records the pid of a started instance and how to kill it.
    pub(super) fn running(&self, id: &str, pid: i32, kill: Arc<Notify>) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.status = ExecStatus::Running { pid };
            entry.kill = Some(kill);
        }
    }

    /// Records a started instance's terminal.
    pub(super) fn terminal(&self, id: &str, master: Arc<std::os::fd::OwnedFd>) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.console = Some(master);
        }
    }

    /// Sets the size of a running instance's terminal.
    pub fn resize(&self, id: &str, height: u16, width: u16) -> Result<(), ExecError> {
        let master = {
            let entries = self.lock();
            let entry = entries
                .get(id)
                .ok_or_else(|| ExecError::NotFound(id.into()))?;
            entry
                .console
                .clone()
                .ok_or_else(|| ExecError::NoTty(id.into()))?
        };
        super::terminal::resize(&master, height, width).map_err(ExecError::Terminal)
    }

    /// The pid of a running instance's process, once runc wrote it (runc's own until then).
    pub(super) fn exec_pid(&self, id: &str, pid: i32) {
        if let Some(ExecEntry {
            status: ExecStatus::Running { pid: p },
            ..
        }) = self.lock().get_mut(id)
        {
            *p = pid;
        }
    }

    /// Kills the running instances of a container that exited.
    pub fn container_exited(&self, container_id: &str) {
        for entry in self.lock().values() {
            if entry.config.container_id == container_id {
                if let Some(kill) = &entry.kill {
                    kill.notify_one();
                }
            }
        }
    }

    /// Kills a running instance (a healthcheck probe past its timeout); false when it does
    /// not run.
    pub fn kill(&self, id: &str) -> bool {
        let entries = self.lock();
        let kill = entries.get(id).and_then(|e| e.kill.as_ref());
        kill.inspect(|k| k.notify_one()).is_some()
    }

    /// Drops one instance (a healthcheck probe's, once its result is taken: Docker does not
    /// list them either).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Drops the instances of a removed container.
    pub fn forget_container(&self, container_id: &str) {
        self.lock()
            .retain(|_, e| e.config.container_id != container_id);
    }
}

/// 64 hex digits, as Docker's exec ids.
fn new_id() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
