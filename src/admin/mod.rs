//! `moor admin`: the store and the run directory seen without the daemon. When no daemon
//! holds `<root>/moor.lock` the store is opened directly (sled allows one process at a time,
//! and holding the lock keeps a daemon from starting meanwhile); when one does, `inspect`
//! and `orphans` ask it through `GET /moor/admin/inspect`, and the commands that change
//! records refuse, naming the daemon's pid.

pub mod check;
pub mod inspect;
pub mod network;
pub mod orphan;

use std::fs::File;
use std::path::PathBuf;

use moor_state::store::{Store, StoreError};
use moor_state::{transition, ContainerRecord, Event, TransitionError};
use nix::fcntl::Flock;
use thiserror::Error;

use crate::host::layout::{Layout, RootLock};

/// Why an admin command could not do its work.
#[derive(Debug, Error)]
pub enum AdminError {
    /// A running daemon holds the store.
    #[error("a moor daemon (pid {pid}) holds {root}: stop it first (with live-restore on its containers keep running)")]
    DaemonRunning {
        /// Its pid, from the lock file.
        pid: String,
        /// The root.
        root: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("open {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened or written.
    #[error("store {path}")]
    Store {
        /// The store directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// No record and no run directory matches.
    #[error("no such container: {0}")]
    NotFound(String),
    /// More than one container matches a prefix.
    #[error("{0:?} matches more than one container")]
    Ambiguous(String),
    /// The container is not an orphan (or not one this command can act on).
    #[error("{id}: {why}")]
    Refused {
        /// Its id.
        id: String,
        /// Why nothing was done.
        why: String,
    },
    /// The state machine refused the event.
    #[error("{id}: the state machine refused the change")]
    Transition {
        /// Its id.
        id: String,
        /// Why.
        #[source]
        source: TransitionError,
    },
    /// A process could not be signalled or checked.
    #[error("{id}: kill pid {pid}")]
    Kill {
        /// The container.
        id: String,
        /// The process.
        pid: i32,
        /// Why.
        #[source]
        source: crate::identity::IdentityError,
    },
}

/// The store opened directly, with the root's lock held for as long as it is open.
pub struct Direct {
    /// The store.
    pub store: Store,
    /// Where things are.
    pub layout: Layout,
    /// The lock on `<root>/moor.lock`: no daemon starts while it is held.
    _lock: Flock<File>,
}

/// Where an answer came from.
pub enum Access {
    /// The store itself (no daemon running).
    Direct(Box<Direct>),
    /// A daemon holds the store: ask it (its pid, from the lock file).
    Daemon(String),
}

impl Access {
    /// Takes the root's lock without waiting: the store if no daemon runs, else the
    /// daemon's pid. A root that does not exist yet is an empty store.
    pub fn open(layout: &Layout) -> Result<Access, AdminError> {
        let lock = match layout.try_lock().map_err(|source| AdminError::Lock {
            path: layout.lock_file(),
            source,
        })? {
            RootLock::Taken(lock) => lock,
            RootLock::HeldBy(pid) => return Ok(Access::Daemon(pid)),
        };
        let store = Store::open(&layout.store()).map_err(|source| AdminError::Store {
            path: layout.store(),
            source,
        })?;
        Ok(Access::Direct(Box::new(Direct {
            store,
            layout: layout.clone(),
            _lock: lock,
        })))
    }

    /// The direct access, or the refusal naming the running daemon.
    pub fn direct(self, layout: &Layout) -> Result<Direct, AdminError> {
        match self {
            Access::Direct(d) => Ok(*d),
            Access::Daemon(pid) => Err(AdminError::DaemonRunning {
                pid,
                root: layout.root.clone(),
            }),
        }
    }
}

impl Direct {
    /// The record whose id, id prefix or name is `key`.
    pub fn find(&self, key: &str) -> Result<ContainerRecord, AdminError> {
        let store_err = |source| AdminError::Store {
            path: self.layout.store(),
            source,
        };
        let key = key.strip_prefix('/').unwrap_or(key);
        if let Some(id) = self.store.id_by_name(key).map_err(store_err)? {
            if let Some(rec) = self.store.get(&id).map_err(store_err)? {
                return Ok(rec);
            }
        }
        let records = self.store.list().map_err(store_err)?;
        let mut hits = records.into_iter().filter(|r| r.id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(rec), None) if !key.is_empty() => Ok(rec),
            (Some(_), Some(_)) => Err(AdminError::Ambiguous(key.into())),
            _ => Err(AdminError::NotFound(key.into())),
        }
    }

    /// Applies `event` through the state machine and persists the result.
    pub fn apply(
        &self,
        mut rec: ContainerRecord,
        event: Event,
    ) -> Result<ContainerRecord, AdminError> {
        let next = transition(&rec.state, event).map_err(|source| AdminError::Transition {
            id: rec.id.clone(),
            source,
        })?;
        rec = rec.with_state(next);
        self.store.put(&rec).map_err(|source| AdminError::Store {
            path: self.layout.store(),
            source,
        })?;
        Ok(rec)
    }
}
