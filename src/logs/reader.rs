//! Reads a container's json-file records in order across its rotated files, one line at a
//! time through a 64 KiB buffer: a log of any size costs the reader the same memory.
//!
//! [`LogReader::tail`] starts at the last N records, counting backwards across files.
//! Following: when [`LogReader::next_record`] reports the end, [`LogReader::poll_rotation`]
//! compares the inode the log's path names now with the file being read; after a rename it
//! drains what is left of the old file, then goes on with every file newer than it (two
//! rotations between polls lose nothing as long as the old file still exists).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::files::{self, Segment};
use super::LogsError;

/// Read buffer per file, and the block size of the backwards scan of `tail`.
const BUF_SIZE: usize = 64 * 1024;

/// The file being read.
#[derive(Debug)]
struct Active {
    /// Buffered reader over the file.
    reader: BufReader<File>,
    /// The file's inode.
    ino: u64,
    /// Its offset after the bytes consumed so far (to notice a truncation).
    offset: u64,
    /// Where it was opened, for errors.
    path: PathBuf,
}

impl Active {
    fn new(segment: Segment, offset: u64) -> io::Result<Active> {
        let Segment {
            mut file,
            ino,
            path,
        } = segment;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(Active {
            reader: BufReader::with_capacity(BUF_SIZE, file),
            ino,
            offset,
            path,
        })
    }
}

/// Records of one container's log, oldest first; see the module header.
#[derive(Debug)]
pub struct LogReader {
    /// The current log file's path (`<id>-json.log`).
    path: PathBuf,
    /// Files opened and not read yet, oldest first.
    queue: VecDeque<Segment>,
    /// The file being read (None: nothing opened yet, e.g. the log does not exist yet).
    active: Option<Active>,
    /// The start of a record whose newline has not been read yet.
    partial: Vec<u8>,
}

impl LogReader {
    /// Opens every file of the log at `path` now (so a later rotation or removal of the
    /// container does not take them away). A missing log reads as empty.
    pub fn open(path: &Path) -> Result<LogReader, LogsError> {
        let chain = files::open_chain(path, None).map_err(|source| LogsError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(LogReader {
            path: path.to_owned(),
            queue: chain.into(),
            active: None,
            partial: Vec::new(),
        })
    }

    /// Skips to the last `n` records (across files). Call before reading.
    pub fn tail(&mut self, n: u64) -> Result<(), LogsError> {
        let mut left = n;
        let mut start = None;
        for (i, seg) in self.queue.iter().enumerate().rev() {
            let (offset, found) =
                last_lines(&seg.file, left).map_err(|source| LogsError::Read {
                    path: seg.path.clone(),
                    source,
                })?;
            left -= found;
            if left == 0 || i == 0 {
                start = Some((i, offset));
                break;
            }
        }
        let Some((i, offset)) = start else {
            return Ok(());
        };
        self.queue.drain(..i);
        if let Some(seg) = self.queue.pop_front() {
            let path = seg.path.clone();
            let active =
                Active::new(seg, offset).map_err(|source| LogsError::Read { path, source })?;
            self.active = Some(active);
        }
        Ok(())
    }

    /// Puts the next complete record (with its `\n`) in `line`; false at the end of what is
    /// written so far. A record being written stays buffered until its newline arrives.
    pub fn next_record(&mut self, line: &mut Vec<u8>) -> Result<bool, LogsError> {
        loop {
            if self.active.is_none() {
                let Some(seg) = self.queue.pop_front() else {
                    return Ok(false);
                };
                let path = seg.path.clone();
                let active =
                    Active::new(seg, 0).map_err(|source| LogsError::Read { path, source })?;
                self.active = Some(active);
            }
            let Some(active) = self.active.as_mut() else {
                return Ok(false);
            };
            let n = active
                .reader
                .read_until(b'\n', &mut self.partial)
                .map_err(|source| LogsError::Read {
                    path: active.path.clone(),
                    source,
                })?;
            active.offset += n as u64;
            if self.partial.last() == Some(&b'\n') {
                line.clear();
                std::mem::swap(line, &mut self.partial);
                return Ok(true);
            }
            if self.queue.is_empty() {
                return Ok(false);
            }
            // A rotated file is complete: a partial record at its end never gets finished.
            self.partial.clear();
            self.active = None;
        }
    }

    /// Following: checks whether the log was rotated or truncated since the file being read
    /// was opened, and if so queues what comes after it. True when there is more to read.
    pub fn poll_rotation(&mut self) -> Result<bool, LogsError> {
        let err = |source| LogsError::Open {
            path: self.path.clone(),
            source,
        };
        if !self.queue.is_empty() {
            return Ok(true);
        }
        let Some(now) = files::inode_of(&self.path).map_err(err)? else {
            return Ok(false);
        };
        let Some(active) = self.active.as_mut() else {
            let chain = files::open_chain(&self.path, None).map_err(err)?;
            self.queue = chain.into();
            return Ok(!self.queue.is_empty());
        };
        match now {
            (ino, len) if ino == active.ino && len < active.offset => {
                // Truncated in place (max-file 1): start over at its beginning.
                active.reader.seek(SeekFrom::Start(0)).map_err(err)?;
                active.offset = 0;
                self.partial.clear();
                Ok(true)
            }
            (ino, _) if ino == active.ino => Ok(false),
            _ => {
                // Renamed away: the rest of the old file is read first (the queue is only
                // taken once it is drained), then every newer file.
                let chain = files::open_chain(&self.path, Some(active.ino)).map_err(err)?;
                self.queue = chain.into();
                Ok(true)
            }
        }
    }
}

/// Scans `file` backwards for the start of its last `n` lines: (offset, lines found). A last
/// line without its newline is counted as a line.
fn last_lines(file: &File, n: u64) -> io::Result<(u64, u64)> {
    let len = file.metadata()?.len();
    if n == 0 {
        return Ok((len, 0));
    }
    let mut buf = vec![0u8; BUF_SIZE];
    let mut pos = len;
    let mut seen = 0u64;
    while pos > 0 {
        let chunk = (BUF_SIZE as u64).min(pos);
        pos -= chunk;
        let block = &mut buf[..chunk as usize];
        file.read_exact_at(block, pos)?;
        for i in (0..block.len()).rev() {
            let abs = pos + i as u64;
            if block[i] == b'\n' && abs + 1 != len {
                seen += 1;
                if seen == n {
                    return Ok((abs + 1, seen));
                }
            }
        }
    }
    // The first line of the file has no newline before it.
    Ok((0, if len > 0 { seen + 1 } else { 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    fn records(r: &mut LogReader) -> Vec<String> {
        let mut out = Vec::new();
        let mut line = Vec::new();
        while r.next_record(&mut line).expect("read") {
            out.push(String::from_utf8(line.clone()).expect("utf8"));
        }
        out
    }

    fn write_files(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
        for (name, text) in files {
            fs::write(dir.join(name), text).expect("write");
        }
        dir.join("c-json.log")
    }

    #[test]
    fn reads_across_rotated_files_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_files(
            dir.path(),
            &[
                ("c-json.log.2", "a\nb\n"),
                ("c-json.log.1", "c\n"),
                ("c-json.log", "d\ne\npart"),
            ],
        );
        let mut r = LogReader::open(&path).expect("open");
        assert_eq!(records(&mut r), ["a\n", "b\n", "c\n", "d\n", "e\n"]);
        // The partial record completes later.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"ial\n").expect("write");
        assert_eq!(records(&mut r), ["partial\n"]);
    }

    #[test]
    fn tail_counts_across_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_files(
            dir.path(),
            &[
                ("c-json.log.2", "a\nb\n"),
                ("c-json.log.1", "c\nd\n"),
                ("c-json.log", "e\n"),
            ],
        );
        for (n, want) in [
            (0, vec![]),
            (1, vec!["e\n"]),
            (2, vec!["d\n", "e\n"]),
            (4, vec!["b\n", "c\n", "d\n", "e\n"]),
            (9, vec!["a\n", "b\n", "c\n", "d\n", "e\n"]),
        ] {
            let mut r = LogReader::open(&path).expect("open");
            r.tail(n).expect("tail");
            assert_eq!(records(&mut r), want, "tail {n}");
        }
    }

    #[test]
    fn follows_across_rotations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_files(dir.path(), &[("c-json.log", "a\n")]);
        let mut r = LogReader::open(&path).expect("open");
        assert_eq!(records(&mut r), ["a\n"]);
        assert!(!r.poll_rotation().expect("poll"));
        // Two rotations between polls, the old file getting a last record before its rename.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"b\n").expect("write");
        fs::rename(&path, dir.path().join("c-json.log.2")).expect("rename");
        fs::write(dir.path().join("c-json.log.1"), "c\n").expect("write");
        fs::write(&path, "dddd\n").expect("write");
        assert!(r.poll_rotation().expect("poll"));
        assert_eq!(records(&mut r), ["b\n", "c\n", "dddd\n"]);
        // Truncated in place (max-file 1), then written again.
        fs::write(&path, "e\n").expect("truncate and write");
        assert!(r.poll_rotation().expect("poll"));
        assert_eq!(records(&mut r), ["e\n"]);
    }

    #[test]
    fn log_created_after_open_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut r = LogReader::open(&path).expect("open");
        assert!(records(&mut r).is_empty());
        assert!(!r.poll_rotation().expect("poll"));
        fs::write(&path, "x\n").expect("write");
        assert!(r.poll_rotation().expect("poll"));
        assert_eq!(records(&mut r), ["x\n"]);
    }
}
