//! A private dockerd for the benches that measure Docker beside moor: its own data root, exec
//! root (which holds its managed containerd's state: `exec/containerd`, `data/containerd`),
//! pid file, unix socket and a `daemon.json` whose one key moves the daemon's identity key
//! off `/etc/docker/key.json`; no bridge, no iptables and no `net.ipv4.ip_forward` change
//! (dockerd turns forwarding on by default, even without a bridge). Never the system service,
//! never /var/lib/docker, /run/docker, /var/lib/containerd or /etc/docker. Include it in a
//! bench with `#[allow(dead_code)] #[path = "common/dockerd.rs"] mod dockerd;` (it depends on
//! nothing else under `common`). Benches run it only when [`wanted`].
//!
//! Two paths outside it cannot be moved: containerd 1.6 puts each shim's ttrpc socket under
//! `/run/containerd/s/` whatever its root (a hash of the address and the container id, so no
//! clash with another containerd; the shims remove them as they exit), and dockerd 20.10
//! makes an empty `/run/docker/plugins` (where it looks for plugin sockets). A stop removes
//! those directories again when they were not there before and are empty.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Debian's dockerd (package docker.io).
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// Directories made outside the bench's own, parents first: containerd 1.6 puts the shims'
/// sockets in `/run/containerd/s` whatever its root; dockerd makes `/run/docker/plugins`.
const OUTSIDE_DIRS: [&str; 4] = [
    "/run/containerd",
    "/run/containerd/s",
    "/run/docker",
    "/run/docker/plugins",
];

/// Whether a bench runs its Docker column: `MOOR_BENCH_DOCKER=0` never, any other value
/// always, unset only under `cargo bench` (`--bench` among the arguments), so that the
/// smoke run of `cargo test --all-targets` stays moor-only.
pub fn wanted() -> bool {
    match std::env::var("MOOR_BENCH_DOCKER") {
        Ok(v) => v != "0",
        Err(_) => std::env::args().any(|a| a == "--bench"),
    }
}

/// Installs Debian's docker.io when dockerd or the docker CLI is missing, with a
/// `policy-rc.d` that denies service starts while it installs (as `.ci/setup` does); a
/// `policy-rc.d` that was there before is left as it was. Panics naming what failed.
pub fn ensure_installed() {
    if Path::new(DOCKERD).exists() && which("docker").is_some() {
        return;
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n").expect("write /usr/sbin/policy-rc.d");
        set_mode(policy, 0o755);
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "docker.io"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    match status {
        Ok(s) if s.success() => {}
        other => panic!("apt-get install docker.io failed ({other:?}): Docker cannot be measured"),
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// A private dockerd and its managed containerd, stopped cleanly (every container removed,
/// no process left, nothing left mounted) by [`Dockerd::stop`] or on drop.
pub struct Dockerd {
    /// Everything of this dockerd lives under it (the caller's temp dir, removed by it).
    dir: PathBuf,
    /// `--live-restore`: containers outlive a killed dockerd.
    live_restore: bool,
    /// dockerd while it runs (our child: its pid names no other process until reaped).
    child: Option<Child>,
    /// Its containerd (pid, start time in /proc/PID/stat), to wait until it is reaped.
    containerd: Option<(i32, u64)>,
    /// Which of [`OUTSIDE_DIRS`] were absent at start (removed at the end if empty).
    made_outside: [bool; 4],
    /// Set by the first stop: a drop after [`Dockerd::stop`] has nothing left to do.
    stopped: bool,
}

impl Dockerd {
    /// Starts dockerd with everything under `dir` (created) and waits until `/_ping`
    /// answers (panics after 60 s, naming its log).
    pub fn start(dir: &Path, live_restore: bool) -> Dockerd {
        ensure_installed();
        for d in ["data", "exec", "cli"] {
            std::fs::create_dir_all(dir.join(d)).expect("create dockerd's directories");
        }
        // dockerd 20.10 writes its identity key to /etc/docker/key.json unless told
        // otherwise, and only daemon.json can (`deprecated-key-path`, no flag).
        let config = serde_json::json!({"deprecated-key-path": dir.join("key.json")});
        std::fs::write(dir.join("daemon.json"), config.to_string()).expect("write daemon.json");
        let made_outside = OUTSIDE_DIRS.map(|d| !Path::new(d).exists());
        let mut d = Dockerd {
            dir: dir.into(),
            live_restore,
            child: None,
            containerd: None,
            made_outside,
            stopped: false,
        };
        d.spawn();
        let up = d.wait_ready(Duration::from_secs(60), Duration::from_millis(5));
        assert!(
            up,
            "dockerd never answered /_ping (log: {})",
            d.log().display()
        );
        d
    }

    /// dockerd's unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// dockerd's output (appended across starts).
    pub fn log(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }

    /// The runc root of Docker's containers (dockerd 20.10: `<exec-root>/runtime-runc/moby`).
    pub fn runc_root(&self) -> PathBuf {
        self.dir.join("exec/runtime-runc/moby")
    }

    fn containerd_pid_file(&self) -> PathBuf {
        self.dir.join("exec/containerd/containerd.pid")
    }

    /// Spawns dockerd (not waited for: see [`Dockerd::wait_ready`]). The previous one must
    /// be gone, its containerd reaped ([`Dockerd::kill9`] waits for that).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "dockerd is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("open dockerd's log");
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ]);
        if self.live_restore {
            cmd.arg("--live-restore");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup dockerd's log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        self.child = Some(child);
        self.containerd = None;
    }

    /// Polls `/_ping` every `poll` until dockerd answers (true; its containerd's pid is then
    /// noted) or `limit` has passed (false).
    pub fn wait_ready(&mut self, limit: Duration, poll: Duration) -> bool {
        let t0 = Instant::now();
        while !self
            .request("GET", "/_ping", "")
            .is_some_and(|r| r.ends_with("OK"))
        {
            if t0.elapsed() > limit {
                return false;
            }
            std::thread::sleep(poll);
        }
        self.note_containerd();
        true
    }

    /// Reads containerd's pid file and start time, if it is running.
    fn note_containerd(&mut self) {
        let pid = std::fs::read_to_string(self.containerd_pid_file())
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        self.containerd = pid.and_then(|p| stat_start(p).map(|s| (p, s)));
    }

    /// SIGKILL to dockerd (its containerd dies with it: parent-death signal; the shims and
    /// containers live on), then waits until both are reaped: a dockerd started while the
    /// old containerd is still a zombie takes it for alive and fails. Returns that wait for
    /// containerd (not to be counted in a restart). Panics after 30 s.
    pub fn kill9(&mut self) -> Duration {
        if let Some(mut c) = self.child.take() {
            if self.containerd.is_none() {
                self.note_containerd();
            }
            // Our own child, not reaped yet: its pid names no other process.
            let _ = c.kill();
            let _ = c.wait();
        }
        self.wait_containerd_gone()
    }

    /// Waits until the containerd noted while dockerd ran is gone (no process with its pid
    /// and start time, a zombie counting as gone only once reaped); how long that took.
    fn wait_containerd_gone(&mut self) -> Duration {
        let t0 = Instant::now();
        if let Some((pid, start)) = self.containerd.take() {
            while stat_start(pid) == Some(start) {
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "containerd (pid {pid}) not reaped 30 s after dockerd ended"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        t0.elapsed()
    }

    /// One HTTP/1.0 request on dockerd's socket; the whole answer, or None if it failed.
    pub fn request(&self, method: &str, path: &str, body: &str) -> Option<String> {
        let mut s = UnixStream::connect(self.socket()).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// The docker CLI against this dockerd (`DOCKER_HOST`, its own `DOCKER_CONFIG`).
    pub fn cli_command(&self) -> Command {
        let mut cmd = Command::new(which("docker").expect("docker CLI on PATH (docker.io)"));
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.join("cli"))
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null());
        cmd
    }

    /// `docker ARGS`, which must succeed; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_command().args(args).output().expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker import TAR NAME`: the rootfs tar moor's benches build (busybox), so both
    /// daemons run the same files.
    pub fn import_image(&self, tar: &Path, name: &str) {
        self.cli(&["import", &tar.to_string_lossy(), name]);
    }

    /// Every container's id (`GET /containers/json?all=1`); empty when dockerd is not up.
    pub fn container_ids(&self) -> Vec<String> {
        let Some(answer) = self.request("GET", "/containers/json?all=1", "") else {
            return Vec::new();
        };
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let list: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(String::from))
            .collect()
    }

    /// Removes every container (`DELETE ?force=1`, 4 clients at once).
    pub fn remove_all(&self) {
        let ids = self.container_ids();
        let chunk = ids.len().div_ceil(4).max(1);
        std::thread::scope(|s| {
            for part in ids.chunks(chunk) {
                s.spawn(move || {
                    for id in part {
                        let _ = self.request("DELETE", &format!("/containers/{id}?force=1"), "");
                    }
                });
            }
        });
    }

    /// Clean stop: every container removed, dockerd stopped with SIGTERM (SIGKILL after
    /// 60 s) and reaped, its containerd gone, then whatever is left (runc containers, shims
    /// of this dockerd, mounts under its directory) cleaned by pid and mount point.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(mut c) = self.child.take() {
            self.remove_all();
            self.note_containerd();
            // Our own child, not reaped yet: its pid names no other process.
            let pid = Pid::from_raw(c.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let t0 = Instant::now();
            while matches!(c.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            self.wait_containerd_gone();
        }
        self.clean_leftovers();
    }

    /// What a killed dockerd may leave: runc containers in its root (deleted with
    /// `--force`, which kills them), its shims (SIGKILL by pid), mounts under its directory
    /// (deepest first), and the [`OUTSIDE_DIRS`] this process made, when empty.
    fn clean_leftovers(&mut self) {
        let root = self.runc_root();
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(entry.file_name())
                .output();
        }
        let address = self.dir.join("exec/containerd/containerd.sock");
        for pid in shims_of(&address) {
            // Found by its command line an instant ago; a shim of this dockerd only.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let mut mounts = mounts_under(&self.dir);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        for (dir, made) in OUTSIDE_DIRS.iter().zip(self.made_outside).rev() {
            if made {
                // Only when empty: another dockerd's shims may have sockets there.
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The start time (field 22 of /proc/PID/stat) of process `pid`, zombie or not.
fn stat_start(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Pids of `containerd-shim-runc-v2` processes started with `-address ADDRESS`.
fn shims_of(address: &Path) -> Vec<i32> {
    let want = address.to_string_lossy();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = args
            .first()
            .is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"));
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"-address" && w[1] == want.as_bytes());
        if is_shim && ours {
            pids.push(pid);
        }
    }
    pids
}

/// Mount points under `dir`, from /proc/self/mounts.
fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = dir.to_string_lossy().to_string();
    text.lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&prefix))
        .map(String::from)
        .collect()
}
