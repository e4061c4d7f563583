//! `docker cp`, `export` and `diff` through the Container actor (issue #11's rule: every
//! operation on a container goes through its actor). A running container's root is handed
//! out at once (its runtime checked the init's identity); a stopped one's is mounted by the
//! runtime as a step of this actor, which then takes no other message (a start, a removal)
//! until the operation's lease is dropped and the root unmounted again.

use actix::prelude::*;
use moor_state::State;
use tokio::sync::oneshot;

use super::ContainerActor;
use crate::archive::ArchiveError;
use crate::daemon::messages::{ContainerChanges, OpenRoot, RootLease};

impl ContainerActor {
    /// The running container's init, Ok(None) for a stopped container, or why its files
    /// cannot be reached now.
    fn archive_state(&self) -> Result<Option<moor_state::ProcessIdentity>, ArchiveError> {
        match &self.record.state {
            State::Running(run) | State::Paused(run) | State::Stopping(run) => {
                Ok(Some(run.process.clone()))
            }
            State::Created | State::Exited { .. } | State::Restarting { .. } => Ok(None),
            other => Err(ArchiveError::Busy {
                id: self.record.id.clone(),
                state: other.name(),
            }),
        }
    }
}

impl Handler<OpenRoot> for ContainerActor {
    type Result = ResponseFuture<Result<RootLease, ArchiveError>>;

    fn handle(&mut self, OpenRoot(view): OpenRoot, ctx: &mut Context<Self>) -> Self::Result {
        let running = match self.archive_state() {
            Ok(running) => running,
            Err(e) => return Box::pin(async { Err(e) }),
        };
        let (id, spec) = (self.record.id.clone(), &self.record.spec);
        let user = spec.user.clone();
        let open = self.runtime.open_root(&id, spec, running.as_ref(), view);
        if running.is_some() {
            return Box::pin(async move {
                let root = open.await?;
                Ok(RootLease {
                    path: root.path,
                    user,
                    release: None,
                })
            });
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let runtime = self.runtime.clone();
        let step = async move {
            let root = match open.await {
                Ok(root) => root,
                Err(e) => return drop(reply_tx.send(Err(e))),
            };
            let (release, released) = oneshot::channel::<()>();
            let lease = RootLease {
                path: root.path.clone(),
                user,
                release: Some(release),
            };
            if reply_tx.send(Ok(lease)).is_ok() {
                // Ends when the lease is dropped (its sender goes with it).
                let _ = released.await;
            }
            runtime.close_root(&id, root).await;
        };
        ctx.wait(step.into_actor(self));
        Box::pin(async move {
            reply_rx.await.map_err(|_| ArchiveError::Root {
                reason: "the container's actor stopped".into(),
            })?
        })
    }
}

impl Handler<ContainerChanges> for ContainerActor {
    type Result = ResponseFuture<Result<Vec<crate::archive::changes::Change>, ArchiveError>>;

    fn handle(&mut self, _: ContainerChanges, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.archive_state() {
            return Box::pin(async { Err(e) });
        }
        Box::pin(self.runtime.changes(&self.record.id, &self.record.spec))
    }
}
