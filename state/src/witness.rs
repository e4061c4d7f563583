//! A write counter kept beside sled, to notice a store that sled opened silently truncated.
//!
//! sled 0.34 recovers a log whose middle is garbled by stopping at the first bad message:
//! it opens without an error and everything written after that point is gone. Each store
//! write bumps a counter inside sled (same transaction) and, once flushed, copies it here.
//! At open, a counter here above sled's means writes were lost. The copy is written after
//! sled's flush, so it is never ahead of what sled made durable: no false alarms. It is
//! best-effort (no fsync of its own): a lost copy only means a truncation goes unnoticed.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// The file in the store directory holding the last flushed counter, as decimal text.
pub(crate) const FILE: &str = "moor-write-seq";

/// The counter in `dir`, or `None` when the file is missing or unreadable.
pub(crate) fn read(dir: &Path) -> Option<u64> {
    fs::read_to_string(dir.join(FILE)).ok()?.trim().parse().ok()
}

/// Replaces the counter in `dir` atomically (temp file, then rename).
pub(crate) fn write(dir: &Path, seq: u64) -> io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "{seq}")?;
    drop(f);
    fs::rename(&tmp, dir.join(FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        write(dir.path(), 42).unwrap();
        assert_eq!(read(dir.path()), Some(42));
        fs::write(dir.path().join(FILE), b"\xff\x00").unwrap();
        assert_eq!(read(dir.path()), None);
    }
}
