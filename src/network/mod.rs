//! Container networking on the host: the default bridge (`moor0`), a network namespace file
//! and a veth pair per container, and the container's `/etc/hosts`, `/etc/resolv.conf` and
//! `/etc/hostname`; moor's nftables table for NAT and published ports (`nat`, `ports`).
//! Everything here is kernel state that outlives the daemon: a daemon that
//! stops (live restore) or dies leaves it in place, and the next one checks and repairs it.
//!
//! Below the daemon and the runtime, beside `runtime/`: names only `host/`, `identity`,
//! `moor_state` and crates. Every function blocks (netlink on a thread of its own).

pub mod files;
pub mod link;
pub mod nat;
pub mod netns;
pub mod ports;
pub mod user;
pub mod veth;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use moor_state::network::{
    choose_subnet, first_host, Endpoint, ExtraEndpoint, NetworkRecord, Subnet, DEFAULT_NETWORK,
    NETWORK_RECORD_VERSION,
};
use moor_state::store::Store;
use thiserror::Error;
use tracing::{info, warn};

/// The default bridge device (Docker's is `docker0`).
pub const DEFAULT_BRIDGE: &str = "moor0";

/// Prefix of the host side of moor's veth pairs (then 10 hex of the container id).
pub const VETH_PREFIX: &str = "moorv";

/// Prefix of the container side before it is renamed `eth<slot>` in the container.
const PEER_PREFIX: &str = "moorc";

/// Why a network step failed.
#[derive(Debug, Error)]
pub enum NetworkError {
    /// A netlink request failed.
    #[error("netlink: {what}")]
    Netlink {
        /// What was asked.
        what: &'static str,
        /// The kernel's or the crate's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A file or system call failed.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A link moor just made or checked is gone.
    #[error("link {name} vanished")]
    Vanished {
        /// Its name.
        name: String,
    },
    /// The bridge a container's endpoint names is gone (the daemon runs with `"bridge":
    /// "none"` and the device was removed, or a reboot took it).
    #[error("bridge {name} does not exist: the container was created on the default bridge network, which this daemon does not keep (daemon.json \"bridge\")")]
    NoBridge {
        /// The bridge device.
        name: String,
    },
    /// ExtraHosts asks for `host-gateway` on a container without a bridge network.
    #[error("HostConfig.ExtraHosts {line:?}: host-gateway needs a bridge network, and this container has none")]
    NoGateway {
        /// The ExtraHosts entry.
        line: String,
    },
    /// A thread of the network steps panicked.
    #[error("a network thread panicked")]
    Thread,
    /// Every default pool overlaps a route of the host.
    #[error("no default address pool is free of the host's routes: set \"bip\" in daemon.json")]
    NoFreeSubnet,
    /// daemon.json asks for another bridge than the one the network was made on.
    #[error("daemon.json asks for {asked} but the bridge network was created with {recorded}: moor cannot change it yet (remove the setting, or remove every container and the network record)")]
    Changed {
        /// What daemon.json asks for.
        asked: String,
        /// What the stored network has.
        recorded: String,
    },
    /// The networks tree.
    #[error("the network store")]
    Store(#[from] moor_state::network::NetworkStoreError),
    /// The store could not open its networks tree.
    #[error("the store")]
    OpenStore(#[from] moor_state::store::StoreError),
}

/// daemon.json's `bridge` and `bip`, read by the config layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSettings {
    /// The bridge device.
    pub name: String,
    /// The bridge's address and the subnet's prefix (`bip`), when given.
    pub bip: Option<(Ipv4Addr, u8)>,
}

/// Parses `bip`: the bridge's address with the subnet's prefix, `A.B.C.D/N` (N 8 to 30).
pub fn parse_bip(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = text.split_once('/')?;
    let (addr, len): (Ipv4Addr, u8) = (addr.parse().ok()?, len.parse().ok()?);
    let subnet = Subnet::new(addr, len).filter(|_| (8..=30).contains(&len))?;
    let (first, last) = subnet.bounds();
    (u32::from(addr) != first && u32::from(addr) != last).then_some((addr, len))
}

/// The default bridge network: the stored record (checked against `settings`), or one made
/// now (`bip`, else the first default pool free of the host's routes, logged) and stored;
/// then the bridge device made or completed.
pub fn default_network(
    store: &Store,
    settings: &BridgeSettings,
) -> Result<NetworkRecord, NetworkError> {
    let tree = store.networks()?;
    let record = match tree.get(DEFAULT_NETWORK)? {
        Some(rec) => {
            check_unchanged(&rec, settings)?;
            rec
        }
        None => match moor_state::network::from_endpoints(&store.list()?) {
            Some(rec) => {
                warn!(subnet = %rec.subnet, "the network record was lost (store rebuilt): taken back from the containers' addresses");
                check_unchanged(&rec, settings)?;
                tree.put(&rec)?;
                rec
            }
            None => new_network(settings, &tree)?,
        },
    };
    let (name, gw, len) = (
        record.bridge.clone(),
        record.gateway,
        record.subnet.prefix_len,
    );
    let made = netns::run_in(None, move || {
        link::block(|h| async move { link::ensure_bridge(&h, &name, gw, len).await })
    })?;
    info!(bridge = %record.bridge, subnet = %record.subnet, gateway = %record.gateway, made, "bridge network ready");
    Ok(record)
}

/// A new default network: `bip`, else the first default pool free of the host's routes
/// (logged); stored.
fn new_network(
    settings: &BridgeSettings,
    tree: &moor_state::network::NetworkStore,
) -> Result<NetworkRecord, NetworkError> {
    let (subnet, gateway) = match settings.bip {
        Some((addr, len)) => (
            Subnet::new(addr, len).ok_or(NetworkError::NoFreeSubnet)?,
            addr,
        ),
        None => {
            let routes = netns::run_in(None, || {
                link::block(|h| async move { link::routes(&h).await })
            })?;
            let subnet = choose_subnet(&routes).ok_or(NetworkError::NoFreeSubnet)?;
            info!(subnet = %subnet, "chose the bridge network's subnet: it overlaps no route of the host");
            (subnet, first_host(subnet))
        }
    };
    let rec = NetworkRecord {
        version: NETWORK_RECORD_VERSION,
        name: DEFAULT_NETWORK.into(),
        id: random_id(),
        bridge: settings.name.clone(),
        subnet,
        gateway,
        labels: Default::default(),
        created: None,
        internal: false,
        ip_range: None,
    };
    tree.put(&rec)?;
    Ok(rec)
}

fn check_unchanged(rec: &NetworkRecord, settings: &BridgeSettings) -> Result<(), NetworkError> {
    if rec.bridge != settings.name {
        return Err(NetworkError::Changed {
            asked: format!("bridge {:?}", settings.name),
            recorded: format!("bridge {:?}", rec.bridge),
        });
    }
    match settings.bip {
        Some((addr, len)) if (addr, len) != (rec.gateway, rec.subnet.prefix_len) => {
            Err(NetworkError::Changed {
                asked: format!("bip {addr}/{len}"),
                recorded: format!("bip {}/{}", rec.gateway, rec.subnet.prefix_len),
            })
        }
        _ => Ok(()),
    }
}

fn random_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

/// The host side of container `id`'s first veth pair (slot 0).
pub fn host_veth(id: &str) -> String {
    veth::host_name(id, 0)
}

/// What a started container's bundle needs: its namespace file and the files to mount.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The network namespace file (Docker's SandboxKey).
    pub netns: PathBuf,
    /// Each file moor owns with its place in the container.
    pub files: Vec<(PathBuf, String)>,
}

/// Gives container `id` its network before it starts: a new namespace, a new veth pair on
/// the bridge of each of its networks (`ep` as eth0, then each of `extras` as `eth<slot>`),
/// configured inside, and its files written into `container_dir` (with the lines of its
/// ExtraHosts and Dns* options, `opts`). What a previous run left (a namespace file, veths)
/// is replaced.
pub fn attach(
    run_dir: &Path,
    container_dir: &Path,
    id: &str,
    hostname: &str,
    ep: &Endpoint,
    extras: &[ExtraEndpoint],
    opts: &moor_state::resources::ProcessOptions,
) -> Result<Attached, NetworkError> {
    let began = std::time::Instant::now();
    detach(run_dir, id)?;
    let path = netns::path(run_dir, id);
    let cleared = began.elapsed();
    netns::create(&path, None)?;
    let made = began.elapsed();
    let done = veth::plug(&path, id, 0, ep, false)
        .and_then(|()| {
            extras
                .iter()
                .try_for_each(|x| veth::plug(&path, id, x.slot, &x.endpoint, false))
        })
        .and_then(|()| files::write(container_dir, (ep.ip, ep.gateway), hostname, opts));
    tracing::debug!(
        container_id = %&id[..12.min(id.len())],
        clear_ms = cleared.as_secs_f64() * 1e3,
        netns_ms = (made - cleared).as_secs_f64() * 1e3,
        total_ms = began.elapsed().as_secs_f64() * 1e3,
        "network attached"
    );
    match done {
        Ok(files) => Ok(Attached { netns: path, files }),
        Err(e) => {
            if let Err(undo) = detach(run_dir, id) {
                warn!(error = %undo, "undoing a failed network set-up failed");
            }
            Err(e)
        }
    }
}

/// Takes container `id`'s network down after it ended: its host veths deleted and its
/// namespace file unmounted and removed. Idempotent.
pub fn detach(run_dir: &Path, id: &str) -> Result<(), NetworkError> {
    veth::unplug_but(id, &[])?;
    netns::remove(&netns::path(run_dir, id))
}

/// What [`repair`] found missing and put back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The namespace file was re-mounted from the container's init.
    pub netns: bool,
    /// How many host veths were missing, detached from their bridge or down.
    pub veths: usize,
    /// How many veths of networks no longer connected were deleted.
    pub stale: usize,
}

/// At daemon start, for a container that kept running: its namespace file (re-mounted
/// from `/proc/<init>/ns/net` when missing), the veth of each of its `endpoints` (with
/// their slots: made again when gone, attached and up else) and the interface inside, and
/// the veths of networks it is no longer on (a disconnect the daemon died in) deleted.
/// What is there is left untouched.
pub fn repair(
    run_dir: &Path,
    id: &str,
    endpoints: &[(Endpoint, u8)],
    init_pid: i32,
) -> Result<Repaired, NetworkError> {
    let path = netns::path(run_dir, id);
    let mut repaired = Repaired::default();
    if !netns::is_mounted(&path) {
        let from = PathBuf::from(format!("/proc/{init_pid}/ns/net"));
        netns::create(&path, Some(&from))?;
        repaired.netns = true;
    }
    for (ep, slot) in endpoints {
        if !veth::healthy(id, *slot, &ep.bridge)? {
            veth::plug(&path, id, *slot, ep, true)?;
            repaired.veths += 1;
        }
    }
    let slots: Vec<u8> = endpoints.iter().map(|(_, s)| *s).collect();
    repaired.stale = veth::unplug_but(id, &slots)?;
    Ok(repaired)
}

/// moor's network objects on this host, for `moor admin`.
#[derive(Debug, Default, Clone)]
pub struct Objects {
    /// The bridge device, when it exists.
    pub bridge: Option<link::LinkState>,
    /// The bridges of user networks (`moor-<10 hex>`).
    pub user_bridges: Vec<link::LinkState>,
    /// The host sides of moor's veth pairs.
    pub veths: Vec<link::LinkState>,
    /// The namespace files under the run directory.
    pub netns_files: Vec<PathBuf>,
}

/// Lists [`Objects`] (the bridge named `bridge`).
pub fn objects(run_dir: &Path, bridge: &str) -> Result<Objects, NetworkError> {
    let bridge = bridge.to_string();
    let (bridge, user_bridges, veths) = netns::run_in(None, move || {
        link::block(|h| async move {
            let all = link::all(&h).await?;
            let br = all.iter().find(|l| l.name == bridge).cloned();
            let user = moor_state::network::USER_BRIDGE_PREFIX;
            let users = all
                .iter()
                .filter(|l| l.name.starts_with(user))
                .cloned()
                .collect();
            let veths = all
                .into_iter()
                .filter(|l| l.name.starts_with(VETH_PREFIX))
                .collect();
            Ok((br, users, veths))
        })
    })?;
    let mut netns_files: Vec<PathBuf> = std::fs::read_dir(netns::dir(run_dir))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    netns_files.sort();
    Ok(Objects {
        bridge,
        user_bridges,
        veths,
        netns_files,
    })
}

/// Whether a veth or namespace file of [`objects`] belongs to container id `id`.
pub fn belongs_to(name: &str, id: &str) -> bool {
    let short = &id[..10.min(id.len())];
    name == host_veth(id)
        || name == id
        || name.ends_with(short) && name.starts_with(VETH_PREFIX)
        || name.starts_with(&veth::extra_prefix(id))
}

/// Deletes the veth `name` (a leftover moor's `admin` found).
pub fn delete_veth(name: &str) -> Result<bool, NetworkError> {
    let name = name.to_string();
    netns::run_in(None, move || {
        link::block(|h| async move { link::delete(&h, &name).await })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip_is_an_address_inside_its_subnet() {
        assert_eq!(
            parse_bip("172.30.0.1/16"),
            Some((Ipv4Addr::new(172, 30, 0, 1), 16))
        );
        assert_eq!(parse_bip("172.30.0.0/16"), None);
        assert_eq!(parse_bip("172.30.255.255/16"), None);
        assert_eq!(parse_bip("172.30.0.1"), None);
        assert_eq!(parse_bip("172.30.0.1/31"), None);
        assert_eq!(parse_bip("bridge/16"), None);
    }

    #[test]
    fn a_stored_network_is_kept_and_a_different_setting_names_both() {
        let rec = NetworkRecord {
            version: NETWORK_RECORD_VERSION,
            name: DEFAULT_NETWORK.into(),
            id: "a".repeat(64),
            bridge: DEFAULT_BRIDGE.into(),
            subnet: Subnet::parse("172.17.0.0/16").expect("subnet"),
            gateway: Ipv4Addr::new(172, 17, 0, 1),
            labels: Default::default(),
            created: None,
            internal: false,
            ip_range: None,
        };
        let asked = |name: &str, bip| BridgeSettings {
            name: name.into(),
            bip,
        };
        assert!(check_unchanged(&rec, &asked("moor0", None)).is_ok());
        let same = Some((Ipv4Addr::new(172, 17, 0, 1), 16));
        assert!(check_unchanged(&rec, &asked("moor0", same)).is_ok());
        let other = Some((Ipv4Addr::new(10, 9, 0, 1), 24));
        let e = check_unchanged(&rec, &asked("moor0", other))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bip 10.9.0.1/24") && e.contains("bip 172.17.0.1/16"),
            "{e}"
        );
        let e = check_unchanged(&rec, &asked("br1", None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"br1\"") && e.contains("\"moor0\""), "{e}");
    }

    #[test]
    fn veth_names_fit_the_kernels_limit_and_name_their_container() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(host_veth(&id), "moorv0123456789");
        assert!(belongs_to(&host_veth(&id), &id));
        assert!(belongs_to(&veth::host_name(&id, 2), &id));
        assert!(!belongs_to("moorvffffffffff", &id));
    }
}
