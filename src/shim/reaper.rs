//! The shim's main loop: drain the container's output into the log, feed its stdin (when
//! open), reap every child, stop when the container's init has been reaped. One thread, no
//! async: poll(2) over the pipes, the stdin FIFO and a signalfd for SIGCHLD.
//!
//! The shim is a subreaper, so orphans of the container are re-parented to it; each SIGCHLD
//! is answered by `waitpid(-1, WNOHANG)` until nothing is left to reap. Once the init is
//! reaped, the pipes are drained of what is already in them, without waiting for EOF: a
//! background process of the container may hold them open for ever.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::clock::Timestamp;
use super::console::Control;
use super::log_writer::{LogSink, LogWriter, Stream};
use super::protocol::ExitKind;
use super::stdin::StdinForward;

/// Bytes read from a pipe at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Reads per pipe per poll turn, so one busy stream cannot starve the other or SIGCHLD.
const READS_PER_TURN: usize = 16;
/// Reads per pipe once the init has exited: what is buffered, with a bound in case a
/// background process keeps writing.
const READS_AFTER_EXIT: usize = 256;

/// The main loop failed.
#[derive(Debug)]
pub enum ReaperError {
    /// A syscall failed.
    Sys {
        /// Which step, e.g. "poll".
        step: &'static str,
        /// The errno.
        source: Errno,
    },
}

impl fmt::Display for ReaperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReaperError::Sys { step, .. } => write!(f, "{step}"),
        }
    }
}

impl std::error::Error for ReaperError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReaperError::Sys { source, .. } => Some(source),
        }
    }
}

fn sys(step: &'static str) -> impl FnOnce(Errno) -> ReaperError {
    move |source| ReaperError::Sys { step, source }
}

/// Blocks SIGCHLD and returns a signalfd for it. Call before starting the container, so its
/// SIGCHLD is pending (and seen) even if it exits at once.
pub fn block_sigchld() -> Result<SignalFd, ReaperError> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(sys("block SIGCHLD"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(sys("signalfd"))
}

/// The container's two output pipes.
struct Outputs {
    /// Read ends indexed like [`STREAMS`]; None once at EOF.
    pipes: [Option<File>; 2],
    /// The read buffer, allocated once.
    buf: Vec<u8>,
    /// stdout is a terminal's master: what is read is logged at once, partial line or not
    /// (an interactive prompt has no newline), and EIO (every slave closed) is its EOF.
    tty: bool,
}

/// The stream of each pipe slot.
const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

impl Outputs {
    /// Reads up to `reads` chunks from pipe `i` into the log; at EOF the pipe is closed and
    /// its partial line flushed.
    fn read<S: LogSink + Send + 'static>(
        &mut self,
        i: usize,
        reads: usize,
        log: &mut LogWriter<S>,
    ) {
        let Some(pipe) = self.pipes[i].as_mut() else {
            return;
        };
        let mut done = 0;
        while done < reads {
            match pipe.read(&mut self.buf) {
                Ok(0) => {
                    log.finish(STREAMS[i], Timestamp::now());
                    self.pipes[i] = None;
                    return;
                }
                Ok(n) => {
                    log.push(STREAMS[i], &self.buf[..n], Timestamp::now());
                    if self.tty {
                        log.finish(STREAMS[i], Timestamp::now());
                    }
                    done += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if self.tty && e.raw_os_error() == Some(libc::EIO) => {
                    self.pipes[i] = None;
                    return;
                }
                Err(e) => {
                    eprintln!("moor-shim: read {}: {e}", STREAMS[i].name());
                    log.finish(STREAMS[i], Timestamp::now());
                    self.pipes[i] = None;
                    return;
                }
            }
        }
    }
}

/// The container's standard streams as the shim holds them.
#[derive(Debug)]
pub struct Streams {
    /// Read end of its stdout pipe (non-blocking).
    pub stdout: File,
    /// Read end of its stderr pipe (non-blocking); None with a terminal.
    pub stderr: Option<File>,
    /// Its stdin feed, when stdin is open.
    pub stdin: Option<StdinForward>,
    /// With a terminal: its control FIFO (resizes); `stdout` is then the master.
    pub control: Option<Control>,
}

/// What poll(2) found ready in one turn.
#[derive(Debug, Default)]
struct Ready {
    /// SIGCHLD is pending.
    signalled: bool,
    /// Output pipes with data (or EOF), indexed like [`STREAMS`].
    pipes: [bool; 2],
    /// The stdin FIFO has data (or EOF).
    stdin_in: bool,
    /// The container's stdin pipe has room.
    stdin_out: bool,
    /// The control FIFO has a line.
    control: bool,
}

/// Runs until `pid` is reaped; returns how it ended. Output is logged throughout. With
/// `group` (the process runtime: `pid` leads a process group of its own), what is left of
/// that group is killed when `pid` ends, as a pid namespace's teardown kills a runc
/// container's: no background process of a container outlives it.
pub fn supervise<S: LogSink + Send + 'static>(
    pid: i32,
    group: bool,
    sfd: &SignalFd,
    streams: Streams,
    log: &mut LogWriter<S>,
) -> Result<ExitKind, ReaperError> {
    let mut outputs = Outputs {
        pipes: [Some(streams.stdout), streams.stderr],
        buf: vec![0; READ_CHUNK],
        tty: streams.control.is_some(),
    };
    let mut stdin = streams.stdin;
    let mut control = streams.control;
    loop {
        let ready = wait_ready(sfd, &outputs, stdin.as_ref(), control.as_ref())?;
        if ready.control {
            if let Some(c) = control.as_mut() {
                c.on_readable();
            }
        }
        let signalled = ready.signalled;
        for (i, is_ready) in ready.pipes.into_iter().enumerate() {
            if is_ready {
                outputs.read(i, READS_PER_TURN, log);
            }
        }
        if let Some(fwd) = stdin.as_mut() {
            if ready.stdin_in {
                fwd.on_readable();
            }
            if ready.stdin_out {
                fwd.on_writable();
            }
        }
        if signalled {
            drain_signalfd(sfd);
            if group && has_exited(pid) {
                kill_group(pid);
            }
            if let Some(exit) = reap(pid)? {
                for (i, stream) in STREAMS.into_iter().enumerate() {
                    outputs.read(i, READS_AFTER_EXIT, log);
                    log.finish(stream, Timestamp::now());
                }
                log.flush();
                return Ok(exit);
            }
        }
        // One write per turn: no complete record waits longer than one poll.
        log.flush();
    }
}

/// Blocks in poll(2); returns what is ready.
fn wait_ready(
    sfd: &SignalFd,
    outputs: &Outputs,
    stdin: Option<&StdinForward>,
    control: Option<&Control>,
) -> Result<Ready, ReaperError> {
    let wanted = PollFlags::POLLIN;
    let mut fds = vec![PollFd::new(sfd.as_fd(), wanted)];
    let mut slots = Vec::with_capacity(2);
    for (i, pipe) in outputs.pipes.iter().enumerate() {
        if let Some(pipe) = pipe {
            fds.push(PollFd::new(pipe.as_fd(), wanted));
            slots.push(i);
        }
    }
    let first_stdin = fds.len();
    let stdin_in = stdin.and_then(StdinForward::readable_fd);
    let stdin_out = stdin.and_then(StdinForward::writable_fd);
    if let Some(fd) = stdin_in {
        fds.push(PollFd::new(fd, wanted));
    }
    if let Some(fd) = stdin_out {
        fds.push(PollFd::new(fd, PollFlags::POLLOUT));
    }
    if let Some(c) = control {
        fds.push(PollFd::new(c.fd(), wanted));
    }
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys("poll")(e)),
        }
    }
    let ready = |fd: &PollFd| {
        fd.revents().is_some_and(|r| {
            r.intersects(
                PollFlags::POLLIN | PollFlags::POLLOUT | PollFlags::POLLHUP | PollFlags::POLLERR,
            )
        })
    };
    let mut out = Ready {
        signalled: ready(&fds[0]),
        ..Ready::default()
    };
    for (slot, fd) in slots.iter().zip(&fds[1..]) {
        out.pipes[*slot] = ready(fd);
    }
    let mut next = first_stdin;
    if stdin_in.is_some() {
        out.stdin_in = ready(&fds[next]);
        next += 1;
    }
    if stdin_out.is_some() {
        out.stdin_out = ready(&fds[next]);
        next += 1;
    }
    if control.is_some() {
        out.control = ready(&fds[next]);
    }
    Ok(out)
}

fn drain_signalfd(sfd: &SignalFd) {
    loop {
        match sfd.read_signal() {
            Ok(Some(_)) | Err(Errno::EINTR) => {}
            Ok(None) => return,
            Err(e) => {
                eprintln!("moor-shim: read signalfd: {e}");
                return;
            }
        }
    }
}

/// Whether `pid` (a child) has exited, without reaping it: its zombie keeps its pid, and so
/// its process group id, from being reused while the group is killed.
fn has_exited(pid: i32) -> bool {
    // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes one siginfo_t through the pointer, which points to a live local;
    // WNOHANG returns at once, WNOWAIT leaves the child waitable.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: waitid filled `info` (or left it zeroed: si_pid 0) and returned 0.
    r == 0 && unsafe { info.si_pid() } == pid
}

/// SIGKILL to the process group `pgid` (its leader's zombie still holds the id).
fn kill_group(pgid: i32) {
    match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => eprintln!("moor-shim: kill the container's process group: {e}"),
    }
}

/// After the init: reaps the children still ending (the group just killed) until there are
/// none, or `limit` has passed (a process that left the group may live on).
pub fn reap_leftovers(limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: as in `reap`: one c_int written through a pointer to a live local.
        match unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } {
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return,
            0 if std::time::Instant::now() >= deadline => return,
            0 => std::thread::sleep(std::time::Duration::from_millis(2)),
            _ => {}
        }
    }
}

/// Reaps every child that has exited; returns `pid`'s exit if it was among them.
fn reap(pid: i32) -> Result<Option<ExitKind>, ReaperError> {
    let mut exit = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes one c_int through the pointer, which points to a live local;
        // WNOHANG makes it return at once. libc is used rather than nix::sys::wait because
        // nix fails to decode a death by a real-time signal after the child was reaped,
        // which would lose the exit status.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match reaped {
            0 => return Ok(exit),
            -1 => match Errno::last() {
                Errno::EINTR => continue,
                Errno::ECHILD => return Ok(exit),
                e => return Err(sys("waitpid")(e)),
            },
            child if child == pid => exit = decode(status),
            _ => {}
        }
    }
}

/// A wait status as moor records it (None for stop/continue reports, which WNOHANG without
/// WUNTRACED does not produce).
fn decode(status: libc::c_int) -> Option<ExitKind> {
    if libc::WIFEXITED(status) {
        Some(ExitKind::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ExitKind::Signal(libc::WTERMSIG(status)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(decode(3 << 8), Some(ExitKind::Code(3)));
        assert_eq!(decode(libc::SIGTERM), Some(ExitKind::Signal(15)));
        // A real-time signal (SIGRTMIN+3 = 37), with the core-dump bit.
        assert_eq!(decode(37 | 0x80), Some(ExitKind::Signal(37)));
        // Stopped by SIGSTOP.
        assert_eq!(decode((libc::SIGSTOP << 8) | 0x7f), None);
    }
}
