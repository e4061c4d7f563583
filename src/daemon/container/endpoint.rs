//! `POST /networks/{id}/connect|disconnect` on the container's side: its endpoint (address,
//! network, aliases) changes through its own actor, so the record it holds stays the one in
//! the store. moor plugs networks in at start: a running container is refused (by name)
//! rather than changed only on paper.

use actix::prelude::*;
use moor_state::network::Endpoint;
use tracing::info;

use super::ContainerActor;
use crate::daemon::error::ContainerError;

/// Set (or, with `None`, drop) the container's endpoint and aliases (Container), answered
/// once stored.
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct SetEndpoint {
    /// The new endpoint; None disconnects.
    pub endpoint: Option<Endpoint>,
    /// Its aliases on that network.
    pub aliases: Vec<String>,
}

impl Handler<SetEndpoint> for ContainerActor {
    type Result = Result<(), ContainerError>;

    fn handle(&mut self, msg: SetEndpoint, _: &mut Context<Self>) -> Self::Result {
        if self.record.state.run().is_some()
            || matches!(self.record.state, moor_state::State::Starting)
        {
            return Err(ContainerError::BadRequest(format!(
                "container {} is running: moor connects and disconnects networks of stopped \
                 containers only (they are plugged in at start)",
                self.record.name
            )));
        }
        let mut rec = self.record.clone();
        if let Some(ep) = &msg.endpoint {
            rec.spec.network_mode = ep.network.clone();
        }
        rec.spec.endpoint = msg.endpoint;
        rec.spec.network_aliases = msg.aliases;
        self.commit(&rec)?;
        let network = rec.spec.endpoint.as_ref().map(|e| e.network.clone());
        info!(parent: &self.span, network = ?network, "endpoint set");
        self.record = rec;
        crate::daemon::supervisor::write_spec_file(&self.shared, &self.record)
    }
}
