//! Pushing an image to a registry (`docker push`, `moor push`) through `oci-client`. moor
//! keeps layers unpacked, not their blobs, so each layer is packed again from its tree (a
//! pulled image's layer dirs, or an imported image's rootfs as one layer) into a gzip tar
//! under `images/tmp/`, overlayfs whiteouts turned back into OCI ones (a 0/0 character
//! device `NAME` is `.wh.NAME`, `trusted.overlay.opaque=y` is `.wh..wh..opq`); entries in
//! name order with their own modes, owners and times. The manifest is Docker schema 2 for an
//! image pulled by a schema 2 manifest, OCI otherwise. The image config is written anew from
//! the record (container defaults, the new diff ids): the pushed image's digest and id are
//! therefore not the local id (Docker keeps the original tar-split and pushes the same
//! bytes). Layers the registry has already are not uploaded again.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use moor_state::image::ImageConfig;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::json;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::UnboundedSender;

use super::registry::{scheme_for, Platform, Progress};
use super::{ImageDirs, TmpDir};
use crate::config::registry::InsecureRegistries;

/// The media types of a pushed manifest, its config and its (gzip) layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaTypes {
    /// The manifest's.
    pub manifest: &'static str,
    /// The config blob's.
    pub config: &'static str,
    /// Each layer's.
    pub layer: &'static str,
}

/// OCI's: for imported images and images pulled by an OCI manifest.
pub const OCI_TYPES: MediaTypes = MediaTypes {
    manifest: "application/vnd.oci.image.manifest.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layer: "application/vnd.oci.image.layer.v1.tar+gzip",
};

/// Docker schema 2's: for images pulled by a Docker schema 2 manifest.
pub const DOCKER_TYPES: MediaTypes = MediaTypes {
    manifest: "application/vnd.docker.distribution.manifest.v2+json",
    config: "application/vnd.docker.container.image.v1+json",
    layer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
};

impl MediaTypes {
    /// The family of the manifest type an image was pulled by (OCI when none is known).
    pub fn of_source(manifest_type: Option<&str>) -> MediaTypes {
        match manifest_type {
            Some(t) if t.starts_with("application/vnd.docker.") => DOCKER_TYPES,
            _ => OCI_TYPES,
        }
    }
}

/// Why a push failed.
#[derive(Debug, Error)]
pub enum PushError {
    /// A reference oci-client cannot parse.
    #[error("invalid reference format: {0}")]
    BadReference(String),
    /// A layer tree could not be packed (gone with a removal meanwhile, unreadable).
    #[error("pack the layer {path}")]
    Pack {
        /// The tree.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The registry refused the credentials or asked for some.
    #[error("push access denied for {reference}: authentication required or denied")]
    Denied {
        /// The reference pushed.
        reference: String,
    },
    /// The registry conversation failed.
    #[error("push {reference}")]
    Registry {
        /// The reference pushed.
        reference: String,
        /// What oci-client said.
        #[source]
        source: OciDistributionError,
    },
    /// A push of all tags of a repository that has none here (Docker's text).
    #[error("An image does not exist locally with the tag: {repo}")]
    NoTags {
        /// The repository.
        repo: String,
    },
    /// The blocking pack task was cancelled (shutdown).
    #[error("push {reference}: cancelled")]
    Cancelled {
        /// The reference pushed.
        reference: String,
    },
}

impl PushError {
    /// Whether the request is at fault (400).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, PushError::BadReference(_))
    }

    /// Whether nothing here has the name (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, PushError::NoTags { .. })
    }
}

/// What to push: the trees bottom first and the container defaults.
pub struct PushSource {
    /// Layer trees, bottom first (overlay lower dirs).
    pub trees: Vec<PathBuf>,
    /// The image's container defaults.
    pub config: ImageConfig,
    /// The image's creation time.
    pub created: chrono::DateTime<chrono::Utc>,
    /// The media types to push with (the family of the manifest the image was pulled by).
    pub types: MediaTypes,
}

/// A packed layer.
struct Packed {
    /// The gzip blob under `images/tmp/`, removed when dropped.
    blob: TmpDir,
    /// `sha256:` of the blob.
    digest: String,
    /// `sha256:` of the uncompressed tar.
    diff_id: String,
    /// The blob's size.
    size: u64,
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    /// Where the bytes go.
    inner: W,
    /// Their running sha256.
    hasher: Sha256,
    /// How many.
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn digest(&self) -> String {
        let hex: String = self
            .hasher
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    }
}

/// Appends the tree `root/rel` to `b`, in name order, whiteouts in OCI's form.
pub(crate) fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = rel.join(entry.file_name());
        let meta = std::fs::symlink_metadata(entry.path())?;
        let kind = meta.file_type();
        let mut h = tar::Header::new_gnu();
        if kind.is_char_device() && meta.rdev() == 0 {
            let wh = rel.join(format!(".wh.{}", entry.file_name().to_string_lossy()));
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(0);
            h.set_mtime(meta.mtime().max(0) as u64);
            b.append_data(&mut h, wh, io::empty())?;
            continue;
        }
        h.set_metadata(&meta);
        if kind.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, &name, io::empty())?;
            let opaque = xattr::get(entry.path(), "trusted.overlay.opaque")?;
            if opaque.as_deref() == Some(b"y") {
                let mut o = tar::Header::new_gnu();
                o.set_entry_type(tar::EntryType::Regular);
                o.set_mode(0o644);
                o.set_size(0);
                b.append_data(&mut o, name.join(".wh..wh..opq"), io::empty())?;
            }
            append_tree(b, root, &name)?;
        } else if kind.is_symlink() {
            h.set_size(0);
            b.append_link(&mut h, &name, std::fs::read_link(entry.path())?)?;
        } else if kind.is_file() {
            b.append_data(&mut h, &name, File::open(entry.path())?)?;
        } else {
            // Devices and fifos: the header only.
            h.set_size(0);
            b.append_data(&mut h, &name, io::empty())?;
        }
    }
    Ok(())
}

/// Packs `tree` into a gzip tar under `tmp`.
fn pack(tree: &Path, tmp: &Path) -> Result<Packed, PushError> {
    let fail = |source| PushError::Pack {
        path: tree.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(tmp).map_err(fail)?;
    let blob = TmpDir(tmp.join(format!("push-{:016x}", rand::random::<u64>())));
    let file = File::create(&blob.0).map_err(fail)?;
    let gz = flate2::write::GzEncoder::new(Hashing::new(file), flate2::Compression::fast());
    let mut b = tar::Builder::new(Hashing::new(gz));
    b.mode(tar::HeaderMode::Complete);
    append_tree(&mut b, tree, Path::new("")).map_err(fail)?;
    let raw = b.into_inner().map_err(fail)?;
    let diff_id = raw.digest();
    let mut compressed = raw.inner.finish().map_err(fail)?;
    compressed.flush().map_err(fail)?;
    Ok(Packed {
        digest: compressed.digest(),
        diff_id,
        size: compressed.count,
        blob,
    })
}

/// The image config moor pushes: the defaults, the platform, the layers' diff ids.
fn config_blob(source: &PushSource, diff_ids: &[String]) -> Vec<u8> {
    let c = &source.config;
    let map = |list: &[String]| -> serde_json::Map<String, serde_json::Value> {
        list.iter().map(|k| (k.clone(), json!({}))).collect()
    };
    let mut defaults = json!({
        "Env": c.env, "Cmd": c.cmd, "Entrypoint": c.entrypoint, "WorkingDir": c.working_dir,
        "User": c.user, "Labels": c.labels, "StopSignal": c.stop_signal,
        "ExposedPorts": map(&c.exposed_ports), "Volumes": map(&c.volumes),
    });
    if let Some(h) = &c.healthcheck {
        defaults["Healthcheck"] = h.clone();
    }
    let host = Platform::host();
    let config = json!({
        "created": source.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "os": host.os,
        "architecture": host.arch,
        "config": defaults,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    serde_json::to_vec(&config).unwrap_or_default()
}

/// Where and how to push.
pub struct PushOptions {
    /// daemon.json `insecure-registries`.
    pub insecure: InsecureRegistries,
    /// From `X-Registry-Auth`.
    pub auth: RegistryAuth,
}

/// Pushes `source` as `target` (`repo:tag`), sending progress to `tx` (the caller sends
/// `The push refers to repository`, once for a push of several tags); returns the manifest's
/// digest and size.
pub async fn push(
    dirs: &ImageDirs,
    target: &str,
    source: &PushSource,
    opts: &PushOptions,
    tx: &UnboundedSender<Progress>,
) -> Result<(String, usize), PushError> {
    let reference: Reference = target
        .parse()
        .map_err(|e: oci_client::ParseError| PushError::BadReference(e.to_string()))?;
    let failed = |source| failed(target, source);
    let protocol = match scheme_for(reference.registry(), &opts.insecure).await {
        "http" => oci_client::client::ClientProtocol::Http,
        _ => oci_client::client::ClientProtocol::Https,
    };
    let client = Client::new(oci_client::client::ClientConfig {
        protocol,
        ..Default::default()
    });
    client
        .auth(&reference, &opts.auth, RegistryOperation::Push)
        .await
        .map_err(failed)?;
    let send = |id: Option<String>, status: &str, detail| {
        let _ = tx.send(Progress {
            id,
            status: status.to_string(),
            detail,
        });
    };
    let layers = push_layers(dirs, &client, &reference, target, &source.trees, &send).await?;
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config = config_blob(source, &diff_ids);
    let config_digest = sha256(&config);
    let config_size = config.len();
    client
        .push_blob(&reference, config, &config_digest)
        .await
        .map_err(failed)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": source.types.manifest,
        "config": {"mediaType": source.types.config, "digest": config_digest, "size": config_size},
        "layers": layers.iter().map(|l| json!({
            "mediaType": source.types.layer, "digest": l.digest, "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let digest = sha256(&bytes);
    let size = bytes.len();
    let content_type = reqwest::header::HeaderValue::from_static(source.types.manifest);
    client
        .push_manifest_raw(&reference, bytes, content_type)
        .await
        .map_err(failed)?;
    Ok((digest, size))
}

/// A registry error as a push error: refused credentials are [`PushError::Denied`].
fn failed(target: &str, source: OciDistributionError) -> PushError {
    match source {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::ServerError { code: 401, .. } => PushError::Denied {
            reference: target.to_string(),
        },
        OciDistributionError::RequestError(e)
            if e.status() == Some(reqwest::StatusCode::UNAUTHORIZED) =>
        {
            PushError::Denied {
                reference: target.to_string(),
            }
        }
        source => PushError::Registry {
            reference: target.to_string(),
            source,
        },
    }
}

/// Packs and uploads each tree (bottom first) but those the registry has; returns them.
async fn push_layers(
    dirs: &ImageDirs,
    client: &Client,
    reference: &Reference,
    target: &str,
    trees: &[PathBuf],
    send: &impl Fn(Option<String>, &str, Option<(u64, u64)>),
) -> Result<Vec<Packed>, PushError> {
    let failed = |source| failed(target, source);
    let mut layers = Vec::new();
    for tree in trees {
        let (tree, tmp) = (tree.clone(), dirs.tmp());
        let packed = tokio::task::spawn_blocking(move || pack(&tree, &tmp))
            .await
            .map_err(|_| PushError::Cancelled {
                reference: target.to_string(),
            })??;
        let id = packed.digest[7..19].to_string();
        send(Some(id.clone()), "Preparing", None);
        if client
            .blob_exists(reference, &packed.digest)
            .await
            .map_err(failed)?
        {
            send(Some(id), "Layer already exists", None);
        } else {
            upload(client, reference, &packed, send, &id)
                .await
                .map_err(failed)?;
            send(Some(id), "Pushed", None);
        }
        layers.push(packed);
    }
    Ok(layers)
}

/// Uploads one packed layer as a stream of its file, with `Pushing` progress.
async fn upload(
    client: &Client,
    reference: &Reference,
    packed: &Packed,
    send: &impl Fn(Option<String>, &str, Option<(u64, u64)>),
    id: &str,
) -> Result<(), OciDistributionError> {
    let file = tokio::fs::File::open(&packed.blob.0).await?;
    let total = packed.size;
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let chunks = futures_util::stream::unfold((file, 0u64), move |(mut file, done)| {
        let progress_tx = progress_tx.clone();
        async move {
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    let _ = progress_tx.send(done + n as u64);
                    Some((Ok(hyper::body::Bytes::from(buf)), (file, done + n as u64)))
                }
                Err(e) => Some((Err(e.into()), (file, done))),
            }
        }
    });
    let pushing = client.push_blob_stream(reference, chunks.boxed(), &packed.digest, Some(total));
    tokio::pin!(pushing);
    loop {
        tokio::select! {
            done = &mut pushing => return done.map(|_| ()),
            Some(current) = progress_rx.recv() => {
                send(Some(id.to_string()), "Pushing", Some((current, total)));
            }
        }
    }
}

fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_packed_layer_turns_overlay_whiteouts_back_into_oci_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).expect("etc");
        std::fs::create_dir_all(tree.join("opq")).expect("opq");
        std::fs::write(tree.join("opq/new"), "new").expect("new");
        std::fs::write(tree.join("etc/kept"), "kept").expect("kept");
        nix::sys::stat::mknod(
            &tree.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            0,
        )
        .expect("whiteout (root)");
        xattr::set(tree.join("opq"), "trusted.overlay.opaque", b"y").expect("xattr (root)");
        std::os::unix::fs::symlink("kept", tree.join("etc/link")).expect("symlink");
        let packed = pack(&tree, &dir.path().join("tmp")).expect("pack");
        let mut gz = Vec::new();
        File::open(&packed.blob.0)
            .expect("blob")
            .read_to_end(&mut gz)
            .expect("read");
        assert_eq!(packed.size, gz.len() as u64);
        assert_eq!(packed.digest, sha256(&gz));
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .expect("gunzip");
        assert_eq!(packed.diff_id, sha256(&raw));
        let mut archive = tar::Archive::new(&raw[..]);
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "etc",
                "etc/.wh.gone",
                "etc/kept",
                "etc/link",
                "opq",
                "opq/.wh..wh..opq",
                "opq/new"
            ]
        );
        let again = pack(&tree, &dir.path().join("tmp")).expect("pack");
        assert_eq!(
            again.diff_id, packed.diff_id,
            "the same tree packs the same"
        );
    }
}
