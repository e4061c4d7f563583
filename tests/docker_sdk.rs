//! Issue 7: the Docker SDK for Python (PyPI `docker`) drives moor unmodified. The SDK lives
//! in the venv .ci/run creates (`target/pyvenv`); `MOOR_TEST_PYTHON` may name another
//! interpreter that has it.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MOOR_TEST_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyvenv/bin/python");
    assert!(
        venv.is_file(),
        "{} is missing: create it with `python3 -m venv target/pyvenv && target/pyvenv/bin/pip install docker` (see .ci/run)",
        venv.display()
    );
    venv
}

#[test]
fn python_sdk_drives_moor() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_test.py");
    // A hung SDK call must fail the test, not hang it.
    let out = Command::new("timeout")
        .args(["-s", "KILL", "120"])
        .arg(python())
        .arg(&script)
        .env("DOCKER_HOST", d.docker_host())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("run the SDK script");
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
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/api_letter_test.py");
    let out = Command::new("timeout")
        .args(["-s", "KILL", "180"])
        .arg(python())
        .arg(&script)
        .env("DOCKER_HOST", d.docker_host())
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("run the SDK script");
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
