//! The container's stdin (Docker's OpenStdin): the shim owns the write end of the
//! container's stdin pipe and feeds it from a FIFO in the run directory, so stdin keeps
//! working whether or not the daemon runs. The daemon (an attached client) opens the FIFO
//! for writing; when that first writer closes it, the container's stdin is closed
//! (Docker's StdinOnce). Everything is non-blocking and driven by the reaper's poll(2).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::sys::stat::Mode;

/// Bytes read from the FIFO at a time.
const CHUNK: usize = 64 * 1024;

/// Forwards the FIFO to the container's stdin pipe.
#[derive(Debug)]
pub struct StdinForward {
    /// The FIFO's read end (non-blocking); None after its writer closed it.
    fifo: Option<File>,
    /// The write end of the container's stdin (non-blocking); None once closed.
    pipe: Option<File>,
    /// Bytes read from the FIFO, not yet accepted by the pipe (back-pressure: the FIFO is
    /// not read while this is not empty).
    pending: Vec<u8>,
}

/// Creates the FIFO (replacing a stale one) and opens its read end, before any writer.
/// With `keep_open` it is opened read-write: it never reads EOF, whoever comes and goes.
pub fn open_fifo(dir: &Path, keep_open: bool) -> io::Result<File> {
    let path = dir.join(super::protocol::STDIN_FIFO);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).map_err(io::Error::from)?;
    OpenOptions::new()
        .read(true)
        .write(keep_open)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
}

impl StdinForward {
    /// A forwarder from `fifo` to `pipe` (both non-blocking).
    pub fn new(fifo: File, pipe: File) -> Self {
        StdinForward {
            fifo: Some(fifo),
            pipe: Some(pipe),
            pending: Vec::new(),
        }
    }

    /// The FIFO, when it should be polled for input.
    pub fn readable_fd(&self) -> Option<BorrowedFd<'_>> {
        if self.pending.is_empty() && self.pipe.is_some() {
            self.fifo.as_ref().map(|f| f.as_fd())
        } else {
            None
        }
    }

    /// The pipe, when it should be polled for room.
    pub fn writable_fd(&self) -> Option<BorrowedFd<'_>> {
        if self.pending.is_empty() {
            None
        } else {
            self.pipe.as_ref().map(|f| f.as_fd())
        }
    }

    /// The FIFO is readable (data or its writer's close).
    pub fn on_readable(&mut self) {
        let Some(fifo) = self.fifo.as_mut() else {
            return;
        };
        let mut buf = vec![0u8; CHUNK];
        match fifo.read(&mut buf) {
            Ok(0) => {
                self.fifo = None;
            }
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                eprintln!("moor-shim: read stdin fifo: {e}");
                self.fifo = None;
            }
        }
        self.on_writable();
    }

    /// The pipe has room: write what is pending; close it after the FIFO's EOF.
    pub fn on_writable(&mut self) {
        if let Some(pipe) = self.pipe.as_mut() {
            while !self.pending.is_empty() {
                match pipe.write(&self.pending) {
                    Ok(n) => {
                        self.pending.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => {
                        // The container closed its stdin (EPIPE): nothing more to forward.
                        self.pending.clear();
                        self.pipe = None;
                        self.fifo = None;
                        return;
                    }
                }
            }
        }
        if self.fifo.is_none() {
            self.pipe = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_then_closes_at_the_writers_eof() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = open_fifo(dir.path(), false).expect("fifo");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut fwd = StdinForward::new(fifo, File::from(w));
        assert!(fwd.readable_fd().is_some());
        let mut writer = OpenOptions::new()
            .write(true)
            .open(dir.path().join(super::super::protocol::STDIN_FIFO))
            .expect("open writer");
        writer.write_all(b"hello\n").expect("write");
        drop(writer);
        fwd.on_readable();
        fwd.on_readable();
        assert!(fwd.readable_fd().is_none(), "closed after the writer's EOF");
        let mut out = String::new();
        File::from(r).read_to_string(&mut out).expect("read");
        assert_eq!(out, "hello\n");
    }
}
