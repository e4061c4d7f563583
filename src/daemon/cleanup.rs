//! Removal off the path the user waits on. A removal first drops what makes the container
//! exist (its spec file, so a store rebuild cannot bring it back, then its record and name:
//! the `removed` wait fires there), and leaves the runtime's clean-up (`runc delete`, the
//! rootfs unmount, the run and state directories) to a background thread.
//!
//! Crash-safe: if the daemon dies before the thread is done, the leftovers belong to no
//! record, and [`sweep`] removes them at the next start, before the API serves.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use tracing::{info, warn};

use crate::daemon::container::short;
use crate::daemon::error::ContainerError;
use crate::daemon::Shared;
use crate::host::layout::Layout;
use crate::runtime;

/// Removes the spec file, the step that must come before the record goes: a store rebuilt
/// from spec files must not resurrect a removed container.
pub fn forget_spec(layout: &Layout, id: &str) -> Result<(), ContainerError> {
    let path = layout.spec_file(id);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ContainerError::Io {
            what: "remove",
            path,
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The container's own runtime and run directory, when its actor removes it: those it was
/// started under, which may differ from the daemon's (README "Changing daemon options").
pub type Own = (Arc<dyn runtime::Runtime>, PathBuf);

/// Deletes a container's runc state, rootfs mount, run directory and persistent directory.
pub fn remove_files(shared: &Shared, id: &str, own: Option<&Own>) -> Result<(), ContainerError> {
    shared.execs.forget_container(id);
    // The record (and with it the kind) may be gone: every runtime cleans up what it has,
    // the container's own first when it is not one of the daemon's.
    let daemon = shared.runtimes.all();
    let own_rt = own
        .map(|(rt, _)| rt.clone())
        .filter(|rt| !daemon.iter().any(|d| Arc::ptr_eq(d, rt)));
    for rt in own_rt.into_iter().chain(daemon) {
        rt.remove(id)?;
    }
    let own_dir = own.map(|(_, dir)| dir.clone());
    for dir in [
        Some(shared.layout.run_container_dir(id)),
        own_dir,
        Some(shared.layout.container_dir(id)),
    ]
    .into_iter()
    .flatten()
    {
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ContainerError::Io {
                    what: "remove",
                    path: dir,
                    source: e,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Clean-up threads still running, and the signal that one has ended: a daemon that stops
/// waits for them ([`wait_pending`]), so a graceful stop leaves no mount behind.
static PENDING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Counts one clean-up thread for as long as it lives (a panic included).
struct Pending;

impl Pending {
    fn new() -> Pending {
        *PENDING.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        *PENDING.0.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        PENDING.1.notify_all();
    }
}

/// Runs [`remove_files`] for `id` on a background thread; a failure is logged and the
/// next start's [`sweep`] retries it.
pub fn spawn_remove_files(shared: Arc<Shared>, id: String, own: Own) {
    let pending = Pending::new();
    let spawned = std::thread::Builder::new()
        .name("moor-cleanup".into())
        .spawn(move || {
            let _pending = pending;
            if let Err(e) = remove_files(&shared, &id, Some(&own)) {
                warn!(container_id = %short(&id), error = %e, "clean-up after removal failed: retried at the next start");
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start a clean-up thread: retried at the next start");
    }
}

/// Waits up to `limit` for the clean-up threads still running; returns how many are left
/// (their leftovers go at the next start's [`sweep`]).
pub fn wait_pending(limit: Duration) -> usize {
    let count = PENDING.0.lock().unwrap_or_else(PoisonError::into_inner);
    let (count, _) = PENDING
        .1
        .wait_timeout_while(count, limit, |n| *n > 0)
        .unwrap_or_else(PoisonError::into_inner);
    *count
}

/// The container ids that have a directory under `dir`.
fn ids_under(dir: PathBuf) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Cleans the leftovers of removed containers: run and state directories that no record
/// claims (`keep`: the records kept, and ids whose record is unreadable). A run directory
/// whose container process is alive is an orphan: reported, never touched.
pub fn sweep(shared: &Shared, keep: &HashSet<String>) -> usize {
    let layout = &shared.layout;
    let mut ids: Vec<String> = ids_under(layout.run_containers());
    ids.extend(ids_under(layout.root.join("containers")));
    ids.sort();
    ids.dedup();
    let mut cleaned = 0;
    for id in ids.iter().filter(|id| !keep.contains(*id)) {
        let alive = runtime::read_run_files(&layout.run_container_dir(id))
            .ok()
            .and_then(|f| f.started)
            .is_some_and(|run| runtime::liveness(&run.process).is_alive());
        if alive {
            warn!(container_id = %short(id), "orphan: a live container has no record; left running");
            continue;
        }
        if layout.spec_file(id).exists() {
            // A spec without a record: never a finished removal (those drop the spec first).
            warn!(container_id = %short(id), "a container directory with a spec but no record: left as it is");
            continue;
        }
        match remove_files(shared, id, None) {
            Ok(()) => cleaned += 1,
            Err(e) => {
                warn!(container_id = %short(id), error = %e, "leftovers of a removed container not cleaned")
            }
        }
    }
    if cleaned > 0 {
        info!(cleaned, "cleaned the leftovers of removed containers");
    }
    cleaned
}
