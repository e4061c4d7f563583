//! The json-file log on disk: appends, Docker's rotation (`<id>-json.log`, `.1`, `.2`...) and
//! the reserve file that makes room for a last drop report on a full disk.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Size of the reserve file, room for a few drop reports on a full disk.
pub const RESERVE_SIZE: usize = 4096;

/// Where encoded records go: the log file, or a fake in tests.
pub trait LogSink {
    /// Appends all of `buf`, or fails leaving the sink as it was.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Bytes in the current file.
    fn size(&self) -> u64;
    /// Moves the current file aside (keeping the configured number) and starts an empty one.
    fn rotate(&mut self) -> io::Result<()>;
    /// Frees the space kept for a last drop report; false when there was none.
    fn release_reserve(&mut self) -> bool {
        false
    }
}

/// The json-file log on disk, rotated like Docker's: `id-json.log`, `.1`, `.2`...
#[derive(Debug)]
pub struct FileSink {
    /// The current file's path; rotated files get `.N` appended.
    path: PathBuf,
    /// The current file, opened O_APPEND.
    file: File,
    /// Its size, to decide when to rotate without a stat per write.
    size: u64,
    /// How many files to keep in all (the current one included).
    max_file: u32,
    /// `.<name>.reserve` next to the log while it exists (see the module header).
    reserve: Option<PathBuf>,
}

impl FileSink {
    /// Opens (creating it and its parent directories) the log at `path`, mode 0640.
    pub fn open(path: &Path, max_file: u32) -> io::Result<FileSink> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(FileSink {
            path: path.to_owned(),
            file,
            size,
            max_file,
            reserve: make_reserve(path),
        })
    }

    /// Removes the reserve file (the shim is done writing).
    pub fn remove_reserve(&mut self) {
        if let Some(reserve) = self.reserve.take() {
            let _ = fs::remove_file(reserve);
        }
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }
}

/// Writes the reserve file next to `path`; `None` if it cannot (no space already).
fn make_reserve(path: &Path) -> Option<PathBuf> {
    let mut name = OsString::from(".");
    name.push(path.file_name()?);
    name.push(".reserve");
    let reserve = path.with_file_name(name);
    match fs::write(&reserve, [0u8; RESERVE_SIZE]) {
        Ok(()) => Some(reserve),
        Err(_) => {
            let _ = fs::remove_file(&reserve);
            None
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

fn ignore_not_found(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl LogSink for FileSink {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut written = 0;
        while written < buf.len() {
            match self.file.write(&buf[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Cut a half-written batch off so the file stays one record per line.
                    if written > 0 {
                        let _ = self.file.set_len(self.size);
                    }
                    return Err(e);
                }
            }
        }
        self.size += buf.len() as u64;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file <= 1 {
            // Nothing to keep: start over in the same file, as Docker does.
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let oldest = self.max_file - 1;
        ignore_not_found(fs::remove_file(self.numbered(oldest)))?;
        for n in (1..oldest).rev() {
            ignore_not_found(fs::rename(self.numbered(n), self.numbered(n + 1)))?;
        }
        fs::rename(&self.path, self.numbered(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }

    fn release_reserve(&mut self) -> bool {
        match self.reserve.take() {
            Some(reserve) => fs::remove_file(reserve).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sink_keeps_max_file_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/c-json.log");
        let mut sink = FileSink::open(&path, 3).expect("open");
        for round in 0..4u8 {
            sink.append(&[b'a' + round, b'\n']).expect("append");
            sink.rotate().expect("rotate");
        }
        sink.append(b"e\n").expect("append");
        let read = |p: PathBuf| fs::read_to_string(p).expect("read");
        assert_eq!(read(path.clone()), "e\n");
        assert_eq!(read(sink.numbered(1)), "d\n");
        assert_eq!(read(sink.numbered(2)), "c\n");
        assert!(!sink.numbered(3).exists());
        // max_file 1: truncate in place.
        let mut single = FileSink::open(&dir.path().join("one.log"), 1).expect("open");
        single.append(b"x\n").expect("append");
        single.rotate().expect("rotate");
        single.append(b"y\n").expect("append");
        assert_eq!(read(dir.path().join("one.log")), "y\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn file_sink_reserve_is_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut sink = FileSink::open(&path, 1).expect("open");
        let reserve = dir.path().join(".c-json.log.reserve");
        assert_eq!(
            fs::metadata(&reserve).expect("reserve").len(),
            RESERVE_SIZE as u64
        );
        assert!(sink.release_reserve());
        assert!(!reserve.exists());
        assert!(!sink.release_reserve());
    }
}
