//! `moor cp SRC DEST` (one side `CONTAINER:PATH`, the other a local path or `-` for a tar
//! on stdin or stdout), `moor export` and `moor diff`, as the docker CLI does them over
//! `/containers/{id}/archive`, `/export` and `/changes`.
//!
//! Copying in: the destination is stat'ed (`HEAD`); an existing directory receives the
//! source under its own name, otherwise the source is sent under the destination's name
//! into its parent. Copying out: the tar's entries start with the source's name; into an
//! existing local directory they keep it, otherwise the first element becomes the
//! destination's name. The upload is built in memory (the client sends whole bodies).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;
use serde_json::Value;

use super::container_path;
use crate::cli::client::{encode, BodyStream, Client};

/// Docker's header carrying the stat of a container path.
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// `moor cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode: files copied in get the container user's uid and gid (`copyUIDGID`).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Source: CONTAINER:PATH, a local path, or `-` (a tar on stdin).
    pub src: String,
    /// Destination: CONTAINER:PATH, a local path, or `-` (the tar on stdout).
    pub dest: String,
}

/// `moor export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// The container.
    pub container: String,
}

/// `moor diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The container.
    pub container: String,
}

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
enum Side {
    /// A path of a container.
    Container(String, String),
    /// A local path (`-`: stdin or stdout).
    Local(String),
}

/// Docker's rule: `NAME:PATH` is a container path unless the argument is absolute or its
/// part before the colon starts with `.` (a local `./a:b`).
fn side(arg: &str) -> Side {
    match arg.split_once(':') {
        Some((name, path))
            if !arg.starts_with('/') && !name.starts_with('.') && !name.is_empty() =>
        {
            Side::Container(name.to_string(), path.to_string())
        }
        _ => Side::Local(arg.to_string()),
    }
}

/// `moor cp`.
pub fn execute(client: &Client, args: &CpArgs) -> anyhow::Result<i32> {
    match (side(&args.src), side(&args.dest)) {
        (Side::Container(name, path), Side::Local(dest)) => copy_out(client, &name, &path, &dest),
        (Side::Local(src), Side::Container(name, path)) => {
            copy_in(client, &src, &name, &path, args.archive)
        }
        (Side::Container(..), Side::Container(..)) => {
            bail!("copying between containers is not supported")
        }
        (Side::Local(_), Side::Local(_)) => {
            bail!("must specify at least one container source")
        }
    }?;
    Ok(0)
}

/// An answer body as a `Read`.
struct BodyReader<'c> {
    /// The body.
    stream: BodyStream<'c>,
    /// What is left of the last chunk.
    chunk: Vec<u8>,
    /// Where in it.
    at: usize,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.stream.next_chunk().map_err(std::io::Error::other)? {
                Some(chunk) => (self.chunk, self.at) = (chunk.to_vec(), 0),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The decoded `X-Docker-Container-Path-Stat`.
fn decode_stat(value: Option<String>) -> anyhow::Result<Value> {
    let value = value.context("the daemon sent no path stat")?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .context("decode the path stat")?;
    serde_json::from_slice(&json).context("decode the path stat")
}

/// Go's directory bit in a stat's mode.
fn is_dir(stat: &Value) -> bool {
    stat["mode"].as_u64().unwrap_or(0) & (1 << 31) != 0
}

fn copy_out(client: &Client, name: &str, path: &str, dest: &str) -> anyhow::Result<()> {
    let query = format!("/archive?path={}", encode(path));
    let (stream, stat) =
        client.get_stream_with_header(&container_path(name, &query), STAT_HEADER)?;
    let mut body = BodyReader {
        stream,
        chunk: Vec::new(),
        at: 0,
    };
    if dest == "-" {
        std::io::copy(&mut body, &mut std::io::stdout().lock())
            .context("write the tar to stdout")?;
        return Ok(());
    }
    let stat = decode_stat(stat)?;
    let src_name = stat["name"].as_str().unwrap_or_default().to_string();
    let dest = Path::new(dest);
    let (dir, rename) = match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => (dest.to_path_buf(), None),
        Ok(_) if is_dir(&stat) => bail!("cannot copy a directory to a file: {}", dest.display()),
        _ => {
            let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new(".")).to_path_buf();
            if !parent.is_dir() {
                bail!("destination directory {} does not exist", parent.display());
            }
            let new_name = dest.file_name().context("a destination with a name")?;
            (parent, Some(new_name.to_string_lossy().into_owned()))
        }
    };
    let mut archive = tar::Archive::new(body);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    for entry in archive.entries().context("read the tar")? {
        let mut entry = entry.context("read the tar")?;
        let entry_path = entry.path().context("an entry's path")?.into_owned();
        let target = match &rename {
            Some(new_name) => renamed(&entry_path, &src_name, new_name),
            None => entry_path,
        };
        let full = checked_target(&dir, &target)?;
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        if std::fs::symlink_metadata(&full).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(&full).with_context(|| format!("replace {}", full.display()))?;
        }
        entry
            .unpack(&full)
            .with_context(|| format!("write {}", full.display()))?;
    }
    Ok(())
}

/// Where an entry goes under `dir`: refused when it would leave it (`..`, an absolute
/// path, a symlink on the way).
fn checked_target(dir: &Path, target: &Path) -> anyhow::Result<PathBuf> {
    use std::path::Component;
    let mut full = dir.to_path_buf();
    let parts: Vec<_> = target.components().collect();
    for (i, c) in parts.iter().enumerate() {
        match c {
            Component::Normal(p) => full.push(p),
            // moby names a root's entries `/x`: they go under `dir` all the same.
            Component::CurDir | Component::RootDir => continue,
            _ => bail!(
                "refusing the entry {}: it leaves the destination",
                target.display()
            ),
        }
        let last = i + 1 == parts.len();
        if !last && std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "refusing the entry {}: it goes through a symlink",
                target.display()
            );
        }
    }
    Ok(full)
}

/// `path` with its first element `from` replaced by `to` (the rebase of a copy out).
fn renamed(path: &Path, from: &str, to: &str) -> PathBuf {
    let mut parts = path.components();
    match parts.next() {
        Some(first) if first.as_os_str() == from => Path::new(to).join(parts.as_path()),
        _ => path.to_path_buf(),
    }
}

fn copy_in(client: &Client, src: &str, name: &str, path: &str, owners: bool) -> anyhow::Result<()> {
    let mut query = String::from("&noOverwriteDirNonDir=true");
    if owners {
        query.push_str("&copyUIDGID=true");
    }
    let put = |dir: &str, body: Vec<u8>| -> anyhow::Result<()> {
        let url = format!("/archive?path={}{query}", encode(dir));
        Ok(client.put_bytes(&container_path(name, &url), body.into())?)
    };
    if src == "-" {
        let mut tar = Vec::new();
        std::io::stdin()
            .read_to_end(&mut tar)
            .context("read the tar on stdin")?;
        return put(path, tar);
    }
    let local = Path::new(src);
    let meta = std::fs::symlink_metadata(local).with_context(|| format!("stat {src}"))?;
    let mut path = path.to_string();
    let mut dest_stat = dest_stat_of(client, name, &path)?;
    // A destination that is a symlink is followed (inside the container), as docker cp does.
    let link = dest_stat.as_ref().and_then(|st| {
        let is_link = st["mode"].as_u64().unwrap_or(0) & (1 << 27) != 0;
        st["linkTarget"]
            .as_str()
            .filter(|t| is_link && !t.is_empty())
            .map(String::from)
    });
    if let Some(target) = link {
        dest_stat = dest_stat_of(client, name, &target)?;
        path = target;
    }
    let path = path.as_str();
    let (dir, entry_name) = match dest_stat {
        Some(stat) if is_dir(&stat) => {
            let base = match src.ends_with("/.") {
                true => ".".to_string(),
                false => base_name(src)?,
            };
            (path.to_string(), base)
        }
        Some(_) if meta.is_dir() => bail!("cannot copy a directory to a file: {name}:{path}"),
        _ => {
            let trimmed = path.trim_end_matches('/');
            let (parent, base) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
            let parent = if parent.is_empty() { "/" } else { parent };
            (parent.to_string(), base.to_string())
        }
    };
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    match meta.is_dir() {
        true => builder.append_dir_all(&entry_name, local),
        false => builder.append_path_with_name(local, &entry_name),
    }
    .with_context(|| format!("archive {src}"))?;
    let tar = builder.into_inner().context("finish the tar")?;
    put(&dir, tar)
}

/// The stat of a container path (`HEAD`), None when it is not there.
fn dest_stat_of(client: &Client, name: &str, path: &str) -> anyhow::Result<Option<Value>> {
    let stat_path = container_path(name, &format!("/archive?path={}", encode(path)));
    match client.head_header(&stat_path, STAT_HEADER) {
        Ok(value) => Ok(Some(decode_stat(value)?)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The last element of a local path.
fn base_name(src: &str) -> anyhow::Result<String> {
    let path = Path::new(src.trim_end_matches('/'));
    let name = match path.file_name() {
        Some(n) => n.to_owned(),
        None => std::fs::canonicalize(path)?
            .file_name()
            .context("a source with a name")?
            .to_owned(),
    };
    Ok(name.to_string_lossy().into_owned())
}

/// `moor export`.
pub fn export(client: &Client, args: &ExportArgs) -> anyhow::Result<i32> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let stream = client.get_stream(&container_path(&args.container, "/export"))?;
    let mut body = BodyReader {
        stream,
        chunk: Vec::new(),
        at: 0,
    };
    match &args.output {
        Some(file) => {
            let mut out = std::fs::File::create(file)
                .with_context(|| format!("create {}", file.display()))?;
            std::io::copy(&mut body, &mut out).context("write the export")?;
            out.flush()?;
        }
        None => {
            std::io::copy(&mut body, &mut std::io::stdout().lock()).context("write the export")?;
        }
    }
    Ok(0)
}

/// `moor diff`: `C /path`, `A /path`, `D /path` lines.
pub fn diff(client: &Client, args: &DiffArgs) -> anyhow::Result<i32> {
    let changes: Value = client.get(&container_path(&args.container, "/changes"))?;
    for change in changes.as_array().into_iter().flatten() {
        let kind = match change["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            other => bail!("unknown change kind {other:?}"),
        };
        println!("{kind} {}", change["Path"].as_str().unwrap_or_default());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_are_told_apart_as_docker_does() {
        assert_eq!(
            side("box:/etc"),
            Side::Container("box".into(), "/etc".into())
        );
        assert_eq!(side("/tmp/a:b"), Side::Local("/tmp/a:b".into()));
        assert_eq!(side("./a:b"), Side::Local("./a:b".into()));
        assert_eq!(side("-"), Side::Local("-".into()));
        assert_eq!(
            renamed(Path::new("dir/sub/f"), "dir", "new"),
            Path::new("new/sub/f")
        );
    }
}
