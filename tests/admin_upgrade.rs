//! Issue 14's `moor admin upgrade`: the running daemon checks a new binary, then re-executes
//! itself in place (same pid) handing the listening socket over: a client calling the API
//! throughout sees no failed request, and every container keeps its pid and StartedAt. A
//! binary that fails the check leaves the old daemon serving, and the answer says why.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::runc::skip_reason;
use common::*;

/// A copy of this build's binaries in `dir` (the "new" release: a different path, so the
/// test can tell which file the daemon runs).
fn new_release(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("release dir");
    for (from, name) in [(MOOR, "moor"), (MOOR_SHIM, "moor-shim")] {
        std::fs::copy(from, dir.join(name)).expect("copy a binary");
    }
    dir.join("moor")
}

fn exe_of(pid: i32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).expect("the daemon's exe")
}

/// Calls `/_ping` and `GET /containers/json` on new connections until told to stop;
/// (answered, failed) with one retry per request, as the docker CLI retries a closed one.
fn client_loop(socket: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u32, u32)> {
    std::thread::spawn(move || {
        let (mut answered, mut failed) = (0, 0);
        let requests = [
            "GET /_ping HTTP/1.0\r\n\r\n",
            "GET /v1.44/containers/json HTTP/1.0\r\n\r\n",
        ];
        while !stop.load(Ordering::Relaxed) {
            for request in requests {
                let once = || raw_request(&socket, request, Duration::from_secs(30));
                match once().or_else(|_| once()) {
                    Ok(answer) if answer.status == 200 => answered += 1,
                    other => {
                        eprintln!("failed request {request:?}: {other:?}");
                        failed += 1;
                    }
                }
            }
        }
        (answered, failed)
    })
}

fn identities(d: &Daemon, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| d.inspect_field(n, "{{.State.Pid}} {{.State.StartedAt}} {{.State.Status}}"))
        .collect()
}

#[test]
fn an_upgrade_keeps_the_pid_the_socket_and_every_container() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let d = Daemon::start(LIVE_RESTORE_ON);
    let daemon_pid = d.pid().expect("the daemon runs");
    d.import_busybox("bb");
    d.run_detached(&[
        "--name",
        "proc",
        "host",
        "sh",
        "-c",
        "while :; do echo p; sleep 0.1; done",
    ]);
    d.run_detached(&[
        "--name",
        "box",
        "--runtime",
        "runc",
        "bb",
        "sh",
        "-c",
        "while :; do echo b; sleep 0.1; done",
    ]);
    let names = ["proc", "box"];
    let before = identities(&d, &names);

    let stop = Arc::new(AtomicBool::new(false));
    let client = client_loop(d.socket(), stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let binary = new_release(&d.root().with_file_name("release-2"));
    let out = d.admin(&["upgrade", "--binary", binary.to_str().expect("utf-8")]);
    let printed = succeeded("moor admin upgrade", &[], out);
    assert!(printed.contains("upgraded"), "{printed}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = client.join().expect("the client loop");

    assert_eq!(
        failed, 0,
        "requests failed across the upgrade ({answered} answered)"
    );
    assert!(answered > 4, "the client loop made {answered} requests");
    assert_eq!(d.pid(), Some(daemon_pid));
    assert!(pid_alive(daemon_pid));
    assert_eq!(exe_of(daemon_pid), binary, "the daemon runs the new binary");
    assert_eq!(
        identities(&d, &names),
        before,
        "the containers kept pid and StartedAt"
    );
    assert!(d
        .output()
        .contains("serving the socket handed over by the upgrade"));
    // Managed as before: logs flow, exec, stop; and a new container starts.
    assert!(d.cli_ok(&["logs", "box"]).lines().count() > 1);
    assert_eq!(d.cli_ok(&["exec", "box", "echo", "in"]).trim(), "in");
    d.cli_ok(&["stop", "-t", "1", "proc"]);
    d.run_detached(&["--name", "after", "host", "sleep", "60"]);
    d.cli_ok(&["rm", "-f", "proc", "box", "after"]);
}

#[test]
fn a_binary_that_fails_its_check_leaves_the_daemon_serving() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let daemon_pid = d.pid().expect("the daemon runs");
    let exe = exe_of(daemon_pid);
    d.run_detached(&["--name", "keep", "host", "sleep", "60"]);
    let before = identities(&d, &["keep"]);
    let dir = d.root().with_file_name("bad");
    std::fs::create_dir_all(&dir).expect("dir");
    let old_schema = dir.join("old-moor");
    std::fs::write(
        &old_schema,
        "#!/bin/sh\necho '{\"version\":\"0.0.1\",\"store_schema\":0,\"shim_protocols\":[1,1]}'\n",
    )
    .expect("script");
    let refusing = dir.join("refusing-moor");
    std::fs::write(
        &refusing,
        "#!/bin/sh\necho 'unknown key \"bridge\"' >&2\nexit 1\n",
    )
    .expect("script");
    for script in [&old_schema, &refusing] {
        std::fs::set_permissions(script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    let cases = [
        (Path::new("/bin/true"), "printed no upgrade report"),
        (old_schema.as_path(), "reads store schemas up to 0"),
        (refusing.as_path(), "unknown key \"bridge\""),
        (Path::new("/nonexistent/moor"), "the new binary"),
    ];
    for (binary, words) in cases {
        let out = d.admin(&["upgrade", "--binary", binary.to_str().expect("utf-8")]);
        let out = failed("moor admin upgrade", &[], out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(words), "{binary:?}: {stderr}");
        assert!(ping(&d.socket()));
        assert_eq!(exe_of(daemon_pid), exe);
    }
    let answer = d.http(
        "POST",
        "/moor/admin/upgrade",
        Some(r#"{"Binary":"/x","Force":true}"#),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.message().contains("Force"), "{}", answer.message());
    assert_eq!(identities(&d, &["keep"]), before);
    d.cli_ok(&["rm", "-f", "keep"]);
}
