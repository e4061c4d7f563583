//! `moor admin adopt` and `moor admin kill-orphan`, with the daemon down. An orphan is a
//! record in state `Orphaned`, or one the reconciler would classify as an orphan.
//! Adopting needs the process alive with its recorded identity: a live shim then reports the
//! exit as usual; a shim that is gone is replaced by a new one (`moor-shim adopt`, which
//! traces the process to collect its exit status): event `Adopted`. Killing goes through a pidfd opened after the
//! identity check (a reused pid is never signalled) and records the end: `Exited` with the
//! shim's exit file when one appears, else `Exited` by SIGKILL.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use moor_state::reconcile::{classify, Class, Liveness, ObservedRun};
use moor_state::{ContainerRecord, Event, Exit, Run, State};

use crate::admin::{AdminError, Direct};
use crate::daemon::layout::Layout;
use crate::daemon::reconciler::observe;
use crate::identity::PidFd;
use crate::runtime;
use crate::shim::protocol::{self, Report};

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
    let obs = observe(&direct.layout, &rec.id);
    if !matches!(rec.state, State::Orphaned { .. }) {
        return Err(not_an_orphan(&rec, &classify(&rec.state, &obs)));
    }
    if let Some(v) = obs.unsupported_protocol {
        return Err(refused(&rec.id, format!("its shim speaks protocol {v}, which this moor cannot read: upgrade moor, or kill-orphan")));
    }
    let Some(started) = obs.started else {
        return Err(refused(&rec.id, "no started file in its run directory"));
    };
    let run = adoptable(&direct.layout, &rec.id, started).map_err(|why| refused(&rec.id, why))?;
    direct.apply(rec, Event::Adopted(run))
}

/// The run an orphan is adopted under: its own, when shim and process are alive; with a
/// new shim (started here) when only the process is; or why it cannot be adopted.
/// Used with the daemon down and by the running daemon's container actor.
pub fn adoptable(layout: &Layout, id: &str, started: ObservedRun) -> Result<Run, String> {
    match (started.shim, started.process) {
        (Liveness::Alive, Liveness::Alive) => Ok(started.run),
        (_, Liveness::Alive) => start_adopting_shim(layout, id),
        (shim, process) => Err(format!(
            "shim {shim:?}, process {process:?}: only a live process can be adopted; use kill-orphan"
        )),
    }
}

/// Starts `moor-shim adopt DIR` for an orphan whose shim is gone and returns the run it
/// recorded (the same process and `StartedAt`, the new shim), once it reported.
fn start_adopting_shim(layout: &Layout, id: &str) -> Result<Run, String> {
    let dir = layout.run_container_dir(id);
    let mut command = Command::new(&layout.shim_bin);
    for var in crate::daemon::notify::MANAGER_ENV {
        command.env_remove(var);
    }
    // The spawned process exits as soon as the shim detached; stdout reaches EOF once the
    // detached shim has reported.
    let out = command
        .arg("adopt")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("start {} adopt: {e}", layout.shim_bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().ok_or_else(|| {
        format!(
            "the new shim did not report (see {})",
            dir.join(protocol::SHIM_LOG_FILE).display()
        )
    })?;
    match serde_json::from_str::<Report>(line) {
        Ok(Report::Started(_)) => {}
        Ok(Report::Failed { error, .. }) => return Err(format!("the new shim failed: {error}")),
        Err(e) => return Err(format!("the new shim's report is unreadable: {e}")),
    }
    match observe(layout, id).started {
        Some(o) if o.shim.is_alive() && o.process.is_alive() => Ok(o.run),
        Some(o) => Err(format!(
            "after the new shim reported: shim {:?}, process {:?}",
            o.shim, o.process
        )),
        None => Err("the new shim left no started file".into()),
    }
}

/// The run an orphan's processes are recorded under, with the reconciler's class.
fn orphan_run(direct: &Direct, rec: &ContainerRecord) -> Result<moor_state::Run, AdminError> {
    let obs = observe(&direct.layout, &rec.id);
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
    let event = killed_orphan_exit(&direct.layout, &rec.id);
    direct.apply(rec, event)
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
