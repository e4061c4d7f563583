//! The host side of a start's published ports, chosen by the container's actor before the
//! start is recorded (the choice is recorded with it).

use super::ContainerActor;
use crate::daemon::error::ContainerError;

impl ContainerActor {
    /// The published ports this start asks for, with their host side chosen: a fixed port
    /// another running container or a host socket holds is refused (Docker's message).
    pub(super) fn resolve_ports(
        &self,
    ) -> Result<Vec<moor_state::ports::PortMapping>, ContainerError> {
        let spec = &self.record.spec;
        if spec.port_bindings.is_empty() && !spec.publish_all {
            return Ok(Vec::new());
        }
        let others = self.shared.store.list()?;
        let taken: Vec<_> = others
            .iter()
            .filter(|r| r.id != self.record.id && r.state.run().is_some())
            .flat_map(|r| r.published.iter().cloned())
            .collect();
        crate::network::ports::resolve_on_host(spec, &taken).map_err(|source| {
            ContainerError::Ports {
                name: self.record.name.clone(),
                source,
            }
        })
    }
}
