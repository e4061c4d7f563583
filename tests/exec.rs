//! `docker exec` and `moor exec` against a running container: output, exit code, stdin,
//! environment, working directory, detached runs, Docker's errors and events, for the
//! process runtime (image `host`) and, as root with runc, inside a busybox container.

mod common;

use std::time::Duration;

use common::runc::{busybox_tar_with, skip_reason};
use common::*;
use serde_json::Value;

/// A daemon with a running process-runtime container `box` (killed by the harness on drop).
fn daemon_with_box() -> (Daemon, String) {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let id = d
        .docker_ok(&["run", "-d", "--name", "box", "host", "sleep", "60"])
        .trim()
        .to_string();
    assert!(is_container_id(&id), "{id}");
    (d, id)
}

/// The docker CLI's output split: (exit code, stdout, stderr).
fn docker_exec(d: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let out = d.docker(&all, stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Actions of the container events so far, with their attributes.
fn exec_events(d: &Daemon) -> Vec<Value> {
    let until = chrono::Utc::now().timestamp() + 1;
    let r = d.http("GET", &format!("/v1.44/events?since=0&until={until}"), None);
    r.body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["Action"].as_str().is_some_and(|a| a.starts_with("exec_")))
        .collect()
}

/// Creates an exec instance over the raw API; its id.
fn create_exec(d: &Daemon, container: &str, body: &str) -> String {
    let r = d.http(
        "POST",
        &format!("/v1.44/containers/{container}/exec"),
        Some(body),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["Id"].as_str().expect("Id").to_string();
    assert!(is_container_id(&id), "exec id {id}");
    id
}

#[test]
fn docker_exec_runs_in_a_process_container() {
    let (d, _) = daemon_with_box();
    let (code, out, err) = docker_exec(
        &d,
        &["box", "sh", "-c", "echo out; echo err >&2; exit 3"],
        None,
    );
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    let (code, out, _) = docker_exec(&d, &["-i", "box", "cat"], Some(b"hello\nworld\n"));
    assert_eq!((code, out.as_str()), (0, "hello\nworld\n"));
    let (code, out, _) = docker_exec(&d, &["-e", "A=1", "box", "sh", "-c", "echo $A"], None);
    assert_eq!((code, out.as_str()), (0, "1\n"));
    let (_, out, _) = docker_exec(&d, &["-w", "/tmp", "box", "pwd"], None);
    assert_eq!(out, "/tmp\n");
    let (code, _, err) = docker_exec(&d, &["box", "no-such-program"], None);
    assert_eq!(code, 127, "{err}");

    // -d answers at once; the command still runs to its end.
    let marker = d.root().with_file_name("exec-marker");
    let script = format!("sleep 0.2; echo done > {}", marker.display());
    let (code, out, err) = docker_exec(&d, &["-d", "box", "sh", "-c", &script], None);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(
        wait_for(EXIT_DEADLINE, || std::fs::read_to_string(&marker)
            .is_ok_and(|t| t == "done\n")),
        "the detached exec did not run"
    );

    let events = exec_events(&d);
    let actions: Vec<&str> = events.iter().filter_map(|e| e["Action"].as_str()).collect();
    assert_eq!(
        actions[0],
        "exec_create: sh -c echo out; echo err >&2; exit 3"
    );
    assert_eq!(
        actions[1],
        "exec_start: sh -c echo out; echo err >&2; exit 3"
    );
    assert_eq!(actions[2], "exec_die");
    assert_eq!(events[2]["Actor"]["Attributes"]["exitCode"], "3");
    assert_eq!(events[2]["Actor"]["Attributes"]["name"], "box");
    assert_eq!(
        events[2]["Actor"]["Attributes"]["execID"],
        events[0]["Actor"]["Attributes"]["execID"]
    );
    assert!(actions.contains(&"exec_create: cat "), "{actions:?}");
}

#[test]
fn exec_inspect_and_a_second_start() {
    let (d, id) = daemon_with_box();
    let exec = create_exec(
        &d,
        "box",
        r#"{"Cmd":["sh","-c","exit 7"],"AttachStdout":true,"AttachStderr":true}"#,
    );
    let info = d
        .http("GET", &format!("/v1.44/exec/{exec}/json"), None)
        .json();
    assert_eq!(info["ID"], exec.as_str());
    assert_eq!(info["ContainerID"], id.as_str());
    assert_eq!(info["Running"], false);
    assert!(info["ExitCode"].is_null(), "{info}");
    assert_eq!(info["ProcessConfig"]["entrypoint"], "sh");
    assert_eq!(
        info["ProcessConfig"]["arguments"],
        serde_json::json!(["-c", "exit 7"])
    );
    assert_eq!(
        (info["OpenStdin"].clone(), info["CanRemove"].clone()),
        (false.into(), false.into())
    );
    let start = |exec: &str| {
        d.http(
            "POST",
            &format!("/v1.44/exec/{exec}/start"),
            Some(r#"{"Detach":true}"#),
        )
    };
    assert_eq!(start(&exec).status, 200);
    assert!(wait_for(EXIT_DEADLINE, || {
        d.http("GET", &format!("/v1.44/exec/{exec}/json"), None)
            .json()["ExitCode"]
            == 7
    }));
    let info = d
        .http("GET", &format!("/v1.44/exec/{exec}/json"), None)
        .json();
    assert!(info["Pid"].as_i64().unwrap_or(0) > 0, "{info}");
    let again = start(&exec);
    assert_eq!(again.status, 409, "{}", again.body);
    // Removing the container forgets its exec instances.
    d.docker_ok(&["rm", "-f", "box"]);
    let gone = d.http("GET", &format!("/v1.44/exec/{exec}/json"), None);
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[test]
fn exec_errors_are_dockers() {
    let (d, id) = daemon_with_box();
    let err = |m: &str, p: &str, b: Option<&str>| {
        let r = d.http(m, p, b);
        (r.status, r.message())
    };
    assert_eq!(
        err("POST", "/v1.44/exec/nope/start", Some("{}")),
        (404, "No such exec instance: nope".into())
    );
    assert_eq!(
        err("GET", "/v1.44/exec/nope/json", None),
        (404, "No such exec instance: nope".into())
    );
    assert_eq!(
        err("POST", "/v1.44/containers/box/exec", Some(r#"{"Cmd":[]}"#)),
        (400, "No exec command specified".into())
    );
    assert_eq!(
        err(
            "POST",
            "/v1.44/containers/nope/exec",
            Some(r#"{"Cmd":["ls"]}"#)
        ),
        (404, "No such container: nope".into())
    );
    // Never accepted and ignored: what an exec cannot honour is refused by name.
    assert_eq!(
        err(
            "POST",
            "/v1.44/containers/box/exec",
            Some(r#"{"Cmd":["ls"],"Privileged":true}"#)
        ),
        (400, "Privileged (exec) is not supported by moor yet".into())
    );
    let keys = d.docker_fail(&["exec", "--privileged", "box", "ls"]);
    assert!(keys.contains("Privileged (exec)"), "{keys}");
    assert_eq!(
        err(
            "POST",
            "/v1.44/containers/box/exec",
            Some(r#"{"Cmd":["ls"],"DetachKeys":"ctrl-x"}"#)
        ),
        (
            400,
            "DetachKeys (exec without a TTY) is not supported by moor yet".into()
        )
    );
    assert_eq!(
        err(
            "POST",
            "/v1.44/containers/box/exec",
            Some(r#"{"Cmd":["ls"],"Tty":true,"DetachKeys":"ctrl-"}"#)
        ),
        (400, "Invalid detach keys (ctrl-) provided".into())
    );

    d.docker_ok(&["pause", "box"]);
    let paused = d.docker_fail(&["exec", "box", "ls"]);
    d.docker_ok(&["unpause", "box"]);
    let text = format!("Container {id} is paused, unpause the container before exec");
    assert!(paused.contains(&text), "{paused}");

    let stopped = d.docker_ok(&["create", "--name", "idle", "host", "true"]);
    let stopped = stopped.trim();
    let text = format!("Container {stopped} is not running");
    assert!(d.docker_fail(&["exec", "idle", "ls"]).contains(&text));
    assert_eq!(
        err(
            "POST",
            "/v1.44/containers/idle/exec",
            Some(r#"{"Cmd":["ls"]}"#)
        ),
        (409, text)
    );
}

#[test]
fn exec_processes_end_with_their_container() {
    let (d, _) = daemon_with_box();
    let exec = create_exec(&d, "box", r#"{"Cmd":["sleep","60"]}"#);
    let r = d.http(
        "POST",
        &format!("/v1.44/exec/{exec}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let info = d
        .http("GET", &format!("/v1.44/exec/{exec}/json"), None)
        .json();
    assert_eq!(info["Running"], true, "{info}");
    let pid = info["Pid"].as_i64().expect("Pid") as i32;
    let start_time = proc_start_time(pid).expect("the exec process runs");
    d.track(pid, start_time);
    d.docker_ok(&["kill", "box"]);
    assert!(
        wait_for(EXIT_DEADLINE, || !process_is(pid, start_time)),
        "the exec process outlived its container"
    );
    assert!(wait_for(EXIT_DEADLINE, || {
        d.http("GET", &format!("/v1.44/exec/{exec}/json"), None)
            .json()["ExitCode"]
            == 137
    }));
}

#[test]
fn moor_exec_passes_output_stdin_and_code() {
    let (d, _) = daemon_with_box();
    let out = d.cli(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    let out = d.cli_input(&["exec", "-i", "box", "cat"], Some(b"piped\n"));
    assert_eq!(out.stdout, b"piped\n", "{}", describe(&out));
    let out = d.cli_ok(&[
        "exec",
        "-e",
        "X=2",
        "-w",
        "/tmp",
        "box",
        "sh",
        "-c",
        "echo $X $(pwd)",
    ]);
    assert_eq!(out, "2 /tmp\n");
    let marker = d.root().with_file_name("moor-exec-marker");
    let script = format!("echo ok > {}", marker.display());
    assert_eq!(d.cli_ok(&["exec", "-d", "box", "sh", "-c", &script]), "");
    assert!(wait_for(EXIT_DEADLINE, || marker.exists()));
    let missing = d.cli_fail(&["exec", "nope", "ls"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("Error response from daemon: No such container: nope"),
        "{stderr}"
    );
}

#[test]
fn runc_exec_runs_inside_the_container() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let tar = d.root().with_file_name("bb.tar");
    let passwd = "root:x:0:0:root:/:/bin/sh\nguest:x:405:100:guest:/:/bin/sh\n";
    let image = busybox_tar_with(&[("etc/passwd", passwd), ("etc/group", "users:x:100:\n")]);
    std::fs::write(&tar, image).expect("write busybox tar");
    d.cli_ok(&["image", "import", tar.to_str().expect("utf-8"), "bb"]);
    let id = d
        .docker_ok(&["run", "-d", "--name", "rbox", "bb", "sleep", "60"])
        .trim()
        .to_string();
    let (code, out, err) = docker_exec(&d, &["rbox", "sh", "-c", "hostname; ls /; exit 3"], None);
    assert_eq!(code, 3, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], &id[..12], "{out}");
    assert!(lines.contains(&"bin") && !lines.contains(&"home"), "{out}");
    let (code, out, _) = docker_exec(&d, &["-i", "rbox", "cat"], Some(b"in the box\n"));
    assert_eq!((code, out.as_str()), (0, "in the box\n"));
    let args = [
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "guest",
        "rbox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u)",
    ];
    let (_, out, err) = docker_exec(&d, &args, None);
    assert_eq!(out, "1 /tmp 405\n", "{err}");
    let out = d.cli_ok(&["exec", "rbox", "sh", "-c", "echo $$"]);
    assert_ne!(out.trim(), "1", "an exec is not the container's init");
    // A command that cannot start: Docker's text and codes (127 not found, 126 not
    // executable), also detached (the code in exec inspect); a process's own 255 stays.
    let (code, _, err) = docker_exec(&d, &["rbox", "nosuch"], None);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains(
            "OCI runtime exec failed: exec failed: unable to start container process: \
             exec: \"nosuch\": executable file not found in $PATH: unknown"
        ),
        "{err}"
    );
    let (code, _, err) = docker_exec(&d, &["rbox", "/etc"], None);
    assert_eq!(code, 126, "{err}");
    let (code, _, _) = docker_exec(&d, &["rbox", "sh", "-c", "echo x >&2; exit 255"], None);
    assert_eq!(code, 255);
    let exec = create_exec(&d, "rbox", r#"{"Cmd":["nosuch"]}"#);
    let r = d.http(
        "POST",
        &format!("/v1.44/exec/{exec}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(wait_for(EXIT_DEADLINE, || {
        let info = d
            .http("GET", &format!("/v1.44/exec/{exec}/json"), None)
            .json();
        info["ExitCode"] == 127
    }));
    // Pid is the exec'd process's host pid (from runc's pid file), not runc's.
    let exec = create_exec(&d, "rbox", r#"{"Cmd":["sleep","60"]}"#);
    let r = d.http(
        "POST",
        &format!("/v1.44/exec/{exec}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut pid = 0;
    assert!(wait_for(EXIT_DEADLINE, || {
        let info = d
            .http("GET", &format!("/v1.44/exec/{exec}/json"), None)
            .json();
        pid = info["Pid"].as_i64().unwrap_or(0) as i32;
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0"))
    }));
    if let Some(start_time) = proc_start_time(pid) {
        d.track(pid, start_time);
    }
    d.docker_ok(&["rm", "-f", "rbox"]);
    assert!(wait_for(EXIT_DEADLINE, || !pid_alive(pid)));
    assert!(wait_for(Duration::from_secs(10), || !d
        .run_dir()
        .join("runc")
        .join(&id)
        .exists()));
}
