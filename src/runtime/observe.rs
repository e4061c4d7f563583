//! What the host shows of one container's run, for the reconciler at start, the container
//! actor when its watched process ends, and `moor admin` with the daemon down: the shim's run
//! files, the identities they name checked against /proc, and the OCI runtime's own state.

use chrono::Utc;
use moor_state::reconcile::{Observation, ObservedRun};
use moor_state::{Event, Exit};
use tracing::warn;

use crate::host::layout::Layout;
use crate::runtime;

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// What the host shows for one container's run directory.
pub fn observe(layout: &Layout, id: &str) -> Observation {
    let dir = layout.run_container_dir(id);
    let now = Utc::now();
    let files = match runtime::read_run_files(&dir) {
        Ok(f) => f,
        Err(e) => {
            warn!(container_id = %short(id), error = %e, "unreadable run files: treated as absent");
            runtime::RunFiles::default()
        }
    };
    Observation {
        started: files.started.map(|run| ObservedRun {
            shim: runtime::liveness(&run.shim),
            process: runtime::liveness(&run.process),
            run,
        }),
        exit: files.exit,
        unsupported_protocol: files.unsupported_protocol,
        runtime_state: runtime::runc::observed_state(&dir, id),
        runtime_missing: None,
        now,
    }
}

/// What the host shows for the container `rec` as it was started: its shim files in its
/// recorded run directory, and whether its recorded runtime binary is gone (README
/// "Changing daemon options"). For `moor admin` with the daemon down: the daemon's
/// per-container runtimes observe the same (`Runtimes::for_record`).
pub fn observe_recorded(layout: &Layout, rec: &moor_state::ContainerRecord) -> Observation {
    let mut obs = observe(&layout.as_recorded(rec), &rec.id);
    obs.runtime_missing = rec
        .settings
        .as_ref()
        .and_then(|s| s.runtime_path.clone())
        .filter(|path| !std::path::Path::new(path).is_file());
    obs
}

/// How a killed orphan ended: its shim's exit file when the shim wrote one, else death by
/// SIGKILL now. Used with the daemon down and by the running daemon's container actor.
pub fn killed_orphan_exit(layout: &Layout, id: &str) -> Event {
    match observe(layout, id).exit {
        Some(e) => Event::Exited {
            exit: e.exit,
            at: e.at,
        },
        None => Event::Exited {
            exit: Exit::Signal(libc::SIGKILL),
            at: Utc::now(),
        },
    }
}
