//! The json-file log on disk: appends, Docker's rotation (`<id>-json.log`, `.1`, `.2`...) and
//! the reserve file that makes room for a last drop report on a full disk.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Size of the reserve file, room for a few drop reports on a full disk.
pub const RESERVE_SIZE: usize = 4096;

/// The most files a log keeps (`max-file`): the daemon refuses more at create, and the shim
/// clamps to it, so one rotation never does more than this many renames.
pub const MAX_FILE_LIMIT: u32 = 1000;

/// When to rotate, and what a failed rotation does: the failure is reported once on the
/// shim's stderr (its own log) and writing goes on in the current file, past `max-size`;
/// the next try comes after another `max-size` bytes, so a rotation that keeps failing
/// costs one attempt per `max-size` of output, never one per record.
#[derive(Debug)]
pub struct Rotation {
    /// Rotate before the file would exceed this many bytes (None: never).
    max_size: Option<u64>,
    /// After a failure: the size at which to try again.
    retry_at: Option<u64>,
}

impl Rotation {
    /// Rotation at `max_size` bytes (None: never).
    pub fn new(max_size: Option<u64>) -> Rotation {
        Rotation {
            max_size,
            retry_at: None,
        }
    }

    /// The size past which the file is rotated (None: never).
    pub fn limit(&self) -> Option<u64> {
        self.max_size.map(|max| self.retry_at.unwrap_or(max))
    }

    /// Rotates `sink`; a failure is reported once per run of failures and puts the next try
    /// one `max-size` further.
    pub fn rotate<S: LogSink>(&mut self, sink: &mut S) {
        match sink.rotate() {
            Ok(()) => {
                if self.retry_at.take().is_some() {
                    eprintln!("moor-shim: log rotation works again");
                }
            }
            Err(e) => {
                if self.retry_at.is_none() {
                    eprintln!(
                        "moor-shim: rotate log: {e}; writing on in the current file, \
                         retrying every max-size bytes"
                    );
                }
                let step = self.max_size.unwrap_or(u64::MAX);
                self.retry_at = Some(sink.size().saturating_add(step));
            }
        }
    }
}

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
    /// How many files to keep in all (the current one included), at most [`MAX_FILE_LIMIT`].
    max_file: u32,
    /// How many rotated files (`.1` up) exist: a rotation renames only those.
    kept: u32,
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
        let mut sink = FileSink {
            path: path.to_owned(),
            file,
            size,
            max_file: max_file.clamp(1, MAX_FILE_LIMIT),
            kept: 0,
            reserve: make_reserve(path),
        };
        sink.kept = sink.count_kept();
        Ok(sink)
    }

    /// The rotated files present, counted from `.1` up to the first missing one.
    fn count_kept(&self) -> u32 {
        (1..self.max_file)
            .take_while(|n| self.numbered(*n).exists())
            .count() as u32
    }

    /// Removes the reserve file (the shim is done writing).
    pub fn remove_reserve(&mut self) {
        if let Some(reserve) = self.reserve.take() {
            let _ = fs::remove_file(reserve);
        }
    }

    /// Docker's rotation: drops the oldest kept file when all are there, shifts the others
    /// up by one, moves the current file to `.1` and opens a new one.
    fn shift_and_reopen(&mut self) -> io::Result<()> {
        let oldest = self.max_file - 1;
        if self.kept >= oldest {
            ignore_not_found(fs::remove_file(self.numbered(oldest)))?;
            self.kept = oldest - 1;
        }
        for n in (1..=self.kept).rev() {
            ignore_not_found(fs::rename(self.numbered(n), self.numbered(n + 1)))?;
        }
        fs::rename(&self.path, self.numbered(1))?;
        self.kept += 1;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
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
        let result = self.shift_and_reopen();
        if result.is_err() {
            // Part of the shift may have happened: count again for the next try.
            self.kept = self.count_kept();
        }
        result
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

    #[test]
    fn a_failed_rotation_keeps_the_current_file_writable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        // `.1` a non-empty directory: removing and renaming onto it fail, even as root.
        fs::create_dir_all(dir.path().join("c-json.log.1/x")).expect("mkdir");
        let mut sink = FileSink::open(&path, 2).expect("open");
        sink.append(b"a\n").expect("append");
        assert!(sink.rotate().is_err());
        sink.append(b"b\n").expect("still appends");
        assert_eq!(fs::read_to_string(&path).expect("read"), "a\nb\n");
        // A huge max-file is clamped, and a rotation renames only the files there are.
        let mut huge = FileSink::open(&dir.path().join("h.log"), u32::MAX).expect("open");
        assert_eq!(huge.max_file, MAX_FILE_LIMIT);
        for _ in 0..3 {
            huge.append(b"x\n").expect("append");
            huge.rotate().expect("rotate");
        }
        assert_eq!(huge.kept, 3);
    }

    /// A sink whose rotation always fails; counts the tries.
    struct Stuck {
        size: u64,
        tries: u32,
    }

    impl LogSink for Stuck {
        fn append(&mut self, buf: &[u8]) -> io::Result<()> {
            self.size += buf.len() as u64;
            Ok(())
        }
        fn size(&self) -> u64 {
            self.size
        }
        fn rotate(&mut self) -> io::Result<()> {
            self.tries += 1;
            Err(io::Error::from_raw_os_error(libc::EROFS))
        }
    }

    #[test]
    fn a_failing_rotation_is_retried_once_per_max_size() {
        let mut rotation = Rotation::new(Some(100));
        let mut sink = Stuck { size: 0, tries: 0 };
        for _ in 0..1000 {
            sink.append(&[b'x'; 10]).expect("append");
            if rotation.limit().is_some_and(|l| sink.size() > l) {
                rotation.rotate(&mut sink);
            }
        }
        // 10,000 bytes: one try at 100, then one per further 100 bytes at most.
        assert!(sink.tries <= 100, "{} tries", sink.tries);
        assert!(sink.tries >= 50, "{} tries", sink.tries);
        assert_eq!(Rotation::new(None).limit(), None);
    }
}
