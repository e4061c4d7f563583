//! Whether the host itself is going down: systemd says `stopping` (`systemctl
//! is-system-running`, the manager's `SystemState`) once shutdown.target's jobs run, which is
//! when it stops moor's unit on a poweroff or reboot. A daemon stop at any other time (a
//! `systemctl stop`, an upgrade, a crash) is not one. On a host without systemd as init this
//! is never true.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long `systemctl` may take to answer.
const ANSWER_DEADLINE: Duration = Duration::from_secs(3);

/// Whether systemd is this host's init (its runtime directory exists, as sd_booted checks).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Whether systemd reports the system as stopping (shutting down or rebooting). Blocking,
/// bounded by [`ANSWER_DEADLINE`]; any failure to ask is "no".
pub fn system_stopping() -> bool {
    if !booted() {
        return false;
    }
    let mut ask = Command::new("systemctl");
    ask.arg("is-system-running");
    match super::child::output_within(&mut ask, ANSWER_DEADLINE) {
        Ok(Some(out)) => String::from_utf8_lossy(&out.stdout).trim() == "stopping",
        Ok(None) | Err(_) => false,
    }
}
