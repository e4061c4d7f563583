//! The image routes' wire types (list, inspect, import, delete, the pull progress stream),
//! shared by the API and the CLI.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /images/json` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageSummary {
    /// `sha256:<hex>`.
    pub id: String,
    /// Always empty (imported images have no parent).
    pub parent_id: String,
    /// `repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:<manifest digest>` of a pulled image.
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Unpacked bytes.
    pub size: u64,
    /// Docker's "not computed".
    pub shared_size: i64,
    /// Docker's "not computed".
    pub containers: i64,
}

/// The `Config` of an image inspect: an import's `changes`, null or empty where unset as
/// in Docker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    /// Default user.
    pub user: String,
    /// Default environment.
    pub env: Option<Vec<String>>,
    /// Default command (none for a plain import: `run` needs one).
    pub cmd: Option<Vec<String>>,
    /// Default working directory.
    pub working_dir: String,
    /// Default entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Labels containers inherit.
    pub labels: Option<BTreeMap<String, String>>,
    /// Default stop signal (left out when unset, as Docker does).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// The image's HEALTHCHECK (left out when unset, as Docker does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageInspect {
    /// `sha256:<hex>`.
    pub id: String,
    /// `repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `repo@sha256:<manifest digest>` of a pulled image.
    pub repo_digests: Vec<String>,
    /// RFC 3339.
    pub created: String,
    /// Unpacked bytes.
    pub size: u64,
    /// `linux`.
    pub os: String,
    /// The host's architecture.
    pub architecture: String,
    /// Defaults for containers.
    pub config: ImageConfig,
    /// The overlay lower dirs, top first, `:`-joined (moor's own field).
    pub moor_rootfs: String,
}

/// Docker's import progress message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportStatus {
    /// `sha256:<hex>` once done.
    pub status: String,
}

/// Docker's `DELETE /images` answer entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteItem {
    /// A name removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    /// An image removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// `POST /images/prune`'s answer (Docker's `PruneReport`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PruneReport {
    /// Names and images removed (null when none, as in Docker).
    pub images_deleted: Option<Vec<DeleteItem>>,
    /// Bytes freed on disk.
    pub space_reclaimed: u64,
}

/// One line of Docker's progress stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PullMessage {
    /// What happened.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Bytes done and total, as `{"current":N,"total":M}`, or `{}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// The layer's short id, or the tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A failure after the stream started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// The failure's message (the docker CLI's older field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `progressDetail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// Bytes in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// `errorDetail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    /// The message.
    pub message: String,
}

/// Registry credentials: the body of `POST /auth` and the JSON of an `X-Registry-Auth`
/// header (base64url), as `docker login` and the docker CLI send them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// The user.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// The password.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// `base64(user:password)`, as config.json stores it (used when `username` is empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// The registry (`host[:port]`, with or without a scheme); Docker Hub when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// Deprecated by Docker and ignored by it too; accepted for the same reason.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// An OAuth refresh token from an earlier login: moor refuses it (none is ever issued).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    /// A bearer token for the registry, sent as it is.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

/// `POST /auth`'s answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AuthResponse {
    /// `Login Succeeded`.
    pub status: String,
    /// Always empty: moor issues no refresh tokens.
    pub identity_token: String,
}
