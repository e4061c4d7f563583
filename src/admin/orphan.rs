//! `moor admin adopt` and `moor admin kill-orphan`, with the daemon down. An orphan is a
//! record in state `Orphaned`, or one the reconciler would classify as an orphan.
//! Adopting needs the process alive with its recorded identity: a live shim then reports the
//! exit as usual; a shim that is gone is replaced by a new one (`moor-shim adopt`, which
//! traces the process to collect its exit status): event `Adopted`. Killing goes through a pidfd opened after the
//! identity check (a reused pid is never signalled) and records the end: `Exited` with the
//! shim's exit file when one appears, else `Exited` by SIGKILL.

use std::time::{Duration, Instant};

use moor_state::reconcile::{classify, Class};
use moor_state::{ContainerRecord, Event, State};

use crate::admin::{AdminError, Direct};
use crate::identity::PidFd;
use crate::runtime;
use crate::runtime::adopt::adoptable;
use crate::runtime::observe::{killed_orphan_exit, observe_recorded};

/// How long a killed process (and its shim's exit file) may take to appear gone.
const KILL_DEADLINE: Duration = Duration::from_secs(5);

fn refused(id: &str, why: impl Into<String>) -> AdminError {
    AdminError::Refused {
        id: id.to_string(),
        why: why.into(),
    }
}

/// The refusal for a container that is not an orphan, with what the next start does to it.
fn not_an_orphan(rec: &ContainerRecord, class: &Class) -> AdminError {
    refused(
        &rec.id,
        format!(
            "not an orphan (state {}; the next start does: {})",
            rec.state.name(),
            class.name()
        ),
    )
}

/// Makes an orphan managed again; returns the updated record.
pub fn adopt(direct: &Direct, key: &str) -> Result<ContainerRecord, AdminError> {
    let rec = direct.find(key)?;
    let obs = observe_recorded(&direct.layout, &rec);
    if !matches!(rec.state, State::Orphaned { .. }) {
        return Err(not_an_orphan(&rec, &classify(&rec.state, &obs)));
    }
    if let Some(v) = obs.unsupported_protocol {
        return Err(refused(&rec.id, format!("its shim speaks protocol {v}, which this moor cannot read: upgrade moor, or kill-orphan")));
    }
    if let Some(binary) = obs.runtime_missing {
        return Err(refused(
            &rec.id,
            format!("its runtime binary {binary} is still missing: put it back, or kill-orphan"),
        ));
    }
    let Some(started) = obs.started else {
        return Err(refused(&rec.id, "no started file in its run directory"));
    };
    let layout = direct.layout.as_recorded(&rec);
    let run = adoptable(&layout, &rec.id, started).map_err(|why| refused(&rec.id, why))?;
    direct.apply(rec, Event::Adopted(run))
}

/// The run an orphan's processes are recorded under, with the reconciler's class.
fn orphan_run(direct: &Direct, rec: &ContainerRecord) -> Result<moor_state::Run, AdminError> {
    let obs = observe_recorded(&direct.layout, rec);
    let class = classify(&rec.state, &obs);
    let orphaned =
        matches!(rec.state, State::Orphaned { .. }) || matches!(class, Class::Orphan { .. });
    if !orphaned {
        return Err(not_an_orphan(rec, &class));
    }
    rec.state
        .run()
        .cloned()
        .or(obs.started.map(|o| o.run))
        .ok_or_else(|| refused(&rec.id, "no recorded process to kill"))
}

/// Kills an orphan's process through a verified pidfd and records its end.
pub fn kill_orphan(direct: &Direct, key: &str) -> Result<ContainerRecord, AdminError> {
    let rec = direct.find(key)?;
    let run = orphan_run(direct, &rec)?;
    let kill_err = |source| AdminError::Kill {
        id: rec.id.clone(),
        pid: run.process.pid,
        source,
    };
    if runtime::liveness(&run.process).is_alive() {
        let fd = PidFd::open_verified(&runtime::from_identity(&run.process)).map_err(kill_err)?;
        fd.send_signal(libc::SIGKILL).map_err(kill_err)?;
    }
    let end = Instant::now() + KILL_DEADLINE;
    let shim_alive = || runtime::liveness(&run.shim).is_alive();
    while runtime::liveness(&run.process).is_alive() || shim_alive() {
        if Instant::now() > end {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if runtime::liveness(&run.process).is_alive() {
        return Err(refused(&rec.id, "the process survived SIGKILL"));
    }
    let event = killed_orphan_exit(&direct.layout.as_recorded(&rec), &rec.id);
    direct.apply(rec, event)
}
