//! The fail points themselves (see `daemon::fault` for the list and how they are armed):
//! here, in the bottom layer, so the daemon and the runtime below it can both place them.

/// The daemon dies here (SIGKILL, as `kill -9`) when `name` is armed.
#[cfg(feature = "failpoints")]
pub fn point(name: &str) {
    fail::fail_point!(name, |_| {
        tracing::warn!(point = name, "fail point: killing the daemon");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    });
}

/// No fail points without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// The calling thread sleeps here while `name` is armed with a path that exists:
/// `FAILPOINTS=<name>=return(/some/file)`, for tests of a slow disk (`store-flush`) that
/// turn the slowness on and off by creating and removing the file.
#[cfg(feature = "failpoints")]
pub fn delay(name: &str) {
    fail::fail_point!(name, |arg: Option<String>| {
        let Some(path) = arg.map(std::path::PathBuf::from) else {
            return;
        };
        while path.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
}

/// No fail points without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn delay(_name: &str) {}
