//! Process identity: (pid, start time, boot id), checked before anything is signalled, and pidfds.
//!
//! A pid alone is never trusted: pids are reused. A recorded process is its pid, the start time
//! the kernel keeps for it (field 22 of `/proc/PID/stat`, clock ticks since boot) and the boot
//! id; together they name one process for the lifetime of the machine. Signals go through a
//! pidfd opened *before* the identity is re-checked, so the fd provably refers to the recorded
//! process and a reused pid is never signalled.
//!
//! Used by the shim and the daemon: std, libc and nix only.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use nix::errno::Errno;

use crate::shim::protocol::Identity;

/// Where the kernel publishes the id of the current boot.
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// What went wrong while identifying or signalling a process.
#[derive(Debug)]
pub enum IdentityError {
    /// /proc/sys/kernel/random/boot_id could not be read.
    BootId {
        /// The read error.
        source: io::Error,
    },
    /// /proc/PID/stat could not be read (other than the process being gone).
    Stat {
        /// The process asked about.
        pid: i32,
        /// The read error.
        source: io::Error,
    },
    /// /proc/PID/stat did not have the expected shape.
    Parse {
        /// The process asked about.
        pid: i32,
        /// What was missing or malformed.
        what: &'static str,
    },
    /// The process no longer exists (or is a zombie, or belongs to another boot).
    Gone {
        /// The recorded pid.
        pid: i32,
    },
    /// The pid now belongs to another process.
    Mismatch {
        /// The recorded pid.
        pid: i32,
        /// The recorded start time.
        expected_start_time: u64,
        /// The start time of the process that has the pid now.
        found_start_time: u64,
    },
    /// pidfd_open(2) failed.
    PidfdOpen {
        /// The pid it was called for.
        pid: i32,
        /// The errno.
        source: Errno,
    },
    /// pidfd_send_signal(2) failed.
    Signal {
        /// The pid the fd refers to.
        pid: i32,
        /// The signal number.
        signal: i32,
        /// The errno.
        source: Errno,
    },
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::BootId { .. } => write!(f, "read {BOOT_ID_PATH}"),
            IdentityError::Stat { pid, .. } => write!(f, "read /proc/{pid}/stat"),
            IdentityError::Parse { pid, what } => write!(f, "parse /proc/{pid}/stat: {what}"),
            IdentityError::Gone { pid } => write!(f, "process {pid} is gone"),
            IdentityError::Mismatch {
                pid,
                expected_start_time,
                found_start_time,
            } => write!(
                f,
                "pid {pid} was reused: start time {found_start_time}, recorded {expected_start_time}"
            ),
            IdentityError::PidfdOpen { pid, .. } => write!(f, "pidfd_open({pid})"),
            IdentityError::Signal { pid, signal, .. } => {
                write!(f, "send signal {signal} to pid {pid} through its pidfd")
            }
        }
    }
}

impl std::error::Error for IdentityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdentityError::BootId { source } | IdentityError::Stat { source, .. } => Some(source),
            IdentityError::PidfdOpen { source, .. } | IdentityError::Signal { source, .. } => {
                Some(source)
            }
            IdentityError::Parse { .. }
            | IdentityError::Gone { .. }
            | IdentityError::Mismatch { .. } => None,
        }
    }
}

/// The outcome of comparing a recorded identity with what runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The recorded process runs.
    Alive,
    /// It ended: no such pid, a zombie, or the machine rebooted since.
    Gone,
    /// The pid belongs to another process now.
    Reused,
}

/// The fields of /proc/PID/stat that moor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: R, S, D, Z, T...
    pub state: char,
    /// Field 4: the parent pid.
    pub ppid: i32,
    /// Field 6: the session id.
    pub session: i32,
    /// Fields 14 and 15: user and system time, in clock ticks.
    pub times: (u64, u64),
    /// Fields 16 and 17: user and system time of the children it waited for, in ticks.
    pub children_times: (u64, u64),
    /// Field 22: start time in clock ticks since boot.
    pub start_time: u64,
}

/// The current boot id, trimmed (read once, then cached).
pub fn boot_id() -> Result<String, IdentityError> {
    static BOOT_ID: OnceLock<String> = OnceLock::new();
    if let Some(id) = BOOT_ID.get() {
        return Ok(id.clone());
    }
    let id = fs::read_to_string(BOOT_ID_PATH)
        .map_err(|source| IdentityError::BootId { source })?
        .trim()
        .to_owned();
    Ok(BOOT_ID.get_or_init(|| id).clone())
}

/// Reads /proc/PID/stat; `Ok(None)` when the process does not exist.
pub fn stat(pid: i32) -> Result<Option<ProcStat>, IdentityError> {
    let text = match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        // ESRCH: the process went away between open and read.
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            return Ok(None)
        }
        Err(source) => return Err(IdentityError::Stat { pid, source }),
    };
    parse_stat(pid, &text).map(Some)
}

/// Parses the fields after the command name; `comm` may hold spaces and parentheses, so
/// the split is at the LAST `)`.
fn parse_stat(pid: i32, text: &str) -> Result<ProcStat, IdentityError> {
    let close = text.rfind(')').ok_or(IdentityError::Parse {
        pid,
        what: "no ')' after comm",
    })?;
    // Fields from 3 (state) on.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    let state = field(3)
        .and_then(|s| s.chars().next())
        .ok_or(IdentityError::Parse { pid, what: "state" })?;
    let ppid = field(4)
        .and_then(|s| s.parse().ok())
        .ok_or(IdentityError::Parse { pid, what: "ppid" })?;
    let start_time = field(22)
        .and_then(|s| s.parse().ok())
        .ok_or(IdentityError::Parse {
            pid,
            what: "start time (field 22)",
        })?;
    let number = |n: usize| field(n).and_then(|s| s.parse::<u64>().ok());
    let session = field(6).and_then(|s| s.parse().ok());
    Ok(ProcStat {
        state,
        ppid,
        session: session.ok_or(IdentityError::Parse {
            pid,
            what: "session",
        })?,
        times: number(14).zip(number(15)).ok_or(IdentityError::Parse {
            pid,
            what: "utime and stime",
        })?,
        children_times: number(16).zip(number(17)).ok_or(IdentityError::Parse {
            pid,
            what: "cutime and cstime",
        })?,
        start_time,
    })
}

/// A container's processes as the process runtime makes them: its init and every process in
/// the init's session (the init is started with setsid), sorted.
pub fn session_pids(init: i32) -> Vec<i32> {
    let mut pids = vec![init];
    let Ok(dir) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let pid = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok());
        let Some(pid) = pid.filter(|&p| p != init) else {
            continue;
        };
        if matches!(stat(pid), Ok(Some(s)) if s.session == init) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// The identity of a live process.
pub fn identify(pid: i32) -> Result<Identity, IdentityError> {
    let stat = stat(pid)?.ok_or(IdentityError::Gone { pid })?;
    Ok(Identity {
        pid,
        start_time: stat.start_time,
        boot_id: boot_id()?,
    })
}

/// Compares a recorded identity with the process that has its pid now.
pub fn check(id: &Identity) -> Result<Check, IdentityError> {
    if boot_id()? != id.boot_id {
        return Ok(Check::Gone);
    }
    Ok(match stat(id.pid)? {
        None => Check::Gone,
        Some(s) if s.state == 'Z' || s.state == 'X' => Check::Gone,
        Some(s) if s.start_time != id.start_time => Check::Reused,
        Some(_) => Check::Alive,
    })
}

/// A pidfd: a handle on one process that stays valid (and never names another process)
/// after the pid is reused. Readable once the process has exited.
#[derive(Debug)]
pub struct PidFd {
    /// The fd from pidfd_open(2).
    fd: OwnedFd,
    /// The pid it was opened for (for messages).
    pid: i32,
}

impl PidFd {
    /// Opens a pidfd without checking who has `pid`: only for a child the caller spawned and
    /// has not reaped (its pid cannot be reused before it is waited for).
    pub fn open(pid: i32) -> Result<PidFd, IdentityError> {
        // SAFETY: pidfd_open takes a pid and a flags word (0) by value and touches no memory
        // of ours; the return value is checked before use.
        let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if ret < 0 {
            return Err(IdentityError::PidfdOpen {
                pid,
                source: Errno::last(),
            });
        }
        let raw = RawFd::try_from(ret).map_err(|_| IdentityError::PidfdOpen {
            pid,
            source: Errno::EBADF,
        })?;
        // SAFETY: pidfd_open succeeded, so `raw` is a new fd that nothing else owns; the
        // OwnedFd becomes its only owner and closes it once.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(PidFd { fd, pid })
    }

    /// Opens a pidfd for `id.pid`, then re-checks the identity: if it still matches, the fd
    /// (opened first) refers to the recorded process, whatever happens to the pid later.
    pub fn open_verified(id: &Identity) -> Result<PidFd, IdentityError> {
        let pidfd = PidFd::open(id.pid).map_err(|e| match e {
            IdentityError::PidfdOpen {
                source: Errno::ESRCH,
                ..
            } => IdentityError::Gone { pid: id.pid },
            other => other,
        })?;
        match check(id)? {
            Check::Alive => Ok(pidfd),
            Check::Gone => Err(IdentityError::Gone { pid: id.pid }),
            Check::Reused => Err(IdentityError::Mismatch {
                pid: id.pid,
                expected_start_time: id.start_time,
                found_start_time: stat(id.pid)?.map_or(0, |s| s.start_time),
            }),
        }
    }

    /// The pid this fd was opened for.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` to the process the fd refers to (never to a reused pid).
    pub fn send_signal(&self, signal: i32) -> Result<(), IdentityError> {
        // SAFETY: pidfd_send_signal(pidfd, sig, info, flags): the fd is open for the life of
        // `self`, `info` is NULL (the kernel fills in a SI_USER siginfo) and flags is 0.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if ret < 0 {
            return Err(IdentityError::Signal {
                pid: self.pid,
                signal,
                source: Errno::last(),
            });
        }
        Ok(())
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use super::*;

    fn sleeper() -> Child {
        Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep")
    }

    fn pid_of(child: &Child) -> i32 {
        i32::try_from(child.id()).expect("pid fits i32")
    }

    /// Waits (with a deadline) until `child` has exited, without reaping it.
    fn wait_zombie(pid: i32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stat(pid).expect("stat").map(|s| s.state) != Some('Z') {
            assert!(Instant::now() < deadline, "pid {pid} did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn parse_handles_parens_and_spaces_in_comm() {
        let mut fields = vec!["S", "1", "2", "3"];
        fields.resize(11, "0");
        fields.extend(["5", "6", "7", "8"]);
        fields.resize(19, "0");
        fields.push("4242");
        fields.push("99");
        let text = format!("77 (a) b (c)) {}\n", fields.join(" "));
        let s = parse_stat(77, &text).expect("parse");
        assert_eq!(
            s,
            ProcStat {
                state: 'S',
                ppid: 1,
                session: 3,
                times: (5, 6),
                children_times: (7, 8),
                start_time: 4242
            }
        );
        assert!(parse_stat(77, "77 (x S 1").is_err());
    }

    #[test]
    fn identify_self() {
        let me = i32::try_from(std::process::id()).expect("pid");
        let id = identify(me).expect("identify self");
        assert_eq!(id.pid, me);
        assert!(id.start_time > 0);
        assert_eq!(id.boot_id.len(), 36, "boot id {:?}", id.boot_id);
        assert_eq!(check(&id).expect("check"), Check::Alive);
    }

    #[test]
    fn child_alive_then_gone_and_tampering() {
        let mut child = sleeper();
        let id = identify(pid_of(&child)).expect("identify");
        assert_eq!(check(&id).expect("check"), Check::Alive);

        let reused = Identity {
            start_time: id.start_time + 1,
            ..id.clone()
        };
        assert_eq!(check(&reused).expect("check"), Check::Reused);
        let other_boot = Identity {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            ..id.clone()
        };
        assert_eq!(check(&other_boot).expect("check"), Check::Gone);

        child.kill().expect("kill");
        wait_zombie(id.pid);
        assert_eq!(check(&id).expect("check zombie"), Check::Gone);
        child.wait().expect("wait");
        assert_eq!(check(&id).expect("check reaped"), Check::Gone);
    }

    #[test]
    fn signal_through_verified_pidfd_kills() {
        let mut child = sleeper();
        let id = identify(pid_of(&child)).expect("identify");
        let pidfd = PidFd::open_verified(&id).expect("open verified");
        assert_eq!(pidfd.pid(), id.pid);
        pidfd.send_signal(libc::SIGKILL).expect("signal");
        let status = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn open_verified_with_wrong_start_time_fails_and_does_not_signal() {
        let mut child = sleeper();
        let id = identify(pid_of(&child)).expect("identify");
        let wrong = Identity {
            start_time: id.start_time.wrapping_sub(1),
            ..id.clone()
        };
        match PidFd::open_verified(&wrong) {
            Err(IdentityError::Mismatch {
                found_start_time, ..
            }) => assert_eq!(found_start_time, id.start_time),
            other => panic!("expected Mismatch, got {other:?}"),
        }
        assert_eq!(check(&id).expect("check"), Check::Alive);
        child.kill().expect("kill");
        child.wait().expect("wait");
        assert!(matches!(
            PidFd::open_verified(&id),
            Err(IdentityError::Gone { .. })
        ));
    }

    #[test]
    fn pidfd_is_readable_after_exit() {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut child = sleeper();
        let pidfd = PidFd::open(pid_of(&child)).expect("open");
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, PollTimeout::ZERO).expect("poll"), 0);
        child.kill().expect("kill");
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, 10_000u16).expect("poll"), 1);
        child.wait().expect("wait");
    }
}
