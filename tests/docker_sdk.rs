//! Issue 7: the Docker SDK for Python (PyPI `docker`) drives moor unmodified. The SDK lives
//! in the venv .ci/run creates (`target/pyvenv`); `MOOR_TEST_PYTHON` may name another
//! interpreter that has it.

mod common;

use common::*;

#[test]
fn python_sdk_drives_moor() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let out = d.docker_py("sdk_test.py", &[], 120);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stop, wait, remove ok"), "{stdout}");
}

#[test]
fn python_sdk_stats_update_healthcheck_and_kill_then_remove() {
    if let Some(reason) = runc::skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    d.import_busybox("bb");
    let out = d.docker_py("api_letter_test.py", &[], 180);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for said in [
        "stats and update ok",
        "healthcheck ok",
        "kill then remove ok",
    ] {
        assert!(stdout.contains(said), "{stdout}");
    }
}
