//! `docker commit`: a new image from a container's overlay upper dir. The image's layers
//! are its base image's, then one layer packed from the upper dir (overlayfs whiteouts
//! turned into OCI `.wh.` entries, opaque directories into `.wh..wh..opq`). A container on
//! an imported (flattened) image gets that image's rootfs packed as the base layer, unpacked
//! once more under `layers/` (the rootfs stays as it is for the containers using it).
//! The config is written anew: the container's defaults, the base's history plus one
//! entry for the commit, `author`, `comment` and `container`. Its sha256 is the new id.

use std::collections::BTreeMap;
use std::path::PathBuf;

use moor_state::image::{ImageConfig, ImageRecord};
use serde_json::{json, Value};

use super::archive::{config_blob, pack_tree, sha256, stored_config, ArchiveError};
use super::layers::dirs_layers;
use super::ImageDirs;

/// What a commit is made of.
pub struct CommitInput {
    /// The container's overlay upper dir.
    pub upper: PathBuf,
    /// Its image.
    pub base: ImageRecord,
    /// The new image's container defaults (the container's, with `changes` applied).
    pub defaults: ImageConfig,
    /// The container's id (the config's `container`).
    pub container: String,
    /// The history entry's `created_by` (the container's command).
    pub created_by: String,
    /// `comment` (the history entry's too).
    pub comment: String,
    /// `author`.
    pub author: String,
    /// The unpack cap (`image-unpack-limit`).
    pub limit: u64,
}

/// A committed image's files, in place under `images/`.
#[derive(Debug)]
pub struct CommitOutput {
    /// The new id (sha256 hex of the config).
    pub id: String,
    /// The layers' diff ids, bottom first.
    pub layers: Vec<String>,
    /// The unpacked size of all layers.
    pub size: u64,
}

fn install(dirs: &ImageDirs, tree: &std::path::Path, limit: u64) -> Result<String, ArchiveError> {
    let (tar, diff_id) = pack_tree(tree, &dirs.tmp())?;
    dirs.install_layer(&diff_id, &tar.0, limit)
        .map_err(|source| ArchiveError::Install {
            path: tree.display().to_string(),
            source,
        })?;
    Ok(diff_id)
}

/// The base's layers and history (installing a flattened rootfs as a layer).
fn base(dirs: &ImageDirs, input: &CommitInput) -> Result<(Vec<String>, Vec<Value>), ArchiveError> {
    let rec = &input.base;
    let created = rec
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if rec.layers.is_empty() && dirs.rootfs(&rec.id).is_dir() {
        let diff = install(dirs, &dirs.rootfs(&rec.id), input.limit)?;
        let history = json!({"created": created, "created_by": "moor import",
                             "comment": "Imported from -"});
        return Ok((vec![diff], vec![history]));
    }
    let layers = dirs_layers(&dirs.dir.join(&rec.id));
    let history = stored_config(dirs, &rec.id)
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
        .and_then(|c| c.get("history").and_then(Value::as_array).cloned())
        .unwrap_or_else(|| {
            let one = json!({"created": created, "created_by": ""});
            vec![one; layers.len()]
        });
    Ok((layers, history))
}

/// Packs and installs the new layer, writes the config, records the image's files.
pub fn commit(dirs: &ImageDirs, input: &CommitInput) -> Result<CommitOutput, ArchiveError> {
    let (mut layers, mut history) = base(dirs, input)?;
    layers.push(install(dirs, &input.upper, input.limit)?);
    let now = chrono::Utc::now();
    let mut entry = json!({
        "created": now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "created_by": input.created_by,
    });
    if !input.author.is_empty() {
        entry["author"] = json!(input.author);
    }
    if !input.comment.is_empty() {
        entry["comment"] = json!(input.comment);
    }
    history.push(entry);
    let extra = BTreeMap::from([
        ("author", input.author.clone()),
        ("comment", input.comment.clone()),
        ("container", input.container.clone()),
    ]);
    let config = config_blob(&input.defaults, &layers, now, history, &extra);
    let id = sha256(&config)[7..].to_string();
    dirs.install_layered(&id, &layers, Some(&config))
        .map_err(|source| ArchiveError::Install {
            path: input.upper.display().to_string(),
            source,
        })?;
    let size = layers.iter().map(|l| dirs.layer_size(l)).sum();
    Ok(CommitOutput { id, layers, size })
}
