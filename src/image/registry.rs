//! Pulling images from registries (the distribution API v2) through the `oci-client` crate:
//! anonymous and bearer-token auth (the `WWW-Authenticate` flow) and basic auth come with it;
//! Docker schema 2 and OCI manifests, manifest lists and OCI indexes (one platform picked,
//! the host's by default). Each layer blob is downloaded into `images/tmp/`, its sha256
//! checked against the manifest's digest (a mismatch is an error naming the digest, and the
//! blob is dropped), then unpacked once as a shared layer ([`super::layers`]). Progress goes
//! out as [`Progress`] events, which the API turns into Docker's JSON progress stream.
//!
//! A registry is reached over plain http when daemon.json `insecure-registries` names it
//! or it is on loopback (as Docker does); otherwise over https. A Docker Hub image goes
//! through the `registry-mirrors` first ([`super::endpoint`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use moor_state::image::ImageConfig;
use oci_client::client::ClientConfig;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::ImageIndexEntry;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::mpsc::UnboundedSender;

use super::download;
use super::endpoint::{self, Endpoint};
use super::flight::{Boarding, Flight};
use super::layers::digest_hex;
use super::{HashingFile, ImageDirs, ImageError, TmpDir};
use crate::config::registry::{host_name, InsecureRegistries, Mirror};

pub use super::platform::Platform;

/// Why a pull failed.
#[derive(Debug, Error)]
pub enum PullError {
    /// The registry has no such repository or tag/digest.
    #[error("manifest for {reference} not found: manifest unknown")]
    NotFound {
        /// The reference as pulled.
        reference: String,
    },
    /// An index without the platform asked for.
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoPlatform {
        /// `os/arch[/variant]`.
        platform: String,
    },
    /// A `platform` that is not `os[/arch[/variant]]`.
    #[error("invalid platform {0:?}: expected os[/arch[/variant]]")]
    BadPlatform(String),
    /// A reference oci-client cannot parse.
    #[error("invalid reference format: {0}")]
    BadReference(String),
    /// The registry refused the credentials or asked for some.
    #[error("pull access denied for {reference}: authentication required or denied")]
    Denied {
        /// The reference as pulled.
        reference: String,
    },
    /// The registry conversation failed (connection, protocol, server error).
    #[error("pull {reference}")]
    Registry {
        /// The reference as pulled.
        reference: String,
        /// What oci-client said.
        #[source]
        source: OciDistributionError,
    },
    /// A layer could not be downloaded, or its content does not match its digest.
    #[error("download of blob {digest} failed")]
    Download {
        /// The layer's digest.
        digest: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A downloaded blob is not what its digest says.
    #[error("blob {digest} does not match its digest (got sha256:{got})")]
    DigestMismatch {
        /// The digest the manifest lists.
        digest: String,
        /// The sha256 of what arrived.
        got: String,
    },
    /// The image config blob is not a valid image config.
    #[error("invalid image config {digest}")]
    Config {
        /// The config's digest.
        digest: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The config lists another number of layers than the manifest.
    #[error("image config lists {diff_ids} layers, the manifest {layers}")]
    LayerCount {
        /// `rootfs.diff_ids` in the config.
        diff_ids: usize,
        /// Layers in the manifest.
        layers: usize,
    },
    /// Writing or unpacking a layer failed.
    #[error("layer {digest}")]
    Layer {
        /// The layer's digest.
        digest: String,
        /// Why.
        #[source]
        source: ImageError,
    },
    /// The disk of the images directory is full: the pull is abandoned, nothing of it kept.
    #[error("no space left on device while writing layer {digest}: the pull is abandoned and nothing of it is kept")]
    NoSpace {
        /// The layer being written.
        digest: String,
    },
    /// [`super::endpoint::HUB_ENDPOINT_ENV`] is set to something that is not an endpoint.
    #[error("{0}")]
    HubEndpoint(String),
    /// The blocking unpack task was cancelled (shutdown).
    #[error("layer {digest}: unpack cancelled")]
    Cancelled {
        /// The layer's digest.
        digest: String,
    },
}

impl PullError {
    /// Whether the image does not exist (Docker's 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, PullError::NotFound { .. })
    }

    /// Whether the request is at fault (400).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            PullError::BadPlatform(_) | PullError::BadReference(_) | PullError::NoPlatform { .. }
        )
    }
}

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullTarget {
    /// The repository as Docker shows it (`127.0.0.1:5000/app`, `busybox`).
    pub repo: String,
    /// The tag, when pulled by tag.
    pub tag: Option<String>,
    /// The manifest digest, when pulled by digest.
    pub digest: Option<String>,
}

impl PullTarget {
    /// `repo:tag` or `repo@digest`.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.repo),
            (None, Some(t)) => format!("{}:{t}", self.repo),
            (None, None) => format!("{}:latest", self.repo),
        }
    }
}

/// One progress message (Docker's JSON message: `status`, `id`, `progressDetail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The layer's short id, or the tag for the first line; None for the last lines.
    pub id: Option<String>,
    /// `Pulling fs layer`, `Downloading`...
    pub status: String,
    /// Bytes done and total, for `Downloading`/`Extracting`.
    pub detail: Option<(u64, u64)>,
}

/// What a pull produced.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Image id: the config blob's sha256 hex.
    pub id: String,
    /// Diff ids, bottom first.
    pub layers: Vec<String>,
    /// Container defaults from the config.
    pub config: ImageConfig,
    /// Unpacked bytes of all layers.
    pub size: u64,
    /// The manifest (or index) digest the image was pulled by.
    pub digest: String,
    /// The config's `created`, when valid.
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// The manifest's media type (Docker schema 2 or OCI; OCI when it names none).
    pub manifest_type: String,
}

/// How to pull: the registries reached over http, the credentials, the platform, the cap.
pub struct PullOptions {
    /// daemon.json `insecure-registries`.
    pub insecure: InsecureRegistries,
    /// From `X-Registry-Auth`; anonymous when absent.
    pub auth: RegistryAuth,
    /// The platform picked in an index.
    pub platform: Platform,
    /// The unpack cap per layer (`image-unpack-limit`).
    pub limit: u64,
    /// daemon.json `registry-mirrors`, for Docker Hub images.
    pub mirrors: Vec<Mirror>,
    /// Docker Hub's endpoint replaced ([`super::endpoint::HUB_ENDPOINT_ENV`], tests only).
    pub hub: Option<String>,
}

/// The config blob: what moor takes from it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigBlob {
    /// RFC 3339.
    pub created: Option<String>,
    /// Container defaults.
    config: Option<ContainerDefaults>,
    /// The layers' diff ids.
    pub rootfs: RootFs,
}

impl ConfigBlob {
    /// The container defaults it gives.
    pub fn defaults(&self) -> ImageConfig {
        self.config
            .clone()
            .map(ImageConfig::from)
            .unwrap_or_default()
    }
}

/// A config's `rootfs`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RootFs {
    /// `sha256:<hex>` per layer, bottom first.
    pub diff_ids: Vec<String>,
}

/// An image config's `config` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct ContainerDefaults {
    user: String,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    working_dir: String,
    labels: Option<BTreeMap<String, String>>,
    stop_signal: String,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    healthcheck: Option<serde_json::Value>,
}

impl From<ContainerDefaults> for ImageConfig {
    fn from(c: ContainerDefaults) -> Self {
        ImageConfig {
            env: c.env.unwrap_or_default(),
            cmd: c.cmd,
            entrypoint: c.entrypoint,
            working_dir: c.working_dir,
            user: c.user,
            labels: c.labels.unwrap_or_default(),
            stop_signal: c.stop_signal,
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            healthcheck: c.healthcheck.filter(|h| !h.is_null()),
        }
    }
}

/// A layer's file error as a pull error: a full disk is [`PullError::NoSpace`].
pub(super) fn layer_error(digest: &str, source: ImageError) -> PullError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&source);
    while let Some(e) = cause {
        let io = e.downcast_ref::<std::io::Error>();
        if io.is_some_and(|io| io.raw_os_error() == Some(libc::ENOSPC)) {
            return PullError::NoSpace {
                digest: digest.to_string(),
            };
        }
        cause = e.source();
    }
    PullError::Layer {
        digest: digest.to_string(),
        source,
    }
}

/// The 12-hex short id Docker shows for a layer.
pub(super) fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex[..hex.len().min(12)].to_string()
}

pub(super) fn classify(reference: &str, e: OciDistributionError) -> PullError {
    let reference = reference.to_string();
    match &e {
        OciDistributionError::ImageManifestNotFoundError(_) => PullError::NotFound { reference },
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|x| {
                matches!(
                    x.code,
                    OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
                )
            }) =>
        {
            PullError::NotFound { reference }
        }
        OciDistributionError::ServerError { code: 404, .. } => PullError::NotFound { reference },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => PullError::Denied { reference },
        _ => PullError::Registry {
            reference,
            source: e,
        },
    }
}

/// `http` when the registry `host` (`name[:port]`) is insecure (named in
/// `insecure-registries`, or on loopback), else `https`.
pub async fn scheme_for(host: &str, insecure: &InsecureRegistries) -> &'static str {
    match insecure_host(host, insecure).await {
        true => "http",
        false => "https",
    }
}

/// Whether the registry `host` (`name[:port]`) is named in `insecure-registries` (a host, or a
/// CIDR holding one of its addresses) or is on loopback.
pub async fn insecure_host(host: &str, insecure: &InsecureRegistries) -> bool {
    let name = host_name(host).trim_matches(['[', ']']).to_string();
    let addrs: Vec<IpAddr> = match name.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((name.as_str(), 0))
            .await
            .map(|a| a.map(|s| s.ip()).collect())
            .unwrap_or_default(),
    };
    insecure.allows(host, &addrs)
}

/// A client for `endpoint`; the platform resolver picks `platform` in an index and notes
/// when none matched.
fn client_for(endpoint: &Endpoint, platform: &Platform, unmatched: Arc<AtomicBool>) -> Client {
    let platform = platform.clone();
    let resolver = move |entries: &[ImageIndexEntry]| {
        let found = entries.iter().find(|e| platform.matches(e));
        if found.is_none() {
            unmatched.store(true, Ordering::SeqCst);
        }
        found.map(|e| e.digest.clone())
    };
    Client::new(ClientConfig {
        platform_resolver: Some(Box::new(resolver)),
        ..endpoint.client_config()
    })
}

/// What an endpoint answered for the image: its manifest, the manifest's digest, the config
/// text and the index digest (when pulled through an index).
type Resolved = (OciImageManifest, String, String, Option<String>);

/// Asks each endpoint of `reference` in turn for the manifest and config (mirrors first for a
/// Docker Hub image, see [`super::endpoint`]); returns the first that answers, with its client
/// and the reference as moved there, or the last endpoint's error.
async fn resolve(
    reference: &Reference,
    shown: &str,
    opts: &PullOptions,
) -> Result<(Client, Reference, Resolved), PullError> {
    let hub = opts.hub.as_deref();
    let list = endpoint::endpoints(reference, &opts.mirrors, &opts.insecure, hub).await?;
    let count = list.len();
    let mut last = None;
    for (n, end) in list.into_iter().enumerate() {
        let unmatched = Arc::new(AtomicBool::new(false));
        let client = client_for(&end, &opts.platform, unmatched.clone());
        let answer = client
            .pull_manifest_and_config_and_list_digest(&end.reference, &opts.auth)
            .await;
        let err = match answer {
            Ok(found) => return Ok((client, end.reference, found)),
            Err(_) if unmatched.load(Ordering::SeqCst) => PullError::NoPlatform {
                platform: opts.platform.to_string(),
            },
            Err(e) => classify(shown, e),
        };
        if n + 1 < count {
            tracing::warn!(reference = %shown, endpoint = %end.host(), mirror = end.mirror,
                error = %crate::host::chain(&err), "pull from this endpoint failed: trying the next");
        }
        last = Some(err);
    }
    Err(last.unwrap_or_else(|| PullError::BadReference(shown.to_string())))
}

/// Pulls `target` into `dirs`, sending progress to `tx`; the image's layers are unpacked
/// and its `layers.json` written, the store record is the caller's.
pub async fn pull(
    dirs: &ImageDirs,
    target: &PullTarget,
    opts: &PullOptions,
    tx: &UnboundedSender<Progress>,
) -> Result<Pulled, PullError> {
    let shown = target.reference();
    let reference: Reference = shown
        .parse()
        .map_err(|e: oci_client::ParseError| PullError::BadReference(e.to_string()))?;
    let (client, source, resolved) = resolve(&reference, &shown, opts).await?;
    let (manifest, manifest_digest, config_text, list_digest) = resolved;
    let config_digest = manifest.config.digest.clone();
    let manifest_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.to_string());
    let blob: ConfigBlob =
        serde_json::from_str(&config_text).map_err(|source| PullError::Config {
            digest: config_digest.clone(),
            source,
        })?;
    if blob.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(PullError::LayerCount {
            diff_ids: blob.rootfs.diff_ids.len(),
            layers: manifest.layers.len(),
        });
    }
    let send = |id: Option<String>, status: &str, detail| {
        let _ = tx.send(Progress {
            id,
            status: status.to_string(),
            detail,
        });
    };
    let tag_or_digest = target
        .digest
        .clone()
        .or_else(|| target.tag.clone())
        .unwrap_or_else(|| "latest".into());
    send(
        Some(tag_or_digest),
        &format!("Pulling from {}", reference.repository()),
        None,
    );
    let pairs: Vec<(&OciDescriptor, &String)> =
        manifest.layers.iter().zip(&blob.rootfs.diff_ids).collect();
    let size = fetch_layers(dirs, &client, &source, &pairs, opts.limit, &send).await?;
    let id = {
        let hex: String = Sha256::digest(config_text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        hex
    };
    let diff_ids = blob.rootfs.diff_ids.clone();
    let (work_dirs, work_id, work_layers) = (dirs.clone(), id.clone(), diff_ids.clone());
    let config_bytes = config_text.clone().into_bytes();
    tokio::task::spawn_blocking(move || {
        work_dirs.install_layered(&work_id, &work_layers, Some(&config_bytes))
    })
    .await
    .map_err(|_| PullError::Cancelled {
        digest: config_digest.clone(),
    })?
    .map_err(|source| PullError::Layer {
        digest: config_digest.clone(),
        source,
    })?;
    Ok(Pulled {
        id,
        layers: diff_ids,
        config: blob.config.map(ImageConfig::from).unwrap_or_default(),
        size,
        digest: list_digest.unwrap_or(manifest_digest),
        created: blob
            .created
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok())
            .map(|c| c.with_timezone(&chrono::Utc)),
        manifest_type,
    })
}

/// Announces each layer (`Already exists` or `Pulling fs layer`), then fetches those not on
/// disk, bottom first; returns the unpacked size of all.
async fn fetch_layers(
    dirs: &ImageDirs,
    client: &Client,
    source: &Reference,
    pairs: &[(&OciDescriptor, &String)],
    limit: u64,
    send: &impl Fn(Option<String>, &str, Option<(u64, u64)>),
) -> Result<u64, PullError> {
    for (layer, diff_id) in pairs {
        let status = match dirs.has_layer(diff_id) {
            true => "Already exists",
            false => "Pulling fs layer",
        };
        send(Some(short(&layer.digest)), status, None);
    }
    let mut size = 0;
    for (layer, diff_id) in pairs {
        if dirs.has_layer(diff_id) {
            size += dirs.layer_size(diff_id);
            continue;
        }
        size += fetch_layer(dirs, client, source, layer, diff_id, limit, send).await?;
    }
    Ok(size)
}

/// Downloads one layer blob into `images/tmp/`, checks its digest, unpacks it; returns its
/// unpacked size. A concurrent pull of the same layer is waited for, then its layer used.
async fn fetch_layer(
    dirs: &ImageDirs,
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
    diff_id: &str,
    limit: u64,
    send: &impl Fn(Option<String>, &str, Option<(u64, u64)>),
) -> Result<u64, PullError> {
    let digest = layer.digest.clone();
    let Some(hex) = digest_hex(&digest) else {
        return Err(PullError::Layer {
            digest: digest.clone(),
            source: ImageError::BadDigest { digest },
        });
    };
    let id = short(&digest);
    // One download per layer: a concurrent pull of it is waited for.
    let wait = || send(Some(id.clone()), "Waiting", None);
    let _flight = match Flight::take(dirs.layer(diff_id), wait).await {
        Boarding::Waited(_) if dirs.has_layer(diff_id) => {
            send(Some(id), "Pull complete", None);
            return Ok(dirs.layer_size(diff_id));
        }
        Boarding::Waited(f) | Boarding::Free(f) => f,
    };
    let layer_err = |source| layer_error(&digest, source);
    let blob = TmpDir(dirs.tmp().join(format!(
        "blob-{}-{:016x}",
        &hex[..12],
        rand::random::<u64>()
    )));
    let mut file = HashingFile::create(&blob.0).map_err(layer_err)?;
    download::download(client, reference, layer, &mut file, send).await?;
    let total = u64::try_from(layer.size).unwrap_or(0);
    let got = file.finish();
    if got != hex {
        return Err(PullError::DigestMismatch { digest, got });
    }
    send(Some(id.clone()), "Verifying Checksum", None);
    send(Some(id.clone()), "Download complete", None);
    send(Some(id.clone()), "Extracting", Some((total, total)));
    let path: PathBuf = blob.0.clone();
    let (work_dirs, work_diff) = (dirs.clone(), diff_id.to_string());
    let size = tokio::task::spawn_blocking(move || {
        let done = work_dirs.install_layer(&work_diff, &path, limit);
        drop(blob);
        done
    })
    .await
    .map_err(|_| PullError::Cancelled {
        digest: digest.clone(),
    })?
    .map_err(layer_err)?;
    send(Some(id), "Pull complete", None);
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_blob_gives_the_defaults() {
        let blob: ConfigBlob = serde_json::from_str(
            r#"{"config":{"Env":["A=1"],"Cmd":["sh"],"WorkingDir":"/w","User":"1:2",
            "ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}},"Labels":{"a":"b"},
            "Healthcheck":{"Test":["CMD","true"]}},"rootfs":{"diff_ids":["sha256:x"]}}"#,
        )
        .unwrap();
        let c = ImageConfig::from(blob.config.unwrap());
        assert_eq!(c.env, vec!["A=1"]);
        assert_eq!(c.working_dir, "/w");
        assert_eq!(c.exposed_ports, vec!["80/tcp"]);
        assert_eq!(c.volumes, vec!["/data"]);
        assert!(c.healthcheck.is_some());
        assert_eq!(blob.rootfs.diff_ids.len(), 1);
    }
}
