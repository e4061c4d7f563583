//! Safe unpacking of a rootfs tarball (plain, gzip or zstd, told apart by magic bytes).
//!
//! Every entry is checked before anything is written for it: no absolute path, no `..`,
//! no path that walks through a symlink already unpacked (the classic `link -> /etc` then
//! `link/passwd` escape), no relative symlink whose target climbs above the image root,
//! no hard link outside it. Absolute symlink targets are kept: they resolve inside the
//! container's root at run time. Owners, modes, mtimes and device nodes are kept (as root).
//!
//! Every format the `tar` crate reads is accepted: ustar, GNU (long names, sparse files) and
//! PAX; regular files, directories, symlinks, hard links, FIFOs and device nodes. The sum of
//! the entries' unpacked sizes is capped (daemon.json `image-unpack-limit`): the entry that
//! would go past the cap is refused before a byte of it is written, so a decompression bomb
//! costs at most the cap in disk.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chown, Gid, Uid};
use tar::EntryType;

use super::ImageError;

/// The compressions an import accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

/// Tells the compression from the first bytes of the file.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Unpacks the tarball at `src` into the directory `dest` (which must exist); returns the
/// sum of the entries' sizes, refusing an archive whose sum goes past `limit`.
pub fn unpack(src: &Path, dest: &Path, limit: u64) -> Result<u64, ImageError> {
    let io = |what| {
        let path = src.to_path_buf();
        move |source| ImageError::Io { what, path, source }
    };
    let mut file = File::open(src).map_err(io("open"))?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head).map_err(io("read"))?;
    file.seek(SeekFrom::Start(0)).map_err(io("seek"))?;
    let reader: Box<dyn Read> = match detect(&head[..n]) {
        Compression::None => Box::new(BufReader::new(file)),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(BufReader::new(file))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file).map_err(io("zstd"))?),
    };
    unpack_reader(reader, dest, limit)
}

/// Unpacks a tar stream (plain, gzip or zstd: detected from its first bytes) into `dest`,
/// as [`unpack`] does a file.
pub fn unpack_stream(mut reader: impl Read, dest: &Path, limit: u64) -> Result<u64, ImageError> {
    let mut head = Vec::with_capacity(4);
    while head.len() < 4 {
        let mut byte = [0u8; 4];
        let n = reader
            .read(&mut byte[..4 - head.len()])
            .map_err(|e| bad_archive(0, None, &e))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&byte[..n]);
    }
    let whole = io::Cursor::new(head.clone()).chain(reader);
    let zstd_error = |source| ImageError::Io {
        what: "zstd",
        path: dest.to_path_buf(),
        source,
    };
    let decoded: Box<dyn Read> = match detect(&head) {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole).map_err(zstd_error)?),
    };
    unpack_reader(decoded, dest, limit)
}

/// Unpacks a tar stream into `dest`; see the module header for the checks and the cap.
pub fn unpack_reader(reader: impl Read, dest: &Path, limit: u64) -> Result<u64, ImageError> {
    unpack_entries(reader, dest, limit, false, None)
}

/// Unpacks one layer of a registry image into `dest` (a directory of its own): as
/// [`unpack_reader`], with the OCI whiteouts turned into what overlayfs expects of a lower
/// dir: `DIR/.wh.NAME` becomes a 0/0 character device `DIR/NAME`, and `DIR/.wh..wh..opq`
/// the `trusted.overlay.opaque=y` xattr on `DIR`. Each regular file's place in the stream
/// goes into `refs` (for [`super::split`]).
pub fn unpack_layer_reader(
    reader: impl Read,
    dest: &Path,
    limit: u64,
    refs: &mut Vec<FileRef>,
) -> Result<u64, ImageError> {
    unpack_entries(reader, dest, limit, true, Some(refs))
}

/// Where a regular file's content sits in a layer's tar stream, and where it was unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// Offset of the content in the uncompressed stream.
    pub offset: u64,
    /// Bytes of content.
    pub size: u64,
    /// The path unpacked, relative to the layer's root.
    pub path: PathBuf,
}

/// A reader that counts what it has read (where a corrupt archive stopped).
struct Counting<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// The error of an archive that stopped reading at `offset`, after entry `after`: the tar
/// reader's message with control and non-ASCII characters escaped (a garbled header's bytes
/// would otherwise reach the terminal), cut to 120 characters.
fn bad_archive(offset: u64, after: Option<String>, e: &io::Error) -> ImageError {
    let mut reason: String = e.to_string().escape_default().collect();
    if reason.len() > 120 {
        // ASCII after the escape: any index is a character boundary.
        reason.truncate(117);
        reason.push_str("...");
    }
    ImageError::Tar {
        offset,
        after,
        reason,
    }
}

/// The OCI name of an opaque-directory marker.
const OPAQUE: &str = ".wh..wh..opq";
/// The OCI prefix of a whiteout.
const WHITEOUT: &str = ".wh.";

/// Writes the overlayfs form of the whiteout `rel` (a path ending in `.wh.NAME` or the
/// opaque marker) under `dest`; false when `rel` is no whiteout.
fn whiteout(dest: &Path, rel: &Path) -> io::Result<bool> {
    let Some(name) = rel.file_name().and_then(|n| n.to_str()) else {
        return Ok(false);
    };
    let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
    if name == OPAQUE {
        std::fs::create_dir_all(&parent)?;
        xattr::set(&parent, "trusted.overlay.opaque", b"y")?;
        return Ok(true);
    }
    let Some(hidden) = name.strip_prefix(WHITEOUT) else {
        return Ok(false);
    };
    if hidden.is_empty() || hidden == "." || hidden == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "whiteout without a name",
        ));
    }
    std::fs::create_dir_all(&parent)?;
    let path = parent.join(hidden);
    if let Ok(m) = std::fs::symlink_metadata(&path) {
        if m.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))?;
    Ok(true)
}

fn unpack_entries(
    reader: impl Read,
    dest: &Path,
    limit: u64,
    whiteouts: bool,
    mut refs: Option<&mut Vec<FileRef>>,
) -> Result<u64, ImageError> {
    let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut archive = tar::Archive::new(Counting {
        inner: reader,
        read: read.clone(),
    });
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let mut last: Option<String> = None;
    let bad_tar = |last: &Option<String>| {
        let (read, after) = (read.clone(), last.clone());
        move |e: io::Error| bad_archive(read.get(), after, &e)
    };
    let mut size = 0u64;
    for entry in archive.entries().map_err(bad_tar(&last))? {
        let mut entry = entry.map_err(bad_tar(&last))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        last = Some(raw.clone());
        let unsafe_entry = |reason: String| ImageError::UnsafeEntry {
            entry: raw.clone(),
            reason,
        };
        let rel = checked_relative(Path::new(&raw)).map_err(unsafe_entry)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        no_symlink_on_the_way(dest, &rel).map_err(unsafe_entry)?;
        if whiteouts {
            let done = whiteout(dest, &rel).map_err(|source| ImageError::Entry {
                entry: raw.clone(),
                source,
            })?;
            if done {
                continue;
            }
        }
        let kind = entry.header().entry_type();
        if let Some(target) = entry.link_name().map_err(bad_tar(&last))? {
            let target = target.into_owned();
            match kind {
                EntryType::Symlink => symlink_stays_inside(&rel, &target),
                _ => checked_relative(&target)
                    .and_then(|t| no_symlink_on_the_way(dest, &t).map(|()| t))
                    .map(drop)
                    .map_err(|r| format!("hard link target {}: {r}", target.display())),
            }
            .map_err(unsafe_entry)?;
        }
        // The unpacked size (a sparse file's real size, a PAX size), checked before writing.
        size = size.saturating_add(entry.size());
        if size > limit {
            return Err(ImageError::TooLarge { limit, entry: raw });
        }
        let plain = matches!(kind, EntryType::Regular | EntryType::Continuous)
            && entry.header().entry_size().ok() == Some(entry.size());
        if let Some(refs) = refs.as_deref_mut().filter(|_| plain && entry.size() > 0) {
            refs.push(FileRef {
                offset: entry.raw_file_position(),
                size: entry.size(),
                path: rel.clone(),
            });
        }
        let written = match kind {
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                make_node(&entry, &dest.join(&rel))
            }
            _ => entry.unpack_in(dest).map(|done| {
                if !done {
                    tracing::warn!(entry = %raw, "tar entry skipped");
                }
            }),
        };
        written.map_err(|source| ImageError::Entry {
            entry: raw.clone(),
            source,
        })?;
    }
    Ok(size)
}

/// The entry's path as a plain relative path, or why it is refused.
fn checked_relative(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
        }
    }
    Ok(out)
}

/// Refuses a path whose parent directories, as unpacked so far, include a symlink.
fn no_symlink_on_the_way(dest: &Path, rel: &Path) -> Result<(), String> {
    let mut at = dest.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for c in parents.iter().take(parents.len().saturating_sub(1)) {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "path goes through the symlink {}",
                    at.strip_prefix(dest).unwrap_or(&at).display()
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A relative symlink target may not climb above the image root from where the link is.
fn symlink_stays_inside(link: &Path, target: &Path) -> Result<(), String> {
    if target.is_absolute() {
        return Ok(());
    }
    let mut depth = link.components().count().saturating_sub(1) as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(format!(
                "symlink target {} escapes the image root",
                target.display()
            ));
        }
    }
    Ok(())
}

/// Creates a device node or fifo with the entry's mode, device numbers and owner.
fn make_node<R: Read>(entry: &tar::Entry<'_, R>, path: &Path) -> io::Result<()> {
    let header = entry.header();
    let kind = match header.entry_type() {
        EntryType::Char => SFlag::S_IFCHR,
        EntryType::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    let mode = Mode::from_bits_truncate(header.mode()? & 0o7777);
    // GNU tar leaves the device fields of a FIFO empty (not a number): only devices have them.
    let (major, minor) = match kind {
        SFlag::S_IFIFO => (0, 0),
        _ => (
            u64::from(header.device_major()?.unwrap_or(0)),
            u64::from(header.device_minor()?.unwrap_or(0)),
        ),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(path);
    mknod(path, kind, mode, makedev(major, minor))?;
    let uid = u32::try_from(header.uid()?).unwrap_or(0);
    let gid = u32::try_from(header.gid()?).unwrap_or(0);
    chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().expect("finish tar")
    }

    fn header() -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = header();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        // set_path refuses `..`: write the raw name, as a malicious tar would.
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).expect("append");
    }

    fn symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = header();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, path, target).expect("append link");
    }

    #[test]
    fn compression_by_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(detect(b"bin/"), Compression::None);
    }

    #[test]
    fn a_garbled_header_names_the_entry_before_it_and_the_offset_not_its_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tar = tar_with(|b| {
            file(b, "first", b"hello");
            file(b, "second", b"world");
        });
        // The second header (after 512 + 512 bytes): garbage with control bytes in its
        // checksum and size fields.
        tar[1024 + 124..1024 + 156].copy_from_slice(&[0x1b; 32]);
        let err = unpack_reader(&tar[..], dir.path(), 1 << 20).expect_err("refused");
        let text = crate::host::chain(&err);
        assert!(text.contains("after entry \"first\""), "{text}");
        assert!(text.contains("at byte 1536"), "{text}");
        assert!(!text.contains('\u{1b}'), "raw bytes printed: {text:?}");
        let empty = tar_with(|_| {});
        let mut bad = empty.clone();
        bad[..8].copy_from_slice(b"\x01\x02garble");
        bad[148..156].copy_from_slice(b"zzzzzzzz");
        let err = unpack_reader(&bad[..], dir.path(), 1 << 20).expect_err("refused");
        assert!(err.to_string().contains("in its first entry"), "{err}");
    }

    #[test]
    fn dot_dot_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("a/b");
        std::fs::create_dir_all(&dest).expect("mkdir");
        let tar = tar_with(|b| file(b, "../../evil", b"x"));
        let err = unpack_reader(&tar[..], &dest, 1 << 20).expect_err("refused");
        assert!(err.to_string().contains("../../evil"), "{err}");
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&dest).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        let tar = tar_with(|b| {
            symlink(b, "link", outside.to_str().expect("utf-8"));
            file(b, "link/evil", b"x");
        });
        let err = unpack_reader(&tar[..], &dest, 1 << 20).expect_err("refused");
        assert!(err.to_string().contains("link/evil"), "{err}");
        assert!(!outside.join("evil").exists());
        let tar = tar_with(|b| symlink(b, "a/up", "../../etc"));
        let err = unpack_reader(&tar[..], &dest, 1 << 20).expect_err("refused");
        assert!(err.to_string().contains("escapes"), "{err}");
    }

    #[test]
    fn a_plain_tree_unpacks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tar = tar_with(|b| {
            file(b, "bin/tool", b"hello");
            symlink(b, "bin/sh", "/bin/tool");
            symlink(b, "usr/bin/x", "../../bin/tool");
        });
        let size = unpack_reader(&tar[..], dir.path(), 1 << 20).expect("unpack");
        assert_eq!(size, 5);
        assert_eq!(
            std::fs::read_link(dir.path().join("bin/sh")).expect("link"),
            PathBuf::from("/bin/tool")
        );
    }

    #[test]
    fn a_gnu_fifo_without_device_numbers_unpacks() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Header::new_gnu leaves dev_major/dev_minor all NUL, as GNU tar does for a FIFO.
        let tar = tar_with(|b| {
            let mut h = header();
            h.set_entry_type(EntryType::Fifo);
            h.set_size(0);
            h.set_mode(0o600);
            b.append_data(&mut h, "run/pipe", &[][..])
                .expect("append fifo");
        });
        unpack_reader(&tar[..], dir.path(), 1 << 20).expect("unpack");
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::symlink_metadata(dir.path().join("run/pipe")).expect("fifo");
        assert!(meta.file_type().is_fifo());
    }

    #[test]
    fn the_cap_refuses_before_writing_the_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tar = tar_with(|b| {
            file(b, "a", &[1u8; 600]);
            file(b, "b", &[2u8; 600]);
        });
        let err = unpack_reader(&tar[..], dir.path(), 1000).expect_err("over the cap");
        assert!(err.is_bad_archive(), "{err:?}");
        assert!(err.to_string().contains("1000 bytes"), "{err}");
        assert!(dir.path().join("a").exists());
        assert!(
            !dir.path().join("b").exists(),
            "the entry past the cap is not written"
        );
        assert_eq!(
            unpack_reader(&tar[..], dir.path(), 1200).expect("at the cap"),
            1200
        );
    }
}
