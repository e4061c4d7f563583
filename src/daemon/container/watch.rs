//! Watching a run, and what its end means. The actor watches the shim (or, for an orphan,
//! the process) through a pidfd; when it fires, nothing is assumed: the run directory and
//! the identities are observed (off the actor thread: a runc container's `runc state` is a
//! subprocess) and classified by the reconciler's pure `classify`, the same function as at
//! start-up and in `moor admin inspect`. An exit is recorded only on evidence: the shim's
//! exit file, or the process verified gone by identity. A shim that died while its process
//! lives makes an orphan, never an exit: nothing starts a second copy while the first runs.
//! A pidfd that cannot be opened or polled for another reason than the process being gone
//! is replaced by a liveness poll of the identity.

use std::time::Duration;

use actix::prelude::*;
use moor_state::reconcile::{classify, Class, Observation};
use moor_state::{Event, ProcessIdentity, State};
use tracing::{info, warn};

use super::ContainerActor;
use crate::daemon::messages::ShimExited;

/// The period of the liveness poll that stands in for a pidfd that cannot be used.
const LIVENESS_POLL: Duration = Duration::from_secs(1);

impl ContainerActor {
    /// The process whose end the actor waits for: the shim of a managed run, the process
    /// of an orphan (its shim is gone or unreadable).
    fn watched(&self) -> Option<ProcessIdentity> {
        let run = self.record.state.run()?;
        Some(match self.record.state {
            State::Orphaned { .. } => run.process.clone(),
            _ => run.shim.clone(),
        })
    }

    /// Watches the current run; `ShimExited` arrives when the watched process ends.
    pub(super) fn watch(&mut self, ctx: &mut Context<Self>) {
        let Some(target) = self.watched() else {
            return;
        };
        match self.runtime.open(&target) {
            Ok(fd) => {
                let span = self.span.clone();
                let fut = fd.exited();
                ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
                    Ok(()) => ctx.notify(ShimExited),
                    Err(e) => {
                        warn!(parent: &span, error = %e, pid = target.pid, "cannot poll the pidfd: polling its identity instead");
                        act.poll_liveness(target, ctx);
                    }
                }));
            }
            Err(e) if self.runtime.liveness(&target).is_alive() => {
                warn!(parent: &self.span, error = %e, pid = target.pid, "cannot open a pidfd: polling its identity instead");
                self.poll_liveness(target, ctx);
            }
            Err(e) => {
                info!(parent: &self.span, error = %e, pid = target.pid, "watched process already gone");
                ctx.notify(ShimExited);
            }
        }
    }

    /// Checks `target`'s identity every [`LIVENESS_POLL`] while it is still the watched
    /// process; `ShimExited` once it is not alive.
    fn poll_liveness(&mut self, target: ProcessIdentity, ctx: &mut Context<Self>) {
        ctx.run_later(LIVENESS_POLL, move |act, ctx| {
            if act.watched().as_ref() != Some(&target) {
                return;
            }
            if act.runtime.liveness(&target).is_alive() {
                act.poll_liveness(target, ctx);
            } else {
                ctx.notify(ShimExited);
            }
        });
    }

    /// Watches again after an end that changed nothing, without ever spinning: the watched
    /// process if it lives; else, while the run's shim lives (it reaped the process and is
    /// writing the exit), a new look after [`LIVENESS_POLL`]; else nothing is left to
    /// watch, and the orphan waits for `moor admin`.
    fn rewatch(&mut self, ctx: &mut Context<Self>) {
        let Some(run) = self.record.state.run().cloned() else {
            return;
        };
        if self
            .watched()
            .is_some_and(|p| self.runtime.liveness(&p).is_alive())
        {
            return self.watch(ctx);
        }
        if self.runtime.liveness(&run.shim).is_alive() {
            ctx.notify_later(ShimExited, LIVENESS_POLL);
            return;
        }
        warn!(parent: &self.span, state = self.record.state.name(), "the run ended but its end cannot be classified: left for `moor admin inspect`");
    }

    /// Records what the observation shows, classified as the reconciler would.
    fn settle(&mut self, obs: Observation, ctx: &mut Context<Self>) {
        let before = self.watched();
        let class = classify(&self.record.state, &obs);
        info!(parent: &self.span, class = class.name(), state = self.record.state.name(), "watched process ended: classified");
        let event = match class {
            // Nothing new to record: a live shim will report, or the orphan stays one.
            Class::Resume(_) => return self.rewatch(ctx),
            Class::FinishRemoval | Class::Unchanged => return,
            Class::Orphan { .. } if matches!(self.record.state, State::Orphaned { .. }) => {
                return self.rewatch(ctx);
            }
            Class::Orphan { ref reason, .. } => {
                warn!(parent: &self.span, reason = %reason, "orphaned: the process runs without its shim; see `moor admin orphans`");
                class.event(obs.now)
            }
            Class::ExitedWhileDown(_) | Class::Lost { .. } => class.event(obs.now),
        };
        let Some(event) = event else { return };
        let ended = matches!(event, Event::Exited { .. } | Event::Lost { .. });
        if let Err(e) = self.apply(event) {
            warn!(parent: &self.span, error = %e, "end of the watched process not recorded");
            return;
        }
        if !ended {
            if self.watched() != before {
                self.watch(ctx);
            }
            return;
        }
        info!(parent: &self.span, exit_code = self.exit_code(), "exited");
        self.emit("die", &[("exitCode", self.exit_code().to_string())]);
        self.after_exit(ctx);
        if !matches!(self.record.state, State::Removing) {
            // After the waiters got their answer: off the path the user waits on.
            self.release_in_order(ctx);
        }
    }
}

impl Handler<ShimExited> for ContainerActor {
    type Result = ();

    fn handle(&mut self, _: ShimExited, ctx: &mut Context<Self>) {
        if self.record.state.run().is_none() {
            return;
        }
        let runtime = self.runtime.clone();
        let id = self.record.id.clone();
        let observed = tokio::task::spawn_blocking(move || runtime.observe(&id));
        // `wait`: nothing else runs on this container until its end is recorded.
        ctx.wait(observed.into_actor(self).map(|res, act, ctx| match res {
            Ok(obs) => act.settle(obs, ctx),
            Err(e) => {
                warn!(parent: &act.span, error = %e, "observing the run failed: watching again");
                act.watch(ctx);
            }
        }));
    }
}
