//! moor's NAT: its own nftables table `ip moor`, driven through `nft -j -f -` (the
//! `nftables` crate's typed JSON), never touching any other table.
//!
//! Published ports are DNAT map elements (see [`ruleset`]): loopback clients included
//! (`route_localnet` on the bridge, masquerade of the host's own sources), with no process
//! of moor's on the path, so a published port answers while the daemon is down. Every call
//! blocks on `nft`: call it from a blocking thread. The `nft` child runs in the calling
//! thread's network namespace.

mod listing;
mod ruleset;

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use moor_state::ports::PortMapping;
use nftables::schema::{NfObject, Nftables};

pub use listing::{NatListing, PublishedElement};

/// A bridge in moor's table: masqueraded for (unless internal) and isolated from the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeNat {
    /// The bridge's interface name (`moor0`).
    pub name: String,
    /// Its subnet's network address.
    pub subnet: Ipv4Addr,
    /// Its subnet's prefix length.
    pub prefix_len: u8,
    /// An internal network's: no masquerade, no published port, and the forward chain drops
    /// whatever would enter or leave it by another interface.
    pub internal: bool,
}

impl BridgeNat {
    /// The bridge of network `net`.
    pub fn of(net: &moor_state::network::NetworkRecord) -> BridgeNat {
        BridgeNat {
            name: net.bridge.clone(),
            subnet: net.subnet.address,
            prefix_len: net.subnet.prefix_len,
            internal: net.internal,
        }
    }
}

/// One running container's published ports, for [`replace_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The container's id (kept as the elements' comment).
    pub id: String,
    /// Its address on its bridge.
    pub ip: Ipv4Addr,
    /// Its resolved mappings.
    pub ports: Vec<PortMapping>,
}

/// What can go wrong driving the NAT table.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// `nft` could not be started (not installed?).
    #[error("cannot run nft while {doing} (is the nftables package installed?)")]
    Spawn {
        /// What moor was doing.
        doing: &'static str,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// `nft` refused the transaction; nothing of it was applied.
    #[error("nft failed while {doing}: {stderr}")]
    Nft {
        /// What moor was doing.
        doing: &'static str,
        /// nft's own message.
        stderr: String,
    },
    /// `nft`'s output was not the JSON expected.
    #[error("nft printed unexpected output while {doing}: {detail}")]
    Output {
        /// What moor was doing.
        doing: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A bridge name that is no interface name.
    #[error("invalid bridge name {0:?}")]
    BridgeName(String),
    /// A subnet prefix length over 32.
    #[error("invalid prefix length /{0}")]
    PrefixLen(u8),
    /// A sysctl NAT needs could not be set.
    #[error("cannot set {path}")]
    Sysctl {
        /// The /proc/sys file.
        path: PathBuf,
        /// The write error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `nft -j ARGS` with `input` on stdin; its stdout on success. The crate's own runner
/// lets nft's stderr through to ours, and the error must name it: this one captures it.
fn run_nft(doing: &'static str, args: &[&str], input: &str) -> Result<String, NatError> {
    let mut child = Command::new("nft")
        .arg("-j")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NatError::Spawn { doing, source })?;
    let mut stdin = child.stdin.take().ok_or(NatError::Output {
        doing,
        detail: "no stdin pipe".to_string(),
    })?;
    // A write error (nft gone early) shows as nft's own exit status and stderr below.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|source| NatError::Spawn { doing, source })?;
    if !out.status.success() {
        return Err(NatError::Nft {
            doing,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    String::from_utf8(out.stdout).map_err(|e| NatError::Output {
        doing,
        detail: e.to_string(),
    })
}

fn apply(doing: &'static str, cmds: Vec<NfObject<'static>>) -> Result<(), NatError> {
    let doc = Nftables {
        objects: cmds.into(),
    };
    let json = serde_json::to_string(&doc).map_err(|e| NatError::Output {
        doing,
        detail: e.to_string(),
    })?;
    tracing::debug!(commands = doc.objects.len(), "nft transaction");
    run_nft(doing, &["-f", "-"], &json).map(drop)
}

fn query(doing: &'static str, args: &[&str]) -> Result<Nftables<'static>, NatError> {
    let text = run_nft(doing, args, "")?;
    serde_json::from_str(&text).map_err(|e| NatError::Output {
        doing,
        detail: e.to_string(),
    })
}

fn check_bridge(bridge: &BridgeNat) -> Result<(), NatError> {
    let name = &bridge.name;
    let valid = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c.is_whitespace() || c == ':');
    if !valid {
        return Err(NatError::BridgeName(name.clone()));
    }
    if bridge.prefix_len > 32 {
        return Err(NatError::PrefixLen(bridge.prefix_len));
    }
    Ok(())
}

fn sysctl(path: PathBuf) -> Result<(), NatError> {
    std::fs::write(&path, "1").map_err(|source| NatError::Sysctl { path, source })
}

/// Forwarding on, and `route_localnet` on the bridge so 127.0.0.1:HOSTPORT reaches a
/// container (the kernel otherwise drops a loopback source routed out of the bridge). An
/// internal bridge needs neither: nothing is forwarded to or from it, nothing published.
fn sysctls(bridge: &BridgeNat) -> Result<(), NatError> {
    if bridge.internal {
        return Ok(());
    }
    let base = PathBuf::from("/proc/sys/net/ipv4");
    sysctl(base.join("ip_forward"))?;
    sysctl(base.join("conf").join(&bridge.name).join("route_localnet"))
}

/// Creates or repairs the table, its chains and rules, and puts `bridge` (which must exist)
/// in it: isolated from moor's other bridges, masqueraded for unless internal; idempotent,
/// published elements kept.
#[tracing::instrument(skip_all, fields(bridge = %bridge.name))]
pub fn ensure(bridge: &BridgeNat) -> Result<(), NatError> {
    check_bridge(bridge)?;
    sysctls(bridge)?;
    let mut cmds = ruleset::skeleton();
    cmds.extend(ruleset::bridge_elements(bridge));
    apply("setting up moor's nat table", cmds)
}

/// Takes `bridge` out of the table (a removed network): its name and subnet leave the
/// masquerade and the isolation sets in one transaction (the table's missing pieces made
/// first); elements already gone are no error. Without a table, nothing is done.
#[tracing::instrument(skip_all, fields(bridge = %bridge.name))]
pub fn forget(bridge: &BridgeNat) -> Result<(), NatError> {
    check_bridge(bridge)?;
    if !listing::has_table(&query("listing moor's tables", &["list", "tables", "ip"])?) {
        return Ok(());
    }
    // The skeleton first: a table an older moor made lacks the isolation sets.
    let mut cmds = ruleset::skeleton();
    cmds.extend(ruleset::remove_bridge_elements(bridge));
    apply("taking a bridge out of moor's nat table", cmds)
}

/// Publishes a container's ports (one transaction: all or none).
#[tracing::instrument(skip_all, fields(container_id = %id))]
pub fn publish(id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Result<(), NatError> {
    if ports.is_empty() {
        return Ok(());
    }
    apply("publishing ports", ruleset::add_elements(id, ip, ports))
}

/// Withdraws a container's ports; ports not published are not an error.
#[tracing::instrument(skip_all, fields(container_id = %id))]
pub fn unpublish(id: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Result<(), NatError> {
    if ports.is_empty() {
        return Ok(());
    }
    apply(
        "unpublishing ports",
        ruleset::remove_elements(id, ip, ports),
    )
}

/// Withdraws every port the table holds for container `id` (the elements it owns), whatever
/// was recorded: what a container's clean-up calls once it ended. No table, or nothing of
/// `id`'s, is not an error.
#[tracing::instrument(skip_all, fields(container_id = %id))]
pub fn unpublish_owned(id: &str) -> Result<(), NatError> {
    let Some(listing) = list()? else {
        return Ok(());
    };
    let mut by_ip: std::collections::BTreeMap<Ipv4Addr, Vec<PortMapping>> = Default::default();
    for e in listing
        .published
        .iter()
        .filter(|e| e.owner.as_deref() == Some(id))
    {
        let (Some(ip), Some(container_port)) = (e.container_ip, e.container_port) else {
            continue;
        };
        by_ip.entry(ip).or_default().push(PortMapping {
            container_port,
            proto: e.proto,
            host_ip: e.host_ip,
            host_port: e.host_port,
        });
    }
    for (ip, ports) in by_ip {
        unpublish(id, ip, &ports)?;
    }
    Ok(())
}

/// The daemon-start repair: one transaction that rebuilds the chains (the isolation's
/// `forward` chain among them), empties every map and set and fills them again from the
/// store (`bridges`: every bridge of moor, internal ones included). Established
/// connections keep going (conntrack holds their translation).
#[tracing::instrument(skip_all, fields(bridges = bridges.len(), containers = published.len()))]
pub fn replace_all(bridges: &[BridgeNat], published: &[Published]) -> Result<(), NatError> {
    for bridge in bridges {
        check_bridge(bridge)?;
        sysctls(bridge)?;
    }
    let mut cmds = ruleset::skeleton();
    cmds.extend(ruleset::flush_elements());
    for bridge in bridges {
        cmds.extend(ruleset::bridge_elements(bridge));
    }
    for p in published {
        cmds.extend(ruleset::add_elements(&p.id, p.ip, &p.ports));
    }
    apply("restoring moor's nat table", cmds)
}

/// Removes moor's table (absent is fine). The sysctls stay as they are.
pub fn remove_table() -> Result<(), NatError> {
    apply("removing moor's nat table", ruleset::remove_table())
}

/// What moor's table holds now (`None`: no table), for `moor admin`.
pub fn list() -> Result<Option<NatListing>, NatError> {
    let doing = "listing moor's nat table";
    if !listing::has_table(&query(doing, &["list", "tables", "ip"])?) {
        return Ok(None);
    }
    let table = query(doing, &["list", "table", "ip", ruleset::TABLE])?;
    listing::parse(&table)
        .map(Some)
        .map_err(|detail| NatError::Output { doing, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge(name: &str, prefix_len: u8) -> BridgeNat {
        BridgeNat {
            name: name.into(),
            subnet: Ipv4Addr::new(172, 30, 0, 0),
            prefix_len,
            internal: false,
        }
    }

    #[test]
    fn a_bridge_name_that_could_leave_proc_sys_is_refused_before_anything_runs() {
        for name in ["", "..", "a/b", "sixteen-chars-xx", "a b"] {
            let err = ensure(&bridge(name, 16)).unwrap_err();
            assert!(matches!(err, NatError::BridgeName(_)), "{name:?}: {err}");
        }
        let err = replace_all(&[bridge("moor0", 33)], &[]).unwrap_err();
        assert_eq!(err.to_string(), "invalid prefix length /33");
    }
}
