//! Issue 5: logs never block. The shim drains the container's output into Docker's json-file
//! log whether or not the daemon runs; `logs` reads it across rotations, follows it, and
//! streams it without holding it in memory; a full disk drops output visibly, never blocks.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;
use std::sync::{Mutex, MutexGuard};

/// The tests of this file run one at a time: each pushes a lot of output through a debug-built
/// shim, and the 5 s deadline of the first one is about the shim, not about sharing 2 cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The exit.json of a container's current run, once the shim wrote it.
fn exit_json(d: &Daemon, id: &str) -> Option<serde_json::Value> {
    let text = fs::read_to_string(d.container_run_dir(id).join("exit.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// A `moor` CLI process with its stdout on a pipe, killed (by pid) when dropped.
struct Cli(Child);

impl Cli {
    fn spawn(d: &Daemon, args: &[&str], stdout: Stdio) -> Cli {
        let child = Command::new(MOOR)
            .arg("--host")
            .arg(format!("unix://{}", d.socket().display()))
            .args(args)
            .env_remove("MOOR_HOST")
            .stdin(Stdio::null())
            .stdout(stdout)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn moor {args:?}: {e}"));
        Cli(child)
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                Signal::SIGKILL,
            );
            let _ = self.0.wait();
        }
    }
}

#[test]
fn output_flows_while_the_daemon_is_dead() {
    let _serial = one_at_a_time();
    const LINES: usize = 3_000_000;
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let id = d.run_detached(&["--name", "seq", "host", "seq", "1", &LINES.to_string()]);
    d.kill9();
    let exited = wait_for(Duration::from_secs(5), || exit_json(&d, &id).is_some());
    assert!(
        exited,
        "the container must finish within 5 s with no daemon"
    );
    let exit = exit_json(&d, &id).expect("exit.json");
    assert_eq!(exit["exit"]["code"], 0, "{exit}");
    d.restart();
    assert_eq!(d.wait_code("seq"), "0");

    let out = d.cli_ok(&["logs", "seq"]);
    let mut count = 0;
    for (i, line) in out.lines().enumerate() {
        assert_eq!(line, (i + 1).to_string(), "line {}", i + 1);
        count += 1;
    }
    assert_eq!(count, LINES);

    let out = d.cli_ok(&["logs", "-t", "seq"]);
    let mut count = 0;
    for (i, line) in out.lines().enumerate() {
        let (time, text) = line.split_once(' ').expect("timestamp, space, text");
        assert_eq!(text, (i + 1).to_string(), "line {}", i + 1);
        assert_eq!(time.len(), "2026-01-01T00:00:00.000000000Z".len(), "{line}");
        assert!(is_docker_time(time), "{line}");
        count += 1;
    }
    assert_eq!(count, LINES);
}

#[test]
fn rotation_keeps_max_file_files_and_tail_reads_across_them() {
    let _serial = one_at_a_time();
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let id = d.run_detached(&[
        "--name",
        "rot",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=3",
        "host",
        "seq",
        "1",
        "200000",
    ]);
    assert_eq!(d.wait_code("rot"), "0");
    let log = d.container_dir(&id).join(format!("{id}-json.log"));
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    for path in [log.clone(), numbered(1), numbered(2)] {
        let size = fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .len();
        assert!(size <= 1024 * 1024, "{} is {size} bytes", path.display());
    }
    assert!(!numbered(3).exists(), "at most 3 files");
    let tail = d.cli_ok(&["logs", "--tail", "10", "rot"]);
    let want: String = (199_991..=200_000).map(|n| format!("{n}\n")).collect();
    assert_eq!(tail, want);
    // More than the current file holds: the tail starts in a rotated file.
    let current = fs::read_to_string(&log).expect("read log");
    let n = current.lines().count() + 10;
    let tail = d.cli_ok(&["logs", "--tail", &n.to_string(), "rot"]);
    let want: String = (200_001 - n..=200_000).map(|n| format!("{n}\n")).collect();
    assert_eq!(tail, want);
    let record = current.lines().last().expect("a record");
    let v: serde_json::Value = serde_json::from_str(record).expect("json record");
    assert_eq!(v["log"], "200000\n");
    assert_eq!(v["stream"], "stdout");
    assert!(is_docker_time(v["time"].as_str().expect("time")), "{v}");
    assert_eq!(
        d.inspect_json("rot")["HostConfig"]["LogConfig"]["Type"],
        "json-file"
    );
}

/// A 1 MiB tmpfs mounted over a directory, unmounted (lazily) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it over `dir`, copying the files `dir` had onto it.
    fn over(dir: &Path) -> Tmpfs {
        let saved: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
            .expect("list container dir")
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| (e.file_name().into(), fs::read(e.path()).expect("read file")))
            .collect();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs on {}", dir.display());
        for (name, bytes) in saved {
            fs::write(dir.join(name), bytes).expect("restore file");
        }
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_drops_output_visibly_and_never_blocks() {
    let _serial = one_at_a_time();
    if let Some(reason) = common::prereq::need_root("mounting a tmpfs") {
        eprintln!("{reason}");
        return;
    }
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let script = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 10000000; echo done";
    let id = d
        .cli_ok(&["create", "--name", "full", "host", "sh", "-c", script])
        .trim()
        .to_string();
    let dir = d.container_dir(&id);
    fs::create_dir_all(&dir).expect("container dir");
    let _tmpfs = Tmpfs::over(&dir);
    let other = d.run_detached(&["--name", "other", "host", "sleep", "1000"]);
    d.cli_ok(&["start", "full"]);
    assert_eq!(d.wait_code("full"), "0", "the container finishes");
    let log = fs::read_to_string(dir.join(format!("{id}-json.log"))).expect("read log");
    let report = log
        .lines()
        .find(|l| l.contains("moor-shim: dropped "))
        .unwrap_or_else(|| panic!("no drop record in {} bytes of log", log.len()));
    let v: serde_json::Value = serde_json::from_str(report).expect("json record");
    assert_eq!(v["stream"], "stderr");
    assert!(
        v["log"].as_str().expect("log").contains("No space left"),
        "{v}"
    );
    let shown = d.cli_ok(&["logs", "full"]);
    assert!(
        shown.starts_with("0123456789"),
        "{:?} from a log starting {:?}",
        &shown[..shown.len().min(200)],
        &log[..log.len().min(300)]
    );
    // The daemon and the other container are fine.
    assert_eq!(d.inspect_field(&other, "{{.State.Status}}"), "running");
    d.cli_ok(&["kill", &other]);
    d.run_detached(&["--name", "after", "host", "echo", "still fine"]);
    d.wait_code("after");
    assert_eq!(d.cli_ok(&["logs", "after"]), "still fine\n");
}

#[test]
fn follow_delivers_new_lines_within_100ms_and_ends_with_the_container() {
    let _serial = one_at_a_time();
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let script = "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.1; done";
    d.run_detached(&["--name", "follow", "host", "sh", "-c", script]);
    let mut cli = Cli::spawn(&d, &["logs", "-f", "-t", "follow"], Stdio::piped());
    let stdout = cli.0.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read logs -f");
        let arrived = Utc::now();
        let (time, text) = line.split_once(' ').expect("timestamp, space, text");
        let written = parse_time(time);
        let late = (arrived - written).to_std().unwrap_or_default();
        assert!(
            late < Duration::from_millis(100),
            "{text:?} came {late:?} late"
        );
        lines.push(text.to_string());
    }
    let want: Vec<String> = (1..=8).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want);
    let end = Instant::now() + Duration::from_secs(5);
    while cli.0.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < end, "logs -f must end with the container");
        thread::sleep(POLL);
    }
}

fn vm_rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn streaming_a_large_log_does_not_grow_the_daemon() {
    let _serial = one_at_a_time();
    const LOG_BYTES: usize = 100 * 1024 * 1024;
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let id = d.run_detached(&["--name", "big", "host", "true"]);
    d.wait_code("big");
    // The log is just a file: write a large one in the shim's format directly.
    let record = format!(
        "{{\"log\":\"{}\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00.123456789Z\"}}\n",
        "x".repeat(200)
    );
    let block = record.repeat(64 * 1024 / record.len());
    let mut text = String::with_capacity(LOG_BYTES + block.len());
    while text.len() < LOG_BYTES {
        text.push_str(&block);
    }
    fs::write(d.container_dir(&id).join(format!("{id}-json.log")), &text).expect("write log");
    let records = text.len() / record.len();
    drop(text);
    let pid = d.pid().expect("daemon pid");
    // Warm up the path once (thread stacks, allocator arenas), then measure.
    d.cli_ok(&["logs", "--tail", "1000", "big"]);
    let before = vm_rss_kib(pid);
    let out = tempfile::tempfile().expect("temp file");
    let mut cli = Cli::spawn(
        &d,
        &["logs", "big"],
        Stdio::from(out.try_clone().expect("clone")),
    );
    let mut peak = before;
    while cli.0.try_wait().expect("try_wait").is_none() {
        peak = peak.max(vm_rss_kib(pid));
        thread::sleep(Duration::from_millis(10));
    }
    assert!(cli.0.wait().expect("wait").success());
    let len = out.metadata().expect("stat output").len() as usize;
    assert_eq!(len, records * 201, "every record is shown");
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "daemon RSS grew by {grown} KiB (from {before} KiB) while streaming {LOG_BYTES} bytes"
    );
}

/// Issue 18, item 4: log options are checked as Docker's json-file driver checks them; a
/// refused one is a 400 naming it, and nothing is created.
#[test]
fn bad_log_options_are_refused_at_create_naming_the_option() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let create = |opts: &str| {
        let body = format!(
            r#"{{"Image":"host","Cmd":["true"],"HostConfig":{{"LogConfig":{{"Type":"json-file","Config":{opts}}}}}}}"#
        );
        d.http("POST", "/v1.44/containers/create", Some(&body))
    };
    for (opts, want) in [
        (
            r#"{"max-size":"garbage"}"#,
            "max-size: invalid size: 'garbage'",
        ),
        (r#"{"max-size":"0"}"#, "max-size must be a positive number"),
        (
            r#"{"max-size":"1","max-file":"0"}"#,
            "max-file cannot be less than 1",
        ),
        (
            r#"{"max-size":"1","max-file":"4294967295"}"#,
            "max-file cannot be more than 1000",
        ),
        (r#"{"max-file":"3"}"#, "max-file 3 needs max-size"),
        (
            r#"{"x":"1"}"#,
            "unknown log opt 'x' for json-file log driver",
        ),
        (
            r#"{"compress":"true"}"#,
            "log opt 'compress' is not implemented",
        ),
    ] {
        let r = create(opts);
        assert_eq!(r.status, 400, "{opts}: {}", r.body);
        assert!(r.message().contains(want), "{opts}: {}", r.message());
    }
    let listed = d.http("GET", "/containers/json?all=1", None).json();
    assert_eq!(listed, serde_json::json!([]), "nothing was created");
    let r = create(r#"{"max-size":"10k","max-file":"3"}"#);
    assert_eq!(r.status, 201, "{}", r.body);
}

/// daemon.json `log-opts` get the same checks: a bad value keeps the old configuration on
/// reload (the error logged, naming the option) and stops a start.
#[test]
fn bad_log_opts_in_daemon_json_are_refused_at_reload_and_start() {
    let mut d = Daemon::start(r#"{"log-opts": {"max-size": "1m"}}"#);
    fs::write(d.config_path(), r#"{"log-opts": {"max-size": "garbage"}}"#).expect("write");
    d.send(Signal::SIGHUP);
    let want = "log-opts: max-size: invalid size: 'garbage'";
    assert!(
        wait_for(Duration::from_secs(10), || d.output().contains(want)),
        "{}",
        d.output()
    );
    d.stop_term();
    // Under timeout(1): a start that wrongly succeeds is ended, not waited for.
    let out = Command::new("timeout")
        .args(["30", MOOR, "daemon"])
        .args(d.path_args())
        .args(["--runtime", "process"])
        .env("MOOR_SHIM", MOOR_SHIM)
        .output()
        .expect("run moor daemon");
    assert!(!out.status.success(), "a start with bad log-opts fails");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(want), "{stderr}");
}
