//! Steps of a Container actor's handlers that may block (a runc call, a mount, file work)
//! and must still come before this container's next message: they run as futures the
//! actor waits on (`ctx.wait`), not on the thread every actor shares. Other containers and
//! the API go on meanwhile; this container's own next request waits for the step.
//!
//! Writes of the record commit at once ([`ContainerActor::commit`]) and are flushed by the
//! store's flush thread; a step that acts on a write (spawns the shim, signals, thaws,
//! releases, removes files) first waits for that flush ([`ContainerActor::after_durable`]);
//! a change of the spec file also waits for its rewrite, done on the blocking pool
//! ([`ContainerActor::after_durable_spec`]).

use actix::prelude::*;
use moor_state::ContainerRecord;
use tokio::sync::oneshot;

use super::ContainerActor;
use crate::daemon::error::ContainerError;

impl ContainerActor {
    /// Writes `rec` as this container's record: committed (readers see it) and counted as
    /// this actor's last write, durable once [`Self::after_durable`]'s wait is over.
    pub(super) fn commit(&mut self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        self.written = self.shared.store.put_unflushed(rec)?;
        // The flush starts now, whoever waits for it (group commit: one for many writes).
        self.shared.durable.request();
        Ok(())
    }

    /// `step`, once every write this actor has made so far is flushed (the step itself is
    /// not polled before: the runtime's futures do nothing until polled). A failed flush
    /// is the step's error.
    pub(super) fn after_durable<T: 'static>(
        &self,
        step: ResponseActFuture<Self, Result<T, ContainerError>>,
    ) -> ResponseActFuture<Self, Result<T, ContainerError>> {
        let flushed = self.shared.durable.flushed(self.written);
        Box::pin(flushed.into_actor(self).then(move |res, _, _| match res {
            Ok(()) => step,
            Err(e) => Box::pin(fut::ready(Err(ContainerError::from(e)))),
        }))
    }

    /// `step`, once this container's spec file is rewritten from its record (durably, on
    /// the blocking pool: see [`crate::daemon::supervisor::write_spec_file`]) and every
    /// write this actor has made so far is flushed. For a change of what the spec file holds
    /// (name, resources, networks): answered, or acted on, once both copies are durable.
    pub(super) fn after_durable_spec<T: 'static>(
        &self,
        step: ResponseActFuture<Self, Result<T, ContainerError>>,
    ) -> ResponseActFuture<Self, Result<T, ContainerError>> {
        let written = crate::daemon::supervisor::write_spec_file(&self.shared, &self.record);
        let then = self.after_durable(step);
        Box::pin(written.into_actor(self).then(move |res, _, _| match res {
            Ok(()) => then,
            Err(e) => Box::pin(fut::ready(Err(e))),
        }))
    }

    /// Runs `step` before this actor handles anything else, and hands its output to the
    /// returned receiver (for a reply that then waits on something that must not hold the
    /// mailbox, such as an exit).
    pub(super) fn in_order<T: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        step: ResponseActFuture<Self, T>,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        ctx.wait(step.map(move |out, _, _| {
            let _ = tx.send(out);
        }));
        rx
    }

    /// After an exit or a failed start: the runtime's release (runc: `runc delete` and the
    /// rootfs unmount on the blocking pool), done before this container's next operation (a restart mounts the rootfs again).
    pub(super) fn release_in_order(&mut self, ctx: &mut Context<Self>) {
        let job = self.runtime.release(&self.record.id);
        let job = Box::pin(
            async move {
                job.await;
                Ok(())
            }
            .into_actor(self),
        );
        ctx.wait(self.after_durable(job).map(|res, act, _| {
            if let Err(e) = res {
                tracing::warn!(parent: &act.span, error = %e, "not released: its exit is not durable");
            }
        }));
    }
}

/// The output of a step run with [`ContainerActor::in_order`]; the actor stopped before it
/// ran is a closed mailbox.
pub(super) async fn step_output<T>(rx: oneshot::Receiver<T>) -> Result<T, ContainerError> {
    rx.await
        .map_err(|_| ContainerError::Mailbox(actix::MailboxError::Closed))
}
