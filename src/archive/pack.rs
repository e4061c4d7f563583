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

/// Writes the tar of `r` into `out`: the file, or the directory and everything under it;
/// entries are named from `r.name` (the root's and `.`'s entries have no prefix).
pub fn write_tar(r: &Resolved, out: impl Write) -> io::Result<()> {
    let prefix = match r.name.as_str() {
        "/" | "." => "",
        name => name,
    };
    let mut builder = tar::Builder::new(out);
    let top = fs::symlink_metadata(&r.host)?;
    match prefix.is_empty() {
        true if top.is_dir() => children(&mut builder, &r.host, "")?,
        _ => append_tree(&mut builder, &r.host, prefix, top)?,
    }
    builder.into_inner()?.flush()
}

/// Appends `host` as `name`, then (a directory) its children.
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    host: &Path,
    name: &str,
    meta: Metadata,
) -> io::Result<()> {
    append_one(builder, host, name, &meta)?;
    if meta.is_dir() {
        children(builder, host, name)?;
    }
    Ok(())
}

/// Appends every entry of the directory `host` (named under `prefix`), sorted by name.
fn children<W: Write>(builder: &mut tar::Builder<W>, host: &Path, prefix: &str) -> io::Result<()> {
    let mut names: Vec<_> = match fs::read_dir(host) {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    names.sort();
    for child in names {
        let path = host.join(&child);
        let child = child.to_string_lossy();
        let name = match prefix {
            "" => child.into_owned(),
            p => format!("{p}/{child}"),
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) => append_tree(builder, &path, &name, meta)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One entry for `host`, named `name`.
fn append_one<W: Write>(
    builder: &mut tar::Builder<W>,
    host: &Path,
    name: &str,
    meta: &Metadata,
) -> io::Result<()> {
    let kind = meta.file_type();
    if std::os::unix::fs::FileTypeExt::is_socket(&kind) {
        return Ok(());
    }
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(meta, HeaderMode::Complete);
    if kind.is_symlink() {
        header.set_size(0);
        let target = fs::read_link(host)?;
        return builder.append_link(&mut header, name, target);
    }
    if kind.is_file() {
        let size = meta.len();
        let file = match File::open(host) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // Exactly `size` bytes even if the file changes meanwhile (a running container's).
        let data = file.take(size).chain(io::repeat(0)).take(size);
        return builder.append_data(&mut header, name, data);
    }
    if kind.is_dir() {
        header.set_entry_type(EntryType::Directory);
    }
    use std::os::unix::fs::FileTypeExt;
    if kind.is_char_device() || kind.is_block_device() {
        let (major, minor) = (
            nix::sys::stat::major(meta.rdev()),
            nix::sys::stat::minor(meta.rdev()),
        );
        header.set_device_major(u32::try_from(major).unwrap_or(0))?;
        header.set_device_minor(u32::try_from(minor).unwrap_or(0))?;
    }
    header.set_size(0);
    builder.append_data(&mut header, name, io::empty())
}

/// A `Write` that hands what is written, in chunks, to an async body (a response): the tar
/// is written on a blocking thread while the response streams. A receiver that went away
/// (the client hung up) makes the next write fail, which ends the writing.
pub struct ChannelWriter {
    /// Where chunks go.
    tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>,
    /// What is not sent yet.
    buf: Vec<u8>,
}

/// The size of the chunks sent.
const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    /// A writer sending to `tx`.
    pub fn new(tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    /// Sends an error down the body (the client sees the transfer break).
    pub fn fail(self, error: io::Error) {
        let _ = self.tx.blocking_send(Err(error));
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
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
        let mut archive = tar::Archive::new(&out[..]);
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["data", "data/sub", "data/sub/f"]);
        let link = scope::resolve_path(root, "/link").expect("resolve");
        let st = stat(root, &link).expect("stat");
        assert_eq!(st.link_target, "/data/sub");
        assert_eq!(st.name, "link");
        assert!(!super::super::go_is_dir(st.mode));
        let st = stat(root, &r).expect("stat");
        assert!(super::super::go_is_dir(st.mode));
    }
}
