//! `pause` and `unpause` of the Container actor, and thawing a paused container that is
//! being stopped or killed (Docker signals a paused container, then resumes it so the
//! signal is delivered). Transition and persist first, then freeze or thaw; a freeze that
//! fails is rolled back, so the record never claims a state the process is not in.
//!
//! A freeze or thaw is the container's runtime's (for runc an async `runc pause` / `resume`):
//! the handlers answer with [`AtomicResponse`] (this container's next message waits for
//! it) while the thread every actor shares goes on serving the other containers.

use std::future::Future;

use actix::prelude::*;
use moor_state::{Event, Run, State};
use tracing::{info, warn};

use super::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{PauseContainer, UnpauseContainer};
use crate::host::signal::parse_signal;

/// Freeze or thaw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Freezer {
    /// `pause`.
    Freeze,
    /// `unpause`.
    Thaw,
}

impl ContainerActor {
    /// The freeze or thaw of the run's processes, as a future owning what it needs.
    pub(super) fn freezer(
        &self,
        action: Freezer,
        run: &Run,
    ) -> impl Future<Output = Result<(), ContainerError>> + 'static {
        let id = self.record.id.clone();
        let done = match action {
            Freezer::Freeze => self.runtime.pause(&id, &run.process),
            Freezer::Thaw => self.runtime.resume(&id, &run.process),
        };
        async move {
            done.await.map_err(|source| ContainerError::Freeze {
                action: match action {
                    Freezer::Freeze => "pause",
                    Freezer::Thaw => "unpause",
                },
                id,
                source,
            })
        }
    }

    /// Thaws `run` (its `Unpause` or `StopRequested` already recorded); ready once the thaw
    /// is done (`unpause` event sent) or failed.
    pub(super) fn thaw(&self, run: &Run) -> ResponseActFuture<Self, Result<(), ContainerError>> {
        Box::pin(
            self.freezer(Freezer::Thaw, run)
                .into_actor(self)
                .map(|res, act, _| {
                    res?;
                    info!(parent: &act.span, "unpaused");
                    act.emit("unpause", &[]);
                    Ok(())
                }),
        )
    }

    /// The run of a paused container (a stop thaws it right after `StopRequested`, before
    /// the signal: see [`Self::unpause_for_signal`]).
    pub(super) fn paused_run(&self) -> Option<Run> {
        match &self.record.state {
            State::Paused(run) => Some(run.clone()),
            _ => None,
        }
    }

    /// Before SIGKILL or the stop signal reaches a paused container: Docker resumes it so the
    /// signal lands. Thawed before the signal, not after: a fatal signal to a SIGSTOPped
    /// leader (process runtime) ends it at once, and its group could then not be thawed
    /// through its verified identity. Other signals leave it paused (they wait, pending).
    /// Ready at once when there is nothing to thaw; a failure is logged.
    pub(super) fn unpause_for_signal(&mut self, signal: i32) -> ResponseActFuture<Self, ()> {
        let stop_signal = parse_signal(&self.record.spec.stop_signal).unwrap_or(libc::SIGTERM);
        let run = match self.paused_run() {
            Some(run) if signal == libc::SIGKILL || signal == stop_signal => run,
            _ => return Box::pin(fut::ready(())),
        };
        if let Err(e) = self.apply(Event::Unpause) {
            warn!(parent: &self.span, error = %e, "cannot unpause for the kill");
            return Box::pin(fut::ready(()));
        }
        Box::pin(self.after_durable(self.thaw(&run)).map(|res, act, _| {
            if let Err(e) = res {
                warn!(parent: &act.span, error = %e, "cannot unpause for the kill");
            }
        }))
    }

    /// At actor start (daemon start): a paused record is frozen again, in case the daemon
    /// died between persisting the pause and freezing; a runc container recorded as running
    /// but frozen (died between persisting an unpause and thawing) is thawed. Awaited in
    /// order before this actor's first message, off the shared thread.
    pub(super) fn restore_freezer(&self, ctx: &mut Context<Self>) {
        let run = match &self.record.state {
            State::Paused(run) | State::Running(run) => run.clone(),
            _ => return,
        };
        let paused = matches!(self.record.state, State::Paused(_));
        let frozen = self.runtime.frozen(&self.record.id);
        let freeze = self.freezer(Freezer::Freeze, &run);
        let thaw = self.freezer(Freezer::Thaw, &run);
        let fixed = async move {
            let frozen = frozen.await;
            match (paused, frozen) {
                (true, Some(true)) => Ok(false),
                (true, _) => freeze.await.map(|()| false),
                (false, Some(true)) => thaw.await.map(|()| true),
                (false, _) => Ok(false),
            }
        };
        ctx.wait(fixed.into_actor(self).map(|res, act, _| match res {
            Ok(true) => {
                info!(parent: &act.span, "unpaused");
                act.emit("unpause", &[]);
            }
            Ok(false) => {}
            Err(e) => warn!(parent: &act.span, error = %e, "cannot restore the freezer state"),
        }));
    }
}

impl Handler<PauseContainer> for ContainerActor {
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, _: PauseContainer, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.apply(Event::Pause) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let State::Paused(run) = self.record.state.clone() else {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        };
        let freeze = self.freezer(Freezer::Freeze, &run);
        let undo = self.freezer(Freezer::Thaw, &run);
        let done = async move {
            let res = freeze.await;
            if res.is_err() {
                // Undo a partial freeze before the record says running again.
                let _ = undo.await;
            }
            res
        };
        let done = self.after_durable(Box::pin(done.into_actor(self)));
        AtomicResponse::new(Box::pin(done.map(|res, act, _| {
            if let Err(e) = res {
                if let Err(undo) = act.apply(Event::Unpause) {
                    warn!(parent: &act.span, error = %undo, "pause not rolled back");
                }
                return Err(e);
            }
            info!(parent: &act.span, "paused");
            act.emit("pause", &[]);
            Ok(())
        })))
    }
}

impl Handler<UnpauseContainer> for ContainerActor {
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, _: UnpauseContainer, _: &mut Context<Self>) -> Self::Result {
        let State::Paused(run) = self.record.state.clone() else {
            // Not paused: the transition says why.
            return AtomicResponse::new(Box::pin(fut::ready(self.apply(Event::Unpause))));
        };
        if let Err(e) = self.apply(Event::Unpause) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        AtomicResponse::new(Box::pin(self.after_durable(self.thaw(&run)).map(
            |res, act, _| {
                if res.is_err() {
                    // Still frozen: the record says so again, and the user may retry.
                    if let Err(undo) = act.apply(Event::Pause) {
                        warn!(parent: &act.span, error = %undo, "unpause not rolled back");
                    }
                }
                res
            },
        )))
    }
}
