//! Issue 7's pause and unpause: a paused container writes nothing and its process is stopped
//! ('T' in /proc, or FROZEN in the cgroup freezer for runc); unpause resumes it; a paused
//! container can be stopped and removed; Docker's 409 texts; a pause survives a daemon
//! SIGKILL with live-restore; and the real docker CLI drives it.
//!
//! Every test ends with `rm -f`, which thaws first: the harness's clean-up kills the
//! container's leader only, and a stopped child in its group would be left behind. A
//! [`Thaw`] guard covers a test that fails before that.

mod common;

use std::time::Duration;

use common::runc::skip_reason;
use common::*;

/// A shell loop printing a counter every 50 ms.
const COUNTER: &str = "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done";
/// How long a container gets to show a change (log lines, process state).
const DEADLINE: Duration = Duration::from_secs(10);

fn log_lines(d: &Daemon, name: &str) -> usize {
    d.cli_ok(&["logs", name]).lines().count()
}

/// Field 3 of /proc/PID/stat.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn pid_of(d: &Daemon, name: &str) -> i32 {
    d.inspect_field(name, "{{.State.Pid}}")
        .parse()
        .expect("pid")
}

/// Sends SIGCONT to a process container's group on drop, if its leader is still the same
/// process: a failing test leaves no stopped process behind. Dropped before the harness.
struct Thaw {
    /// The leader's pid, which is the group's id.
    pgid: i32,
    /// The leader's start time, checked before the group is signalled.
    start_time: u64,
}

impl Thaw {
    fn new(d: &Daemon, name: &str) -> Thaw {
        let pgid = pid_of(d, name);
        let start_time = proc_start_time(pgid).expect("the container runs");
        Thaw { pgid, start_time }
    }
}

impl Drop for Thaw {
    fn drop(&mut self) {
        if self.pgid > 1 && process_is(self.pgid, self.start_time) {
            let group = nix::unistd::Pid::from_raw(self.pgid);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGCONT);
        }
    }
}

/// Waits until the log grows past `n` lines.
fn assert_log_grows(d: &Daemon, name: &str, n: usize) {
    assert!(
        wait_for(DEADLINE, || log_lines(d, name) > n + 2),
        "{name}'s log did not grow past {n} lines"
    );
}

/// The log does not grow for 500 ms (after 100 ms for a line already in the pipe).
fn assert_log_still(d: &Daemon, name: &str) {
    std::thread::sleep(Duration::from_millis(100));
    let before = log_lines(d, name);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(log_lines(d, name), before, "{name} wrote while paused");
}

fn status_paused_running(d: &Daemon, name: &str) -> String {
    d.inspect_field(
        name,
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
    )
}

/// Status and message of a raw API call.
fn api(d: &Daemon, method: &str, path: &str) -> (u16, String) {
    let r = d.http(method, path, None);
    let message = if r.status == 204 {
        String::new()
    } else {
        r.message()
    };
    (r.status, message)
}

#[test]
fn pause_freezes_the_group_and_unpause_resumes_it() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let id = d.run_detached(&["--name", "counter", "host", "sh", "-c", COUNTER]);
    let _thaw = Thaw::new(&d, "counter");
    assert_log_grows(&d, "counter", 0);
    let pid = pid_of(&d, "counter");
    assert_eq!(d.cli_ok(&["pause", "counter"]).trim(), "counter");
    assert!(wait_for(DEADLINE, || proc_state(pid) == Some('T')));
    assert_log_still(&d, "counter");
    assert_eq!(status_paused_running(&d, "counter"), "paused true true");
    assert_eq!(pid_of(&d, "counter"), pid);
    let ps = d.cli_ok(&["ps"]);
    assert!(ps.contains(" (Paused) ") && ps.contains("counter"), "{ps}");
    let info = d.http("GET", "/v1.44/info", None).json();
    assert_eq!(
        (&info["ContainersPaused"], &info["ContainersRunning"]),
        (&serde_json::json!(1), &serde_json::json!(0))
    );

    // Docker's refusals while paused.
    let (status, msg) = api(&d, "POST", "/v1.44/containers/counter/pause");
    assert_eq!(
        (status, msg),
        (409, format!("Container {id} is already paused"))
    );
    let (status, msg) = api(&d, "POST", "/v1.44/containers/counter/start");
    assert_eq!(
        (status, msg.as_str()),
        (409, "cannot start a paused container, try unpause instead")
    );
    let (status, msg) = api(&d, "DELETE", "/v1.44/containers/counter");
    assert_eq!(
        (status, msg.as_str()),
        (
            409,
            "cannot remove container \"/counter\": container is paused and must be unpaused first"
        )
    );

    let n = log_lines(&d, "counter");
    assert_eq!(d.cli_ok(&["unpause", "counter"]).trim(), "counter");
    assert_log_grows(&d, "counter", n);
    assert_ne!(proc_state(pid), Some('T'));
    assert_eq!(status_paused_running(&d, "counter"), "running false true");
    let (status, msg) = api(&d, "POST", "/v1.44/containers/counter/unpause");
    assert_eq!(
        (status, msg),
        (409, format!("Container {id} is not paused"))
    );

    // A container that never ran cannot be paused.
    let created = d.cli_ok(&["create", "--name", "idle", "host", "true"]);
    let (status, msg) = api(&d, "POST", "/v1.44/containers/idle/pause");
    assert_eq!(
        (status, msg),
        (409, format!("Container {} is not running", created.trim()))
    );
    d.cli_ok(&["rm", "-f", "counter", "idle"]);
}

#[test]
fn a_paused_container_stops_and_records_its_exit() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.run_detached(&["--name", "counter", "host", "sh", "-c", COUNTER]);
    let _thaw = Thaw::new(&d, "counter");
    assert_log_grows(&d, "counter", 0);
    d.cli_ok(&["pause", "counter"]);
    // SIGTERM ends sh: it is thawed so the signal lands, well before the 10 s timeout.
    let started = std::time::Instant::now();
    d.cli_ok(&["stop", "counter"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop waited for the timeout"
    );
    assert_eq!(
        d.inspect_field("counter", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 143"
    );
    let events = d.http(
        "GET",
        &format!(
            "/v1.44/events?since=0&until={}",
            chrono::Utc::now().timestamp() + 1
        ),
        None,
    );
    let actions: Vec<String> = events
        .body
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| e["Action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        actions,
        ["create", "start", "pause", "unpause", "kill", "die", "stop"],
        "{}",
        events.body
    );

    // rm -f of a paused container kills it too.
    d.run_detached(&["--name", "again", "host", "sh", "-c", COUNTER]);
    let _thaw_again = Thaw::new(&d, "again");
    d.cli_ok(&["pause", "again"]);
    d.cli_ok(&["rm", "-f", "again", "counter"]);
    assert!(d.cli_ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn a_pause_survives_a_daemon_sigkill() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    d.run_detached(&["--name", "counter", "host", "sh", "-c", COUNTER]);
    let _thaw = Thaw::new(&d, "counter");
    assert_log_grows(&d, "counter", 0);
    let pid = pid_of(&d, "counter");
    let started_at = d.inspect_field("counter", "{{.State.StartedAt}}");
    d.cli_ok(&["pause", "counter"]);
    d.kill9();
    d.restart();
    assert_eq!(status_paused_running(&d, "counter"), "paused true true");
    assert_eq!(pid_of(&d, "counter"), pid);
    assert_eq!(
        d.inspect_field("counter", "{{.State.StartedAt}}"),
        started_at
    );
    assert_eq!(proc_state(pid), Some('T'));
    assert_log_still(&d, "counter");
    let n = log_lines(&d, "counter");
    d.cli_ok(&["unpause", "counter"]);
    assert_log_grows(&d, "counter", n);
    d.cli_ok(&["rm", "-f", "counter"]);
}

#[test]
fn docker_pause_and_unpause() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.docker_ok(&[
        "run", "-d", "--name", "counter", "host", "sh", "-c", COUNTER,
    ]);
    let _thaw = Thaw::new(&d, "counter");
    assert_log_grows(&d, "counter", 0);
    assert_eq!(d.docker_ok(&["pause", "counter"]).trim(), "counter");
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.trim().ends_with("(Paused)"), "{ps}");
    let state = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "counter",
    ]);
    assert_eq!(state.trim(), "paused true");
    let paused = d.docker_ok(&["info", "--format", "{{.ContainersPaused}}"]);
    assert_eq!(paused.trim(), "1");
    let err = d.docker_fail(&["pause", "counter"]);
    assert!(err.contains("is already paused"), "{err}");
    assert_eq!(d.docker_ok(&["unpause", "counter"]).trim(), "counter");
    let err = d.docker_fail(&["unpause", "counter"]);
    assert!(err.contains("is not paused"), "{err}");
    d.docker_ok(&["rm", "-f", "counter"]);
}

/// The container's freezer state (cgroup v1 `freezer.state`, or v2 `cgroup.freeze` as
/// FROZEN/THAWED).
fn freezer_state(id: &str) -> String {
    let v1 = format!("/sys/fs/cgroup/freezer/moor/{id}/freezer.state");
    if let Ok(s) = std::fs::read_to_string(v1) {
        return s.trim().to_string();
    }
    let v2 = format!("/sys/fs/cgroup/moor/{id}/cgroup.freeze");
    match std::fs::read_to_string(v2).map(|s| s.trim().to_string()) {
        Ok(s) if s == "1" => "FROZEN".into(),
        Ok(_) => "THAWED".into(),
        Err(e) => panic!("no freezer state for {id}: {e}"),
    }
}

#[test]
fn runc_pause_uses_the_cgroup_freezer() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    d.import_busybox("bb");
    let id = d.run_detached(&["--name", "counter", "bb", "sh", "-c", COUNTER]);
    assert_log_grows(&d, "counter", 0);
    d.cli_ok(&["pause", "counter"]);
    assert_eq!(freezer_state(&id), "FROZEN");
    assert_log_still(&d, "counter");
    assert_eq!(status_paused_running(&d, "counter"), "paused true true");
    d.kill9();
    d.restart();
    assert_eq!(status_paused_running(&d, "counter"), "paused true true");
    assert_eq!(freezer_state(&id), "FROZEN");
    let n = log_lines(&d, "counter");
    d.cli_ok(&["unpause", "counter"]);
    assert_eq!(freezer_state(&id), "THAWED");
    assert_log_grows(&d, "counter", n);
    d.cli_ok(&["pause", "counter"]);
    d.cli_ok(&["rm", "-f", "counter"]);
    assert!(d.cli_ok(&["ps", "-aq"]).trim().is_empty());
    common::runc::clean_up(&d.run_dir(), d.root().parent().expect("test dir"));
}
