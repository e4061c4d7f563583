//! A stop survives the daemon: its deadline is recorded with the `StopRequested` transition
//! (`ContainerRecord::stop_deadline`), so a daemon that finds a container still `Stopping`
//! at start-up sends the SIGKILL the previous one would have sent, when the deadline
//! passes, or at once if it already has.

use actix::prelude::*;
use chrono::Utc;
use moor_state::{Event, ProcessIdentity, State};
use tracing::{info, warn};

use super::{ContainerActor, DEFAULT_STOP_TIMEOUT};
use crate::daemon::error::ContainerError;
use crate::host::signal::parse_signal;

impl ContainerActor {
    /// The signal a stop sends first (the spec's `StopSignal`, SIGTERM by default).
    pub(super) fn stop_signal(&self) -> i32 {
        match self.record.spec.stop_signal.as_str() {
            "" => libc::SIGTERM,
            s => parse_signal(s).unwrap_or(libc::SIGTERM),
        }
    }

    /// The `StopRequested` transition with the time its SIGKILL is due, in one write.
    pub(super) fn apply_stop(
        &mut self,
        deadline: chrono::DateTime<Utc>,
    ) -> Result<(), ContainerError> {
        let next = moor_state::transition(&self.record.state, Event::StopRequested)?;
        let rec = self.record.with_state(next).with_stop_deadline(deadline);
        self.commit(&rec)?;
        info!(parent: &self.span, from = self.record.state.name(), deadline = %deadline, "state changed: stopping");
        self.record = rec;
        Ok(())
    }

    /// For a container found `Stopping` at start-up: arms the SIGKILL at the recorded
    /// deadline. The stop signal is not sent again: a process already shutting down may take
    /// a second SIGTERM as "quit now" and skip its graceful path; a crash in the moment
    /// between the recorded intent and the first signal costs the graceful stop, not the
    /// stop. A record from a build that did not record the deadline gets the container's stop
    /// timeout from now, recorded so that a second crash does not postpone it again.
    pub(super) fn resume_stop(&mut self, ctx: &mut Context<Self>) {
        let State::Stopping(run) = &self.record.state else {
            return;
        };
        let process = run.process.clone();
        let now = Utc::now();
        let deadline = match self.record.stop_deadline {
            Some(d) => d,
            None => {
                let secs = self
                    .record
                    .spec
                    .stop_timeout
                    .unwrap_or(DEFAULT_STOP_TIMEOUT);
                let d = now + chrono::Duration::seconds(secs.into());
                let rec = self.record.with_stop_deadline(d);
                if let Err(e) = self.commit(&rec) {
                    warn!(parent: &self.span, error = %e, "stop deadline not recorded");
                }
                self.record = rec;
                d
            }
        };
        let wait = (deadline - now).to_std().unwrap_or_default();
        info!(parent: &self.span, deadline = %deadline, wait_ms = wait.as_millis() as u64, "finishing a stop begun before the restart");
        ctx.run_later(wait, move |act, _| act.stop_deadline_passed(&process));
    }

    /// Sends `signal` to the container's process through a verified pidfd.
    fn signal_process(&self, signal: i32) -> Result<(), ContainerError> {
        let fd = self.process_pidfd()?;
        fd.signal(signal).map_err(|source| ContainerError::Signal {
            id: self.record.id.clone(),
            source,
        })
    }

    /// SIGKILL for the stop whose deadline passed, if that stop still goes on (same process).
    fn stop_deadline_passed(&mut self, process: &ProcessIdentity) {
        if !matches!(&self.record.state, State::Stopping(run) if run.process == *process) {
            return;
        }
        info!(parent: &self.span, "stop deadline passed: sending SIGKILL");
        match self.signal_process(libc::SIGKILL) {
            Ok(()) => self.emit("kill", &[("signal", libc::SIGKILL.to_string())]),
            Err(e) => warn!(parent: &self.span, error = %e, "SIGKILL at the stop deadline failed"),
        }
    }
}
