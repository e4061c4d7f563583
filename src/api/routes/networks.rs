//! `/networks`: list and inspect the default networks (`bridge` when the daemon has it,
//! `host`, `none`) and the user networks, with the running containers on each; create,
//! remove and prune user networks (the Supervisor stores them; their bridges are made and
//! deleted here, on the blocking pool).

use actix_web::{web, HttpResponse};
use moor_state::network::NetworkRecord;
use moor_state::ContainerRecord;

use crate::api::convert::{endpoint_id, go_time};
use crate::api::error::ApiError;
use crate::api::network_types::{
    Ipam, IpamConfig, Network, NetworkContainer, NetworkCreateRequest,
};
use crate::api::routes::{parse_filters, Query};
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::ListContainers;
use crate::daemon::supervisor::network::{
    create_network, prune_networks, remove_network, ConnectContainer, DisconnectContainer,
    ListNetworks,
};
use moor_state::network::NetworkRequest;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/networks", web::get().to(list))
        .route("/networks/create", web::post().to(create))
        .route("/networks/prune", web::post().to(prune))
        .route("/networks/{id}", web::get().to(inspect))
        .route("/networks/{id}", web::delete().to(remove))
        .route("/networks/{id}/connect", web::post().to(connect))
        .route("/networks/{id}/disconnect", web::post().to(disconnect));
}

type Data = web::Data<ApiState>;

/// The `{id}` segment: a name, an id or an id prefix.
#[derive(serde::Deserialize)]
struct NetworkPath {
    id: String,
}

/// The fixed id of a built-in network without a record (`host`, `none`).
fn builtin_id(name: &str) -> String {
    endpoint_id("moor-network", name)
}

/// Every network, each with its running containers.
async fn networks(state: &Data) -> Result<Vec<Network>, ApiError> {
    let records = state
        .supervisor
        .send(ListContainers)
        .await
        .map_err(ContainerError::from)??;
    let mut out = Vec::new();
    if let Some(net) = &state.shared.network {
        out.push(bridge(net, &records));
    }
    let users = state
        .supervisor
        .send(ListNetworks)
        .await
        .map_err(ContainerError::from)??;
    out.extend(users.iter().map(|n| bridge(n, &records)));
    for (name, driver) in [("host", "host"), ("none", "null")] {
        out.push(Network {
            name: name.into(),
            id: builtin_id(name),
            driver: driver.into(),
            containers: members(&records, name),
            ..base()
        });
    }
    Ok(out)
}

fn base() -> Network {
    Network {
        created: go_time(None),
        scope: "local".into(),
        ipam: Ipam {
            driver: "default".into(),
            ..Ipam::default()
        },
        ..Network::default()
    }
}

fn running(rec: &ContainerRecord) -> bool {
    matches!(
        rec.state,
        moor_state::State::Running(_)
            | moor_state::State::Paused(_)
            | moor_state::State::Stopping(_)
    )
}

/// The running containers whose network is `name` (`host`, `none`: no address).
fn members(
    records: &[ContainerRecord],
    name: &str,
) -> std::collections::BTreeMap<String, NetworkContainer> {
    records
        .iter()
        .filter(|r| running(r))
        .filter(|r| {
            crate::runtime::interface::profile(r.spec.runtime).network_mode(&r.spec) == name
        })
        .map(|r| {
            let c = NetworkContainer {
                name: r.name.clone(),
                endpoint_id: endpoint_id(&r.id, &builtin_id(name)),
                ..NetworkContainer::default()
            };
            (r.id.clone(), c)
        })
        .collect()
}

fn bridge(net: &NetworkRecord, records: &[ContainerRecord]) -> Network {
    let containers = records
        .iter()
        .filter(|r| running(r))
        .filter_map(|r| {
            let eps = moor_state::network::endpoints(r);
            let (ep, _, _) = eps.into_iter().find(|(e, _, _)| e.network_id == net.id)?;
            Some((r, ep))
        })
        .map(|(r, ep)| {
            let c = NetworkContainer {
                name: r.name.clone(),
                endpoint_id: endpoint_id(&r.id, &net.id),
                mac_address: ep.mac_text(),
                ipv4_address: format!("{}/{}", ep.ip, ep.prefix_len),
                ipv6_address: String::new(),
            };
            (r.id.clone(), c)
        })
        .collect();
    let mut base = base();
    base.ipam.config = vec![IpamConfig {
        subnet: net.subnet.to_string(),
        gateway: net.gateway.to_string(),
        ip_range: net.ip_range.map(|r| r.to_string()),
    }];
    Network {
        name: net.name.clone(),
        id: net.id.clone(),
        created: go_time(net.created),
        driver: "bridge".into(),
        labels: net.labels.clone(),
        attachable: net.is_user(),
        internal: net.internal,
        containers,
        // Docker names the bridge in the default network's options only; a user network
        // shows what was asked (compose compares it with its driver_opts).
        options: match net.is_user() {
            true => Default::default(),
            false => [(
                "com.docker.network.bridge.name".to_string(),
                net.bridge.clone(),
            )]
            .into(),
        },
        ..base
    }
}

/// `GET /networks`: `filters` by `name`, `id` (prefixes, as Docker) and `driver`.
async fn list(state: Data, q: Query) -> Result<HttpResponse, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    if let Some(key) = filters
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "id" | "driver"))
    {
        return Err(ApiError::Query {
            name: "filters",
            value: format!("{key} (moor filters networks by name, id and driver)"),
        });
    }
    let keep = |n: &Network| {
        filters.iter().all(|(key, wanted)| {
            wanted.iter().any(|w| match key.as_str() {
                "name" => n.name.contains(w.as_str()),
                "id" => n.id.starts_with(w.as_str()),
                _ => n.driver == *w,
            })
        })
    };
    let all: Vec<Network> = networks(&state).await?.into_iter().filter(keep).collect();
    Ok(HttpResponse::Ok().json(all))
}

/// `GET /networks/{id}`: by name, id or unique id prefix.
async fn inspect(state: Data, path: web::Path<NetworkPath>) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner().id;
    let all = networks(&state).await?;
    let by_name = all.iter().find(|n| n.name == key || n.id == key);
    let mut by_prefix = all.iter().filter(|n| n.id.starts_with(&key));
    let found = by_name.or_else(|| match (by_prefix.next(), by_prefix.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    });
    match found {
        Some(n) => Ok(HttpResponse::Ok().json(n)),
        None => Err(ApiError::NoSuchNetwork(key)),
    }
}

fn bad(text: String) -> ApiError {
    ContainerError::BadRequest(text).into()
}

/// The request checked: every field moor does not implement refused by name.
fn request(req: NetworkCreateRequest) -> Result<NetworkRequest, ApiError> {
    moor_state::network::valid_name(&req.name).map_err(bad)?;
    if !matches!(req.driver.as_str(), "" | "bridge") {
        return Err(bad(format!(
            "Driver={} is not supported by moor (it supports bridge)",
            req.driver
        )));
    }
    let refused = [
        ("Scope", !matches!(req.scope.as_str(), "" | "local")),
        ("Ingress", req.ingress),
        ("ConfigOnly", req.config_only),
        (
            "ConfigFrom",
            req.config_from.as_ref().is_some_and(|v| !v.is_null()),
        ),
        ("EnableIPv6", req.enable_ipv6 == Some(true)),
        ("EnableIPv4", req.enable_ipv4 == Some(false)),
        (
            "Options",
            req.options.as_ref().is_some_and(|o| !o.is_empty()),
        ),
    ];
    if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
        return Err(bad(format!("{field} is not supported by moor's networks")));
    }
    let ipam = req.ipam.unwrap_or_default();
    if !matches!(ipam.driver.as_str(), "" | "default") {
        return Err(bad(format!(
            "IPAM.Driver={} is not supported by moor",
            ipam.driver
        )));
    }
    if ipam.options.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(bad("IPAM.Options is not supported by moor".into()));
    }
    let configs = ipam.config.unwrap_or_default();
    if configs.len() > 1 {
        return Err(bad("IPAM.Config: moor takes one subnet per network".into()));
    }
    let mut out = NetworkRequest {
        name: req.name,
        labels: req.labels.unwrap_or_default(),
        internal: req.internal,
        ..NetworkRequest::default()
    };
    if let Some(c) = configs.into_iter().next() {
        if c.auxiliary_addresses
            .as_ref()
            .is_some_and(|a| !a.is_empty())
        {
            return Err(bad(
                "IPAM.Config.AuxiliaryAddresses is not supported by moor".into(),
            ));
        }
        if !c.subnet.is_empty() {
            let s = moor_state::network::Subnet::parse(&c.subnet)
                .filter(|s| (8..=30).contains(&s.prefix_len))
                .ok_or_else(|| {
                    bad(format!(
                        "IPAM.Config.Subnet {:?} is not an IPv4 subnet A.B.C.D/N (N 8 to 30)",
                        c.subnet
                    ))
                })?;
            if s.to_string() != c.subnet {
                return Err(bad(format!(
                    "IPAM.Config.Subnet {:?} has host bits set: it should be {s}",
                    c.subnet
                )));
            }
            out.subnet = Some(s);
        }
        if !c.gateway.is_empty() {
            let g = c.gateway.parse().map_err(|_| {
                bad(format!(
                    "IPAM.Config.Gateway {:?} is not an IPv4 address",
                    c.gateway
                ))
            })?;
            if out.subnet.is_none() {
                return Err(bad("IPAM.Config.Gateway needs IPAM.Config.Subnet".into()));
            }
            out.gateway = Some(g);
        }
        if !c.ip_range.is_empty() {
            let r = moor_state::network::Subnet::parse(&c.ip_range)
                .filter(|r| r.to_string() == c.ip_range)
                .ok_or_else(|| {
                    bad(format!(
                        "IPAM.Config.IPRange {:?} is not an IPv4 subnet A.B.C.D/N without host bits",
                        c.ip_range
                    ))
                })?;
            if out.subnet.is_none() {
                return Err(bad("IPAM.Config.IPRange needs IPAM.Config.Subnet".into()));
            }
            out.ip_range = Some(r);
        }
    }
    Ok(out)
}

/// `POST /networks/create`: planned and stored by the Supervisor, then its bridge made.
async fn create(state: Data, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req = request(serde_json::from_slice(&body)?)?;
    let rec = create_network(&state.supervisor, req).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"Id": rec.id, "Warning": ""})))
}

/// `DELETE /networks/{id}`: 409 while a container (running or not) is on it.
async fn remove(state: Data, path: web::Path<NetworkPath>) -> Result<HttpResponse, ApiError> {
    remove_network(&state.supervisor, path.into_inner().id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /networks/prune`: every user network no container is on.
async fn prune(state: Data, q: Query) -> Result<HttpResponse, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    if let Some(key) = filters.keys().next() {
        return Err(ApiError::Query {
            name: "filters",
            value: format!("{key} (moor prunes networks without filters)"),
        });
    }
    let removed = prune_networks(&state.supervisor).await?;
    let names: Vec<String> = removed.iter().map(|n| n.name.clone()).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"NetworksDeleted": names})))
}

/// `POST /networks/{id}/connect`'s body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ConnectRequest {
    /// The container (id, name or prefix).
    container: String,
    /// Its endpoint's settings: `Aliases` honoured, the rest refused unless empty
    /// (`fields::ENDPOINT`).
    #[serde(default)]
    endpoint_config: serde_json::Value,
}

impl ConnectRequest {
    /// The aliases, or the first field moor does not implement that was given a value.
    fn aliases(&self) -> Result<Vec<String>, ApiError> {
        crate::api::fields::check_endpoint(&self.endpoint_config, "EndpointConfig")?;
        match self.endpoint_config.get("Aliases") {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| bad("EndpointConfig.Aliases is not a list of strings".to_string())),
        }
    }
}

/// `POST /networks/{id}/disconnect`'s body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DisconnectRequest {
    /// The container (id, name or prefix).
    container: String,
    /// Docker's force (for a container whose endpoint is gone): nothing more to force here.
    #[serde(default)]
    #[allow(dead_code)]
    force: bool,
}

/// `POST /networks/{id}/connect`: the container gets an address on the network, plugged in
/// at once when it runs (a further interface), else at its next start.
async fn connect(
    state: Data,
    path: web::Path<NetworkPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: ConnectRequest = serde_json::from_slice(&body)?;
    let aliases = req.aliases()?;
    let (id, container) = crate::api::routes::resolve(&state, &req.container).await?;
    let network = path.into_inner().id;
    state
        .supervisor
        .send(ConnectContainer {
            container,
            id,
            network,
            aliases,
        })
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /networks/{id}/disconnect`: the container loses its address there (and, when it
/// runs, that interface).
async fn disconnect(
    state: Data,
    path: web::Path<NetworkPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: DisconnectRequest = serde_json::from_slice(&body)?;
    let (id, container) = crate::api::routes::resolve(&state, &req.container).await?;
    let network = path.into_inner().id;
    state
        .supervisor
        .send(DisconnectContainer {
            container,
            id,
            network,
        })
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Ok().finish())
}
