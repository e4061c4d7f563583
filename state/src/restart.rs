//! Restart policies, as Docker applies them: whether a container that ended is
//! started again, and after how long. Pure: the container actor and the
//! reconciler ask; neither decides on its own.

use std::time::Duration;

use crate::machine::State;
use crate::record::{ContainerRecord, RestartPolicy};

/// The first back-off delay (Docker's restart manager: 100 ms).
pub const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// The longest back-off delay (Docker: one minute).
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off (Docker: 10 s).
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// Why the container ended up not running, for the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// Its process ended while the daemon watched it.
    Exited,
    /// The daemon is starting and finds it not running (it ended while the daemon was
    /// away, or the daemon stopped it at shutdown without live-restore).
    DaemonStart,
}

/// Whether the policy starts the container again. Only exited containers qualify;
/// `--rm` containers are removed instead.
pub fn should_restart(rec: &ContainerRecord, occasion: Occasion) -> bool {
    let (State::Exited { exit, .. } | State::Restarting { exit, .. }) = &rec.state else {
        return false;
    };
    if rec.spec.auto_remove {
        return false;
    }
    let code = exit.map_or(255, |e| e.code());
    match rec.spec.restart_policy {
        RestartPolicy::No => false,
        // Docker brings `always` back at daemon start even after a manual stop.
        RestartPolicy::Always => occasion == Occasion::DaemonStart || !rec.manually_stopped,
        RestartPolicy::UnlessStopped => !rec.manually_stopped,
        RestartPolicy::OnFailure { max_retries } => {
            !rec.manually_stopped
                && code != 0
                && (max_retries == 0 || rec.restart_count < max_retries)
        }
    }
}

/// The delay before the next restart: 100 ms doubling per consecutive restart, at most
/// a minute; `ran_for` at least [`RESET_AFTER`] starts over.
pub fn delay(consecutive: u32, ran_for: Duration) -> Duration {
    if ran_for >= RESET_AFTER {
        return INITIAL_DELAY;
    }
    let factor = 1u32.checked_shl(consecutive.min(20)).unwrap_or(u32::MAX);
    INITIAL_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ContainerSpec, Exit};
    use chrono::Utc;

    fn exited(policy: RestartPolicy, code: i32, count: u32, manual: bool) -> ContainerRecord {
        let spec = ContainerSpec {
            restart_policy: policy,
            ..Default::default()
        };
        let mut r = ContainerRecord::new("a".repeat(64), "c".into(), spec, Utc::now());
        r.state = State::Exited {
            exit: Some(Exit::Code(code)),
            error: String::new(),
            started_at: None,
            finished_at: Utc::now(),
        };
        r.restart_count = count;
        r.manually_stopped = manual;
        r
    }

    #[test]
    fn no_never_restarts() {
        assert!(!should_restart(
            &exited(RestartPolicy::No, 1, 0, false),
            Occasion::Exited
        ));
    }

    #[test]
    fn always_restarts_unless_stopped_by_hand_until_the_daemon_starts() {
        let p = RestartPolicy::Always;
        assert!(should_restart(&exited(p, 0, 5, false), Occasion::Exited));
        assert!(!should_restart(&exited(p, 0, 5, true), Occasion::Exited));
        assert!(should_restart(
            &exited(p, 0, 5, true),
            Occasion::DaemonStart
        ));
    }

    #[test]
    fn unless_stopped_respects_a_manual_stop_even_at_daemon_start() {
        let p = RestartPolicy::UnlessStopped;
        assert!(should_restart(
            &exited(p, 0, 0, false),
            Occasion::DaemonStart
        ));
        assert!(!should_restart(
            &exited(p, 0, 0, true),
            Occasion::DaemonStart
        ));
    }

    #[test]
    fn on_failure_counts_and_ignores_success() {
        let p = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(should_restart(&exited(p, 1, 0, false), Occasion::Exited));
        assert!(should_restart(&exited(p, 1, 1, false), Occasion::Exited));
        assert!(!should_restart(&exited(p, 1, 2, false), Occasion::Exited));
        assert!(!should_restart(&exited(p, 0, 0, false), Occasion::Exited));
        let unlimited = RestartPolicy::OnFailure { max_retries: 0 };
        assert!(should_restart(
            &exited(unlimited, 3, 1000, false),
            Occasion::Exited
        ));
    }

    #[test]
    fn auto_remove_and_running_never_restart() {
        let mut r = exited(RestartPolicy::Always, 1, 0, false);
        std::sync::Arc::make_mut(&mut r.spec).auto_remove = true;
        assert!(!should_restart(&r, Occasion::Exited));
        let mut r = exited(RestartPolicy::Always, 1, 0, false);
        r.state = State::Created;
        assert!(!should_restart(&r, Occasion::DaemonStart));
    }

    #[test]
    fn delay_doubles_to_a_minute_and_resets_after_a_long_run() {
        let short = Duration::from_secs(1);
        assert_eq!(delay(0, short), Duration::from_millis(100));
        assert_eq!(delay(1, short), Duration::from_millis(200));
        assert_eq!(delay(3, short), Duration::from_millis(800));
        assert_eq!(delay(30, short), MAX_DELAY);
        assert_eq!(delay(30, Duration::from_secs(10)), INITIAL_DELAY);
    }
}
