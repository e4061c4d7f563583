//! Shutdown without live-restore: containers are stopped with their stop signal and
//! timeout, and a second interrupt within 5 s skips the timeout (SIGKILL) instead of
//! making the user wait.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

#[test]
fn a_second_interrupt_skips_the_stop_timeout() {
    let mut d = Daemon::start(LIVE_RESTORE_OFF);
    // sleep ignores SIGWINCH: only the SIGKILL after 60 s (or a second Ctrl-C) ends it.
    d.run_detached(&[
        "--name",
        "stubborn",
        "--stop-signal",
        "SIGWINCH",
        "--stop-timeout",
        "60",
        "host",
        "sleep",
        "1000",
    ]);
    let pid: i32 = d
        .inspect_field("stubborn", "{{.State.Pid}}")
        .parse()
        .unwrap();
    d.send(Signal::SIGINT);
    // Still waiting for the container after a moment: the first interrupt does not kill.
    assert!(
        d.wait_exited(Duration::from_millis(700)).is_none(),
        "the daemon did not wait"
    );
    assert!(
        pid_alive(pid),
        "the first interrupt must not kill the container"
    );
    d.send(Signal::SIGINT);
    let status = d
        .wait_exited(Duration::from_secs(15))
        .expect("the second interrupt ends the shutdown long before the 60 s timeout");
    assert!(status.success(), "daemon exit status {status}");
    d.restart();
    assert_eq!(
        d.inspect_field("stubborn", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
}
