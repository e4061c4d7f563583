//! Detaching the shim from the daemon that started it: double fork, new session, stdio.
//!
//! The process the daemon spawned exits at once (the daemon reaps it); the shim proper is a
//! grandchild in its own session, re-parented to init (or the nearest subreaper), so neither
//! the daemon's death nor a signal to the daemon's process group reaches it. stdout, the
//! report pipe, stays open until the start report is written (see [`super::release_stdout`]).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{self, ForkResult};

use super::protocol::SHIM_LOG_FILE;

/// Which process returned from [`detach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The spawned process or the intermediate one: exit 0 now.
    Exit,
    /// The detached shim: carry on.
    Shim,
}

/// A detaching step failed.
#[derive(Debug)]
pub enum DaemonizeError {
    /// fork(2) is only sound here while the process has one thread.
    Threads {
        /// How many threads /proc/self/task listed.
        count: usize,
    },
    /// Listing /proc/self/task or /proc/self/fd failed.
    Proc {
        /// The directory.
        path: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A syscall failed.
    Sys {
        /// Which step, e.g. "setsid".
        step: &'static str,
        /// The errno.
        source: Errno,
    },
    /// A file for the standard streams could not be opened.
    Open {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for DaemonizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonizeError::Threads { count } => {
                write!(f, "refusing to fork with {count} threads running")
            }
            DaemonizeError::Proc { path, .. } => write!(f, "list {path}"),
            DaemonizeError::Sys { step, .. } => write!(f, "{step}"),
            DaemonizeError::Open { path, .. } => write!(f, "open {}", path.display()),
        }
    }
}

impl std::error::Error for DaemonizeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DaemonizeError::Threads { .. } => None,
            DaemonizeError::Proc { source, .. } | DaemonizeError::Open { source, .. } => {
                Some(source)
            }
            DaemonizeError::Sys { source, .. } => Some(source),
        }
    }
}

fn sys(step: &'static str) -> impl FnOnce(Errno) -> DaemonizeError {
    move |source| DaemonizeError::Sys { step, source }
}

/// Detaches; `dir` (absolute) is the container's run directory, which receives `shim.log`.
pub fn detach(dir: &Path) -> Result<Role, DaemonizeError> {
    // 1. Fork only while single-threaded: the child of a multi-threaded fork may only make
    //    async-signal-safe calls, and the shim goes on to allocate, open files and exec.
    let count = fs::read_dir("/proc/self/task")
        .map_err(|source| DaemonizeError::Proc {
            path: "/proc/self/task",
            source,
        })?
        .count();
    if count != 1 {
        return Err(DaemonizeError::Threads { count });
    }
    // 2. First fork: the process the daemon spawned returns and exits 0, so the daemon reaps
    //    it at once and is never the shim's parent.
    if fork()? == Role::Exit {
        return Ok(Role::Exit);
    }
    // 3. New session: no controlling terminal, out of the daemon's process group, so a
    //    signal to that group (Ctrl-C on a foreground daemon) does not reach the shim.
    unistd::setsid().map_err(sys("setsid"))?;
    // 4. Second fork: the session leader exits, so the shim can never acquire a controlling
    //    terminal by opening one; the shim is re-parented to init or a subreaper.
    if fork()? == Role::Exit {
        return Ok(Role::Exit);
    }
    // 5. Do not keep the daemon's working directory (a mount) busy.
    unistd::chdir("/").map_err(sys("chdir /"))?;
    // 6. Close every inherited fd but the standard ones: a daemon's listening socket or
    //    sled files must not live on in a shim.
    close_inherited()?;
    // 7. stdin from /dev/null; stderr appended to the run directory's shim.log. stdout is
    //    the report pipe and stays until the report is written.
    redirect(Path::new("/dev/null"), libc::STDIN_FILENO, false)?;
    redirect(&dir.join(SHIM_LOG_FILE), libc::STDERR_FILENO, true)?;
    // 8. Become the subreaper of everything below: the container's init is re-parented to
    //    the shim when runc exits, and orphans of the container are reaped here.
    nix::sys::prctl::set_child_subreaper(true).map_err(sys("prctl(PR_SET_CHILD_SUBREAPER)"))?;
    Ok(Role::Shim)
}

fn fork() -> Result<Role, DaemonizeError> {
    // SAFETY: detach() checked that this process has exactly one thread, and the fork
    // caller performs no concurrent work; so the child owns a consistent copy of every lock
    // and allocator state and may run ordinary (non async-signal-safe) code.
    match unsafe { unistd::fork() }.map_err(sys("fork"))? {
        ForkResult::Parent { .. } => Ok(Role::Exit),
        ForkResult::Child => Ok(Role::Shim),
    }
}

fn close_inherited() -> Result<(), DaemonizeError> {
    let proc_err = |source| DaemonizeError::Proc {
        path: "/proc/self/fd",
        source,
    };
    let fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .map_err(proc_err)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd > libc::STDERR_FILENO)
        .collect();
    for fd in fds {
        // EBADF: the fd of the read_dir above, closed since. No Rust object owns any of these
        // fds at this point (the shim has opened nothing yet), so closing cannot double-close.
        match unistd::close(fd) {
            Ok(()) | Err(Errno::EBADF) => {}
            Err(e) => return Err(sys("close inherited fd")(e)),
        }
    }
    Ok(())
}

fn redirect(path: &Path, target: RawFd, append: bool) -> Result<(), DaemonizeError> {
    let mut options = OpenOptions::new();
    if append {
        options.create(true).append(true).mode(0o640);
    } else {
        options.read(true).write(true);
    }
    let file = options.open(path).map_err(|source| DaemonizeError::Open {
        path: path.to_owned(),
        source,
    })?;
    unistd::dup2(file.as_raw_fd(), target).map_err(sys("dup2"))?;
    Ok(())
}
