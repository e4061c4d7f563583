//! Reload (SIGHUP) and `moor daemon --validate`: a reloadable option (live-restore) applies
//! at the next shutdown without a restart; an invalid file on reload keeps the old
//! configuration and the daemon serves on; non-reloadable options are named and kept;
//! `--validate` and a start with an invalid file exit 1.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

/// `LiveRestoreEnabled` as `GET /info` reports it.
fn live_restore(d: &Daemon) -> bool {
    let info = d.http("GET", "/info", None);
    assert_eq!(info.status, 200, "{}", info.body);
    info.json()["LiveRestoreEnabled"]
        .as_bool()
        .expect("LiveRestoreEnabled")
}

fn reload(d: &Daemon, config: &str, expect_in_log: &str) {
    d.write_config(config);
    let before = d.output().matches(expect_in_log).count();
    d.send(Signal::SIGHUP);
    assert!(
        wait_for(READY_DEADLINE, || d.output().matches(expect_in_log).count()
            > before),
        "no {expect_in_log:?} after SIGHUP; output:\n{}",
        d.output()
    );
}

/// The container's (pid, start time) from its started.json.
fn process(d: &Daemon, id: &str) -> (i32, u64) {
    let started = d.started_json(id);
    (
        started["process"]["pid"].as_i64().unwrap() as i32,
        started["process"]["start_time"].as_u64().unwrap(),
    )
}

#[test]
fn live_restore_switched_on_by_sighup_is_honoured_at_the_next_sigterm() {
    let mut d = Daemon::start(LIVE_RESTORE_OFF);
    let id = d.run_detached(&["--name", "web", "host", "sleep", "1000"]);
    let started = d.inspect_field("web", "{{.State.StartedAt}}");
    assert!(!live_restore(&d));
    reload(&d, LIVE_RESTORE_ON, "configuration reloaded");
    assert!(live_restore(&d));
    let (pid, start_time) = process(&d, &id);
    d.stop_term();
    assert!(process_is(pid, start_time), "SIGTERM stopped the container");
    d.restart();
    assert_eq!(d.inspect_field("web", "{{.State.Status}}"), "running");
    assert_eq!(d.inspect_field("web", "{{.State.Pid}}"), pid.to_string());
    assert_eq!(d.inspect_field("web", "{{.State.StartedAt}}"), started);
}

#[test]
fn an_invalid_file_on_reload_keeps_the_old_configuration() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    reload(
        &d,
        "{\"live-restore\": false,,}",
        "configuration reload failed",
    );
    assert!(d.output().contains("line 1 column"), "{}", d.output());
    assert!(live_restore(&d), "a bad file changed the configuration");
    // Still serving, with the old settings: live-restore stays on.
    let id = d.run_detached(&["--name", "web", "host", "sleep", "1000"]);
    reload(
        &d,
        r#"{"live-restor": false}"#,
        "configuration reload failed",
    );
    assert!(d.output().contains("did you mean"), "{}", d.output());
    let (pid, start_time) = process(&d, &id);
    d.stop_term();
    assert!(
        process_is(pid, start_time),
        "the old live-restore was not kept"
    );
}

#[test]
fn non_reloadable_options_are_named_and_kept() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    reload(
        &d,
        r#"{"live-restore": true, "data-root": "/elsewhere", "debug": true}"#,
        "configuration reloaded",
    );
    let out = d.output();
    assert!(
        out.contains("data-root changed: not reloadable, takes effect after a restart"),
        "{out}"
    );
    let info = d.http("GET", "/info", None).json();
    assert_eq!(
        info["DockerRootDir"].as_str(),
        Some(d.root().to_str().unwrap())
    );
}

fn validate(config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.json");
    std::fs::write(&path, config).unwrap();
    Command::new(MOOR)
        .args(["daemon", "--validate", "--runtime", "process", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run moor daemon --validate")
}

#[test]
fn validate_exit_codes() {
    let ok = validate(r#"{"live-restore": true}"#);
    assert_eq!(ok.status.code(), Some(0), "{}", describe(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration OK"));

    for (bad, says) in [
        ("{\n  \"live-restore\": true,,\n}", "line 2 column"),
        (r#"{"live-restor": true}"#, "did you mean \"live-restore\""),
        (r#"{"live-restore": "yes"}"#, "invalid type"),
        (
            r#"{"storage-driver": "overlay2"}"#,
            "\"storage-driver\" is a Docker option moor does not implement yet",
        ),
    ] {
        let out = validate(bad);
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{bad}: {}",
            describe(&out)
        );
    }
}

#[test]
fn a_start_with_an_invalid_file_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.json");
    std::fs::write(&path, "{,}").unwrap();
    let mut child = Command::new(MOOR)
        .arg("daemon")
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut code = None;
    let exited = wait_for(Duration::from_secs(10), || {
        code = child.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the daemon started on an invalid daemon.json");
    }
    assert_eq!(code, Some(Some(1)));
    assert!(!dir.path().join("root").join("moor.lock").exists());
}
