//! Missing prerequisites fail a test unless the person running it asked to skip them.
//!
//! CI installs everything (`.ci/setup`), so a missing runc, busybox, root or systemd-box is a
//! broken machine and must not pass silently (the test runner hides a passing test's output).
//! `MOOR_TEST_SKIP` is a comma-separated list of prerequisites to skip when missing (`root`,
//! `runc`, `systemd`, or `all`), documented in README.md.

/// The variable that names prerequisites a test may skip when they are missing.
pub const SKIP_VAR: &str = "MOOR_TEST_SKIP";

/// Whether `MOOR_TEST_SKIP` asks to skip tests that need `prereq`.
fn skip_requested(prereq: &str) -> bool {
    std::env::var(SKIP_VAR)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .any(|p| p == prereq || p == "all")
        })
        .unwrap_or(false)
}

/// A test needs `prereq`, which is missing for `reason`: panics (the test fails) unless
/// `MOOR_TEST_SKIP` names it, in which case the reason is returned for the test to print and
/// return.
pub fn missing(prereq: &str, reason: String) -> Option<String> {
    if skip_requested(prereq) {
        return Some(format!("{reason} (skipped: {SKIP_VAR} names {prereq:?})"));
    }
    panic!("{reason}; set {SKIP_VAR}={prereq} to skip the tests that need it");
}

/// Root is needed (mounts, runc): None when running as root, else see [`missing`].
pub fn need_root(what: &str) -> Option<String> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    missing("root", format!("{what} needs root"))
}
