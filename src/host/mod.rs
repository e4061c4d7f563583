//! The host layer: what the daemon, `moor admin` and the shim share about the machine,
//! below every actor and runtime. Paths and the root lock ([`layout`], [`paths`]), atomic
//! file writes ([`atomic`], the shim's run files and the daemon's spec files), signal names
//! ([`signal`]), and the environment a service manager leaves that must not reach a
//! container. Nothing here names the daemon, the API, the CLI or a runtime (the
//! architecture test, `tests/architecture.rs`, keeps it so). This file and `atomic.rs` are
//! also part of the shim: std, libc, nix and serde only.

pub mod atomic;
pub mod child;
pub mod fault;
pub mod layout;
// One unsafe block: the limit a child process starts with, set between fork and exec.
#[allow(unsafe_code)]
pub mod limits;
pub mod paths;
pub mod runfiles;
pub mod signal;
pub mod systemd;

/// Environment variables of the service manager that must not reach shims and containers.
pub const MANAGER_ENV: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// An error and its sources, joined with ": ".
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
