//! A killed shim never makes a second copy. `kill -9` of a container's shim leaves its
//! process running without anyone to collect its exit: the container becomes an orphan
//! (`State.Status` stays `running`, `State.Error` names the lost shim), never an exit; `start`
//! is refused (409), a restart policy does not fire, `moor admin orphans` lists it, and a
//! daemon restart classifies it the same. The admin then kills it (its exit recorded) or
//! adopts it. For the process runtime and for runc (whose init is re-parented when its shim
//! dies, while `runc state` still says running). Processes are counted by a unique argv
//! marker, by pid; nothing is killed by name.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

fn marker(tag: &str) -> String {
    format!("moor-shim-death-{tag}-{}", std::process::id())
}

fn ident(d: &Daemon, id: &str, key: &str) -> (i32, u64) {
    let s = d.started_json(id);
    (
        s[key]["pid"].as_i64().unwrap() as i32,
        s[key]["start_time"].as_u64().unwrap(),
    )
}

/// `moor admin orphans` lists the container (by full id or name).
fn listed_as_orphan(d: &Daemon, id: &str, name: &str) -> String {
    let out = d.admin(&["orphans"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(&id[..12]) || text.contains(name),
        "`moor admin orphans` does not list {name}:\n{}",
        describe(&out)
    );
    text
}

/// Runs `sh -c 'while :; do sleep 1; done' MARK` detached as `name` on `image` (with
/// restart policy `always` when `always`); its id and the marker its process carries.
fn looping(d: &Daemon, name: &str, image: &str, always: bool, tag: &str) -> (String, String) {
    let mark = marker(tag);
    let mut args = vec!["--name", name];
    if always {
        args.extend(["--restart", "always"]);
    }
    args.extend([image, "sh", "-c", "while :; do sleep 1; done", &mark]);
    let id = d.run_detached(&args);
    (id, mark)
}

/// Kills the shim of `name` with SIGKILL; returns the container process (pid, start time).
fn kill_the_shim(d: &Daemon, id: &str) -> (i32, u64) {
    let (pid, st) = ident(d, id, "process");
    let (shim, shim_st) = ident(d, id, "shim");
    d.track(pid, st);
    assert!(
        kill_if_same(shim, shim_st, Signal::SIGKILL),
        "shim {shim} gone"
    );
    assert!(wait_for(Duration::from_secs(10), || !process_is(
        shim, shim_st
    )));
    (pid, st)
}

/// Everything an orphan whose shim was killed must show, with the daemon running.
fn assert_orphaned(d: &Daemon, id: &str, name: &str, (pid, st): (i32, u64), marker: &str) {
    assert!(
        wait_for(Duration::from_secs(10), || d
            .inspect_field(name, "{{.Moor.State}}")
            == "orphaned"),
        "not orphaned: {}",
        d.inspect_field(name, "{{.Moor.State}} {{.State.Status}} {{.State.Error}}")
    );
    let ins: Value = d.inspect_json(name);
    assert_eq!(ins["State"]["Status"], "running", "{ins}");
    assert_eq!(ins["State"]["Running"], true, "{ins}");
    assert_eq!(ins["State"]["Pid"].as_i64(), Some(i64::from(pid)), "{ins}");
    let error = ins["State"]["Error"].as_str().unwrap();
    assert!(
        error.contains("shim"),
        "State.Error names the lost shim: {error}"
    );
    assert!(process_is(pid, st), "the process runs on");
    // No second copy, whatever the restart policy says.
    assert_eq!(copies(marker), vec![pid], "exactly the first copy runs");
    let start = d.http("POST", &format!("/v1.44/containers/{name}/start"), None);
    assert_eq!(start.status, 409, "start of an orphan: {}", start.body);
    assert!(start.body.contains("orphan"), "{}", start.body);
    listed_as_orphan(d, id, name);
    assert_eq!(copies(marker), vec![pid], "a refused start started nothing");
}

#[test]
fn a_killed_shim_makes_an_orphan_never_a_second_copy() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let (id, mark) = looping(&d, "victim", "host", true, "process");
    let proc_ = kill_the_shim(&d, &id);
    assert_orphaned(&d, &id, "victim", proc_, &mark);
    // The restart policy had time to fire (its first delay is 100 ms): it did not.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(copies(&mark), vec![proc_.0]);

    // The same classification after a daemon crash and restart.
    d.kill9();
    let out = d.admin(&["inspect", "--format", "json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let reports: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["next_start"], "orphan", "{reports:?}");
    d.restart();
    assert_orphaned(&d, &id, "victim", proc_, &mark);

    // The admin kills it: the exit is recorded, and only then may the policy start a new copy.
    let kill = d.admin(&["kill-orphan", "victim"]);
    assert!(kill.status.success(), "{}", describe(&kill));
    assert!(wait_for(Duration::from_secs(10), || !process_is(
        proc_.0, proc_.1
    )));
    assert!(wait_for(Duration::from_secs(10), || {
        let c = copies(&mark);
        c.len() == 1 && c[0] != proc_.0
    }));
    assert_eq!(d.inspect_field("victim", "{{.RestartCount}}"), "1");
}

#[test]
fn an_orphan_whose_process_ends_is_recorded_once_verified_gone() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let (id, mark) = looping(&d, "ends", "host", false, "ends");
    let (pid, st) = kill_the_shim(&d, &id);
    assert_orphaned(&d, &id, "ends", (pid, st), &mark);
    // Its process ends on its own (no shim writes an exit file): the daemon verifies it is
    // gone and records the end as unknown, with the reason.
    assert!(kill_if_same(pid, st, Signal::SIGKILL));
    assert!(
        wait_for(Duration::from_secs(10), || d
            .inspect_field("ends", "{{.State.Status}}")
            == "exited"),
        "the orphan's end was not recorded"
    );
    assert_eq!(d.inspect_field("ends", "{{.State.ExitCode}}"), "255");
    assert!(d.inspect_field("ends", "{{.State.Error}}").contains("gone"));
    // Now it can be started again.
    d.cli_ok(&["start", "ends"]);
    assert_eq!(d.inspect_field("ends", "{{.State.Status}}"), "running");
}

/// A daemon on runc with the busybox image imported as `bb`. runc, busybox and root are
/// required: a missing one fails the test.
fn runc_daemon() -> Daemon {
    if let Some(reason) = common::runc::skip_reason() {
        panic!("this test needs runc: {reason}");
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let tar = d.root().with_file_name("bb.tar");
    fs::write(&tar, common::runc::busybox_tar()).expect("write busybox tar");
    d.cli_ok(&["image", "import", tar.to_str().unwrap(), "bb"]);
    d
}

/// `runc state ID` under the daemon's runc root: its status word.
fn runc_status(d: &Daemon, id: &str) -> String {
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(d.run_dir().join("runc"))
        .args(["state", id])
        .output()
        .expect("run runc state");
    let state: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    state["status"].as_str().unwrap_or("missing").to_string()
}

#[test]
fn a_runc_container_whose_shim_is_killed_is_an_orphan_too() {
    let mut d = runc_daemon();
    let (id, mark) = looping(&d, "boxed", "bb", true, "runc");
    assert_eq!(runc_status(&d, &id), "running");
    let (pid, st) = kill_the_shim(&d, &id);
    // runc's init is re-parented (to the nearest subreaper above the shim) and runs on;
    // `runc state` still says running.
    assert_orphaned(&d, &id, "boxed", (pid, st), &mark);
    assert_eq!(runc_status(&d, &id), "running");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(copies(&mark), vec![pid], "no second copy");

    d.kill9();
    d.restart();
    assert_orphaned(&d, &id, "boxed", (pid, st), &mark);

    let kill = d.admin(&["kill-orphan", "boxed"]);
    assert!(kill.status.success(), "{}", describe(&kill));
    assert!(wait_for(Duration::from_secs(10), || !process_is(pid, st)));
    // Recorded, and the policy then starts the one new copy.
    assert!(wait_for(Duration::from_secs(20), || {
        let c = copies(&mark);
        c.len() == 1 && c[0] != pid
    }));
    assert_eq!(d.inspect_field("boxed", "{{.RestartCount}}"), "1");
    assert_eq!(d.inspect_field("boxed", "{{.Moor.State}}"), "running");
    d.cli_ok(&["rm", "-f", "boxed"]);
}

#[test]
fn an_orphan_gets_a_new_shim_on_adopt_and_its_real_exit_is_recorded() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let (id, mark) = looping(&d, "adoptee", "host", true, "adopt");
    let started_at = d.inspect_field("adoptee", "{{.State.StartedAt}}");
    let (pid, st) = kill_the_shim(&d, &id);
    assert_orphaned(&d, &id, "adoptee", (pid, st), &mark);
    // Through the running daemon: a new shim traces the process.
    let adopt = d.admin(&["adopt", "adoptee"]);
    assert!(adopt.status.success(), "{}", describe(&adopt));
    assert_eq!(
        d.inspect_field(
            "adoptee",
            "{{.Moor.State}} {{.State.Pid}} {{.State.StartedAt}}"
        ),
        format!("running {pid} {started_at}")
    );
    let (shim, shim_st) = ident(&d, &id, "shim");
    assert!(process_is(shim, shim_st), "the new shim runs");
    assert_eq!(copies(&mark), vec![pid]);
    // Managed again: stop works and records the real exit (SIGTERM: 143), and the user's
    // stop holds the policy back.
    d.cli_ok(&["stop", "-t", "10", "adoptee"]);
    assert!(!process_is(pid, st));
    assert_eq!(
        d.inspect_field("adoptee", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 143"
    );
    assert!(copies(&mark).is_empty());
}

#[test]
fn a_runc_orphan_is_adopted_with_the_daemon_down_and_stopped_after() {
    let mut d = runc_daemon();
    let (id, mark) = looping(&d, "boxed2", "bb", false, "runc-adopt");
    let (pid, st) = kill_the_shim(&d, &id);
    assert_orphaned(&d, &id, "boxed2", (pid, st), &mark);
    d.stop_term();
    let adopt = d.admin(&["adopt", "boxed2"]);
    assert!(adopt.status.success(), "{}", describe(&adopt));
    d.restart();
    assert_eq!(
        d.inspect_field("boxed2", "{{.Moor.State}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    // The container's init ignores SIGTERM (pid 1 of its namespace, no handler): the stop
    // ends with SIGKILL, and that exit is the one recorded.
    d.cli_ok(&["stop", "-t", "1", "boxed2"]);
    assert!(!process_is(pid, st));
    assert_eq!(
        d.inspect_field("boxed2", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    assert!(copies(&mark).is_empty());
    d.cli_ok(&["rm", "boxed2"]);
}

#[test]
fn an_orphan_that_cannot_be_classified_further_is_left_to_the_admin_without_spinning() {
    let mut d = runc_daemon();
    let id = d.run_detached(&[
        "--name",
        "odd",
        "bb",
        "sh",
        "-c",
        "while :; do sleep 1; done",
    ]);
    let (pid, st) = ident(&d, &id, "process");
    d.track(pid, st);
    d.kill9();
    kill_the_shim(&d, &id);
    // The record names a process that is gone while runc runs the container: an orphan
    // (never deleted) whose recorded process has nothing more to say.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id() as i64;
    gone.wait().unwrap();
    let path = d.container_run_dir(&id).join("started.json");
    let mut started = d.started_json(&id);
    started["process"]["pid"] = serde_json::json!(gone_pid);
    write_json_atomically(&path, &started);
    d.restart();
    assert_eq!(d.inspect_field("odd", "{{.Moor.State}}"), "orphaned");
    assert!(wait_for(Duration::from_secs(10), || d
        .output()
        .contains("left for `moor admin inspect`")));
    std::thread::sleep(Duration::from_secs(1));
    let looks = d.output().matches("watched process ended").count();
    assert!(looks <= 3, "the daemon looked {looks} times: it spins");
    assert_eq!(d.inspect_field("odd", "{{.Moor.State}}"), "orphaned");
    assert!(process_is(pid, st), "an orphan is never killed");
}
