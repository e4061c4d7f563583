//! What the OCI runtime reports about a container (`runc state`): one of the facts the
//! reconciler's [`crate::reconcile::classify`] weighs against the process identity check.

use serde::{Deserialize, Serialize};

/// What the OCI runtime (`runc state`) says about a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeState {
    /// Created, its init not yet started.
    Created,
    /// Its init runs.
    Running,
    /// Frozen.
    Paused,
    /// Its init ended; the runtime still holds its state.
    Stopped,
    /// The runtime knows no such container (deleted, or the host rebooted).
    Missing,
}

impl RuntimeState {
    /// Whether the runtime holds a live init for it.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            RuntimeState::Created | RuntimeState::Running | RuntimeState::Paused
        )
    }

    /// The runtime's word for it.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeState::Created => "created",
            RuntimeState::Running => "running",
            RuntimeState::Paused => "paused",
            RuntimeState::Stopped => "stopped",
            RuntimeState::Missing => "missing",
        }
    }
}
