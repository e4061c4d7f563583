//! The container state machine: [`transition`] is the only place that says which
//! state changes exist. Pure: no I/O, no clock (times come in with the events).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::event::Event;
use crate::record::{Exit, ProcessIdentity, Timestamp};

/// One run of a container: the shim that watches it and the process it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The moor-shim process supervising the container.
    pub shim: ProcessIdentity,
    /// The container's init process (what stop and kill signal).
    pub process: ProcessIdentity,
    /// When the shim started it: survives daemon restarts unchanged.
    pub started_at: Timestamp,
}

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Created, never started.
    Created,
    /// The shim is being started.
    Starting,
    /// Its process runs under a shim.
    Running(Run),
    /// Frozen by a client's pause (cgroup freezer, or SIGSTOP for the process runtime).
    Paused(Run),
    /// A stop was asked; the process still runs.
    Stopping(Run),
    /// The process ended.
    Exited {
        /// How, when known (`None`: lost, e.g. after a reboot).
        exit: Option<Exit>,
        /// Why it ended abnormally or could not start (Docker's `State.Error`); empty if not.
        error: String,
        /// When its last run started, if it ever did.
        started_at: Option<Timestamp>,
        /// When it ended.
        finished_at: Timestamp,
    },
    /// Ended, and its restart policy starts it again after a back-off (Docker's
    /// `restarting`): the fields are those of the run that ended, as in `Exited`.
    Restarting {
        /// How the last run ended, when known.
        exit: Option<Exit>,
        /// Why it ended abnormally or could not start; empty if not.
        error: String,
        /// When its last run started, if it ever did.
        started_at: Option<Timestamp>,
        /// When it ended.
        finished_at: Timestamp,
    },
    /// Being removed: the record goes once its files are gone.
    Removing,
    /// A live process moor cannot manage; never killed silently.
    Orphaned {
        /// Why moor cannot manage it.
        reason: String,
        /// The run, when one is known.
        run: Option<Run>,
    },
}

/// A transition that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransitionError {
    /// Start of a running container.
    #[error("container is already running")]
    AlreadyRunning,
    /// Stop or pause of a container that does not run.
    #[error("container is not running")]
    NotRunning,
    /// Pause of a paused container.
    #[error("container is already paused")]
    AlreadyPaused,
    /// Unpause of a container that is not paused.
    #[error("container is not paused")]
    NotPaused,
    /// Start of a paused container (Docker's text).
    #[error("cannot start a paused container, try unpause instead")]
    PausedCannotStart,
    /// Remove of a running container.
    #[error("container is running: stop the container before removing or force remove")]
    RunningCannotRemove,
    /// Remove of a container waiting to be restarted by its policy (Docker's text).
    #[error("you cannot remove a restarting container: stop the container before attempting removal or force remove")]
    RestartingCannotRemove,
    /// Pause or unpause of a container waiting to be restarted (Docker's text).
    #[error("container is restarting, wait until the container is running")]
    Restarting,
    /// Any request while it is being removed.
    #[error("removal of container is already in progress")]
    BeingRemoved,
    /// A request for an orphan, which only `moor admin` handles.
    #[error("container is orphaned ({reason}): use `moor admin orphans` to adopt or kill it")]
    Orphaned {
        /// Why it is an orphan.
        reason: String,
    },
    /// An event that makes no sense in this state (a daemon or shim bug, or a stale report).
    #[error("event {event} is not valid in state {state}")]
    Invalid {
        /// The state's name.
        state: &'static str,
        /// The event's name.
        event: &'static str,
    },
}

impl State {
    /// A short name for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            State::Created => "created",
            State::Starting => "starting",
            State::Running(_) => "running",
            State::Paused(_) => "paused",
            State::Stopping(_) => "stopping",
            State::Exited { .. } => "exited",
            State::Restarting { .. } => "restarting",
            State::Removing => "removing",
            State::Orphaned { .. } => "orphaned",
        }
    }

    /// Whether its last run has ended and none runs (exited, or waiting for its restart).
    pub fn is_ended(&self) -> bool {
        matches!(self, State::Exited { .. } | State::Restarting { .. })
    }

    /// Docker's `State.Status` word for this state.
    pub fn docker_status(&self) -> &'static str {
        match self {
            State::Created | State::Starting => "created",
            State::Running(_) | State::Stopping(_) | State::Orphaned { .. } => "running",
            State::Paused(_) => "paused",
            State::Exited { .. } => "exited",
            State::Restarting { .. } => "restarting",
            State::Removing => "removing",
        }
    }

    /// The current run, while a process is alive (or believed to be).
    pub fn run(&self) -> Option<&Run> {
        match self {
            State::Running(run) | State::Paused(run) | State::Stopping(run) => Some(run),
            State::Orphaned { run, .. } => run.as_ref(),
            State::Created
            | State::Starting
            | State::Exited { .. }
            | State::Restarting { .. }
            | State::Removing => None,
        }
    }

    /// When the last run started (Docker's `State.StartedAt`).
    pub fn started_at(&self) -> Option<Timestamp> {
        match self {
            State::Exited { started_at, .. } | State::Restarting { started_at, .. } => *started_at,
            other => other.run().map(|r| r.started_at),
        }
    }

    /// Whether a signal may be sent to its process: the run to signal, or why not.
    /// Signals are not transitions, but whether one is allowed is decided here too.
    /// A paused container may be signalled (Docker's `kill` of a paused container).
    pub fn signal_target(&self) -> Result<&Run, TransitionError> {
        match self {
            State::Running(run) | State::Paused(run) | State::Stopping(run) => Ok(run),
            State::Orphaned { reason, .. } => Err(TransitionError::Orphaned {
                reason: reason.clone(),
            }),
            State::Removing => Err(TransitionError::BeingRemoved),
            State::Created | State::Starting | State::Exited { .. } | State::Restarting { .. } => {
                Err(TransitionError::NotRunning)
            }
        }
    }
}

fn exited(run: Option<&Run>, exit: Option<Exit>, error: String, at: Timestamp) -> State {
    State::Exited {
        exit,
        error,
        started_at: run.map(|r| r.started_at),
        finished_at: at,
    }
}

/// The state after `event` happens in `state`, or why that cannot be.
pub fn transition(state: &State, event: Event) -> Result<State, TransitionError> {
    use Event as E;
    use State as S;
    let invalid = |event: &Event| TransitionError::Invalid {
        state: state.name(),
        event: event.name(),
    };
    match (state, event) {
        // Starting.
        (S::Created | S::Exited { .. } | S::Restarting { .. }, E::StartRequested) => {
            Ok(S::Starting)
        }
        (S::Starting | S::Running(_) | S::Stopping(_), E::StartRequested) => {
            Err(TransitionError::AlreadyRunning)
        }
        (S::Paused(_), E::StartRequested) => Err(TransitionError::PausedCannotStart),
        (S::Starting, E::Started(run)) => Ok(S::Running(run)),
        (S::Starting, E::StartFailed { code, error, at }) => {
            Ok(exited(None, Some(Exit::Code(code)), error, at))
        }

        // Pausing. A stopping container is on its way out: it is not paused.
        (S::Running(run), E::Pause) => Ok(S::Paused(run.clone())),
        (S::Paused(_), E::Pause) => Err(TransitionError::AlreadyPaused),
        (S::Created | S::Starting | S::Stopping(_) | S::Exited { .. }, E::Pause) => {
            Err(TransitionError::NotRunning)
        }
        (S::Paused(run), E::Unpause) => Ok(S::Running(run.clone())),
        (
            S::Created | S::Starting | S::Running(_) | S::Stopping(_) | S::Exited { .. },
            E::Unpause,
        ) => Err(TransitionError::NotPaused),

        // Stopping. A paused container is signalled, then thawed (Docker's way).
        (S::Running(run) | S::Paused(run) | S::Stopping(run), E::StopRequested) => {
            Ok(S::Stopping(run.clone()))
        }
        (S::Created | S::Starting | S::Exited { .. }, E::StopRequested) => {
            Err(TransitionError::NotRunning)
        }

        // The process ended. Created and Starting accept it for records rebuilt
        // from their spec file, or a daemon that died before it saw `Started`.
        (S::Running(run) | S::Paused(run) | S::Stopping(run), E::Exited { exit, at }) => {
            Ok(exited(Some(run), Some(exit), String::new(), at))
        }
        (S::Created | S::Starting, E::Exited { exit, at }) => {
            Ok(exited(None, Some(exit), String::new(), at))
        }
        (S::Orphaned { run, .. }, E::Exited { exit, at }) => {
            Ok(exited(run.as_ref(), Some(exit), String::new(), at))
        }
        (S::Running(run) | S::Paused(run) | S::Stopping(run), E::Lost { reason, at }) => {
            Ok(exited(Some(run), None, reason, at))
        }
        // Created: a record rebuilt from its spec file whose run is gone.
        (S::Created | S::Starting, E::Lost { reason, at }) => Ok(exited(None, None, reason, at)),
        (S::Orphaned { run, .. }, E::Lost { reason, at }) => {
            Ok(exited(run.as_ref(), None, reason, at))
        }

        // A restart policy's back-off: a stop ends it, a removal needs the stop first.
        (
            S::Exited {
                exit,
                error,
                started_at,
                finished_at,
            },
            E::RestartScheduled,
        ) => Ok(S::Restarting {
            exit: *exit,
            error: error.clone(),
            started_at: *started_at,
            finished_at: *finished_at,
        }),
        (
            S::Restarting {
                exit,
                error,
                started_at,
                finished_at,
            },
            E::StopRequested,
        ) => Ok(S::Exited {
            exit: *exit,
            error: error.clone(),
            started_at: *started_at,
            finished_at: *finished_at,
        }),
        (S::Restarting { .. }, E::RemoveRequested) => Err(TransitionError::RestartingCannotRemove),
        (S::Restarting { .. }, E::Pause | E::Unpause) => Err(TransitionError::Restarting),

        // Removing.
        (S::Created | S::Exited { .. } | S::Removing, E::RemoveRequested) => Ok(S::Removing),
        (S::Starting | S::Running(_) | S::Paused(_) | S::Stopping(_), E::RemoveRequested) => {
            Err(TransitionError::RunningCannotRemove)
        }

        // The reconciler.
        // An orphan whose shim this daemon can read again (e.g. after an upgrade) is resumed.
        (S::Created | S::Starting | S::Running(_) | S::Orphaned { .. }, E::Resumed(run)) => {
            Ok(S::Running(run))
        }
        // A paused container's process is still frozen after a daemon restart.
        (S::Paused(_), E::Resumed(run)) => Ok(S::Paused(run)),
        // A stop cut short by a daemon crash is still a stop: the next daemon finishes it
        // (SIGKILL at the deadline recorded with the record, see `ContainerRecord`).
        (S::Stopping(_), E::Resumed(run)) => Ok(S::Stopping(run)),
        (
            S::Created
            | S::Starting
            | S::Running(_)
            | S::Paused(_)
            | S::Stopping(_)
            | S::Exited { .. }
            | S::Restarting { .. },
            E::Orphaned { reason, run },
        ) => Ok(S::Orphaned { reason, run }),
        (S::Orphaned { .. }, E::Orphaned { reason, run }) => Ok(S::Orphaned { reason, run }),
        (S::Orphaned { .. }, E::Adopted(run)) => Ok(S::Running(run)),

        // Everything a removal or an orphan refuses.
        (S::Removing, event) => match event {
            E::StartRequested | E::StopRequested | E::Pause | E::Unpause => {
                Err(TransitionError::BeingRemoved)
            }
            other => Err(invalid(&other)),
        },
        (
            S::Orphaned { reason, .. },
            E::StartRequested | E::StopRequested | E::RemoveRequested | E::Pause | E::Unpause,
        ) => Err(TransitionError::Orphaned {
            reason: reason.clone(),
        }),
        // Only an exited container waits for its policy's restart.
        (
            S::Created
            | S::Starting
            | S::Running(_)
            | S::Paused(_)
            | S::Stopping(_)
            | S::Restarting { .. }
            | S::Orphaned { .. },
            e @ E::RestartScheduled,
        ) => Err(invalid(&e)),

        // Reports that do not fit the state: a stale or duplicate report.
        (
            S::Created | S::Running(_) | S::Paused(_) | S::Stopping(_) | S::Exited { .. },
            e @ (E::Started(_) | E::StartFailed { .. }),
        )
        | (S::Exited { .. }, e @ E::Exited { .. })
        | (S::Exited { .. }, e @ E::Lost { .. })
        | (S::Exited { .. }, e @ E::Resumed(_))
        | (
            S::Restarting { .. },
            e @ (E::Started(_)
            | E::StartFailed { .. }
            | E::Exited { .. }
            | E::Lost { .. }
            | E::Resumed(_)
            | E::Adopted(_)),
        )
        | (
            S::Created
            | S::Starting
            | S::Running(_)
            | S::Paused(_)
            | S::Stopping(_)
            | S::Exited { .. },
            e @ E::Adopted(_),
        )
        | (S::Orphaned { .. }, e @ (E::Started(_) | E::StartFailed { .. })) => Err(invalid(&e)),
    }
}

#[cfg(test)]
mod tests;
