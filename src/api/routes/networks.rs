//! `/networks`: list and inspect the default networks (`bridge` when the daemon has it,
//! `host`, `none`), with the running containers on each. Creating networks is not built:
//! those routes answer 404 as any unknown route does.

use actix_web::{web, HttpResponse};
use moor_state::network::NetworkRecord;
use moor_state::ContainerRecord;

use crate::api::convert::{endpoint_id, go_time};
use crate::api::error::ApiError;
use crate::api::network_types::{Ipam, IpamConfig, Network, NetworkContainer};
use crate::api::routes::{parse_filters, Query};
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::ListContainers;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/networks", web::get().to(list))
        .route("/networks/{id}", web::get().to(inspect));
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
        .filter_map(|r| Some((r, r.spec.endpoint.as_ref()?)))
        .filter(|(_, ep)| ep.network_id == net.id)
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
    }];
    Network {
        name: net.name.clone(),
        id: net.id.clone(),
        driver: "bridge".into(),
        containers,
        options: [(
            "com.docker.network.bridge.name".to_string(),
            net.bridge.clone(),
        )]
        .into(),
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
