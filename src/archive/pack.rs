//! A container path's stat (Docker's `X-Docker-Container-Path-Stat`) and its tar, as moby
//! sends them for `GET /containers/{id}/archive` and `GET /containers/{id}/export`: entries
//! named from the last element of the path asked for (`name`, `name/child`...), owners,
//! modes, mtimes, symlinks and device nodes kept; sockets skipped (tar has no such entry);
//! files that vanish while a running container is read are skipped too.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use tar::{EntryType, Header, HeaderMode};

use super::scope::{self, Resolved};
use super::{go_mode, PathStat};

/// The stat of a resolved path: the element itself (a symlink's own), with a symlink's
/// target resolved inside `root` (moby's `StatPath`).
pub fn stat(root: &Path, r: &Resolved) -> io::Result<PathStat> {
    let meta = fs::symlink_metadata(&r.host)?;
    let link_target = match meta.file_type().is_symlink() {
        true => format!("/{}", scope::resolve(root, Path::new(&r.abs))?.display()),
        false => String::new(),
    };
    let mtime: DateTime<Utc> = meta.modified().map(DateTime::from).unwrap_or_default();
    Ok(PathStat {
        name: r.name.clone(),
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        mode: go_mode(meta.mode()),
        mtime: mtime.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        link_target,
    })
}

/// Writes the tar of `r` into `out`: the file, or the directory and everything under it.
/// Entries are named as moby names them: from `r.name` (`name`, `name/child`), `./child`
/// for a path ending in `/.`, `/child` for the root (the docker CLI rebases those), and
/// without a prefix or a top entry when `r.name` is empty (`docker export`).
pub fn write_tar(r: &Resolved, out: impl Write) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    let top = fs::symlink_metadata(&r.host)?;
    match r.name.as_str() {
        "" => children(&mut builder, &r.host, "")?,
        name => append_tree(&mut builder, &r.host, name, top)?,
    }
    builder.into_inner()?.flush()
}

/// `prefix` and `child` as one entry name.
fn joined(prefix: &str, child: &str) -> String {
    match prefix {
        "" => child.to_string(),
        p if p.ends_with('/') => format!("{p}{child}"),
        p => format!("{p}/{child}"),
    }
}

/// Appends `host` as `name`, then (a directory) its children.
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    host: &Path,
    name: &str,
    meta: Metadata,
) -> io::Result<()> {
    append_one(builder, host, name, &meta)?;
    if meta.is_dir() && !is_kernel_fs(host) {
        children(builder, host, name)?;
    }
    Ok(())
}

/// Whether `dir` is the kernel's view of itself (proc, sysfs, cgroup, devpts, mqueue...)
/// rather than files: a running container's `/proc` is copied as an empty directory, as
/// Docker copies it (its files change as they are read, some never end).
fn is_kernel_fs(dir: &Path) -> bool {
    use nix::sys::statfs::*;
    /// mqueue's magic (nix names none).
    const MQUEUE_MAGIC: FsType = FsType(0x1980_0202);
    let Ok(fs) = statfs(dir) else {
        return false;
    };
    let kind = fs.filesystem_type();
    [
        PROC_SUPER_MAGIC,
        SYSFS_MAGIC,
        CGROUP_SUPER_MAGIC,
        CGROUP2_SUPER_MAGIC,
        DEVPTS_SUPER_MAGIC,
        SECURITYFS_MAGIC,
        DEBUGFS_MAGIC,
        TRACEFS_MAGIC,
        MQUEUE_MAGIC,
    ]
    .contains(&kind)
}

/// Appends every entry of the directory `host` (named under `prefix`), sorted by name;
/// entries that vanish meanwhile (a running container's) are skipped.
fn children<W: Write>(builder: &mut tar::Builder<W>, host: &Path, prefix: &str) -> io::Result<()> {
    let mut names: Vec<_> = match fs::read_dir(host) {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    names.sort();
    for child in names {
        let path = host.join(&child);
        let name = joined(prefix, &child.to_string_lossy());
        match fs::symlink_metadata(&path) {
            Ok(meta) => append_tree(builder, &path, &name, meta)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One entry for `host`, named `name` (a directory's with a trailing `/`).
fn append_one<W: Write>(
    builder: &mut tar::Builder<W>,
    host: &Path,
    name: &str,
    meta: &Metadata,
) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_socket() {
        return Ok(());
    }
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(meta, HeaderMode::Complete);
    header.set_size(0);
    if kind.is_symlink() {
        let target = match fs::read_link(host) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let target = target.to_string_lossy().into_owned();
        long_name(builder, EntryType::GNULongLink, &target)?;
        raw_field(&mut header.as_old_mut().linkname, &target);
        return append_named(builder, header, name, io::empty());
    }
    if kind.is_file() {
        let size = meta.len();
        let file = match File::open(host) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        header.set_size(size);
        // Exactly `size` bytes even if the file changes meanwhile (a running container's).
        let data = file.take(size).chain(io::repeat(0)).take(size);
        return append_named(builder, header, name, data);
    }
    if kind.is_char_device() || kind.is_block_device() {
        let (major, minor) = (
            nix::sys::stat::major(meta.rdev()),
            nix::sys::stat::minor(meta.rdev()),
        );
        header.set_device_major(u32::try_from(major).unwrap_or(0))?;
        header.set_device_minor(u32::try_from(minor).unwrap_or(0))?;
    }
    if kind.is_dir() {
        header.set_entry_type(EntryType::Directory);
        if !name.ends_with('/') {
            return append_named(builder, header, &format!("{name}/"), io::empty());
        }
    }
    append_named(builder, header, name, io::empty())
}

/// Copies `text` into a header field, cut at the field's length (a longer one went in a
/// GNU long-name entry before).
fn raw_field(field: &mut [u8], text: &str) {
    let n = text.len().min(field.len());
    field.fill(0);
    field[..n].copy_from_slice(&text.as_bytes()[..n]);
}

/// A GNU long-name (`L`) or long-link (`K`) entry for a text longer than a header field.
fn long_name<W: Write>(
    builder: &mut tar::Builder<W>,
    kind: EntryType,
    text: &str,
) -> io::Result<()> {
    if text.len() < 100 {
        return Ok(());
    }
    let mut h = Header::new_gnu();
    raw_field(&mut h.as_old_mut().name, "././@LongLink");
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(kind);
    h.set_size(text.len() as u64 + 1);
    h.set_cksum();
    builder.append(&h, text.as_bytes().chain(&[0u8][..]))
}

/// Appends `header` under `name` written as it is: moby's names (`./x`, `/x`) are kept,
/// which the `tar` crate's own path setter would normalise away.
fn append_named<W: Write>(
    builder: &mut tar::Builder<W>,
    mut header: Header,
    name: &str,
    data: impl Read,
) -> io::Result<()> {
    long_name(builder, EntryType::GNULongName, name)?;
    raw_field(&mut header.as_old_mut().name, name);
    header.set_cksum();
    builder.append(&header, data)
}

/// A `Write` that hands what is written, in chunks, to an async body (a response): the tar
/// is written on a blocking thread (in a tokio runtime's blocking pool) while the response
/// streams. A receiver that went away (the client hung up) makes the next write fail, and
/// so does one that takes nothing for `stall`: a stopped container's actor waits for the
/// copy, so a client that stops reading must not hold it for ever.
pub struct ChannelWriter {
    /// Where chunks go.
    tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>,
    /// What is not sent yet.
    buf: Vec<u8>,
    /// How long a chunk may wait for the client.
    stall: std::time::Duration,
    /// The runtime whose timer bounds the wait.
    runtime: tokio::runtime::Handle,
}

/// The size of the chunks sent.
const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    /// A writer sending to `tx`, called from a blocking thread of a tokio runtime.
    pub fn new(
        tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>,
        stall: std::time::Duration,
    ) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            stall,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Sends an error down the body if there is room (the client sees the transfer break).
    pub fn fail(self, error: io::Error) {
        let _ = self.tx.try_send(Err(error));
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let sent = tokio::time::timeout(self.stall, self.tx.send(Ok(chunk)));
        match self.runtime.block_on(sent) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {:?}", self.stall),
            )),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(tar: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        let entries = archive.entries().expect("entries");
        entries
            .map(|e| String::from_utf8_lossy(&e.expect("entry").path_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn a_client_that_stops_reading_ends_the_copy() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let stall = std::time::Duration::from_millis(200);
        let written = runtime.block_on(async move {
            tokio::task::spawn_blocking(move || {
                let mut out = ChannelWriter::new(tx, stall);
                // The first chunk fills the channel; the second waits for a reader.
                (0..3).try_for_each(|_| out.write_all(&[0u8; CHUNK]))
            })
            .await
            .expect("writer")
        });
        let err = written.expect_err("a stalled client ends the copy");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        drop(rx);
    }

    #[test]
    fn a_directory_is_named_from_the_path_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("data/sub")).expect("mkdir");
        std::fs::write(root.join("data/sub/f"), b"hello").expect("write");
        std::os::unix::fs::symlink("/data/sub", root.join("link")).expect("link");
        let r = scope::resolve_path(root, "/data").expect("resolve");
        let mut out = Vec::new();
        write_tar(&r, &mut out).expect("tar");
        assert_eq!(names_in(&out), ["data/", "data/sub/", "data/sub/f"]);
        let names_of = |path: &str, name: &str| {
            let mut r = scope::resolve_path(root, path).expect("resolve");
            r.name = name.into();
            let mut out = Vec::new();
            write_tar(&r, &mut out).expect("tar");
            names_in(&out)
        };
        // moby's names for `/.` and the root (the docker CLI rebases them), and export's.
        assert_eq!(names_of("/data/sub/.", "."), ["./", "./f"]);
        assert_eq!(names_of("/data/sub/", "/"), ["/", "/f"]);
        assert_eq!(names_of("/data/sub/", ""), ["f"]);
        let long = "n".repeat(150);
        std::fs::write(root.join("data/sub").join(&long), b"x").expect("write");
        std::os::unix::fs::symlink(&long, root.join("data/sub/l")).expect("link");
        let mut out = Vec::new();
        write_tar(&r, &mut out).expect("tar");
        let mut archive = tar::Archive::new(&out[..]);
        let entries: Vec<(String, Option<String>)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let link = e
                    .link_name()
                    .expect("link")
                    .map(|l| l.display().to_string());
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), link)
            })
            .collect();
        assert!(
            entries.contains(&(format!("data/sub/{long}"), None)),
            "{entries:?}"
        );
        assert!(
            entries.contains(&("data/sub/l".into(), Some(long))),
            "{entries:?}"
        );
        let link = scope::resolve_path(root, "/link").expect("resolve");
        let st = stat(root, &link).expect("stat");
        assert_eq!(st.link_target, "/data/sub");
        assert_eq!(st.name, "link");
        assert!(!super::super::go_is_dir(st.mode));
        let st = stat(root, &r).expect("stat");
        assert!(super::super::go_is_dir(st.mode));
    }
}
