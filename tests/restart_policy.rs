//! Restart policies, as Docker applies them: `on-failure:N` counts, `always` comes back
//! until a user stops it, and a container that ended while the daemon was away is
//! started again by the next daemon when its policy says so.

mod common;

use common::*;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

fn field(d: &Daemon, name: &str, tmpl: &str) -> String {
    d.inspect_field(name, tmpl)
}

#[test]
fn on_failure_restarts_up_to_the_limit() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    d.run_detached(&[
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "host",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert!(
        wait_for(DEADLINE, || field(&d, "flaky", "{{.RestartCount}}") == "2"
            && field(&d, "flaky", "{{.State.Status}}") == "exited"),
        "never reached 2 restarts: {}",
        field(&d, "flaky", "{{.RestartCount}} {{.State.Status}}")
    );
    // No third restart comes.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(field(&d, "flaky", "{{.RestartCount}}"), "2");
    assert_eq!(field(&d, "flaky", "{{.State.ExitCode}}"), "3");
}

#[test]
fn always_restarts_until_a_user_stops_it() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    d.run_detached(&[
        "--name",
        "loop",
        "--restart",
        "always",
        "host",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    assert!(
        wait_for(DEADLINE, || field(&d, "loop", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 2),
        "always did not restart"
    );
    d.cli_ok(&["stop", "-t", "1", "loop"]);
    assert!(wait_for(DEADLINE, || field(
        &d,
        "loop",
        "{{.State.Status}}"
    ) == "exited"));
    let count = field(&d, "loop", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(field(&d, "loop", "{{.State.Status}}"), "exited");
    assert_eq!(
        field(&d, "loop", "{{.RestartCount}}"),
        count,
        "restarted after a user stop"
    );
}

#[test]
fn no_policy_means_no_restart() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    d.run_detached(&["--name", "once", "host", "sh", "-c", "exit 1"]);
    assert_eq!(d.wait_code("once"), "1");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        field(&d, "once", "{{.RestartCount}} {{.State.Status}}"),
        "0 exited"
    );
}

#[test]
fn an_exit_while_the_daemon_is_down_is_restarted_at_start() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    d.run_detached(&[
        "--name",
        "svc",
        "--restart",
        "unless-stopped",
        "host",
        "sleep",
        "1000",
    ]);
    let pid: i32 = field(&d, "svc", "{{.State.Pid}}").parse().unwrap();
    d.kill9();
    let start_time = proc_start_time(pid).expect("the container runs");
    assert!(kill_if_same(
        pid,
        start_time,
        nix::sys::signal::Signal::SIGKILL
    ));
    assert!(wait_for(DEADLINE, || !pid_alive(pid) || proc_is_zombie(pid)));
    d.restart();
    assert!(
        wait_for(DEADLINE, || field(&d, "svc", "{{.State.Status}}")
            == "running"),
        "not restarted: {}",
        field(&d, "svc", "{{.State.Status}} {{.State.ExitCode}}")
    );
    let new_pid: i32 = field(&d, "svc", "{{.State.Pid}}").parse().unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(field(&d, "svc", "{{.RestartCount}}"), "1");
}

fn proc_is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Docker's `restarting` during a policy's back-off: shown by inspect (`Restarting: true`,
/// `Running: true`, no pid), by the list (`Restarting (3) ...`) and the docker CLI; a plain
/// `rm` is refused (409), `stop` ends the back-off (exited, not started again), `rm -f`
/// during it works; and a daemon killed during it starts the container at its next start.
#[test]
fn the_back_off_is_restarting_and_rm_needs_a_stop_or_force() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let restarting = |d: &Daemon, name: &str| {
        wait_for(Duration::from_secs(30), || {
            field(d, name, "{{.State.Status}}") == "restarting"
        })
    };
    for name in ["loop", "killed", "forced"] {
        d.run_detached(&[
            "--name",
            name,
            "--restart",
            "always",
            "host",
            "sh",
            "-c",
            "exit 3",
        ]);
    }
    // Past a few restarts the back-off is over a second (100 ms doubling), so the checks
    // below all fall inside one back-off even on a loaded machine.
    assert!(
        wait_for(Duration::from_secs(30), || field(
            &d,
            "loop",
            "{{.RestartCount}}"
        )
        .parse::<u32>()
        .is_ok_and(|n| n >= 4)),
        "loop did not restart 4 times"
    );
    assert!(restarting(&d, "loop"), "loop was never seen restarting");
    let state = d.inspect_json("loop")["State"].clone();
    assert_eq!(
        (
            &state["Restarting"],
            &state["Running"],
            &state["Pid"],
            &state["ExitCode"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(0),
            &serde_json::json!(3)
        ),
        "{state}"
    );
    let ps = d.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "name=loop",
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.starts_with("Restarting (3)"), "{ps}");
    let rm = d.http("DELETE", "/v1.44/containers/loop", None);
    assert_eq!(rm.status, 409, "{}", rm.body);
    assert!(
        rm.message().contains("container is restarting"),
        "{}",
        rm.message()
    );
    d.cli_ok(&["stop", "loop"]);
    assert_eq!(field(&d, "loop", "{{.State.Status}}"), "exited");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        field(&d, "loop", "{{.State.Status}}"),
        "exited",
        "a stop ends the back-off"
    );
    d.cli_ok(&["rm", "loop"]);

    assert!(restarting(&d, "forced"));
    let rm = d.http("DELETE", "/v1.44/containers/forced?force=1", None);
    assert_eq!(rm.status, 204, "{}", rm.body);

    assert!(restarting(&d, "killed"));
    let count = |d: &Daemon| {
        field(d, "killed", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
    };
    let before = count(&d);
    d.kill9();
    d.restart();
    assert!(
        wait_for(Duration::from_secs(30), || count(&d) > before),
        "not started again after the daemon restart ({before} restarts)"
    );
    d.cli_ok(&["rm", "-f", "killed"]);
    // `rm -f` of a running `always` container: its kill starts no back-off that would refuse
    // the removal.
    for round in 0..5 {
        let name = format!("up{round}");
        d.run_detached(&[
            "--name",
            &name,
            "--restart",
            "always",
            "host",
            "sleep",
            "100",
        ]);
        let rm = d.http("DELETE", &format!("/v1.44/containers/{name}?force=1"), None);
        assert_eq!(rm.status, 204, "round {round}: {}", rm.body);
    }
}
