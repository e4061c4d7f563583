//! `moor admin adopt` and `moor admin kill-orphan` while the daemon runs (the daemon holds
//! the store, so `moor admin` asks it). The same rules as with the daemon down
//! (`src/admin/orphan.rs`): only an orphan whose process is alive is adopted (with a new
//! shim when its own is gone); a kill
//! goes through a pidfd opened after the identity check and records the end, from the
//! shim's exit file when it writes one, else as death by SIGKILL.

use std::time::Duration;

use actix::prelude::*;
use moor_state::{Event, State};
use tracing::info;

use super::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{AdoptOrphan, KillOrphan};
use crate::runtime::adopt::adoptable;
use crate::runtime::observe::killed_orphan_exit;

/// How long the shim may take to write the exit file after its process was killed.
const SHIM_EXIT_DEADLINE: Duration = Duration::from_secs(5);

impl ContainerActor {
    fn refused(&self, why: impl Into<String>) -> ContainerError {
        ContainerError::OrphanRefused {
            id: self.record.id.clone(),
            why: why.into(),
        }
    }

    fn require_orphan(&self) -> Result<(), ContainerError> {
        match &self.record.state {
            State::Orphaned { .. } => Ok(()),
            other => Err(self.refused(format!("not an orphan (state {})", other.name()))),
        }
    }
}

impl Handler<AdoptOrphan> for ContainerActor {
    // Atomic, off the actor thread: a new shim may be started and waited for.
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, _: AdoptOrphan, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.require_orphan() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let (layout, runtime) = (self.shared.layout_of(&self.record), self.runtime.clone());
        let id = self.record.id.clone();
        let adopt = tokio::task::spawn_blocking(move || {
            let obs = runtime.observe(&id);
            if let Some(v) = obs.unsupported_protocol {
                return Err(format!(
                    "its shim speaks protocol {v}, which this moor cannot read: upgrade moor, or kill-orphan"
                ));
            }
            // Managed under its recorded settings: their runtime binary must be back.
            if let Some(binary) = obs.runtime_missing {
                return Err(format!(
                    "its runtime binary {binary} is still missing: put it back, or kill-orphan"
                ));
            }
            let started = obs.started.ok_or("no started file in its run directory")?;
            adoptable(&layout, &id, started)
        });
        AtomicResponse::new(Box::pin(adopt.into_actor(self).map(|res, act, ctx| {
            let run = match res {
                Ok(Ok(run)) => run,
                Ok(Err(why)) => return Err(act.refused(why)),
                Err(e) => return Err(act.refused(format!("adoption did not finish: {e}"))),
            };
            act.apply(Event::Adopted(run))?;
            info!(parent: &act.span, "orphan adopted");
            // Adopted as running: one frozen before it became an orphan (a paused container
            // whose runtime binary was gone) is thawed to match.
            act.restore_freezer(ctx);
            act.watch(ctx);
            act.health_begin(ctx);
            Ok(())
        })))
    }
}

impl Handler<KillOrphan> for ContainerActor {
    // Atomic: the watch on the orphan's process sees it end too, and must not record a
    // `lost` before this records the kill.
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, _: KillOrphan, _: &mut Context<Self>) -> Self::Result {
        let prepared: Result<_, ContainerError> = (|| {
            self.require_orphan()?;
            let run = self
                .record
                .state
                .run()
                .cloned()
                .or_else(|| self.runtime.observe(&self.record.id).started.map(|o| o.run))
                .ok_or_else(|| self.refused("no recorded process to kill"))?;
            let signal_err = |source| ContainerError::Signal {
                id: self.record.id.clone(),
                source,
            };
            let process = match self.runtime.open(&run.process) {
                Ok(fd) => {
                    fd.signal(libc::SIGKILL).map_err(signal_err)?;
                    info!(parent: &self.span, pid = run.process.pid, "orphan killed");
                    Some(fd)
                }
                // Already gone (or the pid is another process now): nothing to signal.
                Err(_) => None,
            };
            let shim = self.runtime.open(&run.shim).ok();
            Ok((process, shim))
        })();
        let fut = async move {
            let (process, shim) = prepared?;
            if let Some(fd) = process {
                let _ = fd.exited().await;
            }
            if let Some(fd) = shim {
                let _ = tokio::time::timeout(SHIM_EXIT_DEADLINE, fd.exited()).await;
            }
            Ok::<_, ContainerError>(())
        };
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|res, act, ctx| {
            res?;
            let event = killed_orphan_exit(&act.shared.layout_of(&act.record), &act.record.id);
            act.apply(event)?;
            act.emit("die", &[("exitCode", act.exit_code().to_string())]);
            act.after_exit(ctx);
            if !matches!(act.record.state, State::Removing) {
                act.runtime.release_blocking(&act.record.id);
            }
            Ok(())
        })))
    }
}
