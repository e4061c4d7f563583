//! systemd's notification protocol (sd_notify): `READY=1` once the reconciler has run and the
//! API serves, `STATUS=` with a one-line summary, `RELOADING=1` + `MONOTONIC_USEC` around a
//! SIGHUP, `STOPPING=1` at shutdown and `WATCHDOG=1` when the unit sets `WatchdogSec`.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op. A failed send is logged at
//! debug level only: the daemon must run the same with or without a service manager.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use sd_notify::NotifyState;
use tracing::debug;

use crate::daemon::messages::{Summarize, Summary};
use crate::daemon::supervisor::Supervisor;
use crate::daemon::Shared;

/// How often the STATUS line is refreshed when no watchdog asks for more.
const STATUS_PERIOD: Duration = Duration::from_secs(5);

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        debug!(error = %e, "sd_notify failed");
    }
}

/// The one-line summary systemd shows as the unit's status.
pub fn status_line(summary: &Summary, live_restore: bool, reload_error: Option<&str>) -> String {
    let mut line = format!(
        "{} running, {} exited, {} orphaned; live-restore {}",
        summary.running,
        summary.stopped,
        summary.orphaned,
        if live_restore { "on" } else { "off" }
    );
    if let Some(error) = reload_error {
        line.push_str("; last reload failed: ");
        line.push_str(error);
    }
    line
}

/// Asks the supervisor for its counts and builds the status line.
pub async fn current_status(shared: &Shared, supervisor: &Addr<Supervisor>) -> String {
    let summary = supervisor.send(Summarize).await.unwrap_or_default();
    status_line(
        &summary,
        shared.config.get().live_restore,
        shared.config.reload_error().as_deref(),
    )
}

/// `READY=1` with the status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `STATUS=` alone.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// `RELOADING=1` with `MONOTONIC_USEC` (systemd 253's Type=notify-reload wants both).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading"),
        ]),
        Err(_) => send(&[NotifyState::Reloading, NotifyState::Status("reloading")]),
    }
}

/// `STOPPING=1`.
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// The watchdog period the unit asked for (`WatchdogSec`), if any.
fn watchdog_period() -> Option<Duration> {
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec))
}

/// Refreshes STATUS= while the daemon serves, and pets the watchdog at half its period.
/// Runs on the daemon's actix system until the system stops.
pub fn spawn_keeper(shared: Arc<Shared>, supervisor: Addr<Supervisor>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let watchdog = watchdog_period();
    let period = watchdog
        .map(|w| (w / 2).min(STATUS_PERIOD))
        .unwrap_or(STATUS_PERIOD)
        .max(Duration::from_millis(100));
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(period);
        let mut last = String::new();
        loop {
            tick.tick().await;
            if watchdog.is_some() {
                send(&[NotifyState::Watchdog]);
            }
            let line = current_status(&shared, &supervisor).await;
            if line != last {
                status(&line);
                last = line;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_reads_like_the_issue() {
        let s = Summary {
            running: 12,
            stopped: 3,
            orphaned: 0,
            paused: 0,
        };
        assert_eq!(
            status_line(&s, true, None),
            "12 running, 3 exited, 0 orphaned; live-restore on"
        );
        assert_eq!(
            status_line(&s, false, Some("bad.json: line 1")),
            "12 running, 3 exited, 0 orphaned; live-restore off; last reload failed: bad.json: line 1"
        );
    }
}
