//! Events: what happened to a container, or what a client asked of it.
//! Each is past tense or a request; [`crate::machine::transition`] decides what it does.

use serde::{Deserialize, Serialize};

use crate::machine::Run;
use crate::record::{Exit, Timestamp};

/// Something that may move a container to another state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A client asked to start it (start, restart, run).
    StartRequested,
    /// The shim reported the process started.
    Started(Run),
    /// The shim could not start the process.
    StartFailed {
        /// Docker's code for it: 127 not found, 126 not executable, 128 other.
        code: i32,
        /// What went wrong, for `State.Error`.
        error: String,
        /// When it was found out.
        at: Timestamp,
    },
    /// A client asked to stop it (stop, restart, daemon shutdown without live-restore).
    /// A paused container is stopped too: the daemon signals it, then thaws it (Docker's way).
    StopRequested,
    /// A client asked to pause it; the daemon freezes it right after the transition.
    Pause,
    /// A client asked to unpause it; the daemon thaws it right after the transition.
    Unpause,
    /// The process ended, as the shim's exit file says.
    Exited {
        /// How it ended.
        exit: Exit,
        /// When the shim reaped it.
        at: Timestamp,
    },
    /// The process is gone and nobody recorded how it ended (shim killed, host rebooted).
    Lost {
        /// Why the end is unknown, for `State.Error`.
        reason: String,
        /// When moor found out.
        at: Timestamp,
    },
    /// Its restart policy starts it again after a back-off (the daemon's timer runs).
    RestartScheduled,
    /// A client asked to remove it.
    RemoveRequested,
    /// The reconciler found its run alive after a daemon start: it is watched again.
    Resumed(Run),
    /// The reconciler found a live process it cannot manage.
    Orphaned {
        /// Why it cannot be managed.
        reason: String,
        /// The run, when one is known.
        run: Option<Run>,
    },
    /// An admin took an orphan back under management.
    Adopted(Run),
}

impl Event {
    /// A short name for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Event::StartRequested => "start",
            Event::Started(_) => "started",
            Event::StartFailed { .. } => "start-failed",
            Event::StopRequested => "stop",
            Event::Pause => "pause",
            Event::Unpause => "unpause",
            Event::Exited { .. } => "exited",
            Event::Lost { .. } => "lost",
            Event::RestartScheduled => "restart-scheduled",
            Event::RemoveRequested => "remove",
            Event::Resumed(_) => "resumed",
            Event::Orphaned { .. } => "orphaned",
            Event::Adopted(_) => "adopted",
        }
    }
}
