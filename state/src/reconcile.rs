//! The reconciler's decision, as a pure function: a recovered record plus what the
//! daemon observed on the host in, one [`Class`] out. The daemon acts on it; `moor
//! admin inspect` prints it as a dry run. Unit-tested with the facts given as data.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::machine::{Run, State};
use crate::record::{Exit, Timestamp};

/// The result of checking a recorded process identity against /proc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// A process with this pid, start time and boot id runs.
    Alive,
    /// No process has this pid (or the boot id differs: the host rebooted).
    Gone,
    /// The pid runs, but it is another process (start time differs): never signalled.
    Reused,
}

impl Liveness {
    /// Whether it is the recorded process, alive.
    pub fn is_alive(self) -> bool {
        self == Liveness::Alive
    }
}

/// A run found in the container's run directory (the shim's `started` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRun {
    /// The run as the shim wrote it.
    pub run: Run,
    /// Whether the shim is still that process.
    pub shim: Liveness,
    /// Whether the container process is still that process.
    pub process: Liveness,
}

/// An exit status found in the container's run directory (the shim's `exit` file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedExit {
    /// How the process ended.
    pub exit: Exit,
    /// When the shim reaped it.
    pub at: Timestamp,
}

/// Everything the daemon looked at for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The shim's started file, if present and readable.
    pub started: Option<ObservedRun>,
    /// The shim's exit file, if present and readable.
    pub exit: Option<ObservedExit>,
    /// Set when the run directory holds files of a shim protocol this daemon cannot read.
    pub unsupported_protocol: Option<u32>,
    /// When the observation was made (the time of a `Lost`).
    pub now: Timestamp,
}

/// What the reconciler does with one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Shim and process alive, identities match: watched again, same pid and StartedAt.
    Resume(Run),
    /// The shim finished while the daemon was away and left the exit status.
    ExitedWhileDown(ObservedExit),
    /// Nothing alive and no exit file: the end is unknown.
    Lost {
        /// Why, for logs and `State.Error`.
        reason: String,
    },
    /// A live process moor cannot manage: left running, listed for the admin.
    Orphan {
        /// Why, for logs and `moor admin orphans`.
        reason: String,
        /// The run, when known.
        run: Option<Run>,
    },
    /// A removal was under way: finish it.
    FinishRemoval,
    /// Nothing to do (created and never started, or exited before).
    Unchanged,
}

impl Class {
    /// A short name for the one log line per container.
    pub fn name(&self) -> &'static str {
        match self {
            Class::Resume(_) => "resume",
            Class::ExitedWhileDown(_) => "exited-while-down",
            Class::Lost { .. } => "lost",
            Class::Orphan { .. } => "orphan",
            Class::FinishRemoval => "finish-removal",
            Class::Unchanged => "unchanged",
        }
    }

    /// The event that applies this class to the record, if it changes the state.
    pub fn event(&self, now: Timestamp) -> Option<Event> {
        match self {
            Class::Resume(run) => Some(Event::Resumed(run.clone())),
            Class::ExitedWhileDown(e) => Some(Event::Exited {
                exit: e.exit,
                at: e.at,
            }),
            Class::Lost { reason } => Some(Event::Lost {
                reason: reason.clone(),
                at: now,
            }),
            Class::Orphan { reason, run } => Some(Event::Orphaned {
                reason: reason.clone(),
                run: run.clone(),
            }),
            Class::FinishRemoval | Class::Unchanged => None,
        }
    }
}

/// Classifies one recovered container. See DESIGN.md, "reconciler".
pub fn classify(state: &State, obs: &Observation) -> Class {
    if matches!(state, State::Removing) {
        return Class::FinishRemoval;
    }
    if let Some(version) = obs.unsupported_protocol {
        if matches!(state, State::Exited { .. } | State::Created) && obs.started.is_none() {
            return Class::Unchanged;
        }
        return Class::Orphan {
            reason: format!("shim protocol version {version} is not supported by this daemon"),
            run: obs.started.as_ref().map(|o| o.run.clone()),
        };
    }
    match &obs.started {
        Some(o) => classify_run(state, o, obs.exit),
        None => classify_without_run(state, obs.exit),
    }
}

fn classify_run(state: &State, o: &ObservedRun, exit: Option<ObservedExit>) -> Class {
    let shim_alive = o.shim.is_alive();
    let process_alive = o.process.is_alive();
    if let State::Exited { .. } = state {
        // The record says it ended; only a live process contradicts that.
        return if process_alive {
            Class::Orphan {
                reason: "process alive but the record says it exited".into(),
                run: Some(o.run.clone()),
            }
        } else {
            Class::Unchanged
        };
    }
    if shim_alive {
        // A live shim reports the exit itself, even when the process just ended.
        return Class::Resume(o.run.clone());
    }
    if let Some(e) = exit {
        return Class::ExitedWhileDown(e);
    }
    if process_alive {
        return Class::Orphan {
            reason: "shim gone while the process runs: its exit cannot be collected".into(),
            run: Some(o.run.clone()),
        };
    }
    Class::Lost {
        reason: match (o.shim, o.process) {
            (Liveness::Reused, _) | (_, Liveness::Reused) => {
                "shim and process gone without an exit status (pid reused since)".into()
            }
            _ => "shim and process gone without an exit status".into(),
        },
    }
}

fn classify_without_run(state: &State, exit: Option<ObservedExit>) -> Class {
    match (state, exit) {
        (State::Exited { .. } | State::Created, _) => Class::Unchanged,
        (_, Some(e)) => Class::ExitedWhileDown(e),
        (State::Starting, None) => Class::Lost {
            reason: "the daemon stopped while starting it, and no shim reported".into(),
        },
        (State::Orphaned { .. }, None) => Class::Lost {
            reason: "the orphaned process is gone without an exit status".into(),
        },
        (_, None) => Class::Lost {
            reason: "no shim state in the run directory (host rebooted?)".into(),
        },
    }
}
