//! The Supervisor's addresses: it owns the container records, so an address is allocated at
//! create from those it reads (never one a record holds) in the same step that writes the
//! new record. An address is released when its record is removed.

use moor_state::network::{allocate, held, Endpoint, NetworkRecord};
use moor_state::ContainerSpec;
use tracing::info;

use super::Supervisor;
use crate::daemon::error::ContainerError;

impl Supervisor {
    /// Resolves the network mode the API recorded (`default`, `bridge`, `none`, `host`, or
    /// empty for a runtime without a network of its own) and gives a bridge container its
    /// endpoint: `default` is `bridge` while the default network exists, else `none`.
    pub(super) fn attach_network(
        &mut self,
        spec: &mut ContainerSpec,
    ) -> Result<(), ContainerError> {
        let network = self.shared.network.clone();
        match (spec.network_mode.as_str(), network) {
            ("default", None) => spec.network_mode = "none".into(),
            ("bridge", None) => return Err(ContainerError::NoSuchNetwork("bridge".into())),
            ("default" | "bridge", Some(net)) => {
                spec.network_mode = "bridge".into();
                spec.endpoint = Some(self.endpoint_on(&net)?);
            }
            _ => {}
        }
        // Ports on a network the daemon resolved to `none` (the bridge is disabled): the API
        // could not know, so the refusal is here, before anything is recorded.
        let field = match spec.port_bindings.is_empty() {
            true => "HostConfig.PublishAllPorts",
            false => "HostConfig.PortBindings",
        };
        let publishes = !spec.port_bindings.is_empty() || spec.publish_all;
        crate::network::ports::check_network(&spec.network_mode, publishes)
            .map_err(|reason| ContainerError::BadRequest(format!("{field}: {reason}")))
    }

    fn endpoint_on(&mut self, net: &NetworkRecord) -> Result<Endpoint, ContainerError> {
        let records = self.list()?;
        let taken = held(&records, &net.name);
        let ip = allocate(net.subnet, net.gateway, &taken).ok_or_else(|| {
            ContainerError::BadRequest(format!(
                "no free address in network {} ({}): {} are held",
                net.name,
                net.subnet,
                taken.len()
            ))
        })?;
        info!(network = %net.name, ip = %ip, "address allocated");
        Ok(Endpoint {
            network: net.name.clone(),
            network_id: net.id.clone(),
            bridge: net.bridge.clone(),
            ip,
            prefix_len: net.subnet.prefix_len,
            gateway: net.gateway,
        })
    }
}
