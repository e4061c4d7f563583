//! `moor-shim adopt <container-run-dir>`: a new shim for a container process whose shim
//! died (an orphan). The process is not this shim's child and cannot become one, so its exit
//! status is taken the one way the kernel gives it to a non-parent: the shim traces the
//! process (`PTRACE_SEIZE` with `PTRACE_O_TRACEEXIT`, which stops nothing by itself) and
//! reads the status at the exit stop (`PTRACE_GETEVENTMSG`). Signals the process receives
//! are passed on unchanged; a group stop (SIGSTOP, a process container's pause) is kept
//! with `PTRACE_LISTEN`. The shim then writes `exit.json` as any shim does.
//!
//! Order: read `started.json`, check the process's identity, detach, seize, check the
//! identity again (the pid cannot be reused while it is traced), rewrite `started.json`
//! with this shim (same process and `started_at`), report, trace until the exit, `exit.json`.
//! A failed adoption reports `Failed` and writes no `exit.json`: the process still runs.
//! Its output is lost: the pipes to the dead shim are gone (a write gets EPIPE).

use std::fs;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::daemonize::{self, Role};
use super::protocol::{ExitKind, ExitStatus, Report, Started, EXIT_FILE, PROTOCOL, STARTED_FILE};
use super::{clock, fail_report, release_stdout, report};
use crate::host::atomic;
use crate::identity::{self, Check};

/// Exit code of the spawned process when the adoption failed (reported on stdout too).
const ADOPT_FAILED: i32 = 1;

/// The whole `moor-shim adopt DIR`; returns the process exit code.
pub fn run(dir: &Path) -> i32 {
    let started = match fs::canonicalize(dir)
        .map_err(|e| e.to_string())
        .and_then(|dir| {
            let text = fs::read(dir.join(STARTED_FILE))
                .map_err(|e| format!("read {STARTED_FILE}: {e}"))?;
            let started: Started =
                serde_json::from_slice(&text).map_err(|e| format!("parse {STARTED_FILE}: {e}"))?;
            Ok((dir, started))
        }) {
        Ok(found) => found,
        Err(error) => return fail_report(&error, ADOPT_FAILED),
    };
    let (dir, old) = started;
    if let Err(error) = check_alive(&old) {
        return fail_report(&error, ADOPT_FAILED);
    }
    match daemonize::detach(&dir) {
        Ok(Role::Exit) => return 0,
        Ok(Role::Shim) => {}
        Err(e) => return fail_report(&format!("detach: {}", super::chain(&e)), ADOPT_FAILED),
    }
    let pid = Pid::from_raw(old.process.pid);
    let adopted = ptrace::seize(pid, ptrace::Options::PTRACE_O_TRACEEXIT)
        .map_err(|e| format!("trace pid {pid}: {e}"))
        .and_then(|()| check_alive(&old))
        .and_then(|()| {
            let shim = identity::identify(nix::unistd::getpid().as_raw())
                .map_err(|e| format!("identify the shim: {}", super::chain(&e)))?;
            let record = Started {
                protocol: PROTOCOL,
                shim,
                ..old.clone()
            };
            atomic::write_json(&dir, STARTED_FILE, &record)
                .map_err(|e| format!("write {STARTED_FILE}: {}", super::chain(&e)))?;
            Ok(record)
        });
    let record = match adopted {
        Ok(record) => record,
        Err(error) => {
            let _ = ptrace::detach(pid, None);
            return fail_report(&error, ADOPT_FAILED);
        }
    };
    report(&Report::Started(record));
    release_stdout();
    match trace(pid) {
        Ok(exit) => {
            let status = ExitStatus {
                protocol: PROTOCOL,
                exit,
                finished_at: clock::now_fixed(),
                start_error: None,
                oom_killed: false,
            };
            match atomic::write_json(&dir, EXIT_FILE, &status) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("moor-shim: write {EXIT_FILE}: {}", super::chain(&e));
                    1
                }
            }
        }
        Err(e) => {
            // No exit status: no exit file (the daemon verifies the process gone by identity).
            eprintln!("moor-shim: trace pid {pid}: {e}");
            1
        }
    }
}

/// The recorded process runs, with its identity; or why not.
fn check_alive(run: &Started) -> Result<(), String> {
    match identity::check(&run.process) {
        Ok(Check::Alive) => Ok(()),
        Ok(other) => Err(format!(
            "process {} is not the recorded one: {other:?}",
            run.process.pid
        )),
        Err(e) => Err(format!(
            "check process {}: {}",
            run.process.pid,
            super::chain(&e)
        )),
    }
}

/// Follows the traced process to its end; its status as `waitpid` would give its parent.
fn trace(pid: Pid) -> Result<ExitKind, Errno> {
    let mut exit = None;
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(_, _, libc::PTRACE_EVENT_EXIT)) => {
                let status = ptrace::getevent(pid)? as libc::c_int;
                exit = Some(decode(status));
                let _ = ptrace::cont(pid, None);
            }
            Ok(WaitStatus::PtraceEvent(_, _, libc::PTRACE_EVENT_STOP)) => listen(pid)?,
            Ok(WaitStatus::PtraceEvent(..)) => ptrace::cont(pid, None)?,
            // A signal on its way in: delivered unchanged.
            Ok(WaitStatus::Stopped(_, signal)) => ptrace::cont(pid, Some(signal))?,
            Ok(WaitStatus::Exited(_, code)) => return Ok(exit.unwrap_or(ExitKind::Code(code))),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Ok(exit.unwrap_or(ExitKind::Signal(signal as i32)))
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // Gone without a final notification: the exit stop's status, when it was seen.
            Err(Errno::ECHILD) | Err(Errno::ESRCH) => return exit.ok_or(Errno::ECHILD),
            Err(e) => return Err(e),
        }
    }
}

/// A `waitpid` status word as an exit.
fn decode(status: libc::c_int) -> ExitKind {
    if libc::WIFSIGNALED(status) {
        ExitKind::Signal(libc::WTERMSIG(status))
    } else {
        ExitKind::Code(libc::WEXITSTATUS(status))
    }
}

/// `PTRACE_LISTEN`: the tracee stays in its group stop (a pause) but reports the next event.
fn listen(pid: Pid) -> Result<(), Errno> {
    // SAFETY: PTRACE_LISTEN takes no address or data (both null); `pid` is this shim's
    // seized tracee, in a group stop (the PTRACE_EVENT_STOP just reported), which is the
    // only state the kernel accepts the request in (EIO otherwise, returned as an error).
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_LISTEN,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode_as_the_parent_sees_them() {
        assert_eq!(decode(7 << 8), ExitKind::Code(7));
        assert_eq!(decode(libc::SIGKILL), ExitKind::Signal(libc::SIGKILL));
        assert_eq!(
            decode(libc::SIGTERM | 0x80),
            ExitKind::Signal(libc::SIGTERM)
        );
    }
}
