//! A container's veth pairs, one per network it is on. Slot 0 is its first network: `eth0`
//! inside, `moorv<10 hex of the id>` on the host. Networks connected later take slots 1 to
//! 15: `eth<slot>` inside, `moorv<8 hex of the id>n<slot in hex>` on the host (15
//! characters, the kernel's limit; the `n` keeps them apart from a slot 0 name).

use std::path::Path;

use moor_state::network::{Endpoint, MAX_SLOT};

use super::{link, netns, NetworkError, PEER_PREFIX, VETH_PREFIX};

/// The host side of container `id`'s veth in `slot`.
pub fn host_name(id: &str, slot: u8) -> String {
    match slot {
        0 => format!("{VETH_PREFIX}{}", &id[..10.min(id.len())]),
        n => format!("{}{n:x}", extra_prefix(id)),
    }
}

/// What the host side of every later network's veth of container `id` starts with.
pub fn extra_prefix(id: &str) -> String {
    format!("{VETH_PREFIX}{}n", &id[..8.min(id.len())])
}

/// The container side's name before it is renamed `eth<slot>`.
fn peer_name(id: &str, slot: u8) -> String {
    match slot {
        0 => format!("{PEER_PREFIX}{}", &id[..10.min(id.len())]),
        n => format!("{PEER_PREFIX}{}n{n:x}", &id[..8.min(id.len())]),
    }
}

/// The interface inside the container.
pub fn ifname(slot: u8) -> String {
    format!("eth{slot}")
}

/// The veth pair of `slot` made (or, with `keep`, kept when its host side is there) and
/// attached to its bridge, and the container side configured as `eth<slot>` (no default
/// route on an internal network; a default route that is there already is kept).
pub fn plug(
    netns_path: &Path,
    id: &str,
    slot: u8,
    ep: &Endpoint,
    keep: bool,
) -> Result<(), NetworkError> {
    let (host, peer) = (host_name(id, slot), peer_name(id, slot));
    let (bridge, mac, ns) = (ep.bridge.clone(), ep.mac(), netns_path.to_path_buf());
    netns::run_in(None, move || {
        link::block(|h| async move {
            let br = link::get(&h, &bridge)
                .await?
                .ok_or(NetworkError::NoBridge { name: bridge })?;
            match link::get(&h, &host).await? {
                Some(v) if keep => {
                    if v.controller != Some(br.index) || !v.up {
                        link::attach(&h, &host, br.index).await?;
                    }
                    Ok(())
                }
                _ => {
                    link::delete(&h, &host).await?;
                    link::delete(&h, &peer).await?;
                    link::add_veth(&h, &host, &peer, mac, br.index, &ns).await
                }
            }
        })
    })?;
    let inside = link::Inside {
        peer: peer_name(id, slot),
        ifname: ifname(slot),
        ip: ep.ip,
        prefix_len: ep.prefix_len,
        gateway: (!ep.internal).then_some(ep.gateway),
    };
    netns::run_in(Some(netns_path), move || {
        link::block(|h| async move { link::configure_inside(&h, &inside).await })
    })
}

/// Whether the host side of `slot`'s veth is there, on `bridge` and up.
pub fn healthy(id: &str, slot: u8, bridge: &str) -> Result<bool, NetworkError> {
    let (host, bridge) = (host_name(id, slot), bridge.to_string());
    netns::run_in(None, move || {
        link::block(|h| async move {
            let br = link::get(&h, &bridge).await?;
            let v = link::get(&h, &host).await?;
            Ok(matches!((br, v), (Some(b), Some(v)) if v.controller == Some(b.index) && v.up))
        })
    })
}

/// Deletes the host side of `slot`'s veth (its pair goes with it); whether it was there.
pub fn unplug(id: &str, slot: u8) -> Result<bool, NetworkError> {
    let host = host_name(id, slot);
    netns::run_in(None, move || {
        link::block(|h| async move { link::delete(&h, &host).await })
    })
}

/// Deletes the host side of every veth of container `id` whose slot is not in `keep`; how
/// many went. One look-up by name per slot (a constant cost, where listing
/// every link would grow with the containers of the host).
pub fn unplug_but(id: &str, keep: &[u8]) -> Result<usize, NetworkError> {
    let names: Vec<String> = (0..=MAX_SLOT)
        .filter(|s| !keep.contains(s))
        .map(|s| host_name(id, s))
        .collect();
    netns::run_in(None, move || {
        link::block(|h| async move {
            let mut n = 0;
            for name in &names {
                n += usize::from(link::delete(&h, name).await?);
            }
            Ok(n)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernels_limit_and_slots_do_not_collide() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(host_name(&id, 0), "moorv0123456789");
        assert_eq!(host_name(&id, 1), "moorv01234567n1");
        assert_eq!(host_name(&id, 15), "moorv01234567nf");
        for slot in 0..=15 {
            assert!(host_name(&id, slot).len() <= 15 && peer_name(&id, slot).len() <= 15);
        }
        assert!(host_name(&id, 3).starts_with(&extra_prefix(&id)));
        assert!(!host_name(&id, 0).starts_with(&extra_prefix(&id)));
        assert_eq!(ifname(2), "eth2");
    }
}
