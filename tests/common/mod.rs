//! Integration-test harness: one `moor daemon` per test, in its own temp directory, driven
//! through the real `moor` CLI and the raw HTTP API on its unix socket.
//!
//! Everything a test creates lives under one `/tmp/moor-XXXXXX` directory (short, so the
//! socket path stays far below the 108-byte limit). On drop the harness kills the daemon
//! and every shim and container process recorded in the run directory's `started.json`
//! files, by pid and only after checking /proc/PID/stat's start time: never by name.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub mod docker;
mod http;
pub mod netns;
pub mod prereq;
pub mod proxy;
pub mod registry;
pub mod release;
pub mod runc;
pub mod slow;
pub mod token_realm;

pub use http::{ping, raw_request, HttpResponse};
pub use release::Binaries;

use chrono::{DateTime, Utc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

/// The `moor` binary under test.
pub const MOOR: &str = env!("CARGO_BIN_EXE_moor");
/// The `moor-shim` binary built with it (passed to the daemon as `MOOR_SHIM`).
pub const MOOR_SHIM: &str = env!("CARGO_BIN_EXE_moor-shim");
/// daemon.json with live restore on.
pub const LIVE_RESTORE_ON: &str = r#"{"live-restore": true}"#;
/// daemon.json with nothing set: live restore off (Docker's default).
pub const LIVE_RESTORE_OFF: &str = "{}";
/// Docker's value for a time that was never set.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// How long the daemon may take to serve `/_ping` after it was started.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long the daemon may take to exit after SIGTERM (live restore off stops containers).
pub const EXIT_DEADLINE: Duration = Duration::from_secs(30);
/// How long one CLI call may take before the harness kills it.
pub const CLI_DEADLINE: Duration = Duration::from_secs(60);
/// Read/write timeout of one raw HTTP request.
pub const HTTP_DEADLINE: Duration = Duration::from_secs(30);
/// The polling period of [`wait_for`].
pub const POLL: Duration = Duration::from_millis(20);

/// A `moor daemon` on private directories; see the module header.
pub struct Daemon {
    /// Holds root, run dir, socket, daemon.json and the daemon's output; removed on drop.
    dir: TempDir,
    /// The daemon process while it runs.
    child: Option<Child>,
    /// How many times the daemon was started, for the headers in its output file.
    starts: u32,
    /// Extra processes (pid, start time) the test asked to be killed on drop.
    tracked: RefCell<Vec<(i32, u64)>>,
    /// Set once a panic message carried the daemon's output, so drop does not repeat it.
    output_shown: Cell<bool>,
    /// The daemon's `--runtime`.
    runtime: &'static str,
    /// The `moor` binary run as daemon and CLI, and the shim given to it ([`Binaries::current`]
    /// unless [`Daemon::start_binaries`] or [`Daemon::use_binaries`] named others).
    binaries: Binaries,
    /// A process in the network namespace the daemon runs in (`nsenter -t PID -n`); None:
    /// the host's ([`netns::TestNetns`]).
    netns_holder: Option<i32>,
    /// The names of the run directories used under `dir`, the current one last (`run`
    /// unless [`Daemon::use_run_dir`] changed it): drop cleans up under each.
    run_dirs: Vec<String>,
    /// Extra environment of the daemon process ([`Daemon::start_with_env`]).
    env: Vec<(String, String)>,
}

impl Daemon {
    /// [`Daemon::start`] with `env` added to the daemon's environment (every start).
    pub fn start_with_env(config_json: &str, env: &[(&str, &str)]) -> Daemon {
        let mut daemon = Daemon::unstarted(config_json, "process", Binaries::current());
        daemon.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        daemon.spawn();
        daemon
    }

    /// Creates fresh directories, writes `config_json` as daemon.json and starts the daemon;
    /// returns once `/_ping` answers OK.
    pub fn start(config_json: &str) -> Daemon {
        Daemon::start_with_runtime(config_json, "process")
    }

    /// [`Daemon::start`] with `--runtime runtime` (`process` or `runc`).
    pub fn start_with_runtime(config_json: &str, runtime: &'static str) -> Daemon {
        Daemon::start_binaries(config_json, runtime, Binaries::current())
    }

    /// [`Daemon::start_with_runtime`] running `binaries` (another build's) as daemon and CLI.
    pub fn start_binaries(config_json: &str, runtime: &'static str, binaries: Binaries) -> Daemon {
        let mut daemon = Daemon::unstarted(config_json, runtime, binaries);
        daemon.spawn();
        daemon
    }

    /// The directories and daemon.json of a daemon not started yet.
    fn unstarted(config_json: &str, runtime: &'static str, binaries: Binaries) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("moor-")
            .tempdir_in("/tmp")
            .expect("create the test's temp dir in /tmp");
        let daemon = Daemon {
            dir,
            child: None,
            starts: 0,
            tracked: RefCell::new(Vec::new()),
            output_shown: Cell::new(false),
            runtime,
            binaries,
            netns_holder: None,
            run_dirs: vec!["run".into()],
            env: Vec::new(),
        };
        fs::write(daemon.config_path(), netns::no_bridge(config_json)).expect("write daemon.json");
        daemon
    }

    /// Replaces the extra environment of the daemon's next starts.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// Starts the daemon again on the same directories and daemon.json.
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "restart() while the daemon still runs"
        );
        self.spawn();
    }

    /// Runs `binaries` as daemon and CLI from now on (the next [`Daemon::restart`]).
    pub fn use_binaries(&mut self, binaries: Binaries) {
        self.binaries = binaries;
    }

    /// The running daemon's pid, if one runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// The state root (`--root`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The run directory (`--run-dir`).
    pub fn run_dir(&self) -> PathBuf {
        let name = self.run_dirs.last().map_or("run", String::as_str);
        self.dir.path().join(name)
    }

    /// Gives the daemon the run directory `name` (under its temp dir) from its next start;
    /// drop still cleans up under the earlier ones.
    pub fn use_run_dir(&mut self, name: &str) {
        self.run_dirs.push(name.into());
    }

    /// Every run directory used so far.
    fn all_run_dirs(&self) -> Vec<PathBuf> {
        self.run_dirs
            .iter()
            .map(|n| self.dir.path().join(n))
            .collect()
    }

    /// The API socket (`--socket`).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("moor.sock")
    }

    /// daemon.json (`--config`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("daemon.json")
    }

    /// Where the daemon's stdout and stderr go (appended across restarts).
    pub fn output_path(&self) -> PathBuf {
        self.dir.path().join("daemon.out")
    }

    /// Everything the daemon printed so far (the last 16 KiB).
    pub fn output(&self) -> String {
        let text = fs::read_to_string(self.output_path()).unwrap_or_default();
        let cut = text.len().saturating_sub(16 * 1024);
        let start = (cut..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// [`Daemon::output`] for a panic message (drop then does not print it again).
    fn shown_output(&self) -> String {
        self.output_shown.set(true);
        self.output()
    }

    /// A container's run directory: `<run>/containers/<id>`.
    pub fn container_run_dir(&self, id: &str) -> PathBuf {
        self.run_dir().join("containers").join(id)
    }

    /// A container's state directory: `<root>/containers/<id>`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root().join("containers").join(id)
    }

    /// The container's `started.json`, parsed; panics when missing or not JSON.
    pub fn started_json(&self, id: &str) -> Value {
        let path = self.container_run_dir(id).join("started.json");
        let text =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
    }

    /// Asks the harness to kill this process (if it is still the same one) on drop.
    pub fn track(&self, pid: i32, start_time: u64) {
        self.tracked.borrow_mut().push((pid, start_time));
    }

    /// `--root R --run-dir D --socket S --config F`: a `moor daemon` on this daemon's paths.
    pub fn path_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = Vec::new();
        for (flag, path) in [
            ("--root", self.root()),
            ("--run-dir", self.run_dir()),
            ("--socket", self.socket()),
            ("--config", self.config_path()),
        ] {
            args.push(flag.into());
            args.push(path.into_os_string());
        }
        args
    }

    fn spawn(&mut self) {
        for dir in [self.root(), self.run_dir()] {
            fs::create_dir_all(&dir).expect("create root and run dir");
        }
        self.starts += 1;
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.output_path())
            .expect("open the daemon's output file");
        let moor = &self.binaries.moor;
        writeln!(out, "===== moor daemon start #{} =====", self.starts).expect("write header");
        let err = out.try_clone().expect("clone the output file");
        let mut cmd = match self.netns_holder {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &pid.to_string(), "-n", "--"]).arg(moor);
                c
            }
            None => Command::new(moor),
        };
        let child = cmd
            .arg("daemon")
            .args(self.path_args())
            .args(["--runtime", self.runtime])
            .env_remove("MOOR_HOST")
            .env("MOOR_SHIM", &self.binaries.shim)
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("info,moor=debug".into()),
            )
            .env("RUST_BACKTRACE", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} daemon: {e}", moor.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let child = self.child.as_mut().expect("daemon child");
            if let Some(status) = child.try_wait().expect("try_wait on the daemon") {
                self.child = None;
                panic!(
                    "moor daemon exited early ({status}) before serving /_ping on {}; its output:\n{}",
                    self.socket().display(),
                    self.shown_output()
                );
            }
            if ping(&self.socket()) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "moor daemon did not answer /_ping on {} within {READY_DEADLINE:?}; its output:\n{}",
                    self.socket().display(),
                    self.shown_output()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Sends SIGTERM and waits for the daemon to exit; panics unless it exits 0 in time.
    pub fn stop_term(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("stop_term() while the daemon is not running");
        signal(child.id() as i32, Signal::SIGTERM);
        match wait_child(&mut child, EXIT_DEADLINE) {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "moor daemon exited with {status} after SIGTERM (want 0); its output:\n{}",
                self.shown_output()
            ),
            None => {
                signal(child.id() as i32, Signal::SIGKILL);
                let _ = child.wait();
                panic!(
                    "moor daemon did not exit within {EXIT_DEADLINE:?} of SIGTERM; its output:\n{}",
                    self.shown_output()
                );
            }
        }
    }

    /// Sends `sig` to the running daemon (SIGHUP to reload, for instance).
    pub fn send(&self, sig: Signal) {
        signal(self.pid().expect("the daemon is not running"), sig);
    }

    /// Waits up to `deadline` for the daemon to exit on its own; its status, or `None`
    /// (it still runs) .
    pub fn wait_exited(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take().expect("the daemon is not running");
        let status = wait_child(&mut child, deadline);
        if status.is_none() {
            self.child = Some(child);
        }
        status
    }

    /// Kills the daemon with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        let mut child = self
            .child
            .take()
            .expect("kill9() while the daemon is not running");
        signal(child.id() as i32, Signal::SIGKILL);
        child.wait().expect("reap the daemon");
    }

    /// Runs `moor admin --root R --run-dir D --config F ARGS` on this daemon's paths (works
    /// whether the daemon runs or not).
    pub fn admin(&self, args: &[&str]) -> Output {
        let (root, run, config) = (self.root(), self.run_dir(), self.config_path());
        let mut all = vec![
            "admin",
            "--root",
            root.to_str().expect("utf-8"),
            "--run-dir",
            run.to_str().expect("utf-8"),
            "--config",
            config.to_str().expect("utf-8"),
        ];
        all.extend_from_slice(args);
        self.cli(&all)
    }

    /// Runs `moor --host unix://<socket> ARGS`, killing it after [`CLI_DEADLINE`].
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_input(args, None)
    }

    /// [`Daemon::cli`] with `stdin` as its input (None: /dev/null; the pipe is closed after it).
    pub fn cli_input(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let host = format!("unix://{}", self.socket().display());
        let mut cmd = Command::new(&self.binaries.moor);
        cmd.arg("--host")
            .arg(&host)
            .args(args)
            .env_remove("MOOR_HOST")
            // Registry credentials: the test's own config.json, shared with its docker CLI.
            .env("DOCKER_CONFIG", self.root().with_file_name("docker-config"));
        run_client(cmd, "moor", args, stdin)
    }

    /// Runs the CLI, panics unless it exits 0, returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        succeeded("moor", args, self.cli(args))
    }

    /// Runs the CLI, panics if it exits 0, returns its output.
    pub fn cli_fail(&self, args: &[&str]) -> Output {
        failed("moor", args, self.cli(args))
    }

    /// `moor run -d ARGS`: returns the printed id, checked to be 64 hex digits.
    pub fn run_detached(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let id = self.cli_ok(&all).trim().to_string();
        assert!(
            is_container_id(&id),
            "`moor run -d` printed {id:?}, not a 64-hex id"
        );
        id
    }

    /// `moor wait NAME`: the exit code it prints. Its own exit status is checked in
    /// daemon_api.rs only (Docker's is 0), so that other tests do not depend on it.
    pub fn wait_code(&self, name: &str) -> String {
        let output = self.cli(&["wait", name]);
        let code = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert!(
            code.parse::<i32>().is_ok(),
            "`moor wait {name}` printed no exit code\n{}",
            describe(&output)
        );
        code
    }

    /// `moor inspect -f TEMPLATE NAME`, trimmed.
    pub fn inspect_field(&self, name: &str, template: &str) -> String {
        self.cli_ok(&["inspect", "-f", template, name])
            .trim()
            .to_string()
    }

    /// The container's inspect object from the raw API (`GET /v1.44/containers/NAME/json`).
    pub fn inspect_json(&self, name: &str) -> Value {
        let response = self.http("GET", &format!("/v1.44/containers/{name}/json"), None);
        assert_eq!(response.status, 200, "inspect {name}: {}", response.body);
        response.json()
    }

    /// One raw HTTP/1.0 request on the socket.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> HttpResponse {
        let body = body.unwrap_or_default();
        // Content-Length even when empty: actix refuses an HTTP/1.0 POST without one.
        let mut request = format!(
            "{method} {path} HTTP/1.0\r\nHost: moor\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        raw_request(&self.socket(), &request, HTTP_DEADLINE)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn kill_recorded_processes(&self) {
        let mut victims: Vec<(i32, u64)> = self.tracked.borrow().clone();
        let dirs: Vec<PathBuf> = self.all_run_dirs();
        let entries = dirs.iter().flat_map(|d| {
            fs::read_dir(d.join("containers"))
                .into_iter()
                .flatten()
                .flatten()
        });
        for entry in entries {
            let path = entry.path().join("started.json");
            let Some(started) = fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            else {
                continue;
            };
            // The container first, then its shim (which then has nothing left to reap).
            for key in ["process", "shim"] {
                let pid = started[key]["pid"].as_i64();
                let start_time = started[key]["start_time"].as_u64();
                if let (Some(pid), Some(start_time)) = (pid, start_time) {
                    victims.push((pid as i32, start_time));
                }
            }
        }
        for (pid, start_time) in victims {
            kill_if_same(pid, start_time, Signal::SIGKILL);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id() as i32, Signal::SIGKILL);
            let _ = child.wait();
        }
        self.kill_recorded_processes();
        for run_dir in self.all_run_dirs() {
            runc::clean_up(&run_dir, self.dir.path());
        }
        if thread::panicking() && !self.output_shown.get() {
            eprintln!(
                "----- moor daemon output ({}) -----\n{}",
                self.output_path().display(),
                self.output()
            );
        }
    }
}

/// Panics unless `tool ARGS` exited 0; its stdout.
pub fn succeeded(tool: &str, args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "`{tool} {}` failed\n{}",
        args.join(" "),
        describe(&output)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Panics if `tool ARGS` exited 0; its output.
pub fn failed(tool: &str, args: &[&str], output: Output) -> Output {
    assert!(
        !output.status.success(),
        "`{tool} {}` succeeded but should have failed\n{}",
        args.join(" "),
        describe(&output)
    );
    output
}

/// Polls `cond` every 20 ms until it holds (true) or `deadline` passed (false).
pub fn wait_for(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// The pids of live processes with `marker` as one of their arguments (by pid, never by
/// name: how tests count the copies of a container's process).
pub fn copies(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == marker.as_bytes()) && pid_alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` names a live process (a zombie counts as dead).
pub fn pid_alive(pid: i32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// Field 22 of /proc/PID/stat (start time in clock ticks after boot), if the pid exists.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, start_time)| start_time)
}

/// Whether `pid` is alive and is the process that started at `start_time`.
pub fn process_is(pid: i32, start_time: u64) -> bool {
    pid_alive(pid) && proc_start_time(pid) == Some(start_time)
}

/// Sends `sig` to `pid` only if it is still the process that started at `start_time`.
pub fn kill_if_same(pid: i32, start_time: u64, sig: Signal) -> bool {
    if pid <= 1 || proc_start_time(pid) != Some(start_time) {
        return false;
    }
    kill(Pid::from_raw(pid), sig).is_ok()
}

/// Parses an RFC 3339 time as the API prints it; panics with the text when it does not parse.
pub fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not an RFC 3339 time: {e}"))
        .with_timezone(&Utc)
}

/// Whether `text` is a Docker time: RFC 3339, UTC (`Z`), with a fraction of 1 to 9 digits.
pub fn is_docker_time(text: &str) -> bool {
    let Some(rest) = text.strip_suffix('Z') else {
        return false;
    };
    let Some((_, fraction)) = rest.rsplit_once('.') else {
        return false;
    };
    (1..=9).contains(&fraction.len())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && DateTime::parse_from_rfc3339(text).is_ok()
}

/// Whether `text` is a container id: 64 lowercase hex digits.
pub fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Writes `value` to `path` atomically (temp file, then rename), as the shim does.
pub fn write_json_atomically(path: &Path, value: &Value) {
    let tmp = path.with_extension("json.test-tmp");
    fs::write(&tmp, serde_json::to_vec(value).expect("serialize JSON")).expect("write temp file");
    fs::rename(&tmp, path).expect("rename over the original");
}

/// An [`Output`] as text for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\nstdout: {}\nstderr: {}",
        output.status,
        truncate(&String::from_utf8_lossy(&output.stdout)),
        truncate(&String::from_utf8_lossy(&output.stderr))
    )
}

fn truncate(text: &str) -> String {
    if text.len() <= 4096 {
        return text.to_string();
    }
    let end = (0..=4096)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}... ({} bytes)", &text[..end], text.len())
}

fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some((state, start_time))
}

fn signal(pid: i32, sig: Signal) {
    if pid > 1 {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// Runs a client (`name` in messages) with `stdin` as its input (None: /dev/null; the pipe
/// is closed after it, the EOF a CLI forwards), killing it after [`CLI_DEADLINE`], which
/// fails the test.
pub(crate) fn run_client(
    mut cmd: Command,
    name: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    let mut stdout = tempfile::tempfile().expect("client stdout file");
    let mut stderr = tempfile::tempfile().expect("client stderr file");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(stdout.try_clone().expect("clone stdout file"))
        .stderr(stderr.try_clone().expect("clone stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name} {args:?}: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A client that ended before reading its input (`nc` refused a connection) has its
        // result in its status and output, not here.
        if let Err(e) = pipe.write_all(input) {
            assert!(
                e.kind() == std::io::ErrorKind::BrokenPipe,
                "write {name}'s stdin: {e}"
            );
        }
    }
    let status = wait_child(&mut child, CLI_DEADLINE);
    if status.is_none() {
        signal(child.id() as i32, Signal::SIGKILL);
        let _ = child.wait();
    }
    let output = Output {
        status: status.unwrap_or_default(),
        stdout: read_all(&mut stdout),
        stderr: read_all(&mut stderr),
    };
    if status.is_none() {
        panic!(
            "`{name} {}` did not finish within {CLI_DEADLINE:?}\n{}",
            args.join(" "),
            describe(&output)
        );
    }
    output
}

fn wait_child(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > end {
            return None;
        }
        thread::sleep(POLL);
    }
}

fn read_all(file: &mut File) -> Vec<u8> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).expect("rewind output file");
    file.read_to_end(&mut bytes).expect("read output file");
    bytes
}

impl Daemon {
    /// Imports [`runc::busybox_tar`] as image `name` (written beside the daemon's root first).
    pub fn import_busybox(&self, name: &str) {
        let tar = self
            .root()
            .with_file_name(format!("{}.tar", name.replace([':', '/'], "_")));
        std::fs::write(&tar, runc::busybox_tar()).expect("write busybox tar");
        self.cli_ok(&["image", "import", tar.to_str().expect("utf-8"), name]);
    }
}
