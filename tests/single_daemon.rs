//! One daemon per root: a second one fails at once, naming the first's pid, and
//! leaves the first (and its store) untouched.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_second_daemon_on_the_same_root_fails_naming_the_first() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.run_detached(&["--name", "web", "host", "sleep", "1000"]);
    let first = d.pid().unwrap();
    let t0 = Instant::now();
    let out = Command::new(MOOR)
        .arg("daemon")
        .arg("--root")
        .arg(d.root())
        .arg("--run-dir")
        .arg(d.run_dir())
        .arg("--socket")
        .arg(d.root().join("second.sock"))
        .arg("--config")
        .arg(d.config_path())
        .env("MOOR_SHIM", MOOR_SHIM)
        .output()
        .expect("run a second daemon");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "it must fail at once"
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("another moor daemon (pid {first})")),
        "stderr: {stderr}"
    );
    // The first daemon still serves, with its container.
    assert_eq!(d.inspect_field("web", "{{.State.Status}}"), "running");
}

#[test]
fn relative_paths_are_resolved_at_start() {
    let dir = tempfile::Builder::new()
        .prefix("moor-rel-")
        .tempdir_in("/tmp")
        .unwrap();
    // No bridge on the host: see common::netns::no_bridge.
    std::fs::write(dir.path().join("daemon.json"), r#"{"bridge": "none"}"#).unwrap();
    let mut daemon = Command::new(MOOR)
        .current_dir(dir.path())
        .args([
            "daemon",
            "--root",
            "root",
            "--run-dir",
            "run",
            "--socket",
            "s.sock",
        ])
        .args(["--config", "daemon.json", "--runtime", "process"])
        .env("MOOR_SHIM", MOOR_SHIM)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the daemon");
    let sock = dir.path().join("s.sock");
    let host = format!("unix://{}", sock.display());
    let ready = wait_for(Duration::from_secs(10), || sock.exists());
    let out = Command::new(MOOR)
        .args([
            "--host",
            &host,
            "run",
            "--rm",
            "host",
            "sh",
            "-c",
            "pwd; exit 5",
        ])
        .output()
        .expect("run moor");
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(ready, "the daemon never served");
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/\n");
}
