//! A layer's tar, byte for byte, without keeping it: what Docker calls tar-split. When a
//! layer is unpacked, everything of its uncompressed stream but the content of its regular
//! files (headers, PAX and long-name records, padding, end blocks) is kept gzipped in
//! `layers/<hex>/split.raw.gz`, and `split.json` lists, in stream order, how many raw bytes
//! come before each file and which unpacked file (path, size) follows them. Re-creating the
//! tar ([`ImageDirs::layer_tar`]) reads the raw bytes and the files in that order, so a saved
//! layer has its original diff id and a saved image its original config and id. A layer
//! unpacked before this existed, or whose tar names one file twice (the first copy is not on
//! disk), has no split: it is packed anew from its tree.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::unpack::FileRef;
use super::ImageDirs;

/// The list of a layer's split.
const SPLIT_FILE: &str = "split.json";
/// Its raw bytes, gzipped.
const RAW_FILE: &str = "split.raw.gz";

/// One file of the stream.
#[derive(Debug, Serialize, Deserialize)]
struct Segment {
    /// Raw bytes before it (since the previous file's content).
    raw: u64,
    /// The file, relative to the layer's root.
    path: PathBuf,
    /// Its size.
    size: u64,
}

/// Writes the split of the uncompressed tar `stream` into `dir` (a layer's work directory),
/// given the files `refs` its unpack recorded. No split (Ok) when a path comes twice.
pub fn write(dir: &Path, mut stream: impl Read, refs: &[FileRef]) -> io::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    if !refs.iter().all(|r| seen.insert(&r.path)) {
        return Ok(());
    }
    let raw = File::create(dir.join(RAW_FILE))?;
    let mut gz = flate2::write::GzEncoder::new(BufWriter::new(raw), flate2::Compression::fast());
    let mut segments = Vec::with_capacity(refs.len());
    let mut pos = 0u64;
    for r in refs {
        let before = r
            .offset
            .checked_sub(pos)
            .ok_or_else(|| bad("file offsets go back"))?;
        copy_exact(&mut stream, &mut gz, before)?;
        copy_exact(&mut stream, &mut io::sink(), r.size)?;
        pos = r.offset + r.size;
        segments.push(Segment {
            raw: before,
            path: r.path.clone(),
            size: r.size,
        });
    }
    io::copy(&mut stream, &mut gz)?;
    gz.finish()?.flush()?;
    let list = serde_json::to_vec(&segments).map_err(io::Error::other)?;
    std::fs::write(dir.join(SPLIT_FILE), list)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Copies exactly `n` bytes, or fails naming the shortfall.
fn copy_exact(from: &mut impl Read, to: &mut impl Write, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut from.take(n), to)?;
    if copied != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{copied} of {n} bytes"),
        ));
    }
    Ok(())
}

impl ImageDirs {
    /// Writes the layer `diff_id`'s original tar to `out` from its split and its tree;
    /// false (nothing written) when it has no split. The caller checks the digest.
    pub fn layer_tar(&self, diff_id: &str, out: &mut impl Write) -> io::Result<bool> {
        let home = self.layer(diff_id);
        let Some(home) = home.parent() else {
            return Ok(false);
        };
        let segments: Vec<Segment> = match std::fs::read(home.join(SPLIT_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let raw = File::open(home.join(RAW_FILE))?;
        let mut raw = flate2::read::GzDecoder::new(BufReader::new(raw));
        let tree = self.layer(diff_id);
        for s in &segments {
            copy_exact(&mut raw, out, s.raw)?;
            let mut file = File::open(tree.join(&s.path))?;
            copy_exact(&mut file, out, s.size)?;
        }
        io::copy(&mut raw, out)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::unpack::unpack_layer_reader;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_mtime(12345);
            h.set_uid(0);
            h.set_gid(0);
            b.append_data(&mut h, path, *data).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn a_layer_tar_comes_back_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let long = format!("{}/file", "d".repeat(150));
        let tar = tar_of(&[
            ("a", b"hello"),
            ("etc/.wh.gone", b""),
            (&long, &[7u8; 1000]),
            ("b", b"x"),
        ]);
        let tree = dir.path().join("root");
        std::fs::create_dir_all(&tree).expect("mkdir");
        let mut refs = Vec::new();
        unpack_layer_reader(&tar[..], &tree, 1 << 20, &mut refs).expect("unpack");
        assert_eq!(refs.len(), 3, "{refs:?}");
        write(dir.path(), &tar[..], &refs).expect("split");
        let dirs = ImageDirs::new(dir.path());
        // layer(diff) is <images>/layers/<hex>/root: put the split there.
        let diff = format!("sha256:{}", "0".repeat(64));
        let home = dirs.layer(&diff);
        std::fs::create_dir_all(home.parent().expect("home")).expect("mkdir");
        std::fs::rename(&tree, &home).expect("tree");
        for f in [SPLIT_FILE, RAW_FILE] {
            std::fs::rename(dir.path().join(f), home.parent().expect("home").join(f))
                .expect("move");
        }
        let mut out = Vec::new();
        assert!(dirs.layer_tar(&diff, &mut out).expect("regenerate"));
        assert_eq!(out, tar);
    }

    #[test]
    fn a_path_twice_gets_no_split() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tar = tar_of(&[("a", b"one"), ("a", b"two")]);
        let mut refs = Vec::new();
        unpack_layer_reader(&tar[..], dir.path(), 1 << 20, &mut refs).expect("unpack");
        write(dir.path(), &tar[..], &refs).expect("split");
        assert!(!dir.path().join(SPLIT_FILE).exists());
    }
}
