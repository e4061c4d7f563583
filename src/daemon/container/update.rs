//! `update` of the Container actor (`docker update`): the new resources and restart policy
//! are recorded first (store and spec file), then applied to a live container by its
//! runtime (`runc update`); an update the runtime refuses is rolled back, so the record
//! never claims limits the container does not have. A container that does not run takes
//! them at its next start (its bundle is built from the recorded spec).

use actix::prelude::*;
use moor_state::{ContainerSpec, State};
use tracing::{info, warn};

use super::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::UpdateContainer;

impl ContainerActor {
    /// Records `spec` as the container's: the store, then its spec file.
    fn record_spec(&mut self, spec: ContainerSpec) -> Result<(), ContainerError> {
        let mut rec = self.record.clone();
        rec.spec = spec;
        self.commit(&rec)?;
        self.record = rec;
        crate::daemon::supervisor::write_spec_file(&self.shared, &self.record)
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
        let before = self.record.spec.clone();
        let after = msg.0.apply(&before);
        if let Err(e) = self.record_spec(after.clone()) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        let live = self.record.state.run().is_some() && msg.0.touches_cgroup();
        if !live {
            info!(parent: &self.span, "updated");
            self.emit("update", &[]);
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        let applied = self.runtime.update(&self.record.id, &after, &msg.0);
        // `runc update` once the new limits are durable (a runtime future does nothing
        // until polled).
        let applied = Box::pin(async move { Ok(applied.await) }.into_actor(self));
        AtomicResponse::new(Box::pin(self.after_durable(applied).map(
            move |res, act, _| {
                let res = res.and_then(|applied| applied.map_err(ContainerError::Runtime));
                if let Err(e) = res {
                    if let Err(undo) = act.record_spec(before) {
                        warn!(parent: &act.span, error = %undo, "update not rolled back");
                    }
                    return Err(e);
                }
                info!(parent: &act.span, "updated");
                act.emit("update", &[]);
                Ok(())
            },
        )))
    }
}
