//! The container's terminal (Docker's Tty). The shim owns the pty master for the
//! container's whole life, so the terminal outlives any daemon stop, crash or upgrade:
//!
//! - process runtime: the shim opens the pty ([`open_pty`]); the child gets the slave as
//!   stdin, stdout, stderr and controlling terminal ([`make_controlling`]);
//! - runc: runc creates the pty in the container and sends its master over
//!   `--console-socket` ([`ConsoleSocket`]), as SCM_RIGHTS on a unix stream.
//!
//! Resizes arrive as `resize HEIGHT WIDTH` lines on [`CONTROL_FIFO`] ([`Control`]), which the
//! shim opens read-write: it never sees EOF, so any number of writers may come and go.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;

use super::protocol::{CONSOLE_SOCKET, CONTROL_FIFO};

/// How long runc may take to send the master.
const MASTER_DEADLINE: Duration = Duration::from_secs(60);
/// The longest control line read.
const MAX_LINE: usize = 256;

/// A new pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    /// The master (close-on-exec): the shim's.
    pub master: OwnedFd,
    /// The slave (close-on-exec): the container's stdin, stdout and stderr once dup'd.
    pub slave: OwnedFd,
}

/// Opens a pty, both ends close-on-exec.
pub fn open_pty() -> Result<Pty, Errno> {
    let pty = nix::pty::openpty(None, None)?;
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    Ok(Pty {
        master: pty.master,
        slave: pty.slave,
    })
}

/// Sets the terminal's size (TIOCSWINSZ), on the master or the slave.
pub fn set_size(fd: BorrowedFd<'_>, height: u16, width: u16) -> Result<(), Errno> {
    let size = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which points to a live
    // local; `fd` is a valid open descriptor for the duration of the call (borrowed).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    Errno::result(r).map(drop)
}

/// In the forked child, after `setsid`: makes its stdin (the pty slave) its controlling
/// terminal. Only async-signal-safe calls (one ioctl).
pub fn make_controlling() -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal the terminal from another
    // session), no pointer; fd 0 is the slave the child was given as stdin.
    let r = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives `cmd` the pty `slave` as stdin, stdout, stderr and controlling terminal, in a
/// session of its own (the daemon's exec with Tty: `runc exec --tty` or a host process).
pub fn on_terminal(cmd: &mut std::process::Command, slave: &OwnedFd) -> io::Result<()> {
    cmd.stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave.try_clone()?);
    // SAFETY: the closure runs in the forked child between fork and exec, where only
    // async-signal-safe calls are allowed: setsid(2) and one ioctl(2), errno mapped to a
    // raw OS error without allocating.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            make_controlling()
        });
    }
    Ok(())
}

/// The listening socket runc sends the master to.
#[derive(Debug)]
pub struct ConsoleSocket {
    /// The listener.
    listener: UnixListener,
    /// The run directory, held open: the socket's path goes through it (see [`Self::path`]).
    dir: File,
    /// Where the socket is, to remove it.
    file: PathBuf,
}

impl ConsoleSocket {
    /// Binds [`CONSOLE_SOCKET`] in the run directory `dir` (replacing a stale one). The path
    /// is taken through `/proc/self/fd/N/`: a run directory may be longer than the 107 bytes
    /// a socket address holds.
    pub fn bind(dir: &Path) -> io::Result<ConsoleSocket> {
        let file = dir.join(CONSOLE_SOCKET);
        match fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)?;
        let short = format!("/proc/self/fd/{}/{CONSOLE_SOCKET}", dir.as_raw_fd());
        let listener = UnixListener::bind(short)?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket {
            listener,
            dir,
            file,
        })
    }

    /// The path runc is given: the same short form, through this process's fd table.
    pub fn path(&self) -> PathBuf {
        let pid = std::process::id();
        PathBuf::from(format!(
            "/proc/{pid}/fd/{}/{CONSOLE_SOCKET}",
            self.dir.as_raw_fd()
        ))
    }

    /// Waits for runc to connect and send the master. `Ok(None)`: runc exited first (it
    /// failed; its stderr says why).
    pub fn receive(&self, runc: &mut Child) -> io::Result<Option<OwnedFd>> {
        let deadline = Instant::now() + MASTER_DEADLINE;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if runc.try_wait()?.is_some() {
                return Ok(None);
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "runc sent no console master",
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        stream.set_nonblocking(false)?;
        receive_fd(&stream).map(Some)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

/// One message with one SCM_RIGHTS descriptor (runc also sends the pty's name as data).
fn receive_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut found = None;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel installed `fd` in this process for this message; it is
                // owned by nobody else, so it is wrapped exactly once here.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if found.is_none() {
                    found = Some(owned);
                }
            }
        }
    }
    found.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no descriptor in message"))
}

/// Reads resize lines from [`CONTROL_FIFO`] and applies them to the master.
#[derive(Debug)]
pub struct Control {
    /// The FIFO, opened read-write and non-blocking.
    fifo: File,
    /// The pty master.
    master: OwnedFd,
    /// A line not complete yet.
    line: Vec<u8>,
}

impl Control {
    /// Creates the FIFO (replacing a stale one) in `dir` and opens it.
    pub fn open(dir: &Path, master: OwnedFd) -> io::Result<Control> {
        let path = dir.join(CONTROL_FIFO);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).map_err(io::Error::from)?;
        let fifo = open_fifo_rw(&path)?;
        Ok(Control {
            fifo,
            master,
            line: Vec::new(),
        })
    }

    /// The FIFO, to poll for input.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fifo.as_fd()
    }

    /// The FIFO is readable: applies every complete line.
    pub fn on_readable(&mut self) {
        let mut buf = [0u8; 512];
        loop {
            match self.fifo.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => self.line.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        while let Some(nl) = self.line.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.line.drain(..=nl).collect();
            match parse_resize(&line) {
                Some((h, w)) => {
                    if let Err(e) = set_size(self.master.as_fd(), h, w) {
                        eprintln!("moor-shim: resize the terminal: {e}");
                    }
                }
                None => eprintln!(
                    "moor-shim: unknown control line {:?}",
                    String::from_utf8_lossy(&line)
                ),
            }
        }
        if self.line.len() > MAX_LINE {
            self.line.clear();
        }
    }
}

/// Opens a FIFO read-write and non-blocking: it has a reader and a writer for as long as it
/// is open, so it never reads EOF.
pub fn open_fifo_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// `resize HEIGHT WIDTH\n`.
fn parse_resize(line: &[u8]) -> Option<(u16, u16)> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let mut words = text.split(' ');
    if words.next()? != "resize" {
        return None;
    }
    let h = words.next()?.parse().ok()?;
    let w = words.next()?.parse().ok()?;
    words.next().is_none().then_some((h, w))
}

/// A duplicate of `fd` (close-on-exec), set non-blocking: the master's read and write ends
/// as the main loop holds them.
pub fn dup_nonblocking(fd: BorrowedFd<'_>) -> Result<File, Errno> {
    let dup = fd
        .try_clone_to_owned()
        .map_err(|e| e.raw_os_error().map_or(Errno::EBADF, Errno::from_raw))?;
    let flags = OFlag::from_bits_truncate(fcntl(dup.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(
        dup.as_raw_fd(),
        FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK),
    )?;
    Ok(File::from(dup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_lines_are_parsed_strictly() {
        assert_eq!(parse_resize(b"resize 40 120\n"), Some((40, 120)));
        assert_eq!(parse_resize(b"resize 40\n"), None);
        assert_eq!(parse_resize(b"resize 40 120 1\n"), None);
        assert_eq!(parse_resize(b"resize -1 5\n"), None);
        assert_eq!(parse_resize(b"resize 70000 5\n"), None);
        assert_eq!(parse_resize(b"kill 9\n"), None);
    }

    #[test]
    fn control_lines_resize_the_pty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pty = open_pty().expect("pty");
        let mut control = Control::open(dir.path(), pty.master).expect("control");
        std::fs::write(dir.path().join(CONTROL_FIFO), b"resize 33 91\n").expect("write");
        control.on_readable();
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer to a live local.
        let r = unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        assert_eq!(r, 0);
        assert_eq!((size.ws_row, size.ws_col), (33, 91));
    }
}
