//! Steps of a Container actor's handlers that may block (a runc call, a mount, file work)
//! and must still come before this container's next message: they run as futures the
//! actor waits on (`ctx.wait`), not on the thread every actor shares. Other containers and
//! the API go on meanwhile; this container's own next request waits for the step.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::ContainerActor;
use crate::daemon::error::ContainerError;

impl ContainerActor {
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
        ctx.wait(job.into_actor(self));
    }
}

/// The output of a step run with [`ContainerActor::in_order`]; the actor stopped before it
/// ran is a closed mailbox.
pub(super) async fn step_output<T>(rx: oneshot::Receiver<T>) -> Result<T, ContainerError> {
    rx.await
        .map_err(|_| ContainerError::Mailbox(actix::MailboxError::Closed))
}
