//! `moor admin upgrade`: the running daemon re-executes itself in place with a new binary.
//!
//! 1. **Check**: the new binary runs as `BINARY daemon <this daemon's options>
//!    --check-upgrade`, which loads daemon.json and the options as a start would and prints
//!    a [`CheckReport`]: its version, the newest store schema it reads (it migrates older ones
//!    forward at open) and the shim protocol versions it reads. The daemon refuses a binary
//!    that does not run, fails the check, cannot read this store's schema or the protocol of
//!    the shims this build started: the old daemon keeps serving and the answer says why.
//! 2. **Hand-over**: the API stops accepting, answers what it was answering (actix's
//!    graceful stop), the store is flushed, and the daemon `execve`s the new binary with its
//!    own arguments: same pid (systemd's MAINPID stays), and the listening socket passes
//!    through the exec ([`LISTEN_FD_ENV`] names its descriptor), so a client that connects
//!    meanwhile waits in the socket's backlog and is answered by the new daemon: none is
//!    refused. Every other descriptor is close-on-exec (the root lock, sled's files, pidfds).
//!    The containers never notice: their shims run on, and the new daemon resumes them as
//!    after any restart with live restore.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::shim::protocol::{OLDEST_READABLE_PROTOCOL, PROTOCOL};

/// The environment variable naming the inherited listening socket's descriptor.
pub const LISTEN_FD_ENV: &str = "MOOR_LISTEN_FD";

/// How long the new binary's check may take.
const CHECK_DEADLINE: Duration = Duration::from_secs(30);

/// What `moor daemon --check-upgrade` prints (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The binary's version.
    pub version: String,
    /// The newest store schema it reads.
    pub store_schema: u32,
    /// The shim protocol versions it reads: oldest, newest.
    pub shim_protocols: (u32, u32),
}

impl CheckReport {
    /// This build's report.
    pub fn this_build() -> CheckReport {
        CheckReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            store_schema: moor_state::schema::SCHEMA_VERSION,
            shim_protocols: (OLDEST_READABLE_PROTOCOL, PROTOCOL),
        }
    }
}

/// Why an upgrade did not happen.
#[derive(Debug, Error)]
pub enum UpgradeError {
    /// The binary could not be started.
    #[error("cannot run {binary}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its check failed.
    #[error("{binary} refused this daemon's configuration ({status}): {stderr}")]
    Refused {
        /// The binary.
        binary: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
    /// It printed no report: not a moor binary, or one without in-place upgrades.
    #[error("{binary} printed no upgrade report (not a moor with `daemon --check-upgrade`?): {output:?}")]
    NoReport {
        /// The binary.
        binary: PathBuf,
        /// What it printed.
        output: String,
    },
    /// Its check did not end in time.
    #[error("{binary} did not finish its check within {CHECK_DEADLINE:?}")]
    TimedOut {
        /// The binary.
        binary: PathBuf,
    },
    /// It cannot read this store.
    #[error(
        "{binary} (moor {version}) reads store schemas up to {reads}; this store is at {store}"
    )]
    Schema {
        /// The binary.
        binary: PathBuf,
        /// Its version.
        version: String,
        /// The newest schema it reads.
        reads: u32,
        /// This store's.
        store: u32,
    },
    /// It cannot read the shims this build started.
    #[error("{binary} (moor {version}) reads shim protocols {}..={}; this daemon's shims write {ours}", .reads.0, .reads.1)]
    Protocol {
        /// The binary.
        binary: PathBuf,
        /// Its version.
        version: String,
        /// The versions it reads.
        reads: (u32, u32),
        /// This build's.
        ours: u32,
    },
    /// A path or argument holds a NUL byte.
    #[error("{0:?} cannot be passed to execve (NUL byte)")]
    Nul(OsString),
    /// The exec itself failed.
    #[error("execve {binary}")]
    Exec {
        /// The binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

/// What this daemon was started as: its binary and arguments, read at start (before a
/// package replaces the file under it).
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The binary (`/proc/self/exe` at start).
    pub binary: PathBuf,
    /// Its arguments after argv\[0\] (`daemon --root ...`).
    pub args: Vec<OsString>,
}

impl Invocation {
    /// This process's.
    pub fn current() -> Invocation {
        let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("moor"));
        Invocation {
            binary,
            args: std::env::args_os().skip(1).collect(),
        }
    }
}

/// Runs `binary`'s check with this daemon's arguments and decides whether it can take over.
/// Blocking (a child process).
pub fn check(binary: &Path, invocation: &Invocation) -> Result<CheckReport, UpgradeError> {
    let mut cmd = std::process::Command::new(binary);
    cmd.args(&invocation.args).arg("--check-upgrade");
    let out = crate::host::child::output_within(&mut cmd, CHECK_DEADLINE)
        .map_err(|source| UpgradeError::Spawn {
            binary: binary.into(),
            source,
        })?
        .ok_or_else(|| UpgradeError::TimedOut {
            binary: binary.into(),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(UpgradeError::Refused {
            binary: binary.into(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let report: CheckReport = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| UpgradeError::NoReport {
            binary: binary.into(),
            output: stdout.chars().take(200).collect(),
        })?;
    judge(binary, report)
}

/// Whether a binary that reported `report` can manage this store and these shims.
fn judge(binary: &Path, report: CheckReport) -> Result<CheckReport, UpgradeError> {
    let store = moor_state::schema::SCHEMA_VERSION;
    if report.store_schema < store {
        return Err(UpgradeError::Schema {
            binary: binary.into(),
            version: report.version,
            reads: report.store_schema,
            store,
        });
    }
    let (oldest, newest) = report.shim_protocols;
    if !(oldest..=newest).contains(&PROTOCOL) {
        return Err(UpgradeError::Protocol {
            binary: binary.into(),
            version: report.version,
            reads: report.shim_protocols,
            ours: PROTOCOL,
        });
    }
    Ok(report)
}

fn c_string(text: &std::ffi::OsStr) -> Result<CString, UpgradeError> {
    CString::new(text.as_bytes()).map_err(|_| UpgradeError::Nul(text.to_os_string()))
}

/// Replaces this process with `binary` run with `args`, handing it `listener`. Returns only
/// on failure (the listener is close-on-exec again then).
pub fn exec(binary: &Path, args: &[OsString], listener: RawFd) -> UpgradeError {
    let mut argv = vec![match c_string(binary.as_os_str()) {
        Ok(c) => c,
        Err(e) => return e,
    }];
    for arg in args {
        match c_string(arg) {
            Ok(c) => argv.push(c),
            Err(e) => return e,
        }
    }
    let inherit = fcntl(listener, FcntlArg::F_SETFD(FdFlag::empty()));
    if let Err(source) = inherit {
        return UpgradeError::Exec {
            binary: binary.into(),
            source,
        };
    }
    // The process is about to be replaced; no other thread reads the environment now that
    // the API and the actors have stopped.
    std::env::set_var(LISTEN_FD_ENV, listener.to_string());
    let source = match nix::unistd::execv(&argv[0], &argv) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    std::env::remove_var(LISTEN_FD_ENV);
    let _ = fcntl(listener, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    UpgradeError::Exec {
        binary: binary.into(),
        source,
    }
}

/// The listening socket a previous daemon image handed over, if [`LISTEN_FD_ENV`] names
/// one. Taken once, at the very start (before any other thread reads the environment).
pub fn take_inherited() -> Option<OwnedFd> {
    let value = std::env::var(LISTEN_FD_ENV).ok()?;
    std::env::remove_var(LISTEN_FD_ENV);
    let fd: RawFd = value.parse().ok().filter(|&fd| fd > 2)?;
    // Close-on-exec again, and a check that it is an open descriptor at all.
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).ok()?;
    // SAFETY: the descriptor was left open across execve by the previous image of this
    // process for exactly this purpose (its number came in LISTEN_FD_ENV, which was just
    // removed so nothing else takes it), F_SETFD succeeded so it is open, and nothing else
    // in this process owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The handed-over descriptor as the API's listener, if it is a listening unix socket bound
/// at `socket`; else it is closed and None returned (the caller binds anew).
pub fn listener_at(fd: OwnedFd, socket: &Path) -> Option<UnixListener> {
    let addr: nix::sys::socket::UnixAddr = nix::sys::socket::getsockname(fd.as_raw_fd()).ok()?;
    let listening =
        nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::AcceptConn).ok()?;
    (listening && addr.path() == Some(socket)).then(|| UnixListener::from(fd))
}

/// The channel from the upgrade route to the daemon's serve loop.
#[derive(Debug)]
pub struct Trigger {
    tx: mpsc::UnboundedSender<PathBuf>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<PathBuf>>>,
}

impl Default for Trigger {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Trigger {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl Trigger {
    /// Asks the serve loop to hand over to `binary` (checked already).
    pub fn fire(&self, binary: PathBuf) {
        let _ = self.tx.send(binary);
    }

    /// The serve loop's end (taken once).
    pub fn take(&self) -> Option<mpsc::UnboundedReceiver<PathBuf>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(schema: u32, protocols: (u32, u32)) -> CheckReport {
        CheckReport {
            version: "9.9.9".into(),
            store_schema: schema,
            shim_protocols: protocols,
        }
    }

    #[test]
    fn a_binary_is_judged_on_the_store_schema_and_the_shim_protocol() {
        let b = Path::new("/new/moor");
        let this = CheckReport::this_build();
        assert_eq!(judge(b, this.clone()).unwrap(), this);
        let newer = report(this.store_schema + 1, (PROTOCOL, PROTOCOL + 1));
        assert!(judge(b, newer).is_ok());
        let e = judge(b, report(this.store_schema - 1, (1, PROTOCOL))).unwrap_err();
        assert!(e.to_string().contains("reads store schemas up to"), "{e}");
        let e = judge(b, report(this.store_schema, (PROTOCOL + 1, PROTOCOL + 2))).unwrap_err();
        assert!(e.to_string().contains("shim protocols"), "{e}");
    }

    #[test]
    fn a_binary_that_is_not_moor_is_refused_with_what_it_said() {
        let inv = Invocation {
            binary: "/x".into(),
            args: vec!["daemon".into()],
        };
        let e = check(Path::new("/bin/echo"), &inv).unwrap_err();
        assert!(matches!(e, UpgradeError::NoReport { .. }), "{e}");
        let e = check(Path::new("/bin/false"), &inv).unwrap_err();
        assert!(matches!(e, UpgradeError::Refused { .. }), "{e}");
        let e = check(Path::new("/nonexistent/moor"), &inv).unwrap_err();
        assert!(matches!(e, UpgradeError::Spawn { .. }), "{e}");
    }
}
