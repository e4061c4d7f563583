//! Published ports: parsing what clients send (`-p` specs, `HostConfig.PortBindings`,
//! `PublishAllPorts` with the exposed ports) into the spec's [`PortBinding`]s, and resolving
//! them at start into [`PortMapping`]s: ephemeral host ports chosen, and a host port already
//! held (by another moor container or by any socket of the host) refused before the
//! container starts, with Docker's message.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::ops::RangeInclusive;

use moor_state::ports::{PortBinding, PortMapping, Proto};
use moor_state::ContainerSpec;
use serde_json::Value;

/// Docker's ephemeral host port range (its default `ip_local_port_range` choice).
pub const EPHEMERAL: RangeInclusive<u16> = 32768..=60999;

/// A published-port request moor cannot take, or cannot honour now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// A malformed port specification.
    #[error("invalid port specification '{spec}': {reason}")]
    Invalid {
        /// The text as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host port is held already (Docker's words).
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    Allocated {
        /// The host address (`0.0.0.0` for every address).
        ip: Ipv4Addr,
        /// The host port.
        port: u16,
    },
    /// A host address that is none of this host's (Docker fails the same way at bind).
    #[error("Bind for {ip}:{port} failed: {ip} is not an address of this host")]
    NotLocal {
        /// The address asked for.
        ip: Ipv4Addr,
        /// The host port asked for (0: ephemeral).
        port: u16,
    },
    /// No ephemeral port is free.
    #[error("no free host port in {}-{} for {proto} port {container_port}", EPHEMERAL.start(), EPHEMERAL.end())]
    Exhausted {
        /// The container port that needed one.
        container_port: u16,
        /// Its protocol.
        proto: Proto,
    },
}

fn invalid(spec: &str, reason: impl Into<String>) -> PortError {
    PortError::Invalid {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

fn proto_of(spec: &str, text: &str) -> Result<Proto, PortError> {
    match text {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        "sctp" => Err(invalid(
            spec,
            "sctp is not supported by moor (tcp and udp are)",
        )),
        other => Err(invalid(
            spec,
            format!("unknown protocol {other:?} (tcp or udp)"),
        )),
    }
}

/// `N` or `N-M` (1..=65535, N <= M).
fn port_range(spec: &str, what: &str, text: &str) -> Result<RangeInclusive<u16>, PortError> {
    let one = |t: &str| -> Result<u16, PortError> {
        match t.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(invalid(
                spec,
                format!("{what} {t:?} is not a port (1-65535)"),
            )),
        }
    };
    match text.split_once('-') {
        None => one(text).map(|p| p..=p),
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b {
                return Err(invalid(
                    spec,
                    format!("{what} range {text} ends before it starts"),
                ));
            }
            Ok(a..=b)
        }
    }
}

fn host_ip(spec: &str, text: &str) -> Result<Option<Ipv4Addr>, PortError> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with('[') || text.contains(':') {
        return Err(invalid(
            spec,
            "IPv6 host addresses are not supported by moor",
        ));
    }
    let ip: Ipv4Addr = text
        .parse()
        .map_err(|_| invalid(spec, format!("{text:?} is not an IPv4 address")))?;
    Ok((!ip.is_unspecified()).then_some(ip))
}

/// Pairs host and container port ranges as Docker does: equal lengths, or no host port.
fn pair(
    spec: &str,
    ip: Option<Ipv4Addr>,
    host: Option<RangeInclusive<u16>>,
    container: RangeInclusive<u16>,
    proto: Proto,
) -> Result<Vec<PortBinding>, PortError> {
    let host_ports: Vec<Option<u16>> = match host {
        None => vec![None; container.len()],
        Some(h) if h.len() == container.len() => h.map(Some).collect(),
        Some(h) if container.len() == 1 => {
            return Err(invalid(
                spec,
                format!(
                    "a host port range ({}-{}) for one container port is not supported by moor",
                    h.start(),
                    h.end()
                ),
            ))
        }
        Some(_) => {
            return Err(invalid(
                spec,
                "host and container port ranges differ in length",
            ))
        }
    };
    Ok(container
        .zip(host_ports)
        .map(|(container_port, host_port)| PortBinding {
            container_port,
            proto,
            host_ip: ip,
            host_port,
        })
        .collect())
}

/// One `-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]` (ports may be ranges `A-B`).
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, PortError> {
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, proto_of(spec, p)?),
        None => (spec, Proto::Tcp),
    };
    if addr.starts_with('[') {
        return Err(invalid(
            spec,
            "IPv6 host addresses are not supported by moor",
        ));
    }
    let parts: Vec<&str> = addr.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (host_ip(spec, ip)?, *h, *c),
        _ => {
            return Err(invalid(
                spec,
                "expected [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]",
            ))
        }
    };
    if container.is_empty() {
        return Err(invalid(spec, "no container port"));
    }
    let container = port_range(spec, "container port", container)?;
    let host = match host {
        "" => None,
        h => Some(port_range(spec, "host port", h)?),
    };
    pair(spec, ip, host, container, proto)
}

/// A `PORT[/PROTO]` key of PortBindings or ExposedPorts.
fn port_key(field: &str, key: &str) -> Result<(RangeInclusive<u16>, Proto), PortError> {
    let spec = format!("{field}{key}");
    let (port, proto) = match key.split_once('/') {
        Some((p, proto)) => (p, proto_of(&spec, proto)?),
        None => (key, Proto::Tcp),
    };
    Ok((port_range(&spec, "container port", port)?, proto))
}

/// `HostConfig.PortBindings`: `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}], ...}`.
pub fn from_api(bindings: &BTreeMap<String, Value>) -> Result<Vec<PortBinding>, PortError> {
    let mut out = Vec::new();
    for (key, list) in bindings {
        let (container, proto) = port_key("", key)?;
        let entries = match list {
            Value::Null => continue,
            Value::Array(entries) => entries,
            other => return Err(invalid(&format!("{key} {other}"), "expected a list")),
        };
        for entry in entries {
            let spec = format!("{key} {entry}");
            let text = |name: &str| match entry.get(name) {
                None | Some(Value::Null) => Ok(""),
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(_) => Err(invalid(&spec, format!("{name} must be a string"))),
            };
            if let Some(obj) = entry.as_object() {
                if let Some(k) = obj
                    .keys()
                    .find(|k| !["HostIp", "HostPort"].contains(&k.as_str()))
                {
                    return Err(invalid(
                        &spec,
                        format!("{k} is not a field of a port binding"),
                    ));
                }
            } else {
                return Err(invalid(&spec, "expected an object"));
            }
            let ip = host_ip(&spec, text("HostIp")?)?;
            let host = match text("HostPort")? {
                "" => None,
                h => Some(port_range(&spec, "host port", h)?),
            };
            out.extend(pair(&spec, ip, host, container.clone(), proto)?);
        }
    }
    Ok(out)
}

/// `-P` / PublishAllPorts: every exposed port (`80/tcp`...) not bound already gets an
/// ephemeral host port on every address.
pub fn publish_all(
    exposed: &[String],
    bound: &[PortBinding],
) -> Result<Vec<PortBinding>, PortError> {
    let mut out = Vec::new();
    for key in exposed {
        let (ports, proto) = port_key("ExposedPorts ", key)?;
        for container_port in ports {
            let done = bound
                .iter()
                .chain(&out)
                .any(|b| b.container_port == container_port && b.proto == proto);
            if !done {
                out.push(PortBinding {
                    container_port,
                    proto,
                    host_ip: None,
                    host_port: None,
                });
            }
        }
    }
    Ok(out)
}

/// Everything a container asks to publish: its bindings, then (`-P`) its exposed ports not
/// bound already, each on an ephemeral port.
pub fn requested(spec: &ContainerSpec) -> Result<Vec<PortBinding>, PortError> {
    let mut all = spec.port_bindings.clone();
    if spec.publish_all {
        all.extend(publish_all(&spec.exposed_ports, &spec.port_bindings)?);
    }
    Ok(all)
}

/// Whether `ip` is one of this host's addresses (a socket can be bound on it).
fn is_local(ip: Ipv4Addr) -> bool {
    match UdpSocket::bind(SocketAddrV4::new(ip, 0)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrNotAvailable,
    }
}

/// Whether the host has a socket on `ip:port` already (binding it fails).
pub fn host_port_free(ip: Option<Ipv4Addr>, port: u16, proto: Proto) -> bool {
    let addr = SocketAddrV4::new(ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr).is_ok(),
        Proto::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

/// Resolves a container's bindings at start. `taken` is what the other moor containers
/// publish; `probe` says whether the host can still bind a port ([`host_port_free`] in the
/// daemon). A fixed port held by either is refused; an ephemeral one is the first free port
/// of [`EPHEMERAL`] from `start` on (wrapping).
pub fn resolve(
    bindings: &[PortBinding],
    taken: &[PortMapping],
    start: u16,
    probe: impl Fn(Option<Ipv4Addr>, u16, Proto) -> bool,
) -> Result<Vec<PortMapping>, PortError> {
    let mut out: Vec<PortMapping> = Vec::new();
    let clash =
        |m: &PortMapping, out: &[PortMapping]| taken.iter().chain(out).any(|t| t.conflicts_with(m));
    for b in bindings {
        let mapping = |host_port| PortMapping {
            container_port: b.container_port,
            proto: b.proto,
            host_ip: b.host_ip,
            host_port,
        };
        let m = match b.host_port {
            Some(port) => {
                let m = mapping(port);
                if clash(&m, &out) || !probe(b.host_ip, port, b.proto) {
                    return Err(PortError::Allocated {
                        ip: b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        port,
                    });
                }
                m
            }
            None => {
                let span = EPHEMERAL.len();
                let first = usize::from(
                    start.clamp(*EPHEMERAL.start(), *EPHEMERAL.end()) - EPHEMERAL.start(),
                );
                (0..span)
                    .map(|i| mapping(EPHEMERAL.start() + ((first + i) % span) as u16))
                    .find(|m| !clash(m, &out) && probe(b.host_ip, m.host_port, b.proto))
                    .ok_or(PortError::Exhausted {
                        container_port: b.container_port,
                        proto: b.proto,
                    })?
            }
        };
        out.push(m);
    }
    Ok(out)
}

/// What the daemon calls before a container starts: its requested ports resolved against
/// `taken` (the other running containers' mappings) and the host's sockets, ephemeral ports
/// searched from a random point of the range (two daemons' worth of starts rarely race for
/// the same one).
pub fn resolve_on_host(
    spec: &ContainerSpec,
    taken: &[PortMapping],
) -> Result<Vec<PortMapping>, PortError> {
    let wanted = requested(spec)?;
    for b in &wanted {
        if let Some(ip) = b.host_ip.filter(|ip| !is_local(*ip)) {
            let port = b.host_port.unwrap_or(0);
            return Err(PortError::NotLocal { ip, port });
        }
    }
    let start = rand::random::<u16>() % (EPHEMERAL.len() as u16) + EPHEMERAL.start();
    resolve(&wanted, taken, start, host_port_free)
}

/// Published ports need a bridge network: a `none` or `host` container is refused (Docker
/// discards them on `host` with a warning; moor never accepts and ignores).
pub fn check_network(network_mode: &str, publishes: bool) -> Result<(), String> {
    match network_mode {
        mode if publishes && mode.starts_with("container:") => Err(format!(
            "published ports (-p/-P, PortBindings, PublishAllPorts) conflict with network mode \
             {mode:?}: the container shares the other's network (publish them there)"
        )),
        "none" | "host" if publishes => Err(format!(
            "published ports (-p/-P, PortBindings, PublishAllPorts) need a bridge network; \
             this container's network is {network_mode:?}"
        )),
        _ => Ok(()),
    }
}

/// `moor port` / `docker port` lines: `80/tcp -> 0.0.0.0:8080`, sorted.
pub fn port_lines(published: &[PortMapping]) -> Vec<String> {
    let mut sorted = published.to_vec();
    sorted.sort_by_key(|m| (m.container_port, m.proto, m.host_ip, m.host_port));
    sorted
        .iter()
        .map(|m| {
            format!(
                "{} -> {}:{}",
                m.container_key(),
                m.host_ip_text(),
                m.host_port
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
