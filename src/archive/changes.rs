//! `docker diff`: a container's changes read from its overlay's upper dir against the
//! image's layers (lower dirs, top first), in moby's `Change` shape (`Kind` 0 modified,
//! 1 added, 2 deleted), sorted by path.
//!
//! - a whiteout (a 0/0 character device) is a deleted path;
//! - anything else in the upper dir is modified when a lower dir has it, else added; a
//!   directory is there only because something under it changed, so it shows modified as
//!   in Docker (`C /etc` above `A /etc/new`);
//! - an opaque directory (`trusted.overlay.opaque=y`: removed and made again) hides what the
//!   lower dirs have under it: those paths are deleted, unless the upper dir has them again
//!   (modified), and what it has that they do not is added.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ArchiveError;

/// One change, as moby's `GET /containers/{id}/changes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    /// The path in the container.
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    pub kind: u8,
}

/// Docker's kinds.
pub const MODIFIED: u8 = 0;
/// Added.
pub const ADDED: u8 = 1;
/// Deleted.
pub const DELETED: u8 = 2;

/// Whether `meta` is an overlay whiteout.
fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory `path` is opaque.
fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, "trusted.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

/// Whether the image (its `lowers`, top first) has `rel`: the topmost layer that has it or
/// a whiteout for it, or an opaque directory above it, decides.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    for lower in lowers {
        match fs::symlink_metadata(lower.join(rel)) {
            Ok(meta) => return !is_whiteout(&meta),
            Err(_) => {
                let mut ancestor = rel.parent();
                while let Some(a) = ancestor.filter(|a| !a.as_os_str().is_empty()) {
                    if is_opaque(&lower.join(a)) {
                        return false;
                    }
                    ancestor = a.parent();
                }
            }
        }
    }
    false
}

/// The names the image shows in its directory `rel` (a union of the layers').
fn lower_names(lowers: &[PathBuf], rel: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = Vec::new();
    for lower in lowers {
        if let Ok(dir) = fs::read_dir(lower.join(rel)) {
            names.extend(dir.filter_map(|e| e.ok()).map(|e| rel.join(e.file_name())));
        }
    }
    names.sort();
    names.dedup();
    names.retain(|n| in_lowers(lowers, n));
    names
}

/// The changes in `upper` against `lowers`; an upper dir not made yet has none.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, ArchiveError> {
    let mut out = BTreeMap::new();
    if upper.is_dir() {
        walk(upper, Path::new(""), lowers, false, &mut out)?;
    }
    Ok(out
        .into_iter()
        .map(|(path, kind)| Change {
            path: format!("/{}", path.display()),
            kind,
        })
        .collect())
}

/// Records the changes under the upper directory `rel`; `hidden`: an opaque directory above
/// hides the image's files here.
fn walk(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    hidden: bool,
    out: &mut BTreeMap<PathBuf, u8>,
) -> Result<(), ArchiveError> {
    let dir = upper.join(rel);
    let entries = fs::read_dir(&dir).map_err(ArchiveError::io("read", &dir))?;
    for entry in entries {
        let entry = entry.map_err(ArchiveError::io("read", &dir))?;
        let path = rel.join(entry.file_name());
        let meta = match fs::symlink_metadata(upper.join(&path)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ArchiveError::io("stat", upper.join(&path))(e)),
        };
        let in_image = !hidden && in_lowers(lowers, &path);
        if is_whiteout(&meta) {
            if in_image {
                out.insert(path, DELETED);
            }
            continue;
        }
        out.insert(path.clone(), if in_image { MODIFIED } else { ADDED });
        if meta.is_dir() {
            let opaque = is_opaque(&upper.join(&path));
            if opaque && in_image {
                for gone in lower_names(lowers, &path) {
                    out.entry(gone).or_insert(DELETED);
                }
            }
            walk(upper, &path, lowers, hidden || opaque, out)?;
            if opaque && in_image {
                // What the opaque directory has again is modified, not added.
                for name in lower_names(lowers, &path) {
                    if let Some(kind) = out.get_mut(&name) {
                        if *kind == ADDED {
                            *kind = MODIFIED;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};

    fn kinds(list: &[Change]) -> Vec<(String, u8)> {
        list.iter().map(|c| (c.path.clone(), c.kind)).collect()
    }

    #[test]
    fn added_modified_deleted_and_opaque() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
        for d in ["etc", "var/lib", "opt/old"] {
            fs::create_dir_all(lower.join(d)).expect("mkdir");
        }
        fs::write(lower.join("etc/passwd"), b"root").expect("write");
        fs::write(lower.join("etc/gone"), b"x").expect("write");
        fs::write(lower.join("opt/keep"), b"x").expect("write");
        for d in ["etc", "new", "opt"] {
            fs::create_dir_all(upper.join(d)).expect("mkdir");
        }
        fs::write(upper.join("etc/passwd"), b"root2").expect("write");
        fs::write(upper.join("new/file"), b"x").expect("write");
        fs::write(upper.join("opt/keep"), b"y").expect("write");
        mknod(
            &upper.join("etc/gone"),
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(0, 0),
        )
        .expect("whiteout");
        let got = changes(&upper, std::slice::from_ref(&lower)).expect("changes");
        assert_eq!(
            kinds(&got),
            [
                ("/etc".into(), MODIFIED),
                ("/etc/gone".into(), DELETED),
                ("/etc/passwd".into(), MODIFIED),
                ("/new".into(), ADDED),
                ("/new/file".into(), ADDED),
                ("/opt".into(), MODIFIED),
                ("/opt/keep".into(), MODIFIED),
            ]
        );
        // `rm -rf /opt; mkdir /opt; echo > /opt/keep`: an opaque /opt.
        xattr::set(upper.join("opt"), "trusted.overlay.opaque", b"y").expect("opaque");
        let got = changes(&upper, &[lower]).expect("changes");
        let opt: Vec<_> = kinds(&got)
            .into_iter()
            .filter(|(p, _)| p.starts_with("/opt"))
            .collect();
        assert_eq!(
            opt,
            [
                ("/opt".into(), MODIFIED),
                ("/opt/keep".into(), MODIFIED),
                ("/opt/old".into(), DELETED),
            ]
        );
        assert!(changes(&dir.path().join("none"), &[])
            .expect("none")
            .is_empty());
    }
}
