//! Published ports as recorded: what the user asked for ([`PortBinding`], part of the spec)
//! and what it resolved to once host ports were chosen ([`PortMapping`], part of the record).
//!
//! Pure data: parsing and the host-side checks live in the daemon's `network::ports`.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The transport protocol of a published port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP, Docker's default when `/proto` is omitted.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The lowercase name Docker writes after the port (`80/tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requested publication: a container port and where on the host it should appear.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    /// The port inside the container.
    pub container_port: u16,
    /// Its protocol.
    pub proto: Proto,
    /// The host address to listen on; `None` means every address (Docker's `0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port; `None` means an ephemeral one chosen at start (Docker's empty HostPort).
    pub host_port: Option<u16>,
}

/// One resolved publication: the host port is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The port inside the container.
    pub container_port: u16,
    /// Its protocol.
    pub proto: Proto,
    /// The host address; `None` means every local address.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port connections arrive on.
    pub host_port: u16,
}

impl PortMapping {
    /// The host address as Docker shows it (`0.0.0.0` for every address).
    pub fn host_ip_text(&self) -> String {
        self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string()
    }

    /// The container side as Docker names it (`80/tcp`).
    pub fn container_key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    /// Whether two mappings would claim the same host socket: same protocol and port, and
    /// the same address or either of them on every address.
    pub fn conflicts_with(&self, other: &PortMapping) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ip: Option<[u8; 4]>, port: u16, proto: Proto) -> PortMapping {
        PortMapping {
            container_port: 80,
            proto,
            host_ip: ip.map(Ipv4Addr::from),
            host_port: port,
        }
    }

    #[test]
    fn conflicts_follow_address_port_and_protocol() {
        let any = m(None, 8080, Proto::Tcp);
        let lo = m(Some([127, 0, 0, 1]), 8080, Proto::Tcp);
        let other = m(Some([127, 0, 0, 2]), 8080, Proto::Tcp);
        assert!(any.conflicts_with(&lo));
        assert!(lo.conflicts_with(&any));
        assert!(!lo.conflicts_with(&other));
        assert!(!any.conflicts_with(&m(None, 8080, Proto::Udp)));
        assert!(!any.conflicts_with(&m(None, 8081, Proto::Tcp)));
    }

    #[test]
    fn docker_names() {
        let map = m(None, 8080, Proto::Udp);
        assert_eq!(map.container_key(), "80/udp");
        assert_eq!(map.host_ip_text(), "0.0.0.0");
        let json = serde_json::to_string(&Proto::Udp).unwrap();
        assert_eq!(json, "\"udp\"");
    }
}
