//! An exec run to its end under a deadline, its output kept up to a limit: what a
//! healthcheck probe is (moby runs its probes as execs too). Past the deadline the exec is
//! killed through the registry, like the execs of a container that exits: the process
//! itself (under runc it is `runc exec`'s child, not the daemon's) and then its runtime.

use std::sync::Arc;
use std::time::Duration;

use super::{ExecRun, ExecStatus};
use crate::daemon::Shared;
use crate::identity::{self, PidFd};

/// How long a killed exec's end is waited for before the result is taken without it.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// How a bounded exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded {
    /// Its exit code; None when it was killed at the deadline (or its end never came).
    pub exit_code: Option<i32>,
    /// The first `limit` bytes of its stdout and stderr, in the order they came.
    pub output: Vec<u8>,
    /// More output came than was kept.
    pub truncated: bool,
}

/// Waits for the started exec `id` (`run`, attached) to end, keeping `limit` bytes of its
/// output; kills it once `timeout` has passed. The instance is forgotten afterwards.
pub async fn finish(
    shared: Arc<Shared>,
    id: String,
    run: ExecRun,
    limit: usize,
    timeout: Duration,
) -> Bounded {
    let mut out = Bounded {
        exit_code: None,
        output: Vec::new(),
        truncated: false,
    };
    if let Some(mut frames) = run.output {
        let mut keep = |frame: &[u8]| {
            // Every frame is one 8-byte header and its payload (`exec::frame`).
            let payload = frame.get(8..).unwrap_or_default();
            let room = limit.saturating_sub(out.output.len());
            out.output
                .extend_from_slice(&payload[..payload.len().min(room)]);
            out.truncated |= payload.len() > room;
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut timed_out = false;
        loop {
            match tokio::time::timeout_at(deadline, frames.recv()).await {
                Ok(Some(frame)) => keep(&frame),
                Ok(None) => break,
                Err(_) => {
                    timed_out = true;
                    shared.execs.kill(&id);
                    let grace = tokio::time::Instant::now() + KILL_GRACE;
                    while let Ok(Some(frame)) = tokio::time::timeout_at(grace, frames.recv()).await
                    {
                        keep(&frame);
                    }
                    break;
                }
            }
        }
        if !timed_out {
            out.exit_code = match shared.execs.get(&id).map(|e| e.status) {
                Some(ExecStatus::Exited { code, .. }) => Some(code),
                _ => None,
            };
        }
    }
    shared.execs.forget(&id);
    out
}

/// Kills the process an exec runs through its runtime (`runc exec`, our child `runner`):
/// its pid, once runc's pid file gave it, names the process only while it is still
/// `runner`'s child (an unreaped child's pid cannot be reused, so neither can its
/// children's parent pid): checked after the pidfd is opened, then SIGKILL through it.
pub(super) fn kill_runtime_child(shared: &Shared, id: &str, runner: i32) {
    let Some(ExecStatus::Running { pid }) = shared.execs.get(id).map(|e| e.status) else {
        return;
    };
    let child_of_runner = |pid| matches!(identity::stat(pid), Ok(Some(s)) if s.ppid == runner);
    if pid == runner || pid <= 1 || !child_of_runner(pid) {
        return;
    }
    let Ok(pidfd) = PidFd::open(pid) else {
        return;
    };
    if child_of_runner(pid) {
        if let Err(e) = pidfd.send_signal(libc::SIGKILL) {
            tracing::warn!(exec_id = %id, pid, error = %e, "cannot kill an exec's process");
        }
    }
}
