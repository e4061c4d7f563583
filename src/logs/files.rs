//! The files of one container's log, as the shim rotates them: `<id>-json.log.N` (oldest,
//! highest N) … `<id>-json.log.1`, then `<id>-json.log` (the one being written).
//!
//! The shim rotates by renaming, so a set of files listed and then opened one by one can be
//! torn by a rotation in between. [`open_chain`] opens them and checks the result: the current
//! path still names the file it opened and no file was opened twice; otherwise it retries.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many times [`open_chain`] lists and opens before it takes what it got.
const OPEN_TRIES: usize = 8;

/// One opened log file.
#[derive(Debug)]
pub struct Segment {
    /// The open file; renames do not affect it.
    pub file: File,
    /// Its inode, to recognise it after a rename.
    pub ino: u64,
    /// The path it was opened at (for error messages).
    pub path: PathBuf,
}

impl Segment {
    /// Opens `path`; `None` when it does not exist.
    pub fn open(path: &Path) -> io::Result<Option<Segment>> {
        match File::open(path) {
            Ok(file) => {
                let ino = file.metadata()?.ino();
                Ok(Some(Segment {
                    file,
                    ino,
                    path: path.to_owned(),
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The inode `path` names now (`None`: no such file).
pub fn inode_of(path: &Path) -> io::Result<Option<(u64, u64)>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some((m.ino(), m.len()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The rotated files of the log at `path` (`path.N`), highest N (oldest) first.
pub fn rotated(path: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let mut prefix = OsString::from(name);
    prefix.push(".");
    let prefix = prefix.to_string_lossy().into_owned();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(n) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        found.push((n, entry.path()));
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// Opens the log's files, oldest first, the current file last (when it exists). With
/// `after`, only the files newer than the one with that inode (all of them if it is gone).
pub fn open_chain(path: &Path, after: Option<u64>) -> io::Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for _ in 0..OPEN_TRIES {
        segments = open_once(path)?;
        if consistent(path, &segments)? {
            break;
        }
    }
    if let Some(ino) = after {
        if let Some(pos) = segments.iter().position(|s| s.ino == ino) {
            segments.drain(..=pos);
        }
    }
    Ok(segments)
}

fn open_once(path: &Path) -> io::Result<Vec<Segment>> {
    let current = Segment::open(path)?;
    let mut segments = Vec::new();
    for (_, rotated_path) in rotated(path)? {
        segments.extend(Segment::open(&rotated_path)?);
    }
    segments.extend(current);
    Ok(segments)
}

/// No rotation tore the set: the current path still names the last file and inodes are unique.
fn consistent(path: &Path, segments: &[Segment]) -> io::Result<bool> {
    let now = inode_of(path)?.map(|(ino, _)| ino);
    let last = segments.last().filter(|s| s.path == path).map(|s| s.ino);
    if now != last {
        return Ok(false);
    }
    let mut inodes: Vec<u64> = segments.iter().map(|s| s.ino).collect();
    inodes.sort_unstable();
    inodes.dedup();
    Ok(inodes.len() == segments.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_opens_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        for (name, text) in [
            ("c-json.log", "cur"),
            ("c-json.log.1", "one"),
            ("c-json.log.10", "ten"),
            ("c-json.log.2", "two"),
            ("c-json.log.x", "not a rotation"),
            ("other.log.3", "not ours"),
        ] {
            fs::write(dir.path().join(name), text).expect("write");
        }
        let numbers: Vec<u32> = rotated(&path).expect("list").iter().map(|r| r.0).collect();
        assert_eq!(numbers, [10, 2, 1]);
        let chain = open_chain(&path, None).expect("open");
        let texts: Vec<String> = chain
            .iter()
            .map(|s| fs::read_to_string(&s.path).expect("read"))
            .collect();
        assert_eq!(texts, ["ten", "two", "one", "cur"]);
        let after_two = open_chain(&path, Some(chain[1].ino)).expect("open");
        assert_eq!(after_two.len(), 2);
        assert_eq!(after_two[0].path, dir.path().join("c-json.log.1"));
    }

    #[test]
    fn missing_log_is_an_empty_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chain = open_chain(&dir.path().join("none/x-json.log"), None).expect("open");
        assert!(chain.is_empty());
    }
}
