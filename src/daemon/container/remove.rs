//! `rm` of the Container actor: a container that does not run is removed at once
//! (`removing` recorded and flushed, then its spec file, record and files); `rm -f` of a
//! running one kills it first (thawed if paused) and removes it at its exit; a restart
//! policy's back-off is called off, and refused without force (Docker's).

use actix::prelude::*;
use moor_state::{transition, Event, State};
use tracing::{info, warn};

use super::{cleanup, fault, ordered, ContainerActor};
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{ContainerRemoved, RemoveContainer};
use crate::identity::IdentityError;

impl ContainerActor {
    /// Removes a container that does not run: `removing` recorded, then (once that is
    /// durable) the spec file, the record and the actor; the runtime's clean-up and the
    /// files go in the background (see `cleanup`).
    pub(super) fn remove_now(
        &mut self,
        volumes: bool,
    ) -> ResponseActFuture<Self, Result<(), ContainerError>> {
        let code = self.exit_code();
        if let Err(e) = self.apply(Event::RemoveRequested) {
            return Box::pin(fut::ready(Err(e)));
        }
        let durable = self.after_durable(Box::pin(fut::ready(Ok(()))));
        Box::pin(durable.map(move |res, act, ctx| {
            res?;
            act.forget(ctx, code, volumes)
        }))
    }

    /// The end of [`Self::remove_now`], its `removing` durable.
    fn forget(
        &mut self,
        ctx: &mut Context<Self>,
        code: i64,
        volumes: bool,
    ) -> Result<(), ContainerError> {
        let id = self.record.id.clone();
        cleanup::forget_spec(&self.shared.layout, &id)?;
        fault::point("rm-persisted");
        // Durable by the answer (the API's barrier) or the flush this asks for: until then a
        // crash leaves `removing`, which the next start finishes.
        self.written = self.shared.store.remove_unflushed(&id)?;
        self.shared.durable.request();
        let own = (
            self.runtime.clone(),
            self.shared.run_container_dir(&self.record),
        );
        cleanup::spawn_remove_files(self.shared.clone(), id.clone(), own);
        info!(parent: &self.span, "removed");
        self.emit("destroy", &[]);
        for (_, tx) in self.waiters.drain(..) {
            let _ = tx.send(Ok(code));
        }
        let span = self.span.clone();
        // `--rm` takes the container's anonymous volumes with it (Docker's); `rm` without
        // `-v` keeps them.
        let mounts = match volumes {
            true => &self.record.spec.mounts[..],
            false => &[],
        };
        let volumes: Vec<String> = mounts
            .iter()
            .filter(|m| m.origin != moor_state::record::MountOrigin::VolumesFrom)
            .map(|m| m.name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        ctx.spawn(
            self.supervisor
                .send(ContainerRemoved { id, volumes })
                .into_actor(self)
                .map(move |res, _, ctx| {
                    if let Err(e) = res {
                        warn!(parent: &span, error = %e, "supervisor gone");
                    }
                    ctx.stop();
                }),
        );
        Ok(())
    }
}

impl Handler<RemoveContainer> for ContainerActor {
    type Result = ResponseActFuture<Self, Result<(), ContainerError>>;

    fn handle(&mut self, msg: RemoveContainer, ctx: &mut Context<Self>) -> Self::Result {
        if matches!(self.record.state, State::Restarting { .. }) {
            // Refused without force (the state machine's answer), the back-off going on;
            // with force the restart is called off first.
            if !msg.force {
                let refused = transition(&self.record.state, Event::RemoveRequested);
                return Box::pin(fut::ready(refused.map(|_| ()).map_err(Into::into)));
            }
            if let Some(handle) = self.pending_restart.take() {
                ctx.cancel_future(handle);
            }
            if let Err(e) = self.apply(Event::StopRequested) {
                return Box::pin(fut::ready(Err(e)));
            }
        }
        if let Some(handle) = self.pending_restart.take() {
            ctx.cancel_future(handle);
        }
        let running = matches!(
            self.record.state,
            State::Running(_) | State::Paused(_) | State::Stopping(_) | State::Starting
        );
        if !(running && msg.force) {
            return self.remove_now(false);
        }
        // The exit is taken now, not in the kill step: the end of the process may be
        // recorded before that step runs (actix runs the most recent `wait` first), and it
        // is that exit the removal waits for.
        let prepared = self.live_process().map(|p| (p, self.next_exit()));
        let thawed = match prepared {
            Ok((Some(_), _)) => self.unpause_for_signal(libc::SIGKILL),
            _ => Box::pin(fut::ready(())),
        };
        let killed = thawed.map(move |(), act, _| {
            let (pidfd, exit) = prepared?;
            match pidfd.map(|p| p.signal(libc::SIGKILL)) {
                // Ended on its own: its exit is what the removal waits for.
                None | Some(Err(IdentityError::Gone { .. })) => {}
                Some(other) => other.map_err(|source| ContainerError::Signal {
                    id: act.record.id.clone(),
                    source,
                })?,
            }
            Ok::<_, ContainerError>(exit)
        });
        let killed = self.in_order(ctx, Box::pin(killed));
        Box::pin(
            async move {
                let exit = ordered::step_output(killed).await??;
                let _ = exit.await;
                Ok(())
            }
            .into_actor(self)
            .then(|res: Result<(), ContainerError>, act, ctx| {
                let ready = |res| Box::pin(fut::ready(res)) as ResponseActFuture<Self, _>;
                if let Err(e) = res {
                    return ready(Err(e));
                }
                // `--rm` may already have removed it when the exit arrived.
                if matches!(act.record.state, State::Removing) {
                    return ready(Ok(()));
                }
                // Its restart policy may have started a back-off on that exit: called off.
                if matches!(act.record.state, State::Restarting { .. }) {
                    if let Some(handle) = act.pending_restart.take() {
                        ctx.cancel_future(handle);
                    }
                    if let Err(e) = act.apply(Event::StopRequested) {
                        return ready(Err(e));
                    }
                }
                act.remove_now(false)
            }),
        )
    }
}
