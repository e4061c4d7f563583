//! `pause` and `unpause` of the Container actor, and thawing a paused container that is
//! being stopped or killed (Docker signals a paused container, then resumes it so the
//! signal is delivered). Transition and persist first, then freeze or thaw; a freeze that
//! fails is rolled back, so the record never claims a state the process is not in.

use actix::prelude::*;
use moor_state::record::RuntimeKind;
use moor_state::{Event, Run, State};
use tracing::{info, warn};

use super::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{PauseContainer, UnpauseContainer};
use crate::daemon::signal::parse_signal;
use crate::runtime::freeze;

impl ContainerActor {
    /// Freezes the run's processes.
    fn freeze(&self, run: &Run) -> Result<(), ContainerError> {
        let shared = &self.shared;
        freeze::pause(
            self.record.spec.runtime,
            shared.runc.as_ref(),
            &self.record.id,
            &run.process,
        )
        .map_err(|source| ContainerError::Freeze {
            action: "pause",
            id: self.record.id.clone(),
            source,
        })
    }

    /// Thaws the run's processes and tells `/events`.
    pub(super) fn thaw(&self, run: &Run) -> Result<(), ContainerError> {
        let shared = &self.shared;
        freeze::resume(
            self.record.spec.runtime,
            shared.runc.as_ref(),
            &self.record.id,
            &run.process,
        )
        .map_err(|source| ContainerError::Freeze {
            action: "unpause",
            id: self.record.id.clone(),
            source,
        })?;
        info!(parent: &self.span, "unpaused");
        self.emit("unpause", &[]);
        Ok(())
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
    pub(super) fn unpause_for_signal(&mut self, signal: i32) {
        let stop_signal = parse_signal(&self.record.spec.stop_signal).unwrap_or(libc::SIGTERM);
        if signal != libc::SIGKILL && signal != stop_signal {
            return;
        }
        let Some(run) = self.paused_run() else {
            return;
        };
        let thawed = self.apply(Event::Unpause).and_then(|()| self.thaw(&run));
        if let Err(e) = thawed {
            warn!(parent: &self.span, error = %e, "cannot unpause for the kill");
        }
    }

    /// At actor start (daemon start): a paused record is frozen again, in case the daemon
    /// died between persisting the pause and freezing; a runc container recorded as running
    /// but frozen (died between persisting an unpause and thawing) is thawed.
    pub(super) fn restore_freezer(&self) {
        let runc = self.record.spec.runtime == RuntimeKind::Runc;
        let fixed = match &self.record.state {
            State::Paused(run) if !runc => self.freeze(run),
            State::Paused(run) => {
                match freeze::runc_paused(self.shared.runc.as_ref(), &self.record.id) {
                    Some(true) => Ok(()),
                    _ => self.freeze(run),
                }
            }
            State::Running(run) if runc => {
                match freeze::runc_paused(self.shared.runc.as_ref(), &self.record.id) {
                    Some(true) => self.thaw(run),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        };
        if let Err(e) = fixed {
            warn!(parent: &self.span, error = %e, "cannot restore the freezer state");
        }
    }
}

impl Handler<PauseContainer> for ContainerActor {
    type Result = Result<(), ContainerError>;

    fn handle(&mut self, _: PauseContainer, _: &mut Context<Self>) -> Self::Result {
        self.apply(Event::Pause)?;
        let State::Paused(run) = self.record.state.clone() else {
            return Ok(());
        };
        if let Err(e) = self.freeze(&run) {
            // Undo a partial freeze, then the record.
            let _ = freeze::resume(
                self.record.spec.runtime,
                self.shared.runc.as_ref(),
                &self.record.id,
                &run.process,
            );
            if let Err(undo) = self.apply(Event::Unpause) {
                warn!(parent: &self.span, error = %undo, "pause not rolled back");
            }
            return Err(e);
        }
        info!(parent: &self.span, "paused");
        self.emit("pause", &[]);
        Ok(())
    }
}

impl Handler<UnpauseContainer> for ContainerActor {
    type Result = Result<(), ContainerError>;

    fn handle(&mut self, _: UnpauseContainer, _: &mut Context<Self>) -> Self::Result {
        let State::Paused(run) = self.record.state.clone() else {
            // Not paused: the transition says why.
            return self.apply(Event::Unpause);
        };
        self.apply(Event::Unpause)?;
        if let Err(e) = self.thaw(&run) {
            // Still frozen: the record says so again, and the user may retry.
            if let Err(undo) = self.apply(Event::Pause) {
                warn!(parent: &self.span, error = %undo, "unpause not rolled back");
            }
            return Err(e);
        }
        Ok(())
    }
}
