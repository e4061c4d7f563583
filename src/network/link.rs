//! Links, addresses and routes through netlink (`rtnetlink`). Every call here blocks: it runs
//! a small tokio runtime of its own on the calling thread, which is a thread
//! [`super::netns::run_in`] made (so it may have entered a container's namespace), never the
//! actors' thread.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use moor_state::network::Subnet;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::NetworkError;

/// What moor reads of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// Its name.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// The bridge it is attached to (an index).
    pub controller: Option<u32>,
    /// Administratively up.
    pub up: bool,
}

fn netlink(what: &'static str) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    move |source| NetworkError::Netlink { what, source }
}

/// Runs `step` with a netlink handle of the calling thread's namespace, to its end.
pub fn block<T, F>(step: impl FnOnce(Handle) -> F) -> Result<T, NetworkError>
where
    F: Future<Output = Result<T, NetworkError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|source| NetworkError::Io {
            what: "start a runtime for",
            path: "netlink".into(),
            source,
        })?;
    runtime.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetworkError::Io {
                what: "open",
                path: "netlink".into(),
                source,
            })?;
        let driver = tokio::spawn(connection);
        let out = step(handle).await;
        driver.abort();
        out
    })
}

fn state_of(msg: &LinkMessage) -> LinkState {
    let mut state = LinkState {
        name: String::new(),
        index: msg.header.index,
        controller: None,
        up: msg.header.flags.contains(LinkFlags::Up),
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => state.name = n.clone(),
            LinkAttribute::Controller(c) => state.controller = Some(*c),
            _ => {}
        }
    }
    state
}

/// The link named `name`, if there is one.
pub async fn get(handle: &Handle, name: &str) -> Result<Option<LinkState>, NetworkError> {
    let mut links = handle.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(found) => Ok(found.as_ref().map(state_of)),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(netlink("read link")(e)),
    }
}

/// Every link of the namespace.
pub async fn all(handle: &Handle) -> Result<Vec<LinkState>, NetworkError> {
    let links: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(netlink("list links"))?;
    Ok(links.iter().map(state_of).collect())
}

/// Sets the link up.
pub async fn up(handle: &Handle, index: u32) -> Result<(), NetworkError> {
    let msg = LinkUnspec::new_with_index(index).up().build();
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .map_err(netlink("set link up"))
}

/// Deletes the link `name` (a veth takes its peer with it); a missing one is no error.
pub async fn delete(handle: &Handle, name: &str) -> Result<bool, NetworkError> {
    let Some(link) = get(handle, name).await? else {
        return Ok(false);
    };
    handle
        .link()
        .del(link.index)
        .execute()
        .await
        .map_err(netlink("delete link"))?;
    Ok(true)
}

/// The IPv4 addresses (with prefix length) of link `index`.
pub async fn addresses(handle: &Handle, index: u32) -> Result<Vec<Subnet>, NetworkError> {
    let msgs: Vec<_> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(netlink("list addresses"))?;
    let mut out = Vec::new();
    for m in msgs {
        for a in &m.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = a {
                out.push(Subnet {
                    address: *ip,
                    prefix_len: m.header.prefix_len,
                });
            }
        }
    }
    Ok(out)
}

/// The bridge `name` with address `gateway/prefix_len`, up: made or completed, never
/// changed otherwise.
pub async fn ensure_bridge(
    handle: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix_len: u8,
) -> Result<bool, NetworkError> {
    let made = match get(handle, name).await? {
        Some(_) => false,
        None => {
            let msg = LinkBridge::new(name).build();
            handle
                .link()
                .add(msg)
                .execute()
                .await
                .map_err(netlink("create the bridge"))?;
            true
        }
    };
    let link = get(handle, name)
        .await?
        .ok_or(NetworkError::Vanished { name: name.into() })?;
    let has = addresses(handle, link.index).await?;
    if !has.iter().any(|a| a.address == gateway) {
        handle
            .address()
            .add(link.index, IpAddr::V4(gateway), prefix_len)
            .execute()
            .await
            .map_err(netlink("address the bridge"))?;
    }
    if !link.up {
        up(handle, link.index).await?;
    }
    Ok(made)
}

/// The destinations of the namespace's IPv4 routes (every table).
pub async fn routes(handle: &Handle) -> Result<Vec<Subnet>, NetworkError> {
    let msg = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let msgs: Vec<_> = handle
        .route()
        .get(msg)
        .execute()
        .try_collect()
        .await
        .map_err(netlink("list routes"))?;
    let mut out = Vec::new();
    for m in msgs {
        let dest = m.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        let len = m.header.destination_prefix_length;
        if let Some(s) = Subnet::new(dest.unwrap_or(Ipv4Addr::UNSPECIFIED), len) {
            out.push(s);
        }
    }
    Ok(out)
}

/// A veth pair `host`–`peer` made in one request: `peer` created in the namespace of
/// `netns` with its MAC (no move afterwards: each move of a device between namespaces waits
/// for an RCU grace period), `host` attached to `bridge` and up.
pub async fn add_veth(
    handle: &Handle,
    host: &str,
    peer: &str,
    mac: [u8; 6],
    bridge: u32,
    netns: &Path,
) -> Result<(), NetworkError> {
    let ns = std::fs::File::open(netns).map_err(|source| NetworkError::Io {
        what: "open",
        path: netns.to_path_buf(),
        source,
    })?;
    let peer_msg = LinkUnspec::new_with_name(peer)
        .address(mac.to_vec())
        .setns_by_fd(ns.as_raw_fd())
        .build();
    let pair = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host)
        .controller(bridge)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
        .build();
    handle
        .link()
        .add(pair)
        .execute()
        .await
        .map_err(netlink("create the veth pair"))
}

/// `host` attached to the bridge of index `bridge` and up.
pub async fn attach(handle: &Handle, host: &str, bridge: u32) -> Result<(), NetworkError> {
    let h = get(handle, host)
        .await?
        .ok_or(NetworkError::Vanished { name: host.into() })?;
    let msg = LinkUnspec::new_with_index(h.index)
        .controller(bridge)
        .up()
        .build();
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .map_err(netlink("attach the veth to the bridge"))
}

/// What [`configure_inside`] sets up in a container's namespace.
#[derive(Debug, Clone)]
pub struct Inside {
    /// The container side's name as made.
    pub peer: String,
    /// Its name once renamed (`eth0`, `eth1`...).
    pub ifname: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The default route's gateway; None on an internal network. A default route that is
    /// there already (another network's) is kept.
    pub gateway: Option<Ipv4Addr>,
}

/// Inside the container's namespace: `peer` renamed `ifname` with its address, up, `lo`
/// up, and the default route via the gateway when there is one.
pub async fn configure_inside(handle: &Handle, want: &Inside) -> Result<(), NetworkError> {
    if let Some(lo) = get(handle, "lo").await? {
        up(handle, lo.index).await?;
    }
    let eth = match get(handle, &want.peer).await? {
        Some(p) => {
            let msg = LinkUnspec::new_with_index(p.index)
                .name(&want.ifname)
                .build();
            handle
                .link()
                .set(msg)
                .execute()
                .await
                .map_err(netlink("rename the veth inside the container"))?;
            p.index
        }
        None => {
            get(handle, &want.ifname)
                .await?
                .ok_or(NetworkError::Vanished {
                    name: want.ifname.clone(),
                })?
                .index
        }
    };
    if !addresses(handle, eth)
        .await?
        .iter()
        .any(|a| a.address == want.ip)
    {
        handle
            .address()
            .add(eth, IpAddr::V4(want.ip), want.prefix_len)
            .execute()
            .await
            .map_err(netlink("address the container's interface"))?;
    }
    up(handle, eth).await?;
    let Some(gateway) = want.gateway else {
        return Ok(());
    };
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(eth)
        .build();
    match handle.route().add(route).execute().await {
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
        other => other.map_err(netlink("add the default route")),
    }
}
