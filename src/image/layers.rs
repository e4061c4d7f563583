//! Layers of pulled images on disk: `<root>/images/layers/<hex>/root/` is the unpacked tree of
//! the layer whose diff id (sha256 of the uncompressed tar) is `sha256:<hex>`, with its
//! whiteouts in overlayfs's form, and `<hex>/size` its unpacked size; it is unpacked once and
//! shared by every image that lists it. A pulled
//! image's directory `<root>/images/<id>/` holds `layers.json` (its diff ids, bottom first)
//! instead of a `rootfs/`; the container's overlay gets one lower dir per layer, top first.
//!
//! A layer is unpacked into a work directory under `images/tmp/` while its uncompressed
//! stream is hashed; only when the hash is its diff id is it renamed into place, so an
//! interrupted or corrupted pull never leaves a partial layer visible.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::unpack::{self, Compression};
use super::{ImageDirs, ImageError, TmpDir};

/// The file of a pulled image's directory that lists its layers.
pub const LAYERS_FILE: &str = "layers.json";

/// The file of an image's directory that holds its config blob as pulled, loaded or
/// committed (its sha256 is the image's id).
pub const CONFIG_FILE: &str = "config.json";

/// The hex of a `sha256:<hex>` digest, checked (64 lowercase hex digits).
pub fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

/// The layer list of the image directory `dir`, when it is a pulled image's.
pub fn dirs_layers(dir: &Path) -> Vec<String> {
    std::fs::read(dir.join(LAYERS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    /// The stream.
    inner: R,
    /// Its running sha256.
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl ImageDirs {
    /// `<root>/images/layers`.
    pub fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }

    /// The directory of the layer with diff id `diff_id` (`sha256:<hex>`).
    fn layer_home(&self, diff_id: &str) -> PathBuf {
        let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
        self.layers_dir().join(hex)
    }

    /// The unpacked tree of the layer with diff id `diff_id` (an overlay lower dir).
    pub fn layer(&self, diff_id: &str) -> PathBuf {
        self.layer_home(diff_id).join("root")
    }

    /// The unpacked size of a layer (0 when unknown).
    pub fn layer_size(&self, diff_id: &str) -> u64 {
        std::fs::read_to_string(self.layer_home(diff_id).join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether the layer is unpacked.
    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer(diff_id).is_dir()
    }

    /// The lower dirs of image `id`'s overlay, top first: its `rootfs/` for an imported
    /// tarball, one dir per layer for a pulled image.
    pub fn lowers(&self, id: &str) -> Vec<PathBuf> {
        let rootfs = self.rootfs(id);
        if rootfs.is_dir() {
            return vec![rootfs];
        }
        let layers = dirs_layers(&self.dir.join(id));
        layers.iter().rev().map(|d| self.layer(d)).collect()
    }

    /// Whether image `id` is a pulled image whose layers are all unpacked.
    pub fn layered_exists(&self, id: &str) -> bool {
        let layers = dirs_layers(&self.dir.join(id));
        !layers.is_empty() && layers.iter().all(|d| self.has_layer(d))
    }

    /// Unpacks the downloaded (and digest-checked) blob `blob` as the layer `diff_id`,
    /// no-op when it already is; refuses a blob whose uncompressed sha256 is not `diff_id`
    /// or that unpacks to more than `limit`. Returns the unpacked size.
    pub fn install_layer(&self, diff_id: &str, blob: &Path, limit: u64) -> Result<u64, ImageError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Io { what, path, source }
        };
        let Some(hex) = digest_hex(diff_id) else {
            return Err(ImageError::BadDigest {
                digest: diff_id.to_string(),
            });
        };
        if self.has_layer(diff_id) {
            return Ok(self.layer_size(diff_id));
        }
        let work = TmpDir(self.tmp().join(format!(
            "layer-{}-{:016x}",
            &hex[..12],
            rand::random::<u64>()
        )));
        let tree = work.0.join("root");
        std::fs::create_dir_all(&tree).map_err(io("create", &tree))?;
        let stream = open_blob(blob)?;
        let mut hashing = HashingReader {
            inner: stream,
            hasher: Sha256::new(),
        };
        let mut refs = Vec::new();
        let size = unpack::unpack_layer_reader(&mut hashing, &tree, limit, &mut refs)?;
        // What follows the tar's end blocks counts in the diff id too.
        io::copy(&mut hashing, &mut io::sink()).map_err(io("read past the tar's end in", blob))?;
        let got: String = hashing
            .hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != hex {
            return Err(ImageError::DiffIdMismatch {
                diff_id: diff_id.to_string(),
                got: format!("sha256:{got}"),
            });
        }
        // The split, from a second read of the blob (verified above).
        super::split::write(&work.0, open_blob(blob)?, &refs).map_err(io("split", blob))?;
        let size_file = work.0.join("size");
        std::fs::write(&size_file, size.to_string()).map_err(io("write", &size_file))?;
        let layers = self.layers_dir();
        std::fs::create_dir_all(&layers).map_err(io("create", &layers))?;
        match std::fs::rename(&work.0, self.layer_home(diff_id)) {
            Ok(()) => Ok(size),
            // Another pull of the same layer got there first.
            Err(_) if self.has_layer(diff_id) => Ok(size),
            Err(e) => Err(io("rename", &work.0)(e)),
        }
    }

    /// Records image `id` as the layers `diff_ids` (bottom first): `<id>/layers.json`, and
    /// its config blob as given (`<id>/config.json`, what a save writes back), written in a
    /// work dir and renamed into place. No-op when the image is there.
    pub fn install_layered(
        &self,
        id: &str,
        diff_ids: &[String],
        config: Option<&[u8]>,
    ) -> Result<(), ImageError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Io { what, path, source }
        };
        if self.layered_exists(id) {
            return Ok(());
        }
        let work = TmpDir(
            self.tmp()
                .join(format!("image-{:016x}", rand::random::<u64>())),
        );
        std::fs::create_dir_all(&work.0).map_err(io("create", &work.0))?;
        let list = serde_json::to_vec(diff_ids).unwrap_or_default();
        let file = work.0.join(LAYERS_FILE);
        std::fs::write(&file, list).map_err(io("write", &file))?;
        if let Some(config) = config {
            let file = work.0.join(CONFIG_FILE);
            std::fs::write(&file, config).map_err(io("write", &file))?;
        }
        let target = self.dir.join(id);
        // A directory left without its list (a crash before the record): replaced.
        if target.is_dir() {
            let aside = TmpDir(
                self.tmp()
                    .join(format!("aside-{:016x}", rand::random::<u64>())),
            );
            std::fs::rename(&target, &aside.0).map_err(io("move aside", &target))?;
        }
        match std::fs::rename(&work.0, &target) {
            Ok(()) => Ok(()),
            Err(_) if self.layered_exists(id) => Ok(()),
            Err(e) => Err(io("rename", &work.0)(e)),
        }
    }
}

impl ImageDirs {
    /// The diff ids (`sha256:<hex>`) of every layer on disk.
    pub fn layers_on_disk(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.layers_dir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(|n| format!("sha256:{n}")))
            .filter(|d| digest_hex(d).is_some())
            .collect()
    }

    /// Moves the layer `diff_id` aside into `tmp/` (a rename: the images' owner runs it when
    /// no image lists the layer any more); the returned path removes the tree when dropped,
    /// which the caller does on a blocking pool. `None` when the layer is not there.
    pub fn take_layer_aside(&self, diff_id: &str) -> Result<Option<TmpDir>, ImageError> {
        let Some(hex) = digest_hex(diff_id) else {
            return Err(ImageError::BadDigest {
                digest: diff_id.to_string(),
            });
        };
        let home = self.layer_home(diff_id);
        let tmp = self.tmp();
        std::fs::create_dir_all(&tmp).map_err(|source| ImageError::Io {
            what: "create",
            path: tmp.clone(),
            source,
        })?;
        let aside = TmpDir(tmp.join(format!(
            "gone-{}-{:016x}",
            &hex[..12],
            rand::random::<u64>()
        )));
        match std::fs::rename(&home, &aside.0) {
            Ok(()) => Ok(Some(aside)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ImageError::Io {
                what: "move aside",
                path: home,
                source,
            }),
        }
    }
}

/// The blob's uncompressed stream (plain, gzip or zstd by its magic bytes).
pub fn open_blob(blob: &Path) -> Result<Box<dyn Read>, ImageError> {
    let io = |what| {
        let path = blob.to_path_buf();
        move |source| ImageError::Io { what, path, source }
    };
    let mut file = File::open(blob).map_err(io("open"))?;
    let mut head = [0u8; 4];
    let n = read_head(&mut file, &mut head).map_err(io("read"))?;
    let file = File::open(blob).map_err(io("open"))?;
    Ok(match unpack::detect(&head[..n]) {
        Compression::None => Box::new(BufReader::new(file)),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(BufReader::new(file))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file).map_err(io("zstd"))?),
    })
}

fn read_head(file: &mut File, head: &mut [u8; 4]) -> io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileTypeExt;

    fn layer_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in [
            ("etc/.wh.gone", &b""[..]),
            ("opq/.wh..wh..opq", b""),
            ("opq/new", b"new"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1);
            h.set_uid(0);
            h.set_gid(0);
            b.append_data(&mut h, path, data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn sha(data: &[u8]) -> String {
        let hex: String = Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    }

    #[test]
    fn a_layer_unpacks_once_with_overlay_whiteouts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = ImageDirs::new(dir.path());
        let tar = layer_tar();
        let blob = dir.path().join("blob");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        std::fs::write(&blob, gz.finish().expect("gzip")).expect("write");
        let diff_id = sha(&tar);
        dirs.install_layer(&diff_id, &blob, 1 << 20)
            .expect("install");
        let root = dirs.layer(&diff_id);
        let gone = std::fs::symlink_metadata(root.join("etc/gone")).expect("whiteout");
        assert!(gone.file_type().is_char_device());
        assert!(!root.join("etc/.wh.gone").exists());
        let opaque = xattr::get(root.join("opq"), "trusted.overlay.opaque").expect("xattr");
        assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
        assert_eq!(std::fs::read(root.join("opq/new")).expect("new"), b"new");
        dirs.install_layered(&"ab".repeat(32), std::slice::from_ref(&diff_id), None)
            .expect("image");
        assert_eq!(dirs.lowers(&"ab".repeat(32)), vec![root]);
        assert!(dirs.exists(&"ab".repeat(32)));
        assert_eq!(dirs.layers_on_disk(), vec![diff_id.clone()]);
        let aside = dirs.take_layer_aside(&diff_id).expect("aside");
        assert!(aside.is_some() && !dirs.has_layer(&diff_id));
        drop(aside);
        assert!(dirs.layers_on_disk().is_empty());
        assert_eq!(std::fs::read_dir(dirs.tmp()).expect("tmp").count(), 0);
        assert!(dirs.take_layer_aside(&diff_id).expect("gone").is_none());
    }

    #[test]
    fn a_wrong_diff_id_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = ImageDirs::new(dir.path());
        let blob = dir.path().join("blob");
        std::fs::write(&blob, layer_tar()).expect("write");
        let wrong = sha(b"something else");
        let err = dirs
            .install_layer(&wrong, &blob, 1 << 20)
            .expect_err("mismatch");
        assert!(err.to_string().contains(&wrong), "{err}");
        assert!(!dirs.has_layer(&wrong));
        assert_eq!(std::fs::read_dir(dirs.tmp()).expect("tmp").count(), 0);
    }
}
