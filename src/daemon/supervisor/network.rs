//! The Supervisor's networks and addresses: it owns the container records, so an address is
//! allocated at create from those it reads (never one a record holds) in the same step that
//! writes the new record, and a user network is created, found and removed here, serialised
//! with those allocations (a network in use by a record is never removed). An address is
//! released when its record is removed. The bridges are made and deleted by the API's
//! blocking tasks, around these steps.

use actix::prelude::*;
use moor_state::network::{allocate_in, held, Endpoint, NetworkRecord};
use moor_state::{ContainerRecord, ContainerSpec};
use tracing::{info, warn};

use super::hosts::rewrite_all;
use super::{once_durable, Supervisor};
use crate::daemon::error::ContainerError;

/// Plan and store a user network (Supervisor): its name and subnet are checked against the
/// stored ones, and a subnet chosen when none is asked, in one step with the store's write.
#[derive(Message)]
#[rtype(result = "Result<NetworkRecord, ContainerError>")]
pub struct CreateNetwork {
    /// What the client asked for (checked by the API).
    pub request: crate::network::user::NetworkRequest,
    /// The host's routes (read by the API off this thread), which a chosen subnet avoids.
    pub routes: Vec<moor_state::network::Subnet>,
}

/// Remove a user network no container record is on (Supervisor); answers its record, whose
/// bridge the caller then deletes.
#[derive(Message)]
#[rtype(result = "Result<NetworkRecord, ContainerError>")]
pub struct RemoveNetwork(pub String);

/// Every stored user network (Supervisor).
#[derive(Message)]
#[rtype(result = "Result<Vec<NetworkRecord>, ContainerError>")]
pub struct ListNetworks;

/// Remove every user network no container record is on (Supervisor); answers their records.
#[derive(Message)]
#[rtype(result = "Result<Vec<NetworkRecord>, ContainerError>")]
pub struct PruneNetworks;

impl Supervisor {
    /// Resolves the network mode the API recorded (`default`, `bridge`, `none`, `host`, a
    /// user network's name or id, or empty for a runtime without a network of its own) and
    /// gives a bridge container its endpoint: `default` is `bridge` while the default
    /// network exists, else `none`.
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
            ("" | "none" | "host", _) => {}
            (mode, _) if mode.starts_with("container:") => {
                // The other container must exist (it must run only at each start).
                let key = &mode["container:".len()..];
                let key = key.trim_start_matches('/');
                let records = self.list()?;
                let found = records
                    .iter()
                    .any(|r| r.name == key || r.id.starts_with(key));
                if !found {
                    return Err(ContainerError::NotFound(key.into()));
                }
            }
            (key, _) => {
                let net = self.find_network(key)?;
                if net.internal && (!spec.port_bindings.is_empty() || spec.publish_all) {
                    return Err(ContainerError::BadRequest(format!(
                        "HostConfig.PortBindings: network {} is internal: its containers \
                         cannot publish ports",
                        net.name
                    )));
                }
                spec.network_mode = net.name.clone();
                spec.endpoint = Some(self.endpoint_on(&net)?);
            }
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
        let ip = allocate_in(net.subnet, net.ip_range, net.gateway, &taken).ok_or_else(|| {
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
            internal: net.internal,
        })
    }

    fn user_networks(&self) -> Result<Vec<NetworkRecord>, ContainerError> {
        let all = self.shared.store.networks()?.list()?;
        Ok(all.into_iter().filter(NetworkRecord::is_user).collect())
    }

    /// A user network by name, id or unique id prefix.
    fn find_network(&self, key: &str) -> Result<NetworkRecord, ContainerError> {
        let all = self.user_networks()?;
        if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
            return Ok(n.clone());
        }
        let mut by_prefix = all.into_iter().filter(|n| n.id.starts_with(key));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(one), None) => Ok(one),
            _ => Err(ContainerError::NoSuchNetwork(key.into())),
        }
    }

    /// The records with an endpoint on `net`.
    fn users_of(&mut self, net: &NetworkRecord) -> Result<Vec<String>, ContainerError> {
        Ok(self
            .list()?
            .iter()
            .filter(|r| {
                moor_state::network::endpoints(r)
                    .iter()
                    .any(|(e, _, _)| e.network_id == net.id)
            })
            .map(|r| r.name.clone())
            .collect())
    }
}

/// Connect a container to a network (Supervisor): its address is allocated and stored
/// (and, when it runs, plugged in) through its actor in one step, so no other allocation
/// interleaves; the hosts files of the containers on user networks are rewritten after.
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct ConnectContainer {
    /// The container's actor.
    pub container: Addr<crate::daemon::container::ContainerActor>,
    /// Its id.
    pub id: String,
    /// The network's name, id or id prefix.
    pub network: String,
    /// Its aliases there.
    pub aliases: Vec<String>,
}

/// Disconnect a container from a network (Supervisor).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct DisconnectContainer {
    /// The container's actor.
    pub container: Addr<crate::daemon::container::ContainerActor>,
    /// Its id.
    pub id: String,
    /// The network's name, id or id prefix.
    pub network: String,
}

impl Supervisor {
    /// The record of container `id` and the network `key` names (the default one too).
    fn record_and_network(
        &mut self,
        id: &str,
        key: &str,
    ) -> Result<(ContainerRecord, NetworkRecord), ContainerError> {
        let rec = self
            .list()?
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| ContainerError::NotFound(id.into()))?;
        let net = match (&self.shared.network, key) {
            (Some(default), "bridge") => default.clone(),
            (Some(default), key) if default.id == key => default.clone(),
            _ => self.find_network(key)?,
        };
        Ok((rec, net))
    }
}

impl Handler<ConnectContainer> for Supervisor {
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, msg: ConnectContainer, _: &mut Context<Self>) -> Self::Result {
        let planned = self
            .record_and_network(&msg.id, &msg.network)
            .and_then(|(rec, net)| self.plan_connect(&rec, &net, &msg.aliases));
        let sent = planned.map(|endpoint| {
            msg.container
                .send(crate::daemon::container::endpoint::Connect {
                    endpoint,
                    aliases: msg.aliases,
                })
        });
        // Atomic: the address is stored before the next allocation is planned; the hosts
        // files of the containers on the network follow.
        let shared = self.shared.clone();
        AtomicResponse::new(Box::pin(
            async move {
                sent?.await??;
                let _ = tokio::task::spawn_blocking(move || rewrite_all(&shared)).await;
                Ok(())
            }
            .into_actor(self),
        ))
    }
}

impl Supervisor {
    /// The endpoint container `rec` gets on `net`: refused when it is there already, for
    /// aliases on the default network, for published ports on an internal network, and
    /// for a container sharing another's network.
    fn plan_connect(
        &mut self,
        rec: &ContainerRecord,
        net: &NetworkRecord,
        aliases: &[String],
    ) -> Result<Endpoint, ContainerError> {
        let bad = |text: String| Err(ContainerError::BadRequest(text));
        if moor_state::network::endpoints(rec)
            .iter()
            .any(|(e, _, _)| e.network_id == net.id)
        {
            return bad(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            ));
        }
        if rec.spec.network_mode.starts_with("container:") || rec.spec.network_mode == "host" {
            return bad(format!(
                "container {} shares the network of {}: it cannot be connected to networks",
                rec.name,
                rec.spec.network_mode.trim_start_matches("container:")
            ));
        }
        if !net.is_user() && !aliases.is_empty() {
            return bad(
                "EndpointConfig.Aliases: network-scoped aliases are supported only for \
                 user-defined networks"
                    .into(),
            );
        }
        let publishes = !rec.spec.port_bindings.is_empty() || rec.spec.publish_all;
        if net.internal && publishes {
            return bad(format!(
                "container {} publishes ports: network {} is internal (no way in or out)",
                rec.name, net.name
            ));
        }
        self.endpoint_on(net)
    }
}

impl Handler<DisconnectContainer> for Supervisor {
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, msg: DisconnectContainer, _: &mut Context<Self>) -> Self::Result {
        let checked = self
            .record_and_network(&msg.id, &msg.network)
            .and_then(|(rec, net)| {
                let on = moor_state::network::endpoints(&rec)
                    .iter()
                    .any(|(e, _, _)| e.network_id == net.id);
                match on {
                    true => Ok(net),
                    false => Err(ContainerError::BadRequest(format!(
                        "container {} is not connected to network {}",
                        rec.name, net.name
                    ))),
                }
            });
        let sent = checked.map(|net| {
            msg.container
                .send(crate::daemon::container::endpoint::Disconnect {
                    network_id: net.id,
                    network: net.name,
                })
        });
        let shared = self.shared.clone();
        AtomicResponse::new(Box::pin(
            async move {
                sent?.await??;
                let _ = tokio::task::spawn_blocking(move || rewrite_all(&shared)).await;
                Ok(())
            }
            .into_actor(self),
        ))
    }
}

impl Handler<CreateNetwork> for Supervisor {
    type Result = ResponseFuture<Result<NetworkRecord, ContainerError>>;

    fn handle(&mut self, msg: CreateNetwork, _: &mut Context<Self>) -> Self::Result {
        let created = self.create_network(msg);
        once_durable(&self.shared, created.map(|(rec, seq)| (rec, Some(seq))))
    }
}

impl Supervisor {
    /// A network's record, committed.
    fn create_network(
        &mut self,
        msg: CreateNetwork,
    ) -> Result<(NetworkRecord, u64), ContainerError> {
        let tree = self.shared.store.networks()?;
        let all = tree.list()?;
        if all.iter().any(|n| n.name == msg.request.name) {
            return Err(ContainerError::NetworkExists(msg.request.name));
        }
        let rec = crate::network::user::plan(&msg.request, &all, &msg.routes)
            .map_err(ContainerError::BadRequest)?;
        let seq = tree.put_unflushed(&rec)?;
        info!(network = %rec.name, subnet = %rec.subnet, bridge = %rec.bridge, "network created");
        Ok((rec, seq))
    }
}

impl Handler<RemoveNetwork> for Supervisor {
    type Result = ResponseFuture<Result<NetworkRecord, ContainerError>>;

    fn handle(&mut self, msg: RemoveNetwork, _: &mut Context<Self>) -> Self::Result {
        let removed = self.remove_network(msg);
        once_durable(&self.shared, removed.map(|(net, seq)| (net, Some(seq))))
    }
}

impl Supervisor {
    /// A network's removal, committed.
    fn remove_network(
        &mut self,
        msg: RemoveNetwork,
    ) -> Result<(NetworkRecord, u64), ContainerError> {
        if matches!(msg.0.as_str(), "bridge" | "host" | "none") {
            return Err(ContainerError::BadRequest(format!(
                "{} is a pre-defined network and cannot be removed",
                msg.0
            )));
        }
        let net = self.find_network(&msg.0)?;
        let users = self.users_of(&net)?;
        if !users.is_empty() {
            return Err(ContainerError::NetworkInUse {
                name: net.name,
                containers: users,
            });
        }
        let seq = self.shared.store.networks()?.remove_unflushed(&net.name)?;
        info!(network = %net.name, "network removed");
        Ok((net, seq))
    }
}

impl Handler<ListNetworks> for Supervisor {
    type Result = Result<Vec<NetworkRecord>, ContainerError>;

    fn handle(&mut self, _: ListNetworks, _: &mut Context<Self>) -> Self::Result {
        self.user_networks()
    }
}

impl Handler<PruneNetworks> for Supervisor {
    type Result = ResponseFuture<Result<Vec<NetworkRecord>, ContainerError>>;

    fn handle(&mut self, _: PruneNetworks, _: &mut Context<Self>) -> Self::Result {
        let pruned = self.prune_networks();
        once_durable(&self.shared, pruned.map(|(nets, seq)| (nets, Some(seq))))
    }
}

impl Supervisor {
    /// The unused networks' removals, committed (with the counter of the last write).
    fn prune_networks(&mut self) -> Result<(Vec<NetworkRecord>, u64), ContainerError> {
        let (mut removed, mut seq) = (Vec::new(), self.shared.store.flusher().committed());
        for net in self.user_networks()? {
            if self.users_of(&net)?.is_empty() {
                seq = self.shared.store.networks()?.remove_unflushed(&net.name)?;
                info!(network = %net.name, "network pruned");
                removed.push(net);
            }
        }
        Ok((removed, seq))
    }
}

/// Runs a blocking network step on the blocking pool.
async fn blocking<T: Send + 'static>(
    step: impl FnOnce() -> Result<T, crate::network::NetworkError> + Send + 'static,
) -> Result<T, crate::network::NetworkError> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(|_| crate::network::NetworkError::Thread)?
}

/// `POST /networks/create`: the host's routes read off the actors' thread, the network
/// planned and stored by the Supervisor, then its bridge made; a bridge that cannot be made
/// takes the record away again.
pub async fn create_network(
    supervisor: &Addr<Supervisor>,
    request: moor_state::network::NetworkRequest,
) -> Result<NetworkRecord, ContainerError> {
    let routes = blocking(crate::network::user::host_routes)
        .await
        .map_err(|source| ContainerError::Bridge {
            what: "read the host's routes for",
            name: request.name.clone(),
            source: Box::new(source),
        })?;
    let rec = supervisor.send(CreateNetwork { request, routes }).await??;
    let made = rec.clone();
    let bridged = blocking(move || {
        crate::network::user::ensure(&made)?;
        // Its bridge is isolated from moor's other bridges; its subnet is masqueraded going
        // out and its containers' ports can be published, an internal network's excepted.
        if let Err(e) = crate::network::nat::ensure(&crate::network::nat::BridgeNat::of(&made)) {
            warn!(network = %made.name, error = %e, "the network is not in moor's nft table: no NAT, no isolation from the other networks");
        }
        Ok(())
    })
    .await;
    if let Err(source) = bridged {
        if let Err(e) = supervisor.send(RemoveNetwork(rec.id.clone())).await? {
            warn!(network = %rec.name, error = %e, "the record of a network without a bridge stays");
        }
        return Err(ContainerError::Bridge {
            what: "make the bridge of",
            name: rec.name,
            source: Box::new(source),
        });
    }
    Ok(rec)
}

/// Deletes the bridges of removed networks (a failure is logged: the records are gone).
async fn delete_bridges(nets: &[NetworkRecord]) {
    for net in nets.iter() {
        let n = net.clone();
        // Its masquerade and isolation go with it (a network made since may take the
        // subnet, or the bridge's name).
        let nat = crate::network::nat::BridgeNat::of(net);
        let forgot = tokio::task::spawn_blocking(move || crate::network::nat::forget(&nat)).await;
        if let Some(e) =
            forgot.map_or_else(|e| Some(e.to_string()), |r| r.err().map(|e| e.to_string()))
        {
            warn!(network = %net.name, error = %e, "masquerade and isolation not removed");
        }
        if let Err(e) = blocking(move || crate::network::user::remove(&n)).await {
            warn!(network = %net.name, bridge = %net.bridge, error = %e, "bridge not deleted");
        }
    }
}

/// `DELETE /networks/{id}`: the record removed by the Supervisor (refused while a container
/// is on it), then the bridge deleted.
pub async fn remove_network(
    supervisor: &Addr<Supervisor>,
    key: String,
) -> Result<NetworkRecord, ContainerError> {
    let rec = supervisor.send(RemoveNetwork(key)).await??;
    delete_bridges(std::slice::from_ref(&rec)).await;
    Ok(rec)
}

/// `POST /networks/prune`: every user network no container is on, and their bridges.
pub async fn prune_networks(
    supervisor: &Addr<Supervisor>,
) -> Result<Vec<NetworkRecord>, ContainerError> {
    let removed = supervisor.send(PruneNetworks).await??;
    delete_bridges(&removed).await;
    Ok(removed)
}
