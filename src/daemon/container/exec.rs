//! `docker exec` through the Container actor: the check that the container can take an exec
//! (running or stopping, not paused) and the exec's create or start happen in one handler, so
//! they are ordered with this container's pause, stop and removal (a pause in flight holds the
//! mailbox until it is done), and no handler outside the actor decides from a stale record.

use actix::prelude::*;
use moor_state::State;

use super::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::exec::{self, ExecError, ExecRun};
use crate::daemon::messages::{CreateExec, StartExec};

impl ContainerActor {
    /// Docker's 409s for a container that cannot take an exec now.
    fn exec_allowed(&self) -> Result<(), ExecError> {
        match self.record.state {
            State::Running(_) | State::Stopping(_) => Ok(()),
            State::Paused(_) => Err(ExecError::Paused(self.record.id.clone())),
            _ => Err(ExecError::NotRunning(self.record.id.clone())),
        }
    }
}

impl Handler<CreateExec> for ContainerActor {
    type Result = Result<String, ContainerError>;

    fn handle(&mut self, msg: CreateExec, _: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        self.exec_allowed()?;
        let config = exec::config_for(&self.shared, &self.record, self.runtime.clone(), msg.0)?;
        let action = format!("exec_create: {}", config.command_line());
        let exec_id = self.shared.execs.insert(config.clone());
        exec::publish(&self.shared, &config, &exec_id, action, &[]);
        Ok(exec_id)
    }
}

impl Handler<StartExec> for ContainerActor {
    type Result = Result<ExecRun, ContainerError>;

    fn handle(&mut self, msg: StartExec, _: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        self.exec_allowed()?;
        Ok(exec::start(&self.shared, &msg.exec_id, msg.attached)?)
    }
}
