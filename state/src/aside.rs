//! Moving an unreadable store out of the way, keeping its files as they were found.
//!
//! sled 0.34 rewrites a garbled log while opening it (it zeroes everything after the first
//! bad message), so the directory sled leaves behind is not what was on disk before. The
//! caller therefore captures the files before sled opens them ([`capture`]); [`move_aside`]
//! writes that capture to `<path>.corrupt-<UTC timestamp>` and moves the directory sled
//! opened inside it, as `opened-by-sled`. Nothing is ever deleted.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// The store's files: path relative to the store directory, and contents.
pub(crate) type Capture = Vec<(PathBuf, Vec<u8>)>;

/// Name, inside the moved-aside directory, of the directory as sled left it.
pub const OPENED_BY_SLED: &str = "opened-by-sled";

/// Reads every regular file of the store directory and of its `blobs` subdirectory.
/// `None` when the directory cannot be read (then the store is moved as it is).
pub(crate) fn capture(dir: &Path) -> Option<Capture> {
    let mut out = Vec::new();
    for sub in [PathBuf::new(), PathBuf::from("blobs")] {
        let entries = match fs::read_dir(dir.join(&sub)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(_) => return None,
        };
        for entry in entries {
            let entry = entry.ok()?;
            if entry.file_type().ok()?.is_file() {
                let rel = sub.join(entry.file_name());
                out.push((rel, fs::read(entry.path()).ok()?));
            }
        }
    }
    Some(out)
}

/// `<path>.corrupt-<UTC timestamp>`, with a counter if that exists already.
fn aside_path(path: &Path) -> io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "store path has no file name")
    })?;
    for n in 1u32.. {
        let mut name = OsString::from(file_name);
        name.push(format!(".corrupt-{stamp}"));
        if n > 1 {
            name.push(format!("-{n}"));
        }
        let to = path.with_file_name(name);
        // rename(2) would replace an empty directory: never reuse a name.
        if !to.exists() {
            return Ok(to);
        }
    }
    unreachable!("u32 counter exhausted")
}

fn write_capture(to: &Path, files: &Capture) -> io::Result<()> {
    fs::create_dir(to)?;
    for (rel, bytes) in files {
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut f = fs::File::create(dest)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    Ok(())
}

/// Moves the store at `path` aside and returns where. With a capture, the new directory
/// holds the files as captured and the directory sled opened goes inside it.
pub(crate) fn move_aside(path: &Path, found: Option<&Capture>) -> Result<PathBuf, StoreError> {
    let err = |to: &Path| {
        let (from, to) = (path.to_path_buf(), to.to_path_buf());
        move |source| StoreError::MoveAside { from, to, source }
    };
    let to = aside_path(path).map_err(err(Path::new("")))?;
    match found {
        Some(files) => {
            write_capture(&to, files).map_err(err(&to))?;
            let inner = to.join(OPENED_BY_SLED);
            fs::rename(path, &inner).map_err(err(&inner))?;
        }
        None => fs::rename(path, &to).map_err(err(&to))?,
    }
    Ok(to)
}
