//! Fault injection: the daemon is killed (SIGKILL, by a fail point of the `failpoints`
//! feature, which every test build has; see `src/daemon/fault.rs`) at each step between a
//! persisted intent and its effect. After a restart: every state is one the state machine
//! allows at rest, no live container process is untracked, none is shown running dead,
//! names stay unique, nothing half-removed survives a second restart, and the user's retry
//! gives the expected result.

mod common;

use std::collections::HashSet;
use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The daemon's environment is this process's: one spawn at a time, so an armed point
/// reaches only the daemon it was meant for.
static SPAWN: Mutex<()> = Mutex::new(());

/// Starts a daemon with the fail point `point` armed.
fn armed(point: &str) -> Daemon {
    let _one = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("FAILPOINTS", format!("{point}=return"));
    let d = Daemon::start(LIVE_RESTORE_ON);
    std::env::remove_var("FAILPOINTS");
    d
}

/// Waits for the daemon to die at its fail point, then starts it again unarmed.
fn crashed_and_restarted(d: &mut Daemon, point: &str) {
    let status = d.wait_exited(Duration::from_secs(20));
    assert!(
        status.is_some(),
        "the daemon did not die at fail point {point}"
    );
    let _one = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    d.restart();
}

fn marker(tag: &str) -> String {
    format!("moor-fault-{tag}-{}", std::process::id())
}

/// The invariants after a restart; returns the inspect objects by name.
fn check(d: &Daemon, marker: &str) -> Vec<Value> {
    let list: Value = d.http("GET", "/containers/json?all=1", None).json();
    let mut names = HashSet::new();
    let mut all = Vec::new();
    for c in list.as_array().unwrap() {
        let id = c["Id"].as_str().unwrap();
        let ins = d.inspect_json(id);
        let name = ins["Name"].as_str().unwrap().to_string();
        assert!(names.insert(name.clone()), "name {name} twice");
        let state = ins["Moor"]["State"].as_str().unwrap();
        assert!(
            matches!(state, "created" | "running" | "stopping" | "exited"),
            "{name} left {state}"
        );
        if ins["State"]["Running"] == true {
            let pid = ins["State"]["Pid"].as_i64().unwrap() as i32;
            assert!(pid_alive(pid), "{name} shown running, pid {pid} dead");
        }
        all.push(ins);
    }
    for pid in copies(marker) {
        assert!(
            all.iter()
                .any(|i| i["State"]["Running"] == true && i["State"]["Pid"] == pid),
            "live process {pid} belongs to no running container"
        );
    }
    all
}

fn loop_cmd(mark: &str) -> Vec<&str> {
    vec!["host", "sh", "-c", "while :; do sleep 1; done", mark]
}

#[test]
fn killed_after_create_persisted() {
    let mut d = armed("create-persisted");
    let mark = marker("create");
    let mut args = vec!["create", "--name", "fc"];
    args.extend(loop_cmd(&mark));
    let _ = d.cli(&args);
    crashed_and_restarted(&mut d, "create-persisted");
    let found = check(&d, &mark);
    // The record was stored before the crash: it is there, created, and the name is taken.
    assert_eq!(found.len(), 1);
    assert_eq!(d.inspect_field("fc", "{{.Moor.State}}"), "created");
    let again = d.cli(&args);
    assert!(!again.status.success(), "the name stays unique");
    d.cli_ok(&["start", "fc"]);
    assert_eq!(copies(&mark).len(), 1);
    check(&d, &mark);
}

#[test]
fn killed_after_start_persisted() {
    let mut d = armed("start-persisted");
    let mark = marker("start");
    let mut args = vec!["create", "--name", "fs"];
    args.extend(loop_cmd(&mark));
    d.cli_ok(&args);
    let _ = d.cli(&["start", "fs"]);
    crashed_and_restarted(&mut d, "start-persisted");
    check(&d, &mark);
    // No shim was started: the start is lost, nothing runs, and a retry starts it.
    assert!(copies(&mark).is_empty());
    assert_eq!(d.inspect_field("fs", "{{.Moor.State}}"), "exited");
    d.cli_ok(&["start", "fs"]);
    assert_eq!(copies(&mark).len(), 1);
    check(&d, &mark);
}

#[test]
fn killed_after_the_shim_spawned() {
    let mut d = armed("shim-spawned");
    let mark = marker("spawned");
    let mut args = vec!["create", "--name", "fp"];
    args.extend(loop_cmd(&mark));
    d.cli_ok(&args);
    let _ = d.cli(&["start", "fp"]);
    crashed_and_restarted(&mut d, "shim-spawned");
    check(&d, &mark);
    // The shim ran the process: it is found and resumed, one copy; a retry starts no other.
    let pids = copies(&mark);
    assert_eq!(pids.len(), 1, "{pids:?}");
    assert_eq!(
        d.inspect_field("fp", "{{.Moor.State}} {{.State.Pid}}"),
        format!("running {}", pids[0])
    );
    let _ = d.cli(&["start", "fp"]);
    assert_eq!(copies(&mark), pids);
    d.cli_ok(&["stop", "-t", "5", "fp"]);
    assert_eq!(d.inspect_field("fp", "{{.State.ExitCode}}"), "143");
    check(&d, &mark);
}

#[test]
fn killed_between_the_stop_signal_and_the_sigkill() {
    let mut d = armed("stop-signalled");
    let mark = marker("stop");
    d.run_detached(&[
        "--name",
        "ft",
        "host",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
        &mark,
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let _ = d.cli(&["stop", "-t", "2", "ft"]);
    crashed_and_restarted(&mut d, "stop-signalled");
    check(&d, &mark);
    // The next daemon finishes the stop at its recorded deadline.
    assert!(wait_for(Duration::from_secs(20), || copies(&mark).is_empty()));
    assert_eq!(d.wait_code("ft"), "137");
    // The user's retry: already stopped.
    let _ = d.cli(&["stop", "ft"]);
    assert_eq!(d.inspect_field("ft", "{{.State.Status}}"), "exited");
    check(&d, &mark);
}

#[test]
fn killed_between_removing_and_the_record_deletion() {
    let mut d = armed("rm-persisted");
    let mark = marker("rm");
    let mut args = vec!["create", "--name", "fr"];
    args.extend(loop_cmd(&mark));
    let id = d.cli_ok(&args).trim().to_string();
    let _ = d.cli(&["rm", "fr"]);
    crashed_and_restarted(&mut d, "rm-persisted");
    check(&d, &mark);
    // The removal is finished: the record, its directory and the name are gone...
    assert_eq!(d.http("GET", "/v1.44/containers/fr/json", None).status, 404);
    assert!(wait_for(Duration::from_secs(10), || !d
        .container_dir(&id)
        .exists()));
    // ...and stay gone after a second restart; the name can be used again.
    d.kill9();
    d.restart();
    assert_eq!(d.http("GET", "/v1.44/containers/fr/json", None).status, 404);
    assert!(!d.container_dir(&id).exists());
    d.cli_ok(&args);
    check(&d, &mark);
}

/// An import killed at `point`: after the restart nothing half-imported is visible (no work
/// directory left in `images/tmp`, the image listed whole or not at all), a retry imports it
/// once, and it is still there after a second restart.
fn import_killed_at(point: &str) {
    let mut d = armed(point);
    let tar = d.root().with_file_name(format!("bb-{point}.tar"));
    fs::write(&tar, common::runc::busybox_tar()).expect("write the image tar");
    let tar = tar.to_str().expect("utf-8").to_string();
    let _ = d.cli(&["image", "import", &tar, "faulty"]);
    crashed_and_restarted(&mut d, point);
    let tmp = d.root().join("images").join("tmp");
    let left: Vec<_> = fs::read_dir(&tmp)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{point}: left in images/tmp: {left:?}");
    let listed: Value = d.http("GET", "/images/json", None).json();
    for img in listed.as_array().expect("a list") {
        let id = img["Id"].as_str().expect("Id");
        let hex = id.trim_start_matches("sha256:");
        assert!(
            d.root().join("images").join(hex).exists(),
            "{point}: image {id} listed without its files"
        );
    }
    let out = d.cli_ok(&["image", "import", &tar, "faulty"]);
    assert!(out.trim().starts_with("sha256:"), "{point}: {out}");
    let ids = |d: &Daemon| -> Vec<String> {
        let v: Value = d.http("GET", "/images/json", None).json();
        v.as_array()
            .expect("a list")
            .iter()
            .filter(|i| i["RepoTags"].to_string().contains("faulty"))
            .map(|i| i["Id"].as_str().expect("Id").to_string())
            .collect()
    };
    assert_eq!(ids(&d).len(), 1, "{point}: imported once");
    d.kill9();
    d.restart();
    assert_eq!(
        ids(&d).len(),
        1,
        "{point}: still there after a second restart"
    );
    let r = d.http("GET", "/images/faulty/json", None);
    assert_eq!(r.status, 200, "{point}: {}", r.body);
}

#[test]
fn killed_with_an_import_unpacked() {
    import_killed_at("image-unpacked");
}

#[test]
fn killed_with_an_import_committed_but_not_recorded() {
    import_killed_at("image-committed");
}

#[test]
fn killed_with_an_import_recorded_but_its_metadata_unwritten() {
    import_killed_at("image-recorded");
}

/// The volume names `moor volume ls` shows.
fn volumes(d: &Daemon) -> Vec<String> {
    let v: Value = d.http("GET", "/volumes", None).json();
    v["Volumes"]
        .as_array()
        .expect("Volumes")
        .iter()
        .map(|v| v["Name"].as_str().expect("Name").to_string())
        .collect()
}

#[test]
fn killed_with_a_volume_directory_made_but_not_recorded() {
    let mut d = armed("volume-dir-created");
    let _ = d.cli(&["volume", "create", "vfault"]);
    crashed_and_restarted(&mut d, "volume-dir-created");
    // No record, so nothing is listed, and the empty directory is gone at the start.
    assert!(!volumes(&d).contains(&"vfault".to_string()));
    assert!(!d.root().join("volumes/vfault").exists());
    d.cli_ok(&["volume", "create", "vfault"]);
    assert!(volumes(&d).contains(&"vfault".to_string()));
    d.kill9();
    d.restart();
    assert!(
        volumes(&d).contains(&"vfault".to_string()),
        "kept across a restart"
    );
    assert!(d.root().join("volumes/vfault/_data").is_dir());
}

#[test]
fn killed_between_a_volume_record_and_its_data_removal() {
    let mut d = armed("volume-record-removed");
    let made = d.http("POST", "/volumes/create", Some(r#"{"Name":"vgone"}"#));
    assert_eq!(made.status, 201, "{}", made.body);
    let data = d.root().join("volumes/vgone/_data");
    fs::write(data.join("secret"), "old data").expect("write into the volume");
    let _ = d.cli(&["volume", "rm", "vgone"]);
    crashed_and_restarted(&mut d, "volume-record-removed");
    // The removal is finished at the start: no record, no data; a new volume of that name
    // starts empty, never with the old one's files.
    assert!(!volumes(&d).contains(&"vgone".to_string()));
    assert!(
        !d.root().join("volumes/vgone").exists(),
        "half-removed data left"
    );
    d.cli_ok(&["volume", "create", "vgone"]);
    assert!(
        !data.join("secret").exists(),
        "a new volume got the old data"
    );
}
