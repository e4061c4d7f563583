//! Imported images on disk: `<root>/images/<sha256 hex>/rootfs`, unpacked once, content
//! addressed by the sha256 of the tarball as given. An import is unpacked into a work
//! directory of its own under `<root>/images/tmp/` (so concurrent imports of one tarball never
//! share one) and renamed into place, so a crash never leaves a half image under its id. What
//! a crash, a kill or an aborted upload leaves in `tmp/` is swept at the next daemon start
//! ([`ImageDirs::sweep_tmp`]); a failed import removes its own files at once. The name -> id mapping lives in the store (`moor_state::image`). An import
//! with `changes` has a config too, and its id covers it ([`image_id`]).

pub mod archive;
pub mod changes;
pub mod commit;
pub mod download;
pub mod endpoint;
pub mod flight;
pub mod healthcheck;
pub mod history;
pub mod layers;
pub mod load;
pub mod login;
pub mod meta;
pub mod platform;
pub mod push;
pub mod registry;
pub mod split;
pub mod stream;
pub mod unpack;
pub mod usage;
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
    /// The archive itself is unreadable: where reading stopped, after which entry, and what
    /// the tar reader said (printable: a garbled header's bytes are escaped, not printed).
    #[error("invalid tar archive: {}, at byte {offset}: {reason}", after.as_deref().map_or("in its first entry".to_string(), |e| format!("after entry {e:?}")))]
    Tar {
        /// The byte of the archive (uncompressed) where reading stopped.
        offset: u64,
        /// The last entry read whole, if any.
        after: Option<String>,
        /// What the tar reader said, escaped and cut to 120 characters.
        reason: String,
    },
    /// An entry that would write outside the image root.
    #[error("refusing tar entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The archive unpacks to more than the configured cap (`image-unpack-limit`).
    #[error(
        "image unpacks to more than {limit} bytes, the limit set by daemon.json \
         image-unpack-limit (entry {entry:?} goes past it)"
    )]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
        /// The first entry that went past it.
        entry: String,
    },
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error("unsupported or malformed digest {digest:?}")]
    BadDigest {
        /// The digest as given.
        digest: String,
    },
    /// A layer's uncompressed content is not what the image config says (its diff id).
    #[error("layer content does not match its diff id {diff_id} (got {got})")]
    DiffIdMismatch {
        /// The diff id the config lists.
        diff_id: String,
        /// The sha256 of what was unpacked.
        got: String,
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
            ImageError::Tar { .. }
                | ImageError::UnsafeEntry { .. }
                | ImageError::TooLarge { .. }
                | ImageError::DiffIdMismatch { .. }
                | ImageError::BadDigest { .. }
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

    /// Whether the image `id` is unpacked: an imported rootfs, or a pulled image whose
    /// layers are all there.
    pub fn exists(&self, id: &str) -> bool {
        self.rootfs(id).is_dir() || self.layered_exists(id)
    }

    /// A fresh, unique work directory name under `tmp/` for one import of `id`.
    fn work_dir(&self, id: &str) -> PathBuf {
        let short = &id[..id.len().min(12)];
        self.tmp()
            .join(format!("unpack-{short}-{:016x}", rand::random::<u64>()))
    }

    /// Unpacks `tar` as image `id` (no-op when it already is), refusing an archive that
    /// unpacks to more than `limit` bytes; returns the unpacked size. [`ImageDirs::unpack`]
    /// then [`ImageDirs::commit`], in one go.
    pub fn install(&self, id: &str, tar: &Path, limit: u64) -> Result<u64, ImageError> {
        let unpacked = self.unpack(id, tar, limit)?;
        self.commit(id, &unpacked)?;
        Ok(unpacked.size)
    }

    /// Unpacks `tar` into a work directory of its own under `tmp/` (the slow part of an
    /// import, run on a blocking pool), refusing an archive that unpacks to more than `limit`
    /// bytes. Nothing is visible under the image's id until [`ImageDirs::commit`].
    pub fn unpack(&self, id: &str, tar: &Path, limit: u64) -> Result<Unpacked, ImageError> {
        let (work, rootfs) = self.new_work(id)?;
        let size = unpack::unpack(tar, &rootfs, limit)?;
        Ok(Unpacked { work, size })
    }

    /// A new work directory for an import of `id` and the `rootfs/` made in it.
    fn new_work(&self, id: &str) -> Result<(TmpDir, PathBuf), ImageError> {
        let work = TmpDir(self.work_dir(id));
        let rootfs = work.0.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(|source| ImageError::Io {
            what: "create",
            path: rootfs.clone(),
            source,
        })?;
        Ok((work, rootfs))
    }

    /// Moves an unpacked import into place as image `id` (renames only: the images' owner
    /// runs it, in order with removals). No-op when the image is there already (the
    /// caller drops `unpacked`, a whole tree then, off its thread); a directory of `id`
    /// without a rootfs (a metadata file only) is moved aside first.
    pub fn commit(&self, id: &str, unpacked: &Unpacked) -> Result<(), ImageError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| ImageError::Io { what, path, source }
        };
        let work = &unpacked.work;
        let target = self.dir.join(id);
        if self.exists(id) {
            return Ok(());
        }
        match std::fs::rename(&work.0, &target) {
            Ok(()) => Ok(()),
            // Another import of the same id got there first.
            Err(_) if self.exists(id) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                // Moved aside into tmp/ (removed there), then this image takes its place.
                let aside = TmpDir(self.work_dir(id));
                std::fs::rename(&target, &aside.0).map_err(io("move aside", &target))?;
                match std::fs::rename(&work.0, &target) {
                    Err(_) if self.exists(id) => Ok(()),
                    other => other.map_err(io("rename", &work.0)),
                }
            }
            Err(e) => Err(io("rename", &work.0)(e)),
        }
    }

    /// Moves image `id`'s directory aside into `tmp/` (a rename: the images' owner runs it
    /// when it deletes the image); the returned path removes the tree when dropped, which
    /// the caller does on a blocking pool. `None` when the image has no directory.
    pub fn take_aside(&self, id: &str) -> Result<Option<TmpDir>, ImageError> {
        let path = self.dir.join(id);
        let aside = TmpDir(self.work_dir(id));
        if let Some(parent) = aside.0.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ImageError::Io {
                what: "create",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        match std::fs::rename(&path, &aside.0) {
            Ok(()) => Ok(Some(aside)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ImageError::Io {
                what: "move aside",
                path,
                source,
            }),
        }
    }

    /// Removes everything under `tmp/`: what imports interrupted by a crash, a kill or a
    /// full disk left. Called at daemon start, under the root's lock (no import runs).
    /// Returns how many entries were removed.
    pub fn sweep_tmp(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.tmp()) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let gone = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove import leftover")
                }
            }
        }
        removed
    }
}

/// A path under `images/tmp/` removed (file or tree) when the value is dropped: an import's
/// upload or work directory, on every way out (error, cancelled request, success).
#[derive(Debug)]
pub struct TmpDir(pub PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let gone = match std::fs::symlink_metadata(&self.0) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&self.0),
            Ok(_) => std::fs::remove_file(&self.0),
            Err(_) => Ok(()),
        };
        if let Err(e) = gone {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot remove import leftover");
        }
    }
}

/// An import unpacked into its work directory under `tmp/`, not yet in place: removed
/// when dropped uncommitted.
#[derive(Debug)]
pub struct Unpacked {
    /// The work directory (holds `rootfs/`).
    work: TmpDir,
    /// The unpacked size, in bytes.
    pub size: u64,
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

    /// Empties the file and the digest: a download that starts again from zero.
    pub fn restart(&mut self) -> Result<(), ImageError> {
        use std::io::Seek;
        let io = |source| ImageError::Io {
            what: "truncate",
            path: self.path.clone(),
            source,
        };
        self.file.set_len(0).map_err(io)?;
        self.file.rewind().map_err(io)?;
        self.hasher = Sha256::new();
        Ok(())
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
        let err = dirs.install("abc", &tar, 1 << 30).expect_err("garbage");
        assert!(err.is_bad_archive(), "{err:?}");
        assert!(!dirs.exists("abc"));
        assert_eq!(std::fs::read_dir(dirs.tmp()).expect("tmp").count(), 0);
    }
}
