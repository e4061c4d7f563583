//! Adopting an orphan: a container process whose daemon record was lost or whose shim is
//! gone gets a run the daemon can manage again (its own live shim, or a new `moor-shim
//! adopt` that traces the process for its exit status). Used with the daemon down by
//! `moor admin adopt` and by the running daemon's container actor. Blocking.

use std::process::{Command, Stdio};

use moor_state::reconcile::{Liveness, ObservedRun};
use moor_state::Run;

use crate::host::layout::Layout;
use crate::runtime::observe::observe;
use crate::shim::protocol::{self, Report};

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
    for var in crate::host::MANAGER_ENV {
        command.env_remove(var);
    }
    crate::host::limits::inherit_nofile(&mut command);
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
