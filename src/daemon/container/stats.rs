//! `docker stats` through the Container actor: the runtime reads what the container's init
//! (and everything in its cgroup or session) uses, off the actor's thread; a container that
//! does not run has no reading.

use actix::prelude::*;
use moor_state::State;

use super::ContainerActor;
use crate::daemon::messages::SampleStats;

impl Handler<SampleStats> for ContainerActor {
    type Result = ResponseFuture<<SampleStats as Message>::Result>;

    fn handle(&mut self, _: SampleStats, _: &mut Context<Self>) -> Self::Result {
        let run = match &self.record.state {
            State::Running(run) | State::Paused(run) | State::Stopping(run) => run,
            _ => return Box::pin(async { None }),
        };
        let reading = self.runtime.stats(&self.record.id, &run.process);
        Box::pin(async move { Some(reading.await) })
    }
}
