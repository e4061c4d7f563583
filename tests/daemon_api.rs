//! The container lifecycle through the `moor` CLI and the raw Docker Engine API: states,
//! inspect fields, exit codes, logs, and Docker's exact error texts.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

const RM_RUNNING: &str = "stop the container before removing or force remove";

fn pid_of(d: &Daemon, name: &str) -> i32 {
    let pid = d.inspect_field(name, "{{.State.Pid}}");
    pid.parse()
        .unwrap_or_else(|e| panic!("Pid {pid:?} of {name}: {e}"))
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn cli_create_start_stop_restart_rm() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let id = d
        .cli_ok(&["create", "--name", "web", "host", "sleep", "1000"])
        .trim()
        .to_string();
    assert!(is_container_id(&id), "create printed {id:?}");
    assert_eq!(d.inspect_field("web", "{{.State.Status}}"), "created");
    assert_eq!(d.inspect_field("web", "{{.Moor.State}}"), "created");
    assert_eq!(d.inspect_field("web", "{{.State.Pid}}"), "0");
    assert_eq!(d.inspect_field("web", "{{.State.StartedAt}}"), ZERO_TIME);
    assert_eq!(d.inspect_field("web", "{{.State.FinishedAt}}"), ZERO_TIME);
    assert!(
        d.cli_ok(&["ps", "-a"]).contains("web"),
        "ps -a lists created containers"
    );
    assert_eq!(
        d.cli_ok(&["ps", "-q"]).trim(),
        "",
        "ps lists running containers only"
    );

    d.cli_ok(&["start", "web"]);
    assert_eq!(d.inspect_field("web", "{{.State.Status}}"), "running");
    assert_eq!(d.inspect_field("web", "{{.Moor.State}}"), "running");
    let pid = pid_of(&d, "web");
    let start_time = proc_start_time(pid).expect("the container's process runs");
    let started_at = d.inspect_field("web", "{{.State.StartedAt}}");
    assert!(is_docker_time(&started_at), "StartedAt {started_at:?}");
    assert_eq!(d.inspect_field("web", "{{.State.FinishedAt}}"), ZERO_TIME);
    assert!(d.cli_ok(&["ps"]).contains("web"));
    assert_eq!(d.cli_ok(&["ps", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(d.cli_ok(&["ps", "-q"]).trim(), &id[..12]);

    d.cli_ok(&["stop", "-t", "5", "web"]);
    assert!(
        !process_is(pid, start_time),
        "stop left the process running"
    );
    assert_eq!(d.inspect_field("web", "{{.State.Status}}"), "exited");
    assert_eq!(d.inspect_field("web", "{{.State.ExitCode}}"), "143");
    assert_eq!(d.wait_code("web"), "143");
    let finished = d.inspect_field("web", "{{.State.FinishedAt}}");
    assert!(is_docker_time(&finished), "FinishedAt {finished:?}");
    assert!(parse_time(&finished) >= parse_time(&started_at));
    assert!(d.cli_ok(&["ps", "-a"]).contains("web"));

    d.cli_ok(&["restart", "-t", "5", "web"]);
    assert_eq!(d.inspect_field("web", "{{.State.Status}}"), "running");
    let restarted_at = d.inspect_field("web", "{{.State.StartedAt}}");
    assert!(parse_time(&restarted_at) > parse_time(&started_at));
    let pid = pid_of(&d, "web");
    let start_time = proc_start_time(pid).expect("the restarted process runs");

    d.cli_ok(&["rm", "-f", "web"]);
    assert!(
        !process_is(pid, start_time),
        "rm -f left the process running"
    );
    assert!(!d.cli_ok(&["ps", "-a"]).contains("web"));
    assert_eq!(
        d.http("GET", "/v1.44/containers/web/json", None).status,
        404
    );
}

#[test]
fn raw_api_lifecycle_and_inspect_fields() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let body = r#"{"Image": "host", "Cmd": ["sleep", "1000"]}"#;
    let created = d.http("POST", "/v1.44/containers/create?name=web", Some(body));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(is_container_id(&id), "create answered {}", created.body);
    assert!(created.json()["Warnings"].is_array(), "{}", created.body);

    let c = d.inspect_json("web");
    assert_eq!(c["Id"], id.as_str());
    assert_eq!(c["Name"], "/web");
    assert_eq!(c["Path"], "sleep");
    assert_eq!(c["Args"], serde_json::json!(["1000"]));
    assert_eq!(c["Config"]["Cmd"], serde_json::json!(["sleep", "1000"]));
    assert_eq!(c["State"]["Status"], "created");
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["State"]["Pid"], 0);
    assert_eq!(c["State"]["StartedAt"], ZERO_TIME);
    assert_eq!(c["State"]["FinishedAt"], ZERO_TIME);
    assert_eq!(c["Moor"]["State"], "created");
    assert!(
        is_docker_time(c["Created"].as_str().unwrap_or_default()),
        "{c}"
    );

    let started = d.http("POST", "/v1.44/containers/web/start", None);
    assert_eq!(started.status, 204, "{}", started.body);
    let c = d.inspect_json(&id);
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["Running"], true);
    assert!(
        pid_alive(c["State"]["Pid"].as_i64().unwrap_or(0) as i32),
        "{c}"
    );
    assert!(
        pid_alive(c["Moor"]["ShimPid"].as_i64().unwrap_or(0) as i32),
        "{c}"
    );
    assert!(
        is_docker_time(c["State"]["StartedAt"].as_str().unwrap_or_default()),
        "{c}"
    );

    let list = d.http("GET", "/containers/json", None);
    assert_eq!(list.status, 200, "{}", list.body);
    let list = list.json();
    let entry = list
        .as_array()
        .and_then(|a| a.iter().find(|c| c["Id"] == id.as_str()))
        .unwrap_or_else(|| panic!("/containers/json lacks {id}: {list}"));
    assert_eq!(entry["Names"], serde_json::json!(["/web"]));
    assert_eq!(entry["State"], "running");

    let killed = d.http("POST", "/v1.44/containers/web/kill?signal=KILL", None);
    assert_eq!(killed.status, 204, "{}", killed.body);
    let waited = d.http("POST", "/v1.44/containers/web/wait", None);
    assert_eq!(waited.status, 200, "{}", waited.body);
    assert_eq!(waited.json()["StatusCode"], 137, "{}", waited.body);
    let c = d.inspect_json("web");
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["ExitCode"], 137);
    assert!(
        is_docker_time(c["State"]["FinishedAt"].as_str().unwrap_or_default()),
        "{c}"
    );

    let removed = d.http("DELETE", "/v1.44/containers/web", None);
    assert_eq!(removed.status, 204, "{}", removed.body);
    let gone = d.http("GET", &format!("/containers/{id}/json"), None);
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert_eq!(gone.message(), format!("No such container: {id}"));
}

#[test]
fn errors_use_dockers_codes_and_texts() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let missing = d.http("GET", "/v1.44/containers/nope/json", None);
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.message(), "No such container: nope");
    for cmd in ["stop", "rm", "start"] {
        let out = d.cli_fail(&[cmd, "nope"]);
        assert!(
            stderr_of(&out).contains("No such container: nope"),
            "{cmd}: {}",
            describe(&out)
        );
    }

    let id = d.run_detached(&["--name", "web", "host", "sleep", "1000"]);
    let conflict =
        format!("Conflict. The container name \"/web\" is already in use by container \"{id}\"");
    let out = d.cli_fail(&["create", "--name", "web", "host", "true"]);
    assert!(stderr_of(&out).contains(&conflict), "{}", describe(&out));
    let body = r#"{"Image": "host", "Cmd": ["true"]}"#;
    let dup = d.http("POST", "/v1.44/containers/create?name=web", Some(body));
    assert_eq!(dup.status, 409, "{}", dup.body);
    assert!(dup.message().starts_with(&conflict), "{}", dup.body);

    let out = d.cli_fail(&["rm", "web"]);
    assert!(stderr_of(&out).contains(RM_RUNNING), "{}", describe(&out));
    let busy = d.http("DELETE", "/v1.44/containers/web", None);
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert!(busy.message().contains(RM_RUNNING), "{}", busy.body);
    assert_eq!(d.inspect_field("web", "{{.State.Status}}"), "running");

    let pid = pid_of(&d, "web");
    let start_time = proc_start_time(pid).expect("the container's process runs");
    d.cli_ok(&["rm", "-f", "web"]);
    assert!(
        !process_is(pid, start_time),
        "rm -f left the process running"
    );
}

#[test]
fn run_rm_attached_prints_output_exits_with_the_code_and_removes() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let out = d.cli(&["run", "--rm", "host", "sh", "-c", "echo hi; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi\n",
        "{}",
        describe(&out)
    );
    assert!(
        wait_for(Duration::from_secs(5), || d
            .cli_ok(&["ps", "-a", "-q"])
            .trim()
            .is_empty()),
        "the --rm container is still listed: {}",
        d.cli_ok(&["ps", "-a"])
    );
}

#[test]
fn wait_and_kill_report_exit_codes() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    d.run_detached(&["--name", "five", "host", "sh", "-c", "exit 5"]);
    assert_eq!(d.wait_code("five"), "5");
    // Like `docker wait`: the code is printed; the command itself succeeds.
    let out = d.cli(&["wait", "five"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "wait exits 0: {}",
        describe(&out)
    );
    assert_eq!(d.inspect_field("five", "{{.State.ExitCode}}"), "5");
    assert_eq!(d.inspect_field("five", "{{.State.Status}}"), "exited");

    d.run_detached(&["--name", "kk", "host", "sleep", "1000"]);
    let pid = pid_of(&d, "kk");
    let start_time = proc_start_time(pid).expect("the container's process runs");
    d.cli_ok(&["kill", "-s", "KILL", "kk"]);
    assert_eq!(d.wait_code("kk"), "137");
    assert_eq!(d.inspect_field("kk", "{{.State.ExitCode}}"), "137");
    assert!(!process_is(pid, start_time));
}

#[test]
fn logs_after_exit() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let id = d.run_detached(&["--name", "io", "host", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(d.wait_code("io"), "0");
    let out = d.cli(&["logs", "io"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "out\n",
        "{}",
        describe(&out)
    );
    assert_eq!(stderr_of(&out), "err\n", "{}", describe(&out));

    let log = d.container_dir(&id).join(format!("{id}-json.log"));
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(records.len(), 2, "{text}");
    let out_record = records
        .iter()
        .find(|r| r["stream"] == "stdout")
        .unwrap_or_else(|| panic!("no stdout record: {text}"));
    assert_eq!(out_record["log"], "out\n");
    assert!(
        is_docker_time(out_record["time"].as_str().unwrap_or_default()),
        "{text}"
    );

    d.run_detached(&["--name", "five", "host", "seq", "1", "5"]);
    assert_eq!(d.wait_code("five"), "0");
    assert_eq!(d.cli_ok(&["logs", "five"]), "1\n2\n3\n4\n5\n");
    assert_eq!(d.cli_ok(&["logs", "--tail", "2", "five"]), "4\n5\n");
    let stamped = d.cli_ok(&["logs", "-t", "five"]);
    for (i, line) in stamped.lines().enumerate() {
        let (time, text) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
        assert!(is_docker_time(time), "{line:?}");
        assert_eq!(text, (i + 1).to_string());
    }
}

#[test]
fn ping_version_and_socket_mode() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    for path in ["/_ping", "/v1.44/_ping"] {
        let ping = d.http("GET", path, None);
        assert_eq!((ping.status, ping.body.as_str()), (200, "OK"), "{path}");
    }
    for path in ["/version", "/v1.44/version"] {
        let version = d.http("GET", path, None);
        assert_eq!(version.status, 200, "{path}: {}", version.body);
        let api = version.json()["ApiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!api.is_empty(), "{path}: {}", version.body);
    }
    let meta = fs::metadata(d.socket()).expect("socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");
}

/// The list is reused while the store is unchanged (issue 15): every kind of write must
/// still show in the next list, each listed twice (a fresh list, then a reused one).
#[test]
fn list_follows_every_change_while_reused() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let listed = |d: &Daemon| -> Vec<(String, String)> {
        let mut twice = Vec::new();
        for _ in 0..2 {
            let list = d.http("GET", "/containers/json?all=1", None);
            assert_eq!(list.status, 200, "{}", list.body);
            let entries = list.json().as_array().cloned().unwrap_or_default();
            twice.push(
                entries
                    .iter()
                    .map(|c| (c["Names"][0].to_string(), c["State"].to_string()))
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(twice[0], twice[1], "the same list twice");
        twice.remove(0)
    };
    assert_eq!(listed(&d), vec![]);
    let body = r#"{"Image":"host","Cmd":["sleep","1000"]}"#;
    let created = d.http("POST", "/containers/create?name=one", Some(body));
    assert_eq!(created.status, 201, "{}", created.body);
    let pair = |name: &str, state: &str| (format!("\"/{name}\""), format!("\"{state}\""));
    assert_eq!(listed(&d), vec![pair("one", "created")]);
    let started = d.http("POST", "/containers/one/start", None);
    assert_eq!(started.status, 204, "{}", started.body);
    assert_eq!(listed(&d), vec![pair("one", "running")]);
    let renamed = d.http("POST", "/containers/one/rename?name=two", None);
    assert_eq!(renamed.status, 204, "{}", renamed.body);
    assert_eq!(listed(&d), vec![pair("two", "running")]);
    let stopped = d.http("POST", "/containers/two/stop?t=1", None);
    assert_eq!(stopped.status, 204, "{}", stopped.body);
    assert_eq!(listed(&d), vec![pair("two", "exited")]);
    let removed = d.http("DELETE", "/containers/two", None);
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(listed(&d), vec![]);
}

/// Docker's kill with SIGKILL answers once the container is no longer running: inspect right
/// after it shows the exit, and a plain `rm` right after it succeeds (it was a 409 in 4 of 5
/// tries when kill answered at the signal).
#[test]
fn kill_answers_once_the_container_is_dead_so_rm_follows() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    for round in 0..20 {
        let name = format!("k{round}");
        d.run_detached(&["--name", &name, "host", "sleep", "1000"]);
        let kill = d.http("POST", &format!("/v1.44/containers/{name}/kill"), None);
        assert_eq!(kill.status, 204, "{}", kill.body);
        let state = d.inspect_json(&name)["State"].clone();
        assert_eq!(
            (state["Status"].as_str(), state["ExitCode"].as_i64()),
            (Some("exited"), Some(137)),
            "round {round}: {state}"
        );
        let rm = d.http("DELETE", &format!("/v1.44/containers/{name}"), None);
        assert_eq!(rm.status, 204, "round {round}: {}", rm.body);
    }
}
