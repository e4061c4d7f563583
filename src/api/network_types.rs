//! Docker's network objects on the wire (`GET /networks`, `GET /networks/{id}`), for the
//! default networks moor has: `bridge`, `host` and `none`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One network (Docker's NetworkResource).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    /// `bridge`, `host` or `none`.
    pub name: String,
    /// 64 hex.
    pub id: String,
    /// When it was made (Go's zero time for the built-in ones).
    pub created: String,
    /// Always `local`.
    pub scope: String,
    /// `bridge`, `host` or `null` (Docker's driver names).
    pub driver: String,
    /// Always false: moor gives containers IPv4 only.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// The addresses it hands out.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// Always false (the default networks reach out).
    pub internal: bool,
    /// Always false.
    pub attachable: bool,
    /// Always false.
    pub ingress: bool,
    /// The running containers on it, by id.
    pub containers: BTreeMap<String, NetworkContainer>,
    /// Driver options (the bridge's device name for `bridge`).
    pub options: BTreeMap<String, String>,
    /// Always empty.
    pub labels: BTreeMap<String, String>,
}

/// Docker's IPAM block.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// Always `default`.
    pub driver: String,
    /// Always null.
    pub options: Option<BTreeMap<String, String>>,
    /// The subnet and gateway (none for `host` and `none`).
    pub config: Vec<IpamConfig>,
}

/// One subnet of a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    /// `A.B.C.D/N`.
    pub subnet: String,
    /// The bridge's address.
    pub gateway: String,
}

/// A running container on a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkContainer {
    /// Its name, without the leading `/`.
    pub name: String,
    /// Its endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// Its MAC (empty on `host` and `none`).
    pub mac_address: String,
    /// `A.B.C.D/N` (empty on `host` and `none`).
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// Always empty.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}
