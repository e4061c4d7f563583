//! User networks on the host: each one's Linux bridge (`moor-<10 hex of its id>`), made when
//! the network is created and again at daemon start when missing, deleted with the network;
//! and the `/etc/hosts` of the containers on them, rewritten in place as containers on a
//! network start and end, so they find each other by name with no process of moor on the
//! path (a daemon that is down leaves the files as they were).

use std::net::Ipv4Addr;

pub use moor_state::network::NetworkRequest;
use moor_state::network::{
    choose_user_subnet, first_host, peer_hosts, user_bridge, NetworkRecord, Subnet,
    NETWORK_RECORD_VERSION,
};
use moor_state::ContainerRecord;
use tracing::{info, warn};

use super::{files, link, netns, NetworkError};

/// The IPv4 routes of the host (the daemon's namespace), for [`plan`].
pub fn host_routes() -> Result<Vec<Subnet>, NetworkError> {
    netns::run_in(None, || {
        link::block(|h| async move { link::routes(&h).await })
    })
}

/// The record of a new network for `req`: its subnet (asked, else the first default pool
/// free of the host's `routes` and of `existing`'s subnets), gateway (asked, else the first
/// host address), a fresh id and the bridge named after it. Pure: nothing is stored or made.
pub fn plan(
    req: &NetworkRequest,
    existing: &[NetworkRecord],
    routes: &[Subnet],
) -> Result<NetworkRecord, String> {
    let subnet = match req.subnet {
        Some(s) => {
            if let Some(other) = existing.iter().find(|n| n.subnet.overlaps(&s)) {
                return Err(format!(
                    "invalid pool request: subnet {s} overlaps {} of network {}",
                    other.subnet, other.name
                ));
            }
            s
        }
        None => choose_user_subnet(routes, existing).ok_or(
            "no default address pool is free of the host's routes and of the other \
             networks: give IPAM.Config Subnet",
        )?,
    };
    let gateway = req.gateway.unwrap_or_else(|| first_host(subnet));
    let (first, last) = subnet.bounds();
    let g = u32::from(gateway);
    if !subnet.contains(gateway) || g == first || g == last {
        return Err(format!(
            "gateway {gateway} is not a host address of subnet {subnet}"
        ));
    }
    if let Some(range) = req
        .ip_range
        .filter(|r| !moor_state::network::range_inside(*r, subnet))
    {
        return Err(format!(
            "IPAM.Config.IPRange {range} is not inside subnet {subnet}"
        ));
    }
    let id = super::random_id();
    Ok(NetworkRecord {
        version: NETWORK_RECORD_VERSION,
        name: req.name.clone(),
        bridge: user_bridge(&id),
        id,
        subnet,
        gateway,
        labels: req.labels.clone(),
        created: Some(chrono::Utc::now()),
        internal: req.internal,
        ip_range: req.ip_range,
    })
}

/// The network's bridge made or completed (address, up). Whether it was made.
pub fn ensure(net: &NetworkRecord) -> Result<bool, NetworkError> {
    let (name, gw, len) = (net.bridge.clone(), net.gateway, net.subnet.prefix_len);
    netns::run_in(None, move || {
        link::block(|h| async move { link::ensure_bridge(&h, &name, gw, len).await })
    })
}

/// The network's bridge deleted (no error when it is gone already).
pub fn remove(net: &NetworkRecord) -> Result<bool, NetworkError> {
    let name = net.bridge.clone();
    netns::run_in(None, move || {
        link::block(|h| async move { link::delete(&h, &name).await })
    })
}

/// At daemon start: the bridge of every user network made again when missing (a reboot);
/// a failure is logged, not fatal (that network's containers fail to start, naming it).
pub fn ensure_all(networks: &[NetworkRecord]) {
    for net in networks.iter().filter(|n| n.is_user()) {
        match ensure(net) {
            Ok(made) => {
                info!(network = %net.name, bridge = %net.bridge, made, "user network ready")
            }
            Err(e) => warn!(network = %net.name, error = %e, "user network's bridge not made"),
        }
    }
}

/// The `/etc/hosts` text of container `rec`: Docker's lines for itself, then one line per
/// other running container on its user network.
pub fn hosts_text(rec: &ContainerRecord, peers: &[(Ipv4Addr, Vec<String>)]) -> Option<String> {
    let own = moor_state::network::endpoints(rec);
    let (ep, _, _) = own.first()?;
    let hostname = match rec.spec.hostname.as_str() {
        "" => &rec.id[..12.min(rec.id.len())],
        name => name,
    };
    let mut text = files::hosts(ep.ip, hostname);
    text.push_str(&files::extra_hosts(&rec.spec.process, Some(ep.gateway)));
    for (ip, names) in peers {
        text.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    Some(text)
}

/// Whether a container has an endpoint on a user network (only those get peers in their
/// `/etc/hosts`, and only they appear in others').
pub fn on_user_network(rec: &ContainerRecord) -> bool {
    moor_state::network::endpoints(rec)
        .iter()
        .any(|(e, _, _)| e.network != moor_state::network::DEFAULT_NETWORK)
}

/// Rewrites, in place, the `/etc/hosts` of every running container on a user network
/// (`running` says which run; `dir_of` gives a container's directory). A container whose
/// file is missing (not started yet) is skipped. Returns how many were written.
pub fn rewrite_hosts(
    records: &[ContainerRecord],
    running: impl Fn(&ContainerRecord) -> bool + Copy,
    dir_of: impl Fn(&str) -> std::path::PathBuf,
) -> usize {
    let mut written = 0;
    for rec in records.iter().filter(|r| running(r) && on_user_network(r)) {
        let peers = peer_hosts(records, &rec.id, running);
        let Some(text) = hosts_text(rec, &peers) else {
            continue;
        };
        let path = dir_of(&rec.id).join("hosts");
        if !path.exists() {
            continue;
        }
        match files::rewrite(&path, &text) {
            Ok(()) => written += 1,
            Err(e) => {
                warn!(container_id = %&rec.id[..12.min(rec.id.len())], error = %e, "hosts not rewritten")
            }
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use moor_state::network::Endpoint;
    use moor_state::ContainerSpec;

    fn rec(id: char, name: &str, net: &str, ip: u8) -> ContainerRecord {
        let ts = chrono::DateTime::from_timestamp(0, 0).expect("epoch");
        let spec = ContainerSpec {
            endpoint: Some(Endpoint {
                network: net.into(),
                network_id: net.repeat(8),
                bridge: "moor-x".into(),
                ip: Ipv4Addr::new(10, 1, 0, ip),
                prefix_len: 24,
                gateway: Ipv4Addr::new(10, 1, 0, 1),
                internal: false,
            }),
            network_aliases: vec![format!("{name}-alias")],
            ..ContainerSpec::default()
        };
        ContainerRecord::new(id.to_string().repeat(64), name.into(), spec, ts)
    }

    #[test]
    fn each_running_container_gets_the_others_on_its_network_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = vec![
            rec('a', "web", "net1", 2),
            rec('b', "cli", "net1", 3),
            rec('c', "other", "net2", 2),
            rec('d', "stopped", "net1", 4),
            rec('e', "dflt", "bridge", 5),
        ];
        for r in &records {
            std::fs::create_dir_all(dir.path().join(&r.id)).unwrap();
            std::fs::write(dir.path().join(&r.id).join("hosts"), "old").unwrap();
        }
        let running = |r: &ContainerRecord| !r.name.starts_with("stopped");
        let n = rewrite_hosts(&records, running, |id| dir.path().join(id));
        assert_eq!(n, 3);
        let read = |r: &ContainerRecord| {
            std::fs::read_to_string(dir.path().join(&r.id).join("hosts")).unwrap()
        };
        let web = read(&records[0]);
        assert!(web.contains("10.1.0.2\taaaaaaaaaaaa\n"), "{web}");
        assert!(
            web.ends_with("10.1.0.3\tcli cli-alias bbbbbbbbbbbb\n"),
            "{web}"
        );
        assert!(!web.contains("other") && !web.contains("stopped"), "{web}");
        assert!(read(&records[1]).contains("10.1.0.2\tweb web-alias aaaaaaaaaaaa\n"));
        assert!(
            !read(&records[2]).contains("web"),
            "another network's names"
        );
        assert_eq!(
            read(&records[3]),
            "old",
            "a stopped container is not written"
        );
        assert_eq!(
            read(&records[4]),
            "old",
            "the default network resolves no names"
        );
    }

    #[test]
    fn a_plan_refuses_an_overlapping_subnet_and_a_gateway_outside() {
        let asked = |s: &str, g: Option<&str>| NetworkRequest {
            name: "n".into(),
            subnet: Subnet::parse(s),
            gateway: g.map(|g| g.parse().unwrap()),
            ..NetworkRequest::default()
        };
        let one = plan(&asked("10.5.0.0/24", None), &[], &[]).expect("plan");
        assert_eq!(one.gateway, Ipv4Addr::new(10, 5, 0, 1));
        assert!(one.bridge.starts_with("moor-") && one.bridge.len() == 15);
        let e = plan(
            &asked("10.5.0.128/25", None),
            std::slice::from_ref(&one),
            &[],
        )
        .unwrap_err();
        assert!(e.contains("overlaps 10.5.0.0/24 of network n"), "{e}");
        let e = plan(&asked("10.6.0.0/24", Some("10.7.0.1")), &[], &[]).unwrap_err();
        assert!(e.contains("not a host address"), "{e}");
        let ranged = |r: &str| NetworkRequest {
            ip_range: Subnet::parse(r),
            ..asked("10.6.0.0/24", None)
        };
        let e = plan(&ranged("10.6.1.0/25"), &[], &[]).unwrap_err();
        assert!(
            e.contains("IPRange 10.6.1.0/25 is not inside subnet 10.6.0.0/24"),
            "{e}"
        );
        let ok = plan(&ranged("10.6.0.64/26"), &[], &[]).expect("plan");
        assert_eq!(ok.ip_range, Subnet::parse("10.6.0.64/26"));
        let e = plan(&asked("10.6.0.0/24", Some("10.7.0.1")), &[], &[]).unwrap_err();
        assert!(e.contains("not a host address"), "{e}");
        let routes = [Subnet::parse("172.17.0.0/16").unwrap()];
        let chosen = plan(&NetworkRequest::default(), &[one], &routes).expect("plan");
        assert_eq!(chosen.subnet, Subnet::parse("172.18.0.0/16").unwrap());
    }
}
