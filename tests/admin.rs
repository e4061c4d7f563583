//! `moor admin` with the daemon down: after a `kill -9` of the daemon, four containers are
//! put in the reconciler's four classes (resume, exited while down, lost, orphan);
//! `admin inspect` predicts each, and the next daemon start does exactly that. Then
//! `admin inspect` answers through the running daemon, and with the daemon stopped again
//! `kill-orphan` kills the orphan and records the exit
//! (with the daemon down, and through a running daemon),
//! and `check` finds the store sound.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

fn ident(d: &Daemon, id: &str, key: &str) -> (i32, u64) {
    let s = d.started_json(id);
    (
        s[key]["pid"].as_i64().unwrap() as i32,
        s[key]["start_time"].as_u64().unwrap(),
    )
}

/// `admin inspect --format json`: the prediction per name, and the source line.
fn predictions(d: &Daemon) -> (Vec<(String, String, Value)>, String) {
    let out = d.admin(&["inspect", "--format", "json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let reports: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<(String, String, Value)> = reports
        .into_iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["next_start"].as_str().unwrap().to_string(),
                r,
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    (found, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn admin_inspect_predicts_what_the_next_start_does() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let ids: Vec<String> = ["a-resume", "b-exited", "c-lost", "d-orphan"]
        .iter()
        .map(|name| d.run_detached(&["--name", name, "host", "sleep", "1000"]))
        .collect();
    let resume_pid = d.inspect_field("a-resume", "{{.State.Pid}}");
    let resume_started = d.inspect_field("a-resume", "{{.State.StartedAt}}");
    d.kill9();

    // exited while down: the shim reaps the process and writes exit.json.
    let (pid, st) = ident(&d, &ids[1], "process");
    let (shim, shim_st) = ident(&d, &ids[1], "shim");
    assert!(kill_if_same(pid, st, Signal::SIGTERM));
    assert!(wait_for(Duration::from_secs(10), || !process_is(
        shim, shim_st
    )));
    // lost: shim and process killed, the shim's state gone.
    let (pid, st) = ident(&d, &ids[2], "process");
    let (shim, shim_st) = ident(&d, &ids[2], "shim");
    assert!(kill_if_same(shim, shim_st, Signal::SIGKILL));
    assert!(kill_if_same(pid, st, Signal::SIGKILL));
    assert!(wait_for(Duration::from_secs(10), || !pid_alive(pid)
        && !process_is(shim, shim_st)));
    std::fs::remove_file(d.container_run_dir(&ids[2]).join("started.json")).unwrap();
    // orphan: the shim alone killed, the process left running.
    let (orphan_pid, orphan_st) = ident(&d, &ids[3], "process");
    let (shim, shim_st) = ident(&d, &ids[3], "shim");
    d.track(orphan_pid, orphan_st);
    assert!(kill_if_same(shim, shim_st, Signal::SIGKILL));
    assert!(wait_for(Duration::from_secs(10), || !process_is(
        shim, shim_st
    )));

    let (found, source) = predictions(&d);
    assert!(source.contains("source: the store"), "{source}");
    let classes: Vec<(&str, &str)> = found
        .iter()
        .map(|(n, c, _)| (n.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        classes,
        vec![
            ("a-resume", "resume"),
            ("b-exited", "exited-while-down"),
            ("c-lost", "lost"),
            ("d-orphan", "orphan"),
        ]
    );
    assert_eq!(found[1].2["exit_file_code"], 143);
    assert_eq!(found[3].2["process"], "alive");
    assert_eq!(found[3].2["shim"], "gone");
    let orphans = d.admin(&["orphans"]);
    let text = String::from_utf8_lossy(&orphans.stdout);
    assert!(
        text.contains("d-orphan") && !text.contains("a-resume"),
        "{text}"
    );

    d.restart();
    assert_eq!(d.inspect_field("a-resume", "{{.State.Status}}"), "running");
    assert_eq!(d.inspect_field("a-resume", "{{.State.Pid}}"), resume_pid);
    assert_eq!(
        d.inspect_field("a-resume", "{{.State.StartedAt}}"),
        resume_started
    );
    assert_eq!(
        d.inspect_field("b-exited", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 143"
    );
    assert_eq!(d.inspect_field("c-lost", "{{.Moor.State}}"), "exited");
    assert_eq!(d.inspect_field("d-orphan", "{{.Moor.State}}"), "orphaned");
    assert!(process_is(orphan_pid, orphan_st), "the orphan was killed");

    // With the daemon up, inspect answers through it (adopt and kill-orphan through a
    // running daemon: `orphans_are_handled_through_a_running_daemon`).
    let (found, source) = predictions(&d);
    assert!(source.contains("source: the daemon"), "{source}");
    assert_eq!(found.len(), 4);

    // (An orphan without a shim is adopted with a new one: tests/shim_death.rs.)
    d.stop_term();
    let kill = d.admin(&["kill-orphan", "d-orphan"]);
    assert!(kill.status.success(), "{}", describe(&kill));
    assert!(!process_is(orphan_pid, orphan_st));
    let check = d.admin(&["check"]);
    assert!(check.status.success(), "{}", describe(&check));
    d.restart();
    assert_eq!(
        d.inspect_field("d-orphan", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
}

#[test]
fn admin_check_reports_a_missing_spec_file() {
    let mut d = Daemon::start(LIVE_RESTORE_OFF);
    let id = d
        .cli_ok(&["create", "--name", "cc", "host", "true"])
        .trim()
        .to_string();
    d.stop_term();
    let ok = d.admin(&["check"]);
    assert!(ok.status.success(), "{}", describe(&ok));
    std::fs::remove_file(d.container_dir(&id).join("config.v2.json")).unwrap();
    let bad = d.admin(&["check"]);
    assert_eq!(bad.status.code(), Some(1), "{}", describe(&bad));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("no spec file"));
}

#[test]
fn orphans_are_handled_through_a_running_daemon() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let id = d.run_detached(&["--name", "lonely", "host", "sleep", "1000"]);
    d.kill9();
    // The shim alone killed: the process runs on, its exit can no longer be collected.
    let (pid, st) = ident(&d, &id, "process");
    let (shim, shim_st) = ident(&d, &id, "shim");
    d.track(pid, st);
    assert!(kill_if_same(shim, shim_st, Signal::SIGKILL));
    assert!(wait_for(Duration::from_secs(10), || !process_is(
        shim, shim_st
    )));
    d.restart();
    assert_eq!(d.inspect_field("lonely", "{{.Moor.State}}"), "orphaned");

    // The daemon holds the store: admin asks it.
    let kill = d.admin(&["kill-orphan", "lonely"]);
    assert!(kill.status.success(), "{}", describe(&kill));
    let stderr = String::from_utf8_lossy(&kill.stderr);
    assert!(stderr.contains("source: the daemon"), "{stderr}");
    assert!(wait_for(Duration::from_secs(10), || !process_is(pid, st)));
    assert_eq!(
        d.inspect_field("lonely", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
}

#[test]
fn an_orphan_is_adopted_once_its_cause_is_fixed() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let id = d.run_detached(&["--name", "newer", "host", "sleep", "1000"]);
    let (pid, st) = ident(&d, &id, "process");
    let started_at = d.inspect_field("newer", "{{.State.StartedAt}}");
    d.kill9();
    // As if a newer shim wrote the run directory: this daemon cannot manage it.
    let path = d.container_run_dir(&id).join("started.json");
    let original = d.started_json(&id);
    let mut newer = original.clone();
    newer["protocol"] = serde_json::json!(99);
    write_json_atomically(&path, &newer);
    d.restart();
    assert_eq!(d.inspect_field("newer", "{{.Moor.State}}"), "orphaned");
    assert!(d
        .inspect_field("newer", "{{.Moor.OrphanReason}}")
        .contains("protocol version 99"));
    assert!(process_is(pid, st), "an orphan is never killed");
    d.stop_term();
    // The cause fixed (the run directory readable again), the admin adopts it.
    write_json_atomically(&path, &original);
    let adopt = d.admin(&["adopt", "newer"]);
    assert!(adopt.status.success(), "{}", describe(&adopt));
    d.restart();
    assert_eq!(
        d.inspect_field(
            "newer",
            "{{.Moor.State}} {{.State.Pid}} {{.State.StartedAt}}"
        ),
        format!("running {pid} {started_at}")
    );
    d.cli_ok(&["stop", "-t", "1", "newer"]);
    assert_eq!(d.inspect_field("newer", "{{.State.ExitCode}}"), "143");
}
