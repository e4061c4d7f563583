//! Images as files: the layer tars and config blobs that `docker commit`, `docker save` and
//! `docker load` deal in, and the docker-archive a save writes.
//!
//! A layered image (pulled, loaded, committed) keeps its config blob as it came
//! (`<id>/config.json`, whose sha256 is the id) and each layer's split
//! ([`super::split`]): a save writes both back unchanged, so the image loads elsewhere with
//! the same id. An imported (flattened) image, or a layer without a split, is packed anew
//! from its tree: the config is then written anew too, and the saved image's id is that
//! config's digest, not the local id.
//!
//! The archive is Docker 25's: `blobs/sha256/<hex>` for configs, layers (uncompressed tars)
//! and OCI manifests, `manifest.json` (`Config`, `RepoTags`, `Layers`), `repositories`,
//! `oci-layout` and `index.json`; a blob two images share is written once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use moor_state::image::{ImageConfig, ImageRecord};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::layers::CONFIG_FILE;
use super::registry::ConfigBlob;
use super::{ImageDirs, TmpDir};

/// Why a commit, save or load failed.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// A file of moor's own could not be read or written.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The archive is not a readable tar (truncated, corrupt).
    #[error("invalid image archive: entry {entry:?} at byte {offset}")]
    Tar {
        /// The entry being read (empty before the first).
        entry: String,
        /// Its header's offset in the archive.
        offset: u64,
        /// What the tar reader said.
        #[source]
        source: io::Error,
    },
    /// The archive's content is not what its manifests say.
    #[error("invalid image archive: {0}")]
    Content(String),
    /// A layer of the archive could not be installed (digest, unsafe entry, size).
    #[error("invalid image archive: layer {path}")]
    Layer {
        /// The layer's file in the archive.
        path: String,
        /// Why.
        #[source]
        source: super::ImageError,
    },
    /// A layer moor made (a commit's) could not be installed.
    #[error("install the layer packed from {path}")]
    Install {
        /// The tree packed.
        path: String,
        /// Why.
        #[source]
        source: super::ImageError,
    },
    /// A query parameter moor does not implement.
    #[error("query parameter {0:?} is not supported by moor")]
    Parameter(String),
    /// A layer or the upper dir could not be packed.
    #[error("pack {path}")]
    Pack {
        /// The tree.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    /// Whether the archive (the client) is at fault.
    pub fn is_bad_archive(&self) -> bool {
        matches!(
            self,
            ArchiveError::Tar { .. }
                | ArchiveError::Content(_)
                | ArchiveError::Layer { .. }
                | ArchiveError::Parameter(_)
        )
    }
}

/// `sha256:<hex>` of bytes.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what passes through it.
pub struct HashWriter<W> {
    /// Where the bytes go.
    pub inner: W,
    /// Their sha256.
    hasher: Sha256,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
        }
    }
    /// `sha256:<hex>` of what was written.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.hasher.clone().finalize()))
    }
}

/// Packs `tree` (overlay whiteouts turned into OCI ones) into an uncompressed tar under
/// `tmp`; returns it and its diff id.
pub fn pack_tree(tree: &Path, tmp: &Path) -> Result<(TmpDir, String), ArchiveError> {
    let fail = |source| ArchiveError::Pack {
        path: tree.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(tmp).map_err(fail)?;
    let out = TmpDir(tmp.join(format!("layer-{:016x}.tar", rand::random::<u64>())));
    let file = File::create(&out.0).map_err(fail)?;
    let mut b = tar::Builder::new(HashWriter::new(BufWriter::new(file)));
    b.mode(tar::HeaderMode::Complete);
    super::push::append_tree(&mut b, tree, Path::new("")).map_err(fail)?;
    let mut w = b.into_inner().map_err(fail)?;
    w.flush().map_err(fail)?;
    Ok((out, w.digest()))
}

/// The tar of layer `diff_id` (tree `tree`) under `tmp`, and its diff id: the original
/// bytes from the split when it has one that still hashes to `diff_id`, else packed anew.
pub fn layer_file(
    dirs: &ImageDirs,
    diff_id: &str,
    tree: &Path,
) -> Result<(TmpDir, String), ArchiveError> {
    let tmp = dirs.tmp();
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Io { what, path, source }
    };
    std::fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
    let out = TmpDir(tmp.join(format!("layer-{:016x}.tar", rand::random::<u64>())));
    let file = File::create(&out.0).map_err(io("create", &out.0))?;
    let mut w = HashWriter::new(BufWriter::new(file));
    let had = dirs.layer_tar(diff_id, &mut w).unwrap_or_else(|e| {
        tracing::warn!(layer = %diff_id, error = %e, "layer split unreadable: packed anew");
        false
    });
    w.flush().map_err(io("write", &out.0))?;
    if had && w.digest() == diff_id {
        return Ok((out, w.digest()));
    }
    if had {
        tracing::warn!(layer = %diff_id, got = %w.digest(), "layer split does not re-create the layer: packed anew");
    }
    drop(out);
    pack_tree(tree, &tmp)
}

/// A config blob for `defaults` over `diff_ids`, with `history` (Docker's shape).
pub fn config_blob(
    defaults: &ImageConfig,
    diff_ids: &[String],
    created: chrono::DateTime<chrono::Utc>,
    history: Vec<Value>,
    extra: &BTreeMap<&str, String>,
) -> Vec<u8> {
    let c = defaults;
    let map = |list: &[String]| -> serde_json::Map<String, Value> {
        list.iter().map(|k| (k.clone(), json!({}))).collect()
    };
    let mut inner = json!({
        "Env": c.env, "Cmd": c.cmd, "Entrypoint": c.entrypoint, "WorkingDir": c.working_dir,
        "User": c.user, "Labels": c.labels, "StopSignal": c.stop_signal,
        "ExposedPorts": map(&c.exposed_ports), "Volumes": map(&c.volumes),
    });
    if let Some(h) = &c.healthcheck {
        inner["Healthcheck"] = h.clone();
    }
    let host = super::registry::Platform::host();
    let mut config = json!({
        "architecture": host.arch,
        "os": host.os,
        "created": created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "config": inner,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    for (k, v) in extra.iter().filter(|(_, v)| !v.is_empty()) {
        config[*k] = json!(v);
    }
    serde_json::to_vec(&config).unwrap_or_default()
}

/// An image's config blob as stored, if it has one.
pub fn stored_config(dirs: &ImageDirs, id: &str) -> Option<Vec<u8>> {
    std::fs::read(dirs.dir.join(id).join(CONFIG_FILE)).ok()
}

/// What a save needs of one image: its config blob and layer files, bottom first.
struct SavedImage {
    /// The config blob written (the stored one, or one written anew).
    config: Vec<u8>,
    /// The layer tars and their diff ids.
    layers: Vec<(TmpDir, String)>,
}

/// Gets the blobs of one image ready under `tmp/`.
fn prepare(dirs: &ImageDirs, rec: &ImageRecord) -> Result<SavedImage, ArchiveError> {
    let stored = stored_config(dirs, &rec.id);
    let layers: Vec<(TmpDir, String)> = if rec.layers.is_empty() && dirs.rootfs(&rec.id).is_dir() {
        vec![pack_tree(&dirs.rootfs(&rec.id), &dirs.tmp())?]
    } else {
        let diffs = super::layers::dirs_layers(&dirs.dir.join(&rec.id));
        let mut out = Vec::new();
        for d in &diffs {
            out.push(layer_file(dirs, d, &dirs.layer(d))?);
        }
        out
    };
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let same = stored
        .as_deref()
        .and_then(|c| serde_json::from_slice::<ConfigBlob>(c).ok())
        .is_some_and(|c| c.rootfs.diff_ids == diff_ids);
    let config = match stored {
        Some(c) if same => c,
        Some(c) => {
            // Layers packed anew: the stored config with the new diff ids.
            let mut v: Value = serde_json::from_slice(&c).unwrap_or_else(|_| json!({}));
            v["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
            serde_json::to_vec(&v).unwrap_or_default()
        }
        None => {
            let created = rec
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            // An import says so; a layered image recorded without its config has no history.
            let history = match rec.layers.is_empty() {
                true => vec![json!({"created": created, "created_by": "moor import",
                                    "comment": "Imported from -"})],
                false => vec![json!({"created": created, "created_by": ""}); diff_ids.len()],
            };
            let extra = BTreeMap::new();
            config_blob(&rec.config, &diff_ids, rec.created_at, history, &extra)
        }
    };
    Ok(SavedImage { config, layers })
}

/// Appends `data` at `path` of the archive.
fn append_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    b.append_data(&mut h, path, data)
}

/// Writes the images `recs` (each with the names asked for) as one docker-archive under
/// `tmp/`; returns it (removed when dropped). Runs on a blocking pool.
pub fn save(dirs: &ImageDirs, recs: &[(ImageRecord, Vec<String>)]) -> Result<TmpDir, ArchiveError> {
    let tmp = dirs.tmp();
    let out = TmpDir(tmp.join(format!("save-{:016x}.tar", rand::random::<u64>())));
    let fail = |source| ArchiveError::Io {
        what: "write",
        path: out.0.clone(),
        source,
    };
    std::fs::create_dir_all(&tmp).map_err(fail)?;
    let file = File::create(&out.0).map_err(fail)?;
    let mut b = tar::Builder::new(BufWriter::new(file));
    let mut written = BTreeSet::new();
    let (mut manifest, mut index, mut repositories) = (Vec::new(), Vec::new(), json!({}));
    for (rec, tags) in recs {
        let img = prepare(dirs, rec)?;
        let config_digest = sha256(&img.config);
        let blob = |d: &str| format!("blobs/sha256/{}", &d[7..]);
        if written.insert(config_digest.clone()) {
            append_bytes(&mut b, &blob(&config_digest), &img.config).map_err(fail)?;
        }
        let mut oci_layers = Vec::new();
        for (file, diff) in &img.layers {
            let size = std::fs::metadata(&file.0).map_err(fail)?.len();
            if written.insert(diff.clone()) {
                b.append_path_with_name(&file.0, blob(diff)).map_err(fail)?;
            }
            oci_layers.push(json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": diff, "size": size,
            }));
        }
        let oci = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": img.config.len()},
            "layers": oci_layers,
        }))
        .unwrap_or_default();
        let oci_digest = sha256(&oci);
        if written.insert(oci_digest.clone()) {
            append_bytes(&mut b, &blob(&oci_digest), &oci).map_err(fail)?;
        }
        let layer_paths: Vec<String> = img.layers.iter().map(|(_, d)| blob(d)).collect();
        manifest.push(json!({
            "Config": blob(&config_digest), "RepoTags": tags, "Layers": layer_paths,
        }));
        let top = img.layers.last().map(|(_, d)| d[7..].to_string());
        for tag in tags {
            let mut annotations = json!({"io.containerd.image.name": tag});
            if let Some((repo, t)) = tag.rsplit_once(':') {
                annotations["org.opencontainers.image.ref.name"] = json!(t);
                repositories[repo][t] = json!(top.clone().unwrap_or_default());
            }
            index.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": oci_digest, "size": oci.len(), "annotations": annotations,
            }));
        }
        if tags.is_empty() {
            index.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": oci_digest, "size": oci.len(),
            }));
        }
    }
    let text = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    append_bytes(&mut b, "manifest.json", &text(&json!(manifest))).map_err(fail)?;
    append_bytes(&mut b, "repositories", &text(&repositories)).map_err(fail)?;
    let layout = json!({"imageLayoutVersion": "1.0.0"});
    append_bytes(&mut b, "oci-layout", &text(&layout)).map_err(fail)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": index,
    });
    append_bytes(&mut b, "index.json", &text(&index)).map_err(fail)?;
    b.into_inner().map_err(fail)?.flush().map_err(fail)?;
    Ok(out)
}
