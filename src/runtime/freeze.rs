//! Pause and unpause: freezing a container's processes and thawing them.
//!
//! - runc containers: `runc pause ID` / `resume ID` through the async runc client, the
//!   cgroup freezer (the processes cannot observe it).
//! - process containers: SIGSTOP / SIGCONT to the container's process group. The shim
//!   starts the process with `setsid`, so its pid is also its process group id. The group is
//!   signalled only after the leader's identity is verified through a pidfd and its pgid is
//!   checked to be its own pid (never a pgid of 1 or less): while the leader lives (or is an
//!   unreaped zombie of its shim) its pid, hence the pgid, cannot name another group.

use moor_state::reconcile::RuntimeState;
use moor_state::record::RuntimeKind;
use moor_state::ProcessIdentity;
use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgid, Pid};
use thiserror::Error;

use super::runc::{Runc, RuncError};
use crate::identity::{IdentityError, PidFd};

/// Why a container could not be frozen or thawed.
#[derive(Debug, Error)]
pub enum FreezeError {
    /// The container needs runc, which this daemon does not have.
    #[error("the runc runtime is not available to {action} the container")]
    NoRunc {
        /// `pause` or `resume`.
        action: &'static str,
    },
    /// runc could not freeze or thaw it.
    #[error(transparent)]
    Runc(#[from] RuncError),
    /// The recorded process is not the one running (or is gone).
    #[error("verify the container's process")]
    Identity(#[source] IdentityError),
    /// The process group of the container's process could not be read.
    #[error("getpgid({pid})")]
    Pgid {
        /// The container's process.
        pid: i32,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The container's process does not lead its own process group: its group is not signalled.
    #[error(
        "process {pid} is not its process group's leader (pgid {pgid}): its group is not signalled"
    )]
    NotLeader {
        /// The container's process.
        pid: i32,
        /// Its process group.
        pgid: i32,
    },
    /// killpg(2) failed.
    #[error("send {signal} to process group {pgid}")]
    Signal {
        /// The process group.
        pgid: i32,
        /// The signal.
        signal: Signal,
        /// The errno.
        #[source]
        source: Errno,
    },
}

/// Freezes the container whose init is `process`: an async `runc pause`, or SIGSTOP to its
/// group (which does not block).
pub async fn pause(
    runtime: RuntimeKind,
    runc: Option<&Runc>,
    id: &str,
    process: &ProcessIdentity,
) -> Result<(), FreezeError> {
    match runtime {
        RuntimeKind::Runc => Ok(need(runc, "pause")?.pause(id).await?),
        RuntimeKind::Process => signal_group(process, Signal::SIGSTOP),
    }
}

/// Thaws the container whose init is `process`: an async `runc resume`, or SIGCONT.
pub async fn resume(
    runtime: RuntimeKind,
    runc: Option<&Runc>,
    id: &str,
    process: &ProcessIdentity,
) -> Result<(), FreezeError> {
    match runtime {
        RuntimeKind::Runc => Ok(need(runc, "resume")?.resume(id).await?),
        RuntimeKind::Process => signal_group(process, Signal::SIGCONT),
    }
}

/// Whether a runc container is frozen, as `runc state` reports it (`None`: runc has no state
/// or cannot tell).
pub async fn runc_paused(runc: Option<&Runc>, id: &str) -> Option<bool> {
    let runc = runc?;
    if !runc.knows(id) {
        return None;
    }
    let state = runc.state(id).await.ok()?.runtime_state()?;
    Some(state == RuntimeState::Paused)
}

fn need<'a>(runc: Option<&'a Runc>, action: &'static str) -> Result<&'a Runc, FreezeError> {
    runc.ok_or(FreezeError::NoRunc { action })
}

/// Sends `signal` to the leader through a verified pidfd, then to its whole group.
fn signal_group(process: &ProcessIdentity, signal: Signal) -> Result<(), FreezeError> {
    let pidfd =
        PidFd::open_verified(&super::from_identity(process)).map_err(FreezeError::Identity)?;
    let pid = pidfd.pid();
    let pgid = getpgid(Some(Pid::from_raw(pid)))
        .map_err(|source| FreezeError::Pgid { pid, source })?
        .as_raw();
    if pgid != pid || pgid <= 1 {
        return Err(FreezeError::NotLeader { pid, pgid });
    }
    // The leader first, through the fd that provably names it.
    pidfd
        .send_signal(signal as i32)
        .map_err(FreezeError::Identity)?;
    killpg(Pid::from_raw(pgid), signal).map_err(|source| FreezeError::Signal {
        pgid,
        signal,
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    fn block<T>(fut: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(fut)
    }

    fn state_of(pid: i32) -> char {
        crate::identity::stat(pid)
            .expect("stat")
            .expect("alive")
            .state
    }

    fn wait_for_state(pid: i32, want: char) -> char {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = state_of(pid);
            if s == want || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn process_group_is_stopped_and_continued() {
        // A group leader with a child in its group, like the shim's `setsid` child.
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 100 & wait"])
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let pid = i32::try_from(leader.id()).expect("pid");
        let ident = crate::runtime::to_identity(&crate::identity::identify(pid).expect("identify"));
        block(pause(RuntimeKind::Process, None, "x", &ident)).expect("pause");
        assert_eq!(wait_for_state(pid, 'T'), 'T');
        block(resume(RuntimeKind::Process, None, "x", &ident)).expect("resume");
        assert_ne!(wait_for_state(pid, 'S'), 'T');
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = leader.wait();
    }

    #[test]
    fn a_process_that_does_not_lead_its_group_is_refused() {
        let mut child = Command::new("sleep").arg("100").spawn().expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        let ident = crate::runtime::to_identity(&crate::identity::identify(pid).expect("identify"));
        let err = block(pause(RuntimeKind::Process, None, "x", &ident)).unwrap_err();
        assert!(matches!(err, FreezeError::NotLeader { .. }), "{err}");
        assert_ne!(state_of(pid), 'T');
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_reused_identity_is_never_signalled() {
        let mut child = Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        let mut ident =
            crate::runtime::to_identity(&crate::identity::identify(pid).expect("identify"));
        ident.start_time += 1;
        let err = block(pause(RuntimeKind::Process, None, "x", &ident)).unwrap_err();
        assert!(matches!(err, FreezeError::Identity(_)), "{err}");
        assert_ne!(state_of(pid), 'T');
        let _ = child.kill();
        let _ = child.wait();
        let err = block(pause(RuntimeKind::Runc, None, "x", &ident)).unwrap_err();
        assert!(
            matches!(err, FreezeError::NoRunc { action: "pause" }),
            "{err}"
        );
    }
}
