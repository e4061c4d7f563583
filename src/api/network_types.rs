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
    /// Docker's Internal: no masquerade, no default route out.
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
    /// Where addresses are allocated (Docker's IPRange), when the network has one.
    #[serde(rename = "IPRange", skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
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

/// `POST /networks/create` body (Docker's NetworkCreateRequest). Every field moor does not
/// implement is refused by name unless it has its default value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateRequest {
    /// The name.
    pub name: String,
    /// Deprecated in Docker (always checked now); moor always refuses a duplicate name.
    pub check_duplicate: Option<bool>,
    /// `bridge` (or empty).
    pub driver: String,
    /// `local` (or empty).
    pub scope: String,
    /// Refused when true.
    pub internal: bool,
    /// Accepted: every moor network is attachable by containers.
    pub attachable: bool,
    /// Refused when true.
    pub ingress: bool,
    /// Refused when true.
    pub config_only: bool,
    /// Refused when set.
    pub config_from: Option<serde_json::Value>,
    /// Refused when true.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    /// Refused when false.
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    /// The subnet and gateway.
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamRequest>,
    /// Driver options: refused when any.
    pub options: Option<BTreeMap<String, String>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
}

/// `IPAM` of a create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamRequest {
    /// `default` (or empty).
    pub driver: String,
    /// Refused when any.
    pub options: Option<BTreeMap<String, String>>,
    /// At most one entry.
    pub config: Option<Vec<IpamConfigRequest>>,
}

/// One `IPAM.Config` entry of a create request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfigRequest {
    /// `A.B.C.D/N`.
    pub subnet: String,
    /// Refused when set.
    #[serde(rename = "IPRange")]
    pub ip_range: String,
    /// The bridge's address.
    pub gateway: String,
    /// Refused when any.
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}
