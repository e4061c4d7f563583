//! `PUT /containers/{id}/archive`: a tar extracted into a directory of the container.
//!
//! The upload is first kept whole in a file and [`check`]ed from end to end (every header's
//! checksum, every entry's data present, names relative and without `..`, entry types a
//! container file can be): a corrupt or refused archive is a 400 naming the entry and the
//! byte offset, and nothing of it was written. [`extract`] then writes each entry with its
//! directory resolved inside the container's root (symlinks followed there, never out of
//! it: an entry under a link to `/etc/../../` lands in the container's `/`), the entry's own
//! name never followed; what is there is replaced as moby replaces it (a directory stays
//! when the entry is a directory). Owners are the archive's (moby's default), or with
//! `copyUIDGID` the container's user's.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::scope;
use super::ArchiveError;
use crate::image::unpack::{detect, Compression};

/// What a `PUT` asks of the extraction.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// `noOverwriteDirNonDir`: refuse to replace a directory with a non-directory or the
    /// other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID` with a container user: every entry is owned by it (uid, gid).
    pub owner: Option<(u32, u32)>,
}

/// The archive at `src` as a tar stream (plain, gzip or zstd, told by its first bytes).
fn open(src: &Path) -> Result<Box<dyn Read>, ArchiveError> {
    let mut head = [0u8; 4];
    let mut file = File::open(src).map_err(ArchiveError::io("open", src))?;
    let n = file
        .read(&mut head)
        .map_err(ArchiveError::io("read", src))?;
    let file = File::open(src).map_err(ArchiveError::io("open", src))?;
    Ok(match detect(&head[..n]) {
        Compression::None => Box::new(BufReader::new(file)),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(BufReader::new(file))),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(ArchiveError::io("zstd", src))?)
        }
    })
}

/// An entry's name as a plain relative path (empty for `.`), or why it is refused.
fn relative(name: &str) -> Result<PathBuf, ArchiveError> {
    let refuse = |reason: &str| ArchiveError::UnsafeEntry {
        entry: name.into(),
        reason: reason.into(),
    };
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("its path contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(refuse("absolute path")),
        }
    }
    Ok(out)
}

/// The entry types written; `None` for one skipped (a PAX global header).
fn supported(kind: EntryType) -> Option<bool> {
    match kind {
        EntryType::Regular
        | EntryType::Continuous
        | EntryType::GNUSparse
        | EntryType::Directory
        | EntryType::Symlink
        | EntryType::Link
        | EntryType::Char
        | EntryType::Block
        | EntryType::Fifo => Some(true),
        EntryType::XGlobalHeader => None,
        _ => Some(false),
    }
}

/// Reads the whole archive without writing anything: the number of entries, or the first
/// problem with the entry and the byte offset where it is.
pub fn check(src: &Path) -> Result<u64, ArchiveError> {
    let mut archive = tar::Archive::new(open(src)?);
    let bad = |offset: u64, entry: Option<&String>, e: io::Error| ArchiveError::BadTar {
        offset,
        entry: entry.cloned(),
        reason: e.to_string(),
    };
    let (mut next, mut last, mut count) = (0u64, None::<String>, 0u64);
    for entry in archive.entries().map_err(|e| bad(0, None, e))? {
        let mut entry = entry.map_err(|e| bad(next, last.as_ref(), e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let data_at = entry.raw_file_position();
        let kind = entry.header().entry_type();
        match supported(kind) {
            Some(true) => {}
            Some(false) => {
                return Err(ArchiveError::UnsafeEntry {
                    entry: name,
                    reason: format!(
                        "tar entry type {:?} is not supported",
                        kind.as_byte() as char
                    ),
                })
            }
            None => {}
        }
        relative(&name)?;
        let header = entry.header();
        let numbers = [
            header.uid(),
            header.gid(),
            header.mtime(),
            header.mode().map(u64::from),
        ];
        if let Some(Err(e)) = numbers.into_iter().find(Result::is_err) {
            let header_at = entry.raw_header_position();
            return Err(bad(header_at, Some(&name), e));
        }
        if kind == EntryType::Link {
            let target = entry.link_name_bytes().unwrap_or_default();
            relative(&String::from_utf8_lossy(&target)).map_err(|_| ArchiveError::UnsafeEntry {
                entry: name.clone(),
                reason: "a hard link may only name a path of the archive".into(),
            })?;
        }
        let size = entry.size();
        let copied =
            io::copy(&mut entry, &mut io::sink()).map_err(|e| bad(data_at, Some(&name), e))?;
        if copied != size {
            return Err(ArchiveError::BadTar {
                offset: data_at + copied,
                entry: Some(name),
                reason: format!("the archive ends inside the entry ({copied} of {size} bytes)"),
            });
        }
        let stored = entry.header().entry_size().unwrap_or(0);
        next = data_at + stored.div_ceil(512) * 512;
        last = Some(name);
        count += 1;
    }
    Ok(count)
}

/// Extracts the (already [`check`]ed) archive at `src` into the container directory
/// `dest` (relative to `root`, resolved in scope by the caller).
pub fn extract(
    root: &Path,
    dest: &Path,
    src: &Path,
    opts: &ExtractOptions,
) -> Result<(), ArchiveError> {
    let mut archive = tar::Archive::new(open(src)?);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    let bad = |e: io::Error| ArchiveError::BadTar {
        offset: 0,
        entry: None,
        reason: e.to_string(),
    };
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let rel = relative(&name)?;
        let (Some(file_name), Some(true)) = (rel.file_name(), supported(kind)) else {
            continue;
        };
        let write = |what| {
            let path = PathBuf::from(format!("/{}", dest.join(&rel).display()));
            ArchiveError::io(what, path)
        };
        let parent = scope::resolve(root, &dest.join(rel.parent().unwrap_or(Path::new(""))))
            .map_err(write("resolve"))?;
        fs::create_dir_all(root.join(&parent)).map_err(write("create the directory of"))?;
        let target = root.join(&parent).join(file_name);
        make_room(
            &target,
            kind == EntryType::Directory,
            opts,
            &parent.join(file_name),
        )?;
        match kind {
            EntryType::Link => {
                let to = relative(&String::from_utf8_lossy(
                    &entry.link_name_bytes().unwrap_or_default(),
                ))?;
                let to = scope::resolve(root, &dest.join(to)).map_err(write("link"))?;
                fs::hard_link(root.join(to), &target).map_err(write("link"))?;
            }
            _ => {
                entry.unpack(&target).map_err(write("write"))?;
            }
        }
        if let Some((uid, gid)) = opts.owner {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).map_err(write("chown"))?;
        }
    }
    Ok(())
}

/// Removes what is at `target` unless both it and the entry are directories; with
/// `noOverwriteDirNonDir`, a directory and a non-directory meeting is refused.
fn make_room(
    target: &Path,
    entry_is_dir: bool,
    opts: &ExtractOptions,
    in_container: &Path,
) -> Result<(), ArchiveError> {
    let Ok(meta) = fs::symlink_metadata(target) else {
        return Ok(());
    };
    let is_dir = meta.is_dir();
    if opts.no_overwrite_dir_non_dir && is_dir != entry_is_dir {
        let what = |dir| if dir { "directory" } else { "non-directory" };
        return Err(ArchiveError::DirNonDir {
            path: format!("/{}", in_container.display()),
            existing: what(is_dir),
            entry: what(entry_is_dir),
        });
    }
    let removed = match (is_dir, entry_is_dir) {
        (true, true) => return Ok(()),
        (true, false) => fs::remove_dir_all(target),
        (false, _) => fs::remove_file(target),
    };
    removed.map_err(ArchiveError::io("replace", target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().expect("finish tar")
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, path, data).expect("append");
    }

    fn write(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("upload.tar");
        fs::write(&path, bytes).expect("write upload");
        path
    }

    #[test]
    fn a_corrupt_archive_names_entry_and_offset_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = tar_of(|b| {
            file(b, "one", &[1u8; 600]);
            file(b, "two", b"2");
        });
        // The second header starts after 512 (header) + 1024 (data): break its checksum.
        bytes[1536 + 10] ^= 0xff;
        let err = check(&write(dir.path(), &bytes)).expect_err("corrupt");
        assert_eq!(
            err.to_string(),
            "invalid tar archive at byte 1536 (entry \"one\"): archive header checksum mismatch"
        );
        let cut = tar_of(|b| file(b, "big", &[7u8; 5000]));
        let err = check(&write(dir.path(), &cut[..2048])).expect_err("truncated");
        assert!(
            err.to_string().contains("at byte 2048 (entry \"big\")"),
            "{err}"
        );
    }

    #[test]
    fn entries_land_inside_the_root_through_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::os::unix::fs::symlink("/etc/../../../", root.join("up")).expect("link");
        let bytes = tar_of(|b| file(b, "up/evil", b"x"));
        let src = write(dir.path(), &bytes);
        assert_eq!(check(&src).expect("valid"), 1);
        extract(&root, Path::new(""), &src, &ExtractOptions::default()).expect("extract");
        assert!(root.join("evil").exists());
        assert!(!dir.path().join("evil").exists());
        let bad = tar_of(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_entry_type(EntryType::Regular);
            h.as_old_mut().name[..9].copy_from_slice(b"../escape");
            h.set_cksum();
            b.append(&h, &b"x"[..]).expect("append");
        });
        let err = check(&write(dir.path(), &bad)).expect_err("refused");
        assert!(err.to_string().contains("../escape"), "{err}");
        // A header whose uid is not a number: refused before anything is written.
        let no_uid = tar_of(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            h.set_mtime(1);
            h.set_entry_type(EntryType::Regular);
            b.append_data(&mut h, "x", &b""[..]).expect("append");
        });
        let err = check(&write(dir.path(), &no_uid)).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("invalid tar archive at byte 0 (entry \"x\"): numeric field"),
            "{err}"
        );
    }

    #[test]
    fn dir_non_dir_is_refused_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("d")).expect("mkdir");
        let src = write(dir.path(), &tar_of(|b| file(b, "d", b"x")));
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            owner: None,
        };
        let err = extract(&root, Path::new(""), &src, &opts).expect_err("refused");
        assert!(matches!(err, ArchiveError::DirNonDir { .. }), "{err}");
        extract(&root, Path::new(""), &src, &ExtractOptions::default()).expect("replaced");
        assert_eq!(fs::read(root.join("d")).expect("file"), b"x");
    }
}
