//! `docker load`: reading a docker-archive (`manifest.json` with `Config`, `RepoTags`,
//! `Layers`) or an OCI layout (`index.json`, as docker 25+ also writes) into images.
//!
//! The upload is unpacked as plain files into a work directory under `images/tmp/` (paths
//! checked; a symlink, as older saves use for a layer two images share, must stay inside).
//! Then everything is checked before anything is installed: each config's sha256 (it is the
//! image's id) against its file name when that is a digest, each blob under `blobs/sha256/`
//! against its name, each layer's uncompressed sha256 against the config's diff id, the count
//! of layers against the diff ids. A truncated or corrupt archive is refused naming the entry
//! and offset or the file at fault, and leaves nothing. Layers already on disk are not
//! unpacked again.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::archive::{sha256, ArchiveError};
use super::layers::{digest_hex, open_blob};
use super::registry::ConfigBlob;
use super::{ImageDirs, TmpDir};

/// One image of an archive, checked.
#[derive(Debug)]
pub struct LoadedImage {
    /// Its id (sha256 hex of the config).
    pub id: String,
    /// The config blob.
    pub config: Vec<u8>,
    /// The parsed config.
    pub parsed: ConfigBlob,
    /// Names it is loaded with.
    pub repo_tags: Vec<String>,
    /// Each layer's file in the work directory and its diff id, bottom first.
    pub layers: Vec<(PathBuf, String)>,
}

/// An archive unpacked and checked.
pub struct Loaded {
    /// The work directory (removed when dropped).
    pub work: TmpDir,
    /// The images.
    pub images: Vec<LoadedImage>,
}

/// `manifest.json`'s entries.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    /// The config file's path in the archive.
    config: String,
    /// `repo:tag` names (null for an image saved by id).
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    /// The layer files' paths, bottom first.
    layers: Vec<String>,
}

/// What moor reads of an OCI descriptor.
#[derive(Debug, Deserialize)]
struct Descriptor {
    /// `sha256:<hex>` of the blob.
    digest: String,
    /// `io.containerd.image.name` gives an image's name.
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// `index.json`.
#[derive(Debug, Deserialize)]
struct OciIndex {
    /// One per image (and name).
    manifests: Vec<Descriptor>,
}

/// An OCI image manifest.
#[derive(Debug, Deserialize)]
struct OciManifest {
    /// The config blob.
    config: Descriptor,
    /// The layer blobs, bottom first.
    layers: Vec<Descriptor>,
}

fn content(msg: impl Into<String>) -> ArchiveError {
    ArchiveError::Content(msg.into())
}

/// Unpacks the archive at `src` into a work directory and checks every image in it.
pub fn load(dirs: &ImageDirs, src: &Path) -> Result<Loaded, ArchiveError> {
    let work = TmpDir(
        dirs.tmp()
            .join(format!("load-{:016x}", rand::random::<u64>())),
    );
    std::fs::create_dir_all(&work.0).map_err(|source| ArchiveError::Io {
        what: "create",
        path: work.0.clone(),
        source,
    })?;
    extract(src, &work.0)?;
    let images = if work.0.join("manifest.json").is_file() {
        from_manifest(&work.0)?
    } else if work.0.join("index.json").is_file() {
        from_index(&work.0)?
    } else {
        return Err(content(
            "neither manifest.json nor index.json in the archive",
        ));
    };
    if images.is_empty() {
        return Err(content("the archive lists no image"));
    }
    for img in &images {
        for (path, diff_id) in &img.layers {
            verify_layer(&work.0, path, diff_id)?;
        }
    }
    Ok(Loaded { work, images })
}

/// Installs the checked images' layers (those on disk already are kept) and their
/// directories (layer list, config blob); the records are the images' owner's to make.
pub fn install(dirs: &ImageDirs, loaded: &Loaded, limit: u64) -> Result<(), ArchiveError> {
    for img in &loaded.images {
        let mut diffs = Vec::new();
        for (path, diff) in &img.layers {
            dirs.install_layer(diff, path, limit)
                .map_err(|source| ArchiveError::Layer {
                    path: path.display().to_string(),
                    source,
                })?;
            diffs.push(diff.clone());
        }
        dirs.install_layered(&img.id, &diffs, Some(&img.config))
            .map_err(|source| ArchiveError::Install {
                path: img.id.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Writes the archive's files and directories under `dest`, refusing other entries and
/// paths that leave it.
fn extract(src: &Path, dest: &Path) -> Result<(), ArchiveError> {
    let file = File::open(src).map_err(|source| ArchiveError::Io {
        what: "open",
        path: src.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    let tar_err = |entry: &str, offset: u64| {
        let entry = entry.to_string();
        move |source| ArchiveError::Tar {
            entry,
            offset,
            source,
        }
    };
    let (mut last, mut offset) = (String::new(), 0u64);
    let entries = archive.entries().map_err(tar_err("", 0))?;
    for entry in entries {
        let mut entry = entry.map_err(tar_err(&format!("after {last:?}"), offset))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        offset = entry.raw_header_position();
        let rel = relative(&name).ok_or_else(|| content(format!("unsafe path {name:?}")))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        through_symlink(dest, &rel).map_err(|why| content(format!("entry {name:?}: {why}")))?;
        let path = dest.join(&rel);
        let written = match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&path),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                create_parent(&path).and_then(|()| {
                    let mut out = File::create(&path)?;
                    let n = io::copy(&mut entry, &mut out)?;
                    match n == entry.size() {
                        true => Ok(()),
                        false => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the archive ends inside this entry",
                        )),
                    }
                })
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().ok().flatten().map(|t| t.into_owned());
                let target =
                    target.ok_or_else(|| content(format!("symlink {name:?} without target")))?;
                create_parent(&path).and_then(|()| std::os::unix::fs::symlink(&target, &path))
            }
            other => return Err(content(format!("entry {name:?} of type {other:?}"))),
        };
        written.map_err(tar_err(&name, offset))?;
        last = name;
    }
    Ok(())
}

/// Refuses a path whose directories, as written so far, include a symlink (a file written
/// through it would land outside the work directory); an entry replacing a symlink removes
/// it first.
fn through_symlink(dest: &Path, rel: &Path) -> Result<(), String> {
    let mut at = dest.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            return Ok(());
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        if i + 1 < parts.len() {
            return Err(format!("path goes through the symlink {}", rel.display()));
        }
        std::fs::remove_file(&at).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) => std::fs::create_dir_all(p),
        None => Ok(()),
    }
}

/// A path of the archive as a plain relative path, or None when it would leave the root.
fn relative(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Reads the archive file `name`, which must resolve inside `root` (symlinks included).
fn read_file(root: &Path, name: &str) -> Result<Vec<u8>, ArchiveError> {
    let path = inside(root, name)?;
    std::fs::read(&path).map_err(|e| content(format!("{name}: {e}")))
}

/// The real path of `name` under `root`, refused when it is missing or leaves the root.
fn inside(root: &Path, name: &str) -> Result<PathBuf, ArchiveError> {
    let rel = relative(name).ok_or_else(|| content(format!("unsafe path {name:?}")))?;
    let real = root
        .join(rel)
        .canonicalize()
        .map_err(|_| content(format!("{name} is listed but not in the archive")))?;
    let root = root.canonicalize().map_err(|source| ArchiveError::Io {
        what: "resolve",
        path: root.to_path_buf(),
        source,
    })?;
    match real.starts_with(&root) {
        true => Ok(real),
        false => Err(content(format!("{name} points outside the archive"))),
    }
}

/// The digest a file name states (`blobs/sha256/<hex>`, `<hex>.json`), if any.
fn named_digest(name: &str) -> Option<String> {
    let base = Path::new(name).file_name()?.to_str()?;
    let base = base.strip_suffix(".json").unwrap_or(base);
    let d = format!("sha256:{base}");
    digest_hex(&d).is_some().then_some(d)
}

/// A checked image from its config file and layer files.
fn image(
    root: &Path,
    config_name: &str,
    tags: Vec<String>,
    layers: &[String],
) -> Result<LoadedImage, ArchiveError> {
    let config = read_file(root, config_name)?;
    let digest = sha256(&config);
    if let Some(named) = named_digest(config_name).filter(|n| *n != digest) {
        return Err(content(format!(
            "config {config_name} has digest {digest}, not {named}"
        )));
    }
    let parsed: ConfigBlob = serde_json::from_slice(&config)
        .map_err(|e| content(format!("config {config_name} is not an image config: {e}")))?;
    let diffs = &parsed.rootfs.diff_ids;
    if diffs.len() != layers.len() {
        return Err(content(format!(
            "config {config_name} lists {} layers, the manifest {}",
            diffs.len(),
            layers.len()
        )));
    }
    if let Some(bad) = diffs.iter().find(|d| digest_hex(d).is_none()) {
        return Err(content(format!(
            "config {config_name}: bad diff id {bad:?}"
        )));
    }
    let layers = layers
        .iter()
        .zip(diffs)
        .map(|(l, d)| Ok((inside(root, l)?, d.clone())))
        .collect::<Result<_, ArchiveError>>()?;
    for tag in &tags {
        moor_state::image::parse_reference(tag)
            .map_err(|e| content(format!("RepoTags {tag:?}: {e}")))?;
    }
    Ok(LoadedImage {
        id: digest[7..].to_string(),
        repo_tags: tags,
        parsed,
        config,
        layers,
    })
}

fn from_manifest(root: &Path) -> Result<Vec<LoadedImage>, ArchiveError> {
    let text = read_file(root, "manifest.json")?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&text).map_err(|e| content(format!("manifest.json: {e}")))?;
    entries
        .into_iter()
        .map(|e| image(root, &e.config, e.repo_tags.unwrap_or_default(), &e.layers))
        .collect()
}

fn from_index(root: &Path) -> Result<Vec<LoadedImage>, ArchiveError> {
    let blob = |d: &str| -> Result<(String, Vec<u8>), ArchiveError> {
        let hex = digest_hex(d).ok_or_else(|| content(format!("bad digest {d:?}")))?;
        let name = format!("blobs/sha256/{hex}");
        let bytes = read_file(root, &name)?;
        if sha256(&bytes) != d {
            return Err(content(format!("{name} does not match its digest")));
        }
        Ok((name, bytes))
    };
    let text = read_file(root, "index.json")?;
    let index: OciIndex =
        serde_json::from_slice(&text).map_err(|e| content(format!("index.json: {e}")))?;
    let mut out = Vec::new();
    for desc in index.manifests {
        let (name, bytes) = blob(&desc.digest)?;
        let manifest: OciManifest = serde_json::from_slice(&bytes)
            .map_err(|e| content(format!("{name} is not an OCI manifest: {e}")))?;
        let tags = desc
            .annotations
            .get("io.containerd.image.name")
            .cloned()
            .into_iter()
            .collect();
        let (config, _) = blob(&manifest.config.digest)?;
        let mut layers = Vec::new();
        for l in &manifest.layers {
            layers.push(blob_name(&l.digest)?);
        }
        out.push(image(root, &config, tags, &layers)?);
    }
    Ok(out)
}

fn blob_name(d: &str) -> Result<String, ArchiveError> {
    let hex = digest_hex(d).ok_or_else(|| content(format!("bad digest {d:?}")))?;
    Ok(format!("blobs/sha256/{hex}"))
}

/// Checks a layer file: its name's digest (when it is one) and its uncompressed sha256.
fn verify_layer(root: &Path, path: &Path, diff_id: &str) -> Result<(), ArchiveError> {
    let shown = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    let real = root.canonicalize().ok();
    let shown = real
        .and_then(|r| path.strip_prefix(r).ok().map(|p| p.display().to_string()))
        .unwrap_or(shown);
    let layer_err = |source| ArchiveError::Layer {
        path: shown.clone(),
        source,
    };
    if let Some(named) = named_digest(&shown).filter(|n| n != diff_id) {
        let raw = File::open(path).map_err(|e| content(format!("{shown}: {e}")))?;
        let got = hash_stream(raw).map_err(|e| content(format!("{shown}: {e}")))?;
        if got != named {
            return Err(content(format!("{shown} does not match its digest")));
        }
    }
    let stream = open_blob(path).map_err(layer_err)?;
    let got = hash_stream(stream).map_err(|e| content(format!("layer {shown}: {e}")))?;
    if got != diff_id {
        return Err(content(format!(
            "layer {shown} has diff id {got}, the config says {diff_id}"
        )));
    }
    Ok(())
}

/// `sha256:<hex>` of a stream.
fn hash_stream(mut r: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf)? {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().expect("tar")
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    #[test]
    fn nothing_is_written_through_a_symlink_of_the_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        let tar = archive(|b| {
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, "l", &outside).expect("link");
            let mut h = header(tar::EntryType::Regular, 4);
            b.append_data(&mut h, "l/evil", &b"evil"[..]).expect("file");
        });
        let src = dir.path().join("a.tar");
        std::fs::write(&src, tar).expect("write");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        let err = extract(&src, &work).expect_err("refused");
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(!outside.join("evil").exists());
    }

    #[test]
    fn an_archive_without_manifests_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = ImageDirs::new(dir.path());
        let tar = archive(|b| {
            let mut h = header(tar::EntryType::Regular, 2);
            b.append_data(&mut h, "x", &b"hi"[..]).expect("file");
        });
        let src = dir.path().join("a.tar");
        std::fs::write(&src, tar).expect("write");
        let err = load(&dirs, &src).err().expect("refused");
        assert!(err.is_bad_archive(), "{err:?}");
        assert!(err.to_string().contains("manifest.json"), "{err}");
        assert_eq!(std::fs::read_dir(dirs.tmp()).expect("tmp").count(), 0);
    }
}
