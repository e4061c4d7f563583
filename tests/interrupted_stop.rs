//! A stop cut short by a daemon crash is finished by the next daemon: the container ignores
//! SIGTERM, `stop -t N` is under way when the daemon is killed with SIGKILL, and the next
//! daemon resumes it as `stopping` and sends SIGKILL at the deadline recorded with the
//! stop (at once when it has already passed). The exit is recorded: 137.

mod common;

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use chrono::Utc;
use common::*;

/// A container that ignores SIGTERM (as its `sleep` children do: the disposition is inherited).
const DEAF: &[&str] = &["sh", "-c", "trap '' TERM; while :; do sleep 1; done"];

/// Sends `POST /containers/NAME/stop?t=SECS` on its own thread: it never gets an answer
/// (the daemon is killed while it waits), so the result is ignored.
fn stop_in_background(socket: PathBuf, name: &str, secs: u32) -> thread::JoinHandle<()> {
    let request = format!(
        "POST /v1.44/containers/{name}/stop?t={secs} HTTP/1.0\r\nHost: moor\r\nContent-Length: 0\r\n\r\n"
    );
    thread::spawn(move || {
        let _ = raw_request(&socket, &request, Duration::from_secs(120));
    })
}

/// Runs the deaf container, starts a stop with `secs`, waits until the record says
/// `stopping`, kills the daemon; returns the container's (pid, start time) and when the
/// stop was sent (the recorded deadline is at least `secs` after it).
fn crash_while_stopping(
    d: &mut Daemon,
    name: &str,
    secs: u32,
) -> ((i32, u64), chrono::DateTime<Utc>) {
    let mut args = vec!["--name", name, "host"];
    args.extend_from_slice(DEAF);
    d.run_detached(&args);
    let pid: i32 = d.inspect_field(name, "{{.State.Pid}}").parse().unwrap();
    let start_time = proc_start_time(pid).expect("the container runs");
    // The shell traps TERM before the stop arrives.
    thread::sleep(Duration::from_millis(300));
    let sent = Utc::now();
    let client = stop_in_background(d.socket(), name, secs);
    assert!(
        wait_for(Duration::from_secs(10), || d
            .inspect_field(name, "{{.Moor.State}}")
            == "stopping"),
        "the container never showed `stopping`"
    );
    d.kill9();
    let _ = client.join();
    assert!(
        process_is(pid, start_time),
        "SIGTERM must not have ended it"
    );
    ((pid, start_time), sent)
}

#[test]
fn the_next_daemon_kills_at_the_recorded_deadline() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let ((pid, start_time), sent) = crash_while_stopping(&mut d, "deaf", 8);
    d.restart();
    // Resumed as a stop, not as a plain running container.
    assert_eq!(d.inspect_field("deaf", "{{.Moor.State}}"), "stopping");
    let deadline = sent + chrono::Duration::seconds(8);
    if Utc::now() < deadline - chrono::Duration::seconds(1) {
        assert!(process_is(pid, start_time), "killed before the deadline");
    }
    assert!(
        wait_for(Duration::from_secs(40), || !process_is(pid, start_time)),
        "the process outlived the stop's deadline by 30 s: the stop was never finished"
    );
    assert_eq!(d.wait_code("deaf"), "137");
    assert_eq!(d.inspect_field("deaf", "{{.State.Status}}"), "exited");
    let finished = parse_time(&d.inspect_field("deaf", "{{.State.FinishedAt}}"));
    assert!(
        finished >= deadline,
        "killed at {finished}, before the recorded deadline {deadline}"
    );
}

#[test]
fn a_deadline_passed_while_the_daemon_was_down_kills_at_once() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let ((pid, start_time), sent) = crash_while_stopping(&mut d, "late", 1);
    // The deadline passes while no daemon runs; the process ignores TERM and lives on.
    thread::sleep(Duration::from_secs(2));
    assert!(process_is(pid, start_time));
    assert!(Utc::now() > sent + chrono::Duration::seconds(1));
    d.restart();
    assert!(
        wait_for(Duration::from_secs(20), || !process_is(pid, start_time)),
        "a stop whose deadline had passed was not finished at start-up"
    );
    assert_eq!(d.wait_code("late"), "137");
    assert_eq!(d.inspect_field("late", "{{.State.Status}}"), "exited");
    // The user's stop holds the policy back as before: nothing restarted it.
    assert_eq!(d.inspect_field("late", "{{.RestartCount}}"), "0");
}
