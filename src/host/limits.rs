//! The daemon's open-file limit. A daemon holds a descriptor for every container it watches
//! (the pidfd of its shim) besides its sockets and store: 10,000 containers need more than
//! the usual soft limit of 1,024. At start the daemon raises its soft `RLIMIT_NOFILE` to
//! the hard limit ([`raise_nofile`]); the processes it starts get the soft limit it was
//! started with back ([`inherit_nofile`]), as Go's `os/exec` and systemd do, so a shim, a
//! container and an exec see the limit they would have had without the raise.

use std::os::unix::process::CommandExt;
use std::sync::OnceLock;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The soft and hard limits the daemon was started with, once [`raise_nofile`] ran.
static STARTED_WITH: OnceLock<(u64, u64)> = OnceLock::new();

/// What [`raise_nofile`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileRaise {
    /// The soft limit before.
    pub before: u64,
    /// The soft limit now (the hard limit, unless setting it failed).
    pub after: u64,
}

/// Why the limit could not be read or raised.
#[derive(Debug, thiserror::Error)]
#[error("RLIMIT_NOFILE: {0}")]
pub struct LimitError(#[from] nix::Error);

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit, and remembers the limits
/// it had for [`inherit_nofile`]. Called once, at the daemon's start.
pub fn raise_nofile() -> Result<NofileRaise, LimitError> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let _ = STARTED_WITH.set((soft, hard));
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(NofileRaise {
        before: soft,
        after: soft.max(hard),
    })
}

/// Makes `cmd`'s process start with the open-file limits this process was started with
/// (nothing to do when [`raise_nofile`] has not run).
pub fn inherit_nofile(cmd: &mut std::process::Command) {
    let Some(&(soft, hard)) = STARTED_WITH.get() else {
        return;
    };
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it calls setrlimit(2) (a plain system call, on
    // the list of async-signal-safe functions' equivalents: no allocation, no lock) on a
    // value copied into the closure, and builds an io::Error from errno only on failure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
