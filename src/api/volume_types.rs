//! Docker's wire types for mounts and volumes: `HostConfig.Mounts` entries, inspect's
//! `Mounts` (mount points), and the `/volumes` endpoints. Shared by the server and moor's CLI.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One `HostConfig.Mounts` entry (api/types/mount/mount.go).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Host path (bind), volume name (volume; empty for an anonymous one), empty for tmpfs.
    pub source: String,
    /// The path in the container.
    pub target: String,
    /// Mounted read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Docker Desktop's consistency hint (ignored on Linux by Docker too).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    /// Bind options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    /// Volume options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    /// tmpfs options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// `Mount.BindOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    /// `rprivate` (default), `private`, `rshared`, `shared`, `rslave`, `slave`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub propagation: String,
}

/// `Mount.VolumeOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    /// Do not copy the image's content into a new volume.
    pub no_copy: bool,
    /// Labels of a volume this mount creates.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `Mount.TmpfsOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    /// Size in bytes (0: the kernel's default, half the memory).
    #[serde(skip_serializing_if = "is_zero")]
    pub size_bytes: i64,
    /// Permission bits (0: 1777).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub mode: u32,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// One entry of inspect's `Mounts` (api/types/container MountPoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name (volumes only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The host path (empty for tmpfs).
    pub source: String,
    /// The path in the container.
    pub destination: String,
    /// The volume's driver (volumes only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Binds' mode text (`ro`, `z`...).
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Bind propagation.
    pub propagation: String,
}

/// `POST /volumes/create` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreateRequest {
    /// Name (empty: a generated one).
    pub name: String,
    /// `local` or empty.
    pub driver: String,
    /// Driver options (the `local` driver's `type`/`device`/`o` are not supported).
    pub driver_opts: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A volume as `/volumes` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// Its data directory on the host.
    pub mountpoint: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Labels (`com.docker.volume.anonymous` for an anonymous volume).
    pub labels: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
    /// Driver options given at create (always empty).
    pub options: BTreeMap<String, String>,
}

/// `GET /volumes` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeList {
    /// The volumes.
    pub volumes: Vec<Volume>,
    /// Always empty.
    pub warnings: Vec<String>,
}

/// `POST /volumes/prune` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumePruneReport {
    /// The names removed.
    pub volumes_deleted: Vec<String>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}
