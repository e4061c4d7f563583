//! `update` of the Container actor (`docker update`): the new resources and restart policy
//! are recorded first (store and spec file), then applied to a live container by its
//! runtime (`runc update`); an update the runtime refuses is rolled back, so the record
//! never claims limits the container does not have. A container that does not run takes
//! them at its next start (its bundle is built from the recorded spec).

use std::sync::Arc;

use actix::prelude::*;
use moor_state::{ContainerSpec, State};
use tracing::{info, warn};

use super::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::UpdateContainer;

impl ContainerActor {
    /// Commits `spec` as the container's (its spec file is rewritten by the step that
    /// waits for it: [`ContainerActor::after_durable_spec`]).
    fn record_spec(&mut self, spec: ContainerSpec) -> Result<(), ContainerError> {
        let mut rec = self.record.clone();
        rec.spec = Arc::new(spec);
        self.commit(&rec)?;
        self.record = rec;
        Ok(())
    }
}

impl Handler<UpdateContainer> for ContainerActor {
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, msg: UpdateContainer, _: &mut Context<Self>) -> Self::Result {
        let refused = match self.record.state {
            State::Orphaned { .. } => Some(ContainerError::OrphanRefused {
                id: self.record.id.clone(),
                why: "an orphan's resources are not moor's to change (adopt it first)".into(),
            }),
            // Going: nothing to record (a record written now would outlive the removal).
            State::Removing => Some(ContainerError::NotFound(self.record.id.clone())),
            _ => None,
        };
        if let Some(e) = refused {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let before = ContainerSpec::clone(&self.record.spec);
        let after = msg.0.apply(&before);
        if let Err(e) = self.record_spec(after.clone()) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let live = self.record.state.run().is_some() && msg.0.touches_cgroup();
        if !live {
            let stored = self.after_durable_spec(Box::pin(fut::ready(Ok(()))));
            return AtomicResponse::new(Box::pin(stored.map(|res, act, _| {
                res?;
                info!(parent: &act.span, "updated");
                act.emit("update", &[]);
                Ok(())
            })));
        }
        let applied = self.runtime.update(&self.record.id, &after, &msg.0);
        // `runc update` once the new limits are durable (a runtime future does nothing
        // until polled).
        let applied = Box::pin(async move { Ok(applied.await) }.into_actor(self));
        AtomicResponse::new(Box::pin(self.after_durable_spec(applied).then(
            move |res, act, _| {
                let res = res.and_then(|applied| applied.map_err(ContainerError::Runtime));
                match res {
                    Ok(()) => {
                        info!(parent: &act.span, "updated");
                        act.emit("update", &[]);
                        Box::pin(fut::ready(Ok(())))
                    }
                    Err(e) => act.roll_back(before, e),
                }
            },
        )))
    }
}

impl ContainerActor {
    /// After an update the runtime refused: the spec as it was, committed and rewritten,
    /// then the refusal.
    fn roll_back(
        &mut self,
        before: ContainerSpec,
        refused: ContainerError,
    ) -> ResponseActFuture<Self, Result<(), ContainerError>> {
        if let Err(undo) = self.record_spec(before) {
            warn!(parent: &self.span, error = %undo, "update not rolled back");
            return Box::pin(fut::ready(Err(refused)));
        }
        let undone = self.after_durable_spec(Box::pin(fut::ready(Ok(()))));
        Box::pin(undone.map(move |undone, act, _| {
            if let Err(undo) = undone {
                warn!(parent: &act.span, error = %undo, "update rolled back, not durably");
            }
            Err(refused)
        }))
    }
}
