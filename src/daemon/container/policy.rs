//! Restart policies in the Container actor: the user's intent (`manually_stopped`, persisted)
//! and the policy's own restarts. The decision itself is `moor_state::restart`.

use actix::prelude::*;
use tracing::warn;

use super::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::RestartByPolicy;

impl ContainerActor {
    /// Persists the user's intent about restart policies.
    pub(super) fn set_manually_stopped(&mut self, stopped: bool) -> Result<(), ContainerError> {
        if self.record.manually_stopped == stopped {
            return Ok(());
        }
        let mut rec = self.record.clone();
        rec.manually_stopped = stopped;
        if !stopped {
            rec.restart_count = 0;
        }
        self.commit(&rec)?;
        self.record = rec;
        Ok(())
    }
}

impl Handler<RestartByPolicy> for ContainerActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: RestartByPolicy, _: &mut Context<Self>) -> Self::Result {
        self.pending_restart = None;
        let mut rec = self.record.clone();
        rec.restart_count += 1;
        if let Err(e) = self.commit(&rec) {
            warn!(parent: &self.span, error = %e, "restart not recorded");
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        self.record = rec;
        let span = self.span.clone();
        AtomicResponse::new(Box::pin(self.start().map(move |res, _, _| {
            if let Err(e) = res {
                warn!(parent: &span, error = %e, "restart by policy failed");
            }
        })))
    }
}
