//! What every bench binary starts with: nothing to do under `cargo test --all-targets`
//! (which runs bench binaries without `--bench`), the count N from the arguments, and a
//! temp dir under /tmp (short unix socket paths); and a daemon to talk to.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// N from `cargo bench --bench NAME [-- N]`, or `None` (after a hint) when not benchmarking.
pub fn count(name: &str, default: usize) -> Option<usize> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name}: run with `cargo bench --bench {name} [-- N]`");
        return None;
    }
    Some(
        std::env::args()
            .skip(1)
            .find_map(|a| a.parse().ok())
            .unwrap_or(default),
    )
}

/// A fresh temp dir for one bench run.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("moor-bench-")
        .tempdir_in("/tmp")
        .expect("temp dir in /tmp")
}

/// The CLI and daemon binary.
pub const MOOR: &str = env!("CARGO_BIN_EXE_moor");
/// The shim the daemon starts.
pub const SHIM: &str = env!("CARGO_BIN_EXE_moor-shim");

/// The socket of a daemon started by [`spawn_daemon`] in `base`.
pub fn socket(base: &Path) -> std::path::PathBuf {
    base.join("s.sock")
}

/// The daemon binary: `MOOR_BENCH_DAEMON` if set (to compare two builds back to back with
/// one bench binary), else the one this bench was built with.
fn daemon_binary() -> std::ffi::OsString {
    std::env::var_os("MOOR_BENCH_DAEMON").unwrap_or_else(|| MOOR.into())
}

/// The shim: `MOOR_BENCH_SHIM` if set (with `MOOR_BENCH_DAEMON`), else [`SHIM`].
fn shim_binary() -> std::ffi::OsString {
    std::env::var_os("MOOR_BENCH_SHIM").unwrap_or_else(|| SHIM.into())
}

/// `moor daemon` (see [`daemon_binary`]) with its root, socket and config (`config` written to `daemon.json`) under
/// `base`, its run directory `run_dir`, and `args`; logging at warn, output dropped. Not
/// waited for: see [`ready`].
#[allow(dead_code)]
pub fn spawn_daemon(base: &Path, run_dir: &Path, config: &str, args: &[&str]) -> Child {
    daemon_command(base, run_dir, config, args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moor daemon")
}

/// [`spawn_daemon`] logging at `RUST_LOG=rust_log` into the file `log` (appended).
#[allow(dead_code)]
pub fn spawn_daemon_logged(
    base: &Path,
    run_dir: &Path,
    config: &str,
    args: &[&str],
    rust_log: &str,
    log: &Path,
) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the daemon's log file");
    daemon_command(base, run_dir, config, args)
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("start moor daemon")
}

fn daemon_command(base: &Path, run_dir: &Path, config: &str, args: &[&str]) -> Command {
    daemon_command_of(
        (&daemon_binary(), &shim_binary()),
        base,
        run_dir,
        config,
        args,
    )
}

/// [`spawn_daemon`] of another build: `bins` are its daemon and shim binaries.
#[allow(dead_code)]
pub fn spawn_daemon_of(
    bins: (&std::ffi::OsStr, &std::ffi::OsStr),
    base: &Path,
    run_dir: &Path,
    config: &str,
    args: &[&str],
) -> Child {
    daemon_command_of(bins, base, run_dir, config, args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moor daemon")
}

fn daemon_command_of(
    (daemon, shim): (&std::ffi::OsStr, &std::ffi::OsStr),
    base: &Path,
    run_dir: &Path,
    config: &str,
    args: &[&str],
) -> Command {
    // No bridge on the host unless the bench asks (and the floors were measured without).
    // `MOOR_BENCH_PRE_BRIDGE=1`: the daemon under `MOOR_BENCH_DAEMON` predates the bridge
    // (0.1.0 refuses the `bridge` key, and makes no bridge).
    let mut json: serde_json::Value = serde_json::from_str(config).expect("daemon.json object");
    let pre_bridge = std::env::var_os("MOOR_BENCH_PRE_BRIDGE").is_some();
    if json.get("bridge").is_none() && !pre_bridge {
        json["bridge"] = "none".into();
    }
    std::fs::write(base.join("daemon.json"), json.to_string()).expect("write daemon.json");
    let mut cmd = Command::new(daemon);
    cmd.arg("daemon")
        .arg("--root")
        .arg(base.join("root"))
        .arg("--run-dir")
        .arg(run_dir)
        .arg("--socket")
        .arg(socket(base))
        .arg("--config")
        .arg(base.join("daemon.json"))
        .args(args)
        .env("MOOR_SHIM", shim);
    cmd
}

/// One HTTP/1.0 request on the socket; the whole answer, or None if it failed.
pub fn request(sock: &Path, method: &str, path: &str, body: &str) -> Option<String> {
    let mut s = UnixStream::connect(sock).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Whether the daemon on `sock` answers `/_ping`.
pub fn ready(sock: &Path) -> bool {
    request(sock, "GET", "/_ping", "").is_some_and(|r| r.ends_with("OK"))
}

/// Polls `/_ping` every `poll` until the daemon on `sock` answers (true) or `limit` has
/// passed (false).
pub fn wait_ready(sock: &Path, limit: Duration, poll: Duration) -> bool {
    let t0 = Instant::now();
    while !ready(sock) {
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(poll);
    }
    true
}

/// The machine's load averages (1, 5 and 15 minutes), as /proc/loadavg has them.
#[allow(dead_code)]
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each container a run dir records (`containers/*/started.json`): its (shim, process) pids.
#[allow(dead_code)]
pub fn recorded_runs(run_dir: &Path) -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("containers")) else {
        return Vec::new();
    };
    let mut runs = Vec::new();
    for e in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("started.json")) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if let (Some(shim), Some(process)) =
            (v["shim"]["pid"].as_i64(), v["process"]["pid"].as_i64())
        {
            runs.push((shim as i32, process as i32));
        }
    }
    runs
}

/// SIGKILLs every container process, then its shim, that `run_dir` records: a bench's
/// clean-up, by pid (never by name).
#[allow(dead_code)]
pub fn kill_recorded(run_dir: &Path) {
    for (shim, process) in recorded_runs(run_dir) {
        for pid in [process, shim] {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A daemon on `base` (run dir `base/run`, an empty daemon.json); on every path out
/// (panics included) it is killed and reaped, and the containers and shims its run dir
/// records are killed by pid.
#[allow(dead_code)]
pub struct DaemonGuard {
    /// The daemon process.
    pub child: Child,
    /// The bench's temp dir.
    pub base: std::path::PathBuf,
}

#[allow(dead_code)]
impl DaemonGuard {
    /// Starts it and waits (up to 30 s) for its `/_ping`.
    pub fn start(base: &Path) -> DaemonGuard {
        let child = spawn_daemon(base, &base.join("run"), "{}", &[]);
        let guard = DaemonGuard {
            child,
            base: base.into(),
        };
        let up = wait_ready(
            &guard.socket(),
            Duration::from_secs(30),
            Duration::from_millis(2),
        );
        assert!(up, "daemon never ready");
        guard
    }

    /// Its API socket.
    pub fn socket(&self) -> std::path::PathBuf {
        socket(&self.base)
    }

    /// One HTTP/1.0 request on its socket ([`request`]).
    pub fn request(&self, method: &str, path: &str, body: &str) -> Option<String> {
        request(&self.socket(), method, path, body)
    }

    /// The (shim, process) pids of every container its run dir records.
    pub fn runs(&self) -> Vec<(i32, i32)> {
        recorded_runs(&self.base.join("run"))
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        // Our own child, not reaped yet: its pid names no other process.
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_recorded(&self.base.join("run"));
    }
}

/// The number in the environment variable `name`, or `default` when it is unset or not a
/// number.
#[allow(dead_code)]
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `Id` of a create's whole HTTP answer ([`request`]); panics with the answer when it
/// has none.
#[allow(dead_code)]
pub fn id_of(answer: &str) -> String {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).expect("create answer");
    match v["Id"].as_str() {
        Some(id) => id.to_string(),
        None => panic!("create failed: {answer}"),
    }
}
