//! Imported images on disk: `<root>/images/<sha256 hex>/rootfs`, unpacked once, content
//! addressed by the sha256 of the tarball as given. An import is unpacked into
//! `<root>/images/tmp/` and renamed into place, so a crash never leaves a half image
//! under its id. The name -> id mapping lives in the store (`moor_state::image`). An import
//! with `changes` has a config too, and its id covers it ([`image_id`]).

pub mod changes;
pub mod meta;
pub mod unpack;
pub mod user;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use moor_state::image::ImageConfig;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// An image's id: the tarball's sha256 for a plain import (as before images had a config),
/// else the sha256 of that and the config, so one tarball imported with other changes is
/// another image, as in Docker.
pub fn image_id(tar_sha256: &str, config: &ImageConfig) -> String {
    if config.is_empty() {
        return tar_sha256.to_string();
    }
    // A struct of strings serializes.
    let json = serde_json::to_vec(config).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(tar_sha256.as_bytes());
    hasher.update(b"\n");
    hasher.update(&json);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why an image could not be imported or removed.
#[derive(Debug, Error)]
pub enum ImageError {
    /// A file operation failed.
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
    /// The archive itself is unreadable.
    #[error("invalid tar archive")]
    Tar {
        /// What the tar reader said.
        #[source]
        source: io::Error,
    },
    /// An entry that would write outside the image root.
    #[error("refusing tar entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An entry could not be written.
    #[error("unpack tar entry {entry:?}")]
    Entry {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    /// Whether the archive is at fault (a client error), not the host.
    pub fn is_bad_archive(&self) -> bool {
        matches!(
            self,
            ImageError::Tar { .. } | ImageError::UnsafeEntry { .. }
        )
    }
}

/// Where images are kept.
#[derive(Debug, Clone)]
pub struct ImageDirs {
    /// `<root>/images`.
    pub dir: PathBuf,
}

impl ImageDirs {
    /// The images directory under a state root.
    pub fn new(root: &Path) -> Self {
        ImageDirs {
            dir: root.join("images"),
        }
    }

    /// An image's unpacked root filesystem (the overlay's lower dir).
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("rootfs")
    }

    /// Where uploads and unfinished unpacks go.
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Whether the image `id` is unpacked.
    pub fn exists(&self, id: &str) -> bool {
        self.rootfs(id).is_dir()
    }

    /// Unpacks `tar` as image `id` (no-op when it already is); returns the unpacked size.
    pub fn install(&self, id: &str, tar: &Path) -> Result<u64, ImageError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Io { what, path, source }
        };
        let work = self.tmp().join(format!("{id}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let rootfs = work.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(io("create", &rootfs))?;
        let size = match unpack::unpack(tar, &rootfs) {
            Ok(size) => size,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&work);
                return Err(e);
            }
        };
        let target = self.dir.join(id);
        if self.exists(id) {
            let _ = std::fs::remove_dir_all(&work);
            return Ok(size);
        }
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&work, &target).map_err(io("rename", &work))?;
        Ok(size)
    }

    /// Deletes an image's files.
    pub fn remove(&self, id: &str) -> Result<(), ImageError> {
        let path = self.dir.join(id);
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ImageError::Io {
                what: "remove",
                path,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Writes what it is given to a file and hashes it on the way: an upload's sha256.
pub struct HashingFile {
    /// The file being written.
    file: File,
    /// The running digest.
    hasher: Sha256,
    /// Where the file is, for errors.
    path: PathBuf,
}

impl HashingFile {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, ImageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ImageError::Io {
                what: "create",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let file = File::create(path).map_err(|source| ImageError::Io {
            what: "create",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(HashingFile {
            file,
            hasher: Sha256::new(),
            path: path.to_path_buf(),
        })
    }

    /// Appends a chunk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ImageError> {
        self.hasher.update(chunk);
        self.file.write_all(chunk).map_err(|source| ImageError::Io {
            what: "write",
            path: self.path.clone(),
            source,
        })
    }

    /// Closes the file; returns the sha256 as 64 lowercase hex digits.
    pub fn finish(self) -> String {
        let digest = self.hasher.finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_of_abc() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = HashingFile::create(&dir.path().join("x/up")).expect("create");
        f.write(b"ab").expect("write");
        f.write(b"c").expect("write");
        assert_eq!(
            f.finish(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_config_is_part_of_the_id() {
        let tar = "ab".repeat(32);
        assert_eq!(image_id(&tar, &ImageConfig::default()), tar);
        let cmd = |c: &str| ImageConfig {
            cmd: Some(vec![c.to_string()]),
            ..ImageConfig::default()
        };
        let (a, b) = (image_id(&tar, &cmd("a")), image_id(&tar, &cmd("b")));
        assert_ne!(a, tar);
        assert_ne!(a, b);
        assert_eq!(a, image_id(&tar, &cmd("a")));
        assert!(a.len() == 64 && a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_refused_import_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = ImageDirs::new(dir.path());
        let tar = dir.path().join("bad.tar");
        std::fs::write(&tar, vec![0xffu8; 1024]).expect("write");
        let err = dirs.install("abc", &tar).expect_err("garbage");
        assert!(err.is_bad_archive(), "{err:?}");
        assert!(!dirs.exists("abc"));
        assert_eq!(std::fs::read_dir(dirs.tmp()).expect("tmp").count(), 0);
    }
}
