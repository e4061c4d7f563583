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
    /// Stop of a container that does not run.
    #[error("container is not running")]
    NotRunning,
    /// Remove of a running container.
    #[error("container is running: stop the container before removing or force remove")]
    RunningCannotRemove,
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
            State::Stopping(_) => "stopping",
            State::Exited { .. } => "exited",
            State::Removing => "removing",
            State::Orphaned { .. } => "orphaned",
        }
    }

    /// Docker's `State.Status` word for this state.
    pub fn docker_status(&self) -> &'static str {
        match self {
            State::Created | State::Starting => "created",
            State::Running(_) | State::Stopping(_) | State::Orphaned { .. } => "running",
            State::Exited { .. } => "exited",
            State::Removing => "removing",
        }
    }

    /// The current run, while a process is alive (or believed to be).
    pub fn run(&self) -> Option<&Run> {
        match self {
            State::Running(run) | State::Stopping(run) => Some(run),
            State::Orphaned { run, .. } => run.as_ref(),
            State::Created | State::Starting | State::Exited { .. } | State::Removing => None,
        }
    }

    /// When the last run started (Docker's `State.StartedAt`).
    pub fn started_at(&self) -> Option<Timestamp> {
        match self {
            State::Exited { started_at, .. } => *started_at,
            other => other.run().map(|r| r.started_at),
        }
    }

    /// Whether a signal may be sent to its process: the run to signal, or why not.
    /// Signals are not transitions, but whether one is allowed is decided here too.
    pub fn signal_target(&self) -> Result<&Run, TransitionError> {
        match self {
            State::Running(run) | State::Stopping(run) => Ok(run),
            State::Orphaned { reason, .. } => Err(TransitionError::Orphaned {
                reason: reason.clone(),
            }),
            State::Removing => Err(TransitionError::BeingRemoved),
            State::Created | State::Starting | State::Exited { .. } => {
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
        (S::Created | S::Exited { .. }, E::StartRequested) => Ok(S::Starting),
        (S::Starting | S::Running(_) | S::Stopping(_), E::StartRequested) => {
            Err(TransitionError::AlreadyRunning)
        }
        (S::Starting, E::Started(run)) => Ok(S::Running(run)),
        (S::Starting, E::StartFailed { code, error, at }) => {
            Ok(exited(None, Some(Exit::Code(code)), error, at))
        }

        // Stopping.
        (S::Running(run) | S::Stopping(run), E::StopRequested) => Ok(S::Stopping(run.clone())),
        (S::Created | S::Starting | S::Exited { .. }, E::StopRequested) => {
            Err(TransitionError::NotRunning)
        }

        // The process ended. Created and Starting accept it for records rebuilt
        // from their spec file, or a daemon that died before it saw `Started`.
        (S::Running(run) | S::Stopping(run), E::Exited { exit, at }) => {
            Ok(exited(Some(run), Some(exit), String::new(), at))
        }
        (S::Created | S::Starting, E::Exited { exit, at }) => {
            Ok(exited(None, Some(exit), String::new(), at))
        }
        (S::Orphaned { run, .. }, E::Exited { exit, at }) => {
            Ok(exited(run.as_ref(), Some(exit), String::new(), at))
        }
        (S::Running(run) | S::Stopping(run), E::Lost { reason, at }) => {
            Ok(exited(Some(run), None, reason, at))
        }
        (S::Starting, E::Lost { reason, at }) => Ok(exited(None, None, reason, at)),
        (S::Orphaned { run, .. }, E::Lost { reason, at }) => {
            Ok(exited(run.as_ref(), None, reason, at))
        }

        // Removing.
        (S::Created | S::Exited { .. } | S::Removing, E::RemoveRequested) => Ok(S::Removing),
        (S::Starting | S::Running(_) | S::Stopping(_), E::RemoveRequested) => {
            Err(TransitionError::RunningCannotRemove)
        }

        // The reconciler.
        (S::Created | S::Starting | S::Running(_) | S::Stopping(_), E::Resumed(run)) => {
            Ok(S::Running(run))
        }
        (
            S::Created | S::Starting | S::Running(_) | S::Stopping(_) | S::Exited { .. },
            E::Orphaned { reason, run },
        ) => Ok(S::Orphaned { reason, run }),
        (S::Orphaned { .. }, E::Orphaned { reason, run }) => Ok(S::Orphaned { reason, run }),
        (S::Orphaned { .. }, E::Adopted(run)) => Ok(S::Running(run)),

        // Everything a removal or an orphan refuses.
        (S::Removing, event) => match event {
            E::StartRequested | E::StopRequested => Err(TransitionError::BeingRemoved),
            other => Err(invalid(&other)),
        },
        (S::Orphaned { reason, .. }, E::StartRequested | E::StopRequested | E::RemoveRequested) => {
            Err(TransitionError::Orphaned {
                reason: reason.clone(),
            })
        }

        // Reports that do not fit the state: a stale or duplicate report.
        (S::Created | S::Running(_) | S::Stopping(_) | S::Exited { .. }, e @ E::Started(_))
        | (
            S::Created | S::Running(_) | S::Stopping(_) | S::Exited { .. },
            e @ E::StartFailed { .. },
        )
        | (S::Exited { .. }, e @ E::Exited { .. })
        | (S::Created | S::Exited { .. }, e @ E::Lost { .. })
        | (S::Exited { .. } | S::Orphaned { .. }, e @ E::Resumed(_))
        | (
            S::Created | S::Starting | S::Running(_) | S::Stopping(_) | S::Exited { .. },
            e @ E::Adopted(_),
        )
        | (S::Orphaned { .. }, e @ (E::Started(_) | E::StartFailed { .. })) => Err(invalid(&e)),
    }
}
