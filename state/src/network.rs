//! Networks as data: the default bridge network's record (persisted in the `networks` tree so
//! every later start reuses the subnet it chose), a container's endpoint on it, the address
//! allocator and the choice of a subnet that overlaps no route of the host. Pure but for the
//! tree's reads and writes: the daemon reads the routes and creates the links.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use sled::Tree;
use thiserror::Error;

use crate::record::ContainerRecord;

/// Name of the tree: network name -> JSON of [`NetworkRecord`].
pub const NETWORKS_TREE: &str = "networks";

/// Version of [`NetworkRecord`]'s shape.
pub const NETWORK_RECORD_VERSION: u32 = 1;

/// The name of the default bridge network (Docker's).
pub const DEFAULT_NETWORK: &str = "bridge";

/// An IPv4 subnet: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub address: Ipv4Addr,
    /// The prefix length, 0 to 32.
    pub prefix_len: u8,
}

impl Subnet {
    /// The subnet of `address/prefix_len` (host bits cleared); None for a prefix over 32.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Subnet> {
        (prefix_len <= 32).then(|| Subnet {
            address: Ipv4Addr::from(u32::from(address) & mask(prefix_len)),
            prefix_len,
        })
    }

    /// Parses `A.B.C.D/N`.
    pub fn parse(text: &str) -> Option<Subnet> {
        let (addr, len) = text.split_once('/')?;
        Subnet::new(addr.parse().ok()?, len.parse().ok()?)
    }

    /// The first and last address of the subnet.
    pub fn bounds(&self) -> (u32, u32) {
        let first = u32::from(self.address);
        (first, first | !mask(self.prefix_len))
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix_len) == u32::from(self.address)
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let ((a0, a1), (b0, b1)) = (self.bounds(), other.bounds());
        a0 <= b1 && b0 <= a1
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

fn mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

/// A network moor created (for now only the default bridge network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// Shape version ([`NETWORK_RECORD_VERSION`]).
    pub version: u32,
    /// Its name (`bridge`).
    pub name: String,
    /// Docker's NetworkID: 64 hex, fixed at creation.
    pub id: String,
    /// The Linux bridge device (`moor0`).
    pub bridge: String,
    /// The subnet containers get addresses from.
    pub subnet: Subnet,
    /// The bridge's own address, the containers' default route.
    pub gateway: Ipv4Addr,
    /// The user's labels (`docker network create --label`); empty for `bridge`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When a user network was created (None for `bridge`).
    #[serde(default)]
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// Docker's `Internal`: no masquerade, no default route out of the network.
    #[serde(default)]
    pub internal: bool,
    /// `IPAM.Config[0].IPRange`: addresses are allocated only inside it (it lies inside
    /// `subnet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Subnet>,
}

impl NetworkRecord {
    /// Whether this is a network a user created (not the default `bridge`).
    pub fn is_user(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// What the user asked for (`POST /networks/create`, checked by the API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkRequest {
    /// The name.
    pub name: String,
    /// `IPAM.Config[0].Subnet`.
    pub subnet: Option<Subnet>,
    /// `IPAM.Config[0].Gateway`.
    pub gateway: Option<Ipv4Addr>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `Internal`.
    pub internal: bool,
    /// `IPAM.Config[0].IPRange`.
    pub ip_range: Option<Subnet>,
}

/// Prefix of a user network's bridge device (then 10 hex of its id: 15 characters, the
/// kernel's limit for a device name).
pub const USER_BRIDGE_PREFIX: &str = "moor-";

/// The bridge device of the user network whose id is `id`.
pub fn user_bridge(id: &str) -> String {
    format!("{USER_BRIDGE_PREFIX}{}", &id[..10.min(id.len())])
}

/// Whether `name` can name a user network: Docker's rule for names
/// (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), and not one of the built-in ones.
pub fn valid_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ));
    }
    if matches!(name, "bridge" | "host" | "none" | "default") {
        return Err(format!(
            "{name} is a pre-defined network and cannot be created"
        ));
    }
    Ok(())
}

/// The first default pool that overlaps none of the host's `routes` (default routes left
/// out) nor a subnet of `networks`. None when every pool is taken.
pub fn choose_user_subnet(routes: &[Subnet], networks: &[NetworkRecord]) -> Option<Subnet> {
    let specific: Vec<Subnet> = routes
        .iter()
        .filter(|r| r.prefix_len > 0)
        .copied()
        .collect();
    default_pools().find(|pool| {
        !specific.iter().any(|r| r.overlaps(pool))
            && !networks.iter().any(|n| n.subnet.overlaps(pool))
    })
}

/// Every endpoint of a container with its aliases and slot: the first network (slot 0,
/// `spec.network_aliases`), then those connected later.
pub fn endpoints(rec: &ContainerRecord) -> Vec<(&Endpoint, &[String], u8)> {
    let first = rec
        .spec
        .endpoint
        .iter()
        .map(|e| (e, rec.spec.network_aliases.as_slice(), 0));
    let more = rec
        .spec
        .extra_endpoints
        .iter()
        .map(|x| (&x.endpoint, x.aliases.as_slice(), x.slot));
    first.chain(more).collect()
}

/// The `/etc/hosts` lines a container on user networks gets for the others there: for each
/// running container (`running` says which) with an endpoint on one of its user networks,
/// that address with its name, its aliases there and its short id. Empty for the default
/// network (Docker resolves no names there) and for a container without an endpoint.
pub fn peer_hosts(
    records: &[ContainerRecord],
    id: &str,
    running: impl Fn(&ContainerRecord) -> bool,
) -> Vec<(Ipv4Addr, Vec<String>)> {
    let Some(own) = records.iter().find(|r| r.id == id) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (ep, _, _) in endpoints(own)
        .into_iter()
        .filter(|(e, _, _)| e.network != DEFAULT_NETWORK)
    {
        for r in records.iter().filter(|r| r.id != id && running(r)) {
            for (e, aliases, _) in endpoints(r) {
                if e.network_id != ep.network_id {
                    continue;
                }
                let mut names = vec![r.name.clone()];
                names.extend(aliases.iter().cloned());
                names.push(r.id[..12.min(r.id.len())].to_string());
                out.push((e.ip, names));
            }
        }
    }
    out
}

/// A network connected after a container's first: its endpoint, its aliases there and the
/// interface it is inside the container (`eth<slot>`, slot 1 to 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraEndpoint {
    /// The address and network.
    pub endpoint: Endpoint,
    /// Its aliases on that network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `eth<slot>` inside; the host side of its veth is named after it too.
    pub slot: u8,
}

/// Another container's network a container joins (`--network container:NAME`), resolved
/// at its start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinedNetwork {
    /// The namespace to join: the other's namespace file, or its init's `/proc/PID/ns/net`.
    pub netns: std::path::PathBuf,
    /// The other's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` with their places.
    pub files: Vec<(std::path::PathBuf, String)>,
    /// The other's hostname (Docker gives the joiner the same).
    pub hostname: String,
}

/// The highest slot a connected network can take (`eth15`: the host veth's name has one
/// hex digit for it).
pub const MAX_SLOT: u8 = 15;

/// The first free slot (1 to [`MAX_SLOT`]) of `spec`'s further networks.
pub fn free_slot(spec: &crate::record::ContainerSpec) -> Option<u8> {
    (1..=MAX_SLOT).find(|s| !spec.extra_endpoints.iter().any(|x| x.slot == *s))
}

/// Makes a container that lost its first network (disconnected while it ran) start on the
/// first of the others: it becomes slot 0 with its aliases, and the network mode names it.
/// Whether anything changed.
pub fn promote_first(spec: &mut crate::record::ContainerSpec) -> bool {
    if spec.endpoint.is_some() || spec.extra_endpoints.is_empty() {
        return false;
    }
    let first = spec.extra_endpoints.remove(0);
    spec.network_mode = first.endpoint.network.clone();
    spec.endpoint = Some(first.endpoint);
    spec.network_aliases = first.aliases;
    true
}

/// A container's place on a network: allocated at create, kept in its record until removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's name (`bridge`).
    pub network: String,
    /// The network's id (Docker's NetworkID).
    pub network_id: String,
    /// The Linux bridge the host side of the veth is attached to.
    pub bridge: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The default route's gateway.
    pub gateway: Ipv4Addr,
    /// On an `Internal` network: the container gets no default route through `gateway`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

impl Endpoint {
    /// Docker's MAC for an address: `02:42` then the address's four bytes.
    pub fn mac(&self) -> [u8; 6] {
        let o = self.ip.octets();
        [0x02, 0x42, o[0], o[1], o[2], o[3]]
    }

    /// [`Endpoint::mac`] as `02:42:ac:11:00:02`.
    pub fn mac_text(&self) -> String {
        let m = self.mac();
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// The first free address of `subnet`: neither its network nor broadcast address, nor the
/// gateway, nor one in `held`. None when the subnet is full.
pub fn allocate(subnet: Subnet, gateway: Ipv4Addr, held: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    allocate_in(subnet, None, gateway, held)
}

/// [`allocate`] limited to `range` (Docker's IPRange, inside `subnet`) when given: its own
/// first and last addresses may be handed out, the subnet's never.
pub fn allocate_in(
    subnet: Subnet,
    range: Option<Subnet>,
    gateway: Ipv4Addr,
    held: &BTreeSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let (first, last) = subnet.bounds();
    if last.saturating_sub(first) < 2 {
        return None;
    }
    let (lo, hi) = match range {
        Some(r) => {
            let (a, b) = r.bounds();
            (a.max(first + 1), b.min(last - 1))
        }
        None => (first + 1, last - 1),
    };
    (lo..=hi)
        .map(Ipv4Addr::from)
        .find(|ip| *ip != gateway && !held.contains(ip))
}

/// Whether `range` (an IPRange) lies inside `subnet`.
pub fn range_inside(range: Subnet, subnet: Subnet) -> bool {
    range.prefix_len >= subnet.prefix_len && subnet.contains(range.address)
}

/// The addresses held on network `name` by the containers of `records` (every endpoint).
pub fn held(records: &[ContainerRecord], name: &str) -> BTreeSet<Ipv4Addr> {
    records
        .iter()
        .flat_map(endpoints)
        .filter(|(e, _, _)| e.network == name)
        .map(|(e, _, _)| e.ip)
        .collect()
}

/// The default network as its containers' endpoints describe it: what a store rebuilt from
/// spec files (which lost the networks tree) gets back, so the subnet its containers hold
/// addresses in is kept. None when no record has an endpoint on it.
pub fn from_endpoints(records: &[ContainerRecord]) -> Option<NetworkRecord> {
    let ep = records
        .iter()
        .filter_map(|r| r.spec.endpoint.as_ref())
        .find(|e| e.network == DEFAULT_NETWORK)?;
    Some(NetworkRecord {
        version: NETWORK_RECORD_VERSION,
        name: ep.network.clone(),
        id: ep.network_id.clone(),
        bridge: ep.bridge.clone(),
        subnet: Subnet::new(ep.ip, ep.prefix_len)?,
        gateway: ep.gateway,
        labels: BTreeMap::new(),
        created: None,
        internal: false,
        ip_range: None,
    })
}

/// Docker's default pools in order: 172.17-31.0.0/16, then 192.168.0-240.0/20.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let b = (17..=31).map(|n| Subnet {
        address: Ipv4Addr::new(172, n, 0, 0),
        prefix_len: 16,
    });
    let c = (0..=15).map(|n| Subnet {
        address: Ipv4Addr::new(192, 168, n * 16, 0),
        prefix_len: 20,
    });
    b.chain(c)
}

/// The first default pool that overlaps none of `routes` (default routes, prefix 0, match
/// everything and are left out, as Docker does). None when every pool is taken.
pub fn choose_subnet(routes: &[Subnet]) -> Option<Subnet> {
    let specific: Vec<&Subnet> = routes.iter().filter(|r| r.prefix_len > 0).collect();
    default_pools().find(|pool| !specific.iter().any(|r| r.overlaps(pool)))
}

/// The bridge's address in `subnet` (its first host address, Docker's choice).
pub fn first_host(subnet: Subnet) -> Ipv4Addr {
    Ipv4Addr::from(subnet.bounds().0 + 1)
}

/// What can go wrong with the networks tree.
#[derive(Debug, Error)]
pub enum NetworkStoreError {
    /// sled failed to read.
    #[error("reading the network store failed")]
    Read(#[source] sled::Error),
    /// sled failed to write or flush.
    #[error("writing the network store failed")]
    Write(#[source] sled::Error),
    /// A stored record is not valid JSON for [`NetworkRecord`].
    #[error("the record of network {name} cannot be decoded")]
    Decode {
        /// The key.
        name: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
}

/// The `networks` tree.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    /// The store's write counter and flusher.
    pub(crate) counted: crate::store::Counted,
    /// name -> JSON of [`NetworkRecord`].
    pub(crate) tree: Tree,
}

impl NetworkStore {
    /// The network named `name`.
    pub fn get(&self, name: &str) -> Result<Option<NetworkRecord>, NetworkStoreError> {
        let raw = self.tree.get(name).map_err(NetworkStoreError::Read)?;
        raw.map(|v| {
            serde_json::from_slice(&v).map_err(|source| NetworkStoreError::Decode {
                name: name.into(),
                source,
            })
        })
        .transpose()
    }

    /// Every network, sorted by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetworkStoreError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (key, value) = item.map_err(NetworkStoreError::Read)?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let rec = serde_json::from_slice(&value)
                .map_err(|source| NetworkStoreError::Decode { name, source })?;
            out.push(rec);
        }
        Ok(out)
    }

    /// Removes the network named `name`, then flushes.
    pub fn remove(&self, name: &str) -> Result<(), NetworkStoreError> {
        self.remove_unflushed(name)?;
        self.counted.flush().map_err(NetworkStoreError::Write)
    }

    /// [`NetworkStore::remove`] without the flush: returns the write's counter (see
    /// `store::counted`).
    pub fn remove_unflushed(&self, name: &str) -> Result<u64, NetworkStoreError> {
        self.counted
            .write_plain(&self.tree, |t| t.remove(name.as_bytes()).map(drop))
            .map_err(NetworkStoreError::Write)
    }

    /// Writes a record, then flushes.
    pub fn put(&self, rec: &NetworkRecord) -> Result<(), NetworkStoreError> {
        self.put_unflushed(rec)?;
        self.counted.flush().map_err(NetworkStoreError::Write)
    }

    /// [`NetworkStore::put`] without the flush: returns the write's counter.
    pub fn put_unflushed(&self, rec: &NetworkRecord) -> Result<u64, NetworkStoreError> {
        // Strings and addresses always serialize.
        let bytes = serde_json::to_vec(rec).unwrap_or_default();
        self.counted
            .write_plain(&self.tree, |t| {
                t.insert(rec.name.as_bytes(), bytes.as_slice()).map(drop)
            })
            .map_err(NetworkStoreError::Write)
    }
}

#[cfg(test)]
mod tests;
