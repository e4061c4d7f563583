//! moor under a real systemd: `../shared/tools/systemd-box` boots systemd as PID 1 of its own
//! container; the shipped `contrib/systemd/moor.service` (ExecStart pointed at the built
//! binary) is installed there and driven with systemctl: start, reload, restart and stop with
//! live-restore on (the container keeps its pid and StartedAt), a SIGKILL of the daemon
//! (resumed on the next start), then stop with live-restore off (the container is stopped and
//! its exit recorded).
//!
//! The box sees only the host's /usr and the bound paths: the build directory (read-only) and
//! one scratch directory under /tmp. Everything is torn down by `systemd-box down`, which kills
//! the box's pid namespace (and so every process the test started) by its recorded pid.

#[path = "common/prereq.rs"]
mod prereq;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const MOOR: &str = env!("CARGO_BIN_EXE_moor");
const UNIT: &str = "moor.service";

/// `../shared/tools/systemd-box` from the repository root (CI keeps shared/ beside the clone;
/// a git worktree one level deeper finds it one more level up), or `$SYSTEMD_BOX`.
fn tool() -> PathBuf {
    if let Some(path) = std::env::var_os("SYSTEMD_BOX") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let near = root.join("../shared/tools/systemd-box");
    let far = root.join("../../shared/tools/systemd-box");
    if !near.exists() && far.exists() {
        far
    } else {
        near
    }
}

/// Why this machine cannot run the box: a missing prerequisite fails the test unless
/// `MOOR_TEST_SKIP` names `systemd` (or `root`), when the reason to print is returned.
fn skip_reason() -> Option<String> {
    if let Some(reason) = prereq::need_root("systemd-box") {
        return Some(reason);
    }
    if !tool().exists() {
        return prereq::missing("systemd", format!("{} not found", tool().display()));
    }
    let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if pid1.trim() == "systemd" {
        return prereq::missing(
            "systemd",
            "systemd is PID 1 here: systemd-box refuses to run beside it".into(),
        );
    }
    None
}

/// A booted box, powered off on drop.
struct SdBox {
    /// The box's scratch directory (owned by systemd-box).
    dir: PathBuf,
    /// The directory bound into the box: daemon.json, root, run dir, socket.
    scratch: PathBuf,
    /// Holds both; removed after the box is down (taken by a test that boots again).
    _tmp: Option<tempfile::TempDir>,
}

impl SdBox {
    fn up() -> SdBox {
        let tmp = tempfile::Builder::new()
            .prefix("moor-sd-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let scratch = tmp.path().join("s");
        std::fs::create_dir_all(&scratch).unwrap();
        let dir = tmp.path().join("box");
        SdBox::boot(dir, scratch, tmp)
    }

    /// Boots a box in `dir` with `scratch` bound (a second boot may reuse a scratch).
    fn boot(dir: PathBuf, scratch: PathBuf, tmp: tempfile::TempDir) -> SdBox {
        let bin_dir = Path::new(MOOR).parent().unwrap();
        let out = Command::new(tool())
            .arg("up")
            .arg(&dir)
            .arg("--bind")
            .arg(&scratch)
            .arg("--bind-ro")
            .arg(bin_dir)
            .output()
            .expect("run systemd-box up");
        assert!(
            out.status.success(),
            "systemd-box up failed: {}",
            text(&out)
        );
        SdBox {
            dir,
            scratch,
            _tmp: Some(tmp),
        }
    }

    /// Runs a command inside the box.
    fn exec(&self, args: &[&str]) -> Output {
        Command::new(tool())
            .arg("exec")
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("run systemd-box exec")
    }

    /// Runs a command inside the box; panics (with the unit's journal) unless it succeeds.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        if !out.status.success() {
            panic!("{args:?} failed: {}\n{}", text(&out), self.journal());
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn journal(&self) -> String {
        let out = self.exec(&["journalctl", "--no-pager", "-n", "80", "-u", UNIT]);
        format!("----- journal -----\n{}", text(&out))
    }

    fn show(&self, prop: &str) -> String {
        self.ok(&["systemctl", "show", "-p", prop, "--value", UNIT])
    }

    fn moor(&self, args: &[&str]) -> String {
        let host = format!("unix://{}/run/moor.sock", self.scratch.display());
        let mut all = vec![MOOR, "-H", &host];
        all.extend_from_slice(args);
        self.ok(&all)
    }

    /// daemon.json, with `"bridge": "none"`: the box shares the host's network, where a
    /// test never makes a bridge.
    fn write_config(&self, json: &str) {
        let mut v: serde_json::Value = serde_json::from_str(json).expect("a JSON object");
        v["bridge"] = "none".into();
        std::fs::write(self.scratch.join("daemon.json"), v.to_string()).unwrap();
    }

    fn install_unit(&self) {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/moor.service"),
        )
        .expect("read contrib/systemd/moor.service");
        let s = self.scratch.display();
        let exec = format!(
            "ExecStart={MOOR} daemon --root {s}/root --run-dir {s}/run --config {s}/daemon.json --runtime process"
        );
        // A 2 s watchdog: a daemon that stopped sending WATCHDOG=1 would be killed and
        // restarted by systemd, and the same-main-pid checks below would fail.
        let exec = format!("WatchdogSec=2\n{exec}");
        // The daemon's output outlives the box (its journal does not).
        let exec = format!("StandardError=append:{s}/daemon.log\n{exec}");
        let unit = shipped.replace("ExecStart=/usr/local/bin/moor daemon", &exec);
        assert_ne!(
            unit, shipped,
            "the shipped unit has no ExecStart to replace"
        );
        let path = self.dir.with_file_name(UNIT);
        std::fs::write(&path, unit).unwrap();
        let out = Command::new(tool())
            .arg("install-unit")
            .arg(&self.dir)
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "install-unit: {}", text(&out));
    }

    /// (pid, StartedAt) as `moor inspect` reports them.
    fn pid_started(&self, name: &str) -> (String, String) {
        let line = self.moor(&["inspect", "-f", "{{.State.Pid}} {{.State.StartedAt}}", name]);
        let (pid, started) = line.split_once(' ').expect("pid and StartedAt");
        (pid.to_string(), started.to_string())
    }

    /// Field 22 of /proc/PID/stat inside the box, if the process lives (zombies do not).
    fn start_time(&self, pid: &str) -> Option<String> {
        let out = self.exec(&["cat", &format!("/proc/{pid}/stat")]);
        let stat = String::from_utf8_lossy(&out.stdout).to_string();
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        (fields.first() != Some(&"Z")).then(|| fields.get(19).map(|s| s.to_string()))?
    }

    fn wait_active(&self) {
        let ok = wait_for(Duration::from_secs(30), || {
            self.exec(&["systemctl", "is-active", "--quiet", UNIT])
                .status
                .success()
        });
        assert!(ok, "moor.service not active\n{}", self.journal());
    }
}

impl Drop for SdBox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.journal());
        }
        let _ = Command::new(tool()).arg("down").arg(&self.dir).output();
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn wait_for(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

#[test]
fn systemd_service_lifecycle_keeps_containers() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP systemd_service_lifecycle_keeps_containers: {reason}");
        return;
    }
    let b = SdBox::up();
    b.write_config(r#"{"live-restore": true}"#);
    b.install_unit();
    for (prop, want) in [
        ("KillMode", "process"),
        ("Delegate", "yes"),
        ("Type", "notify"),
    ] {
        assert_eq!(b.show(prop), want, "{prop}");
    }

    // start: READY=1 only once the API serves, so `run` works right after `systemctl start`.
    b.ok(&["systemctl", "start", UNIT]);
    assert!(
        b.show("StatusText").ends_with("live-restore on"),
        "{}",
        b.show("StatusText")
    );
    b.moor(&["run", "-d", "--name", "web", "host", "sleep", "1000"]);
    let (pid, started) = b.pid_started("web");
    let st = b.start_time(&pid).expect("container alive");
    let main1 = b.show("MainPID");

    // reload: same main process, container untouched, STATUS= refreshed by READY=1.
    b.write_config(r#"{"live-restore": true, "labels": ["reloaded"]}"#);
    b.ok(&["systemctl", "reload", UNIT]);
    assert_eq!(b.show("MainPID"), main1);
    let status = b.show("StatusText");
    assert!(
        status.starts_with("1 running, 0 exited, 0 orphaned"),
        "{status}"
    );
    assert_eq!(b.start_time(&pid).as_deref(), Some(st.as_str()));

    // restart with live-restore on: a new daemon finds the same pid and StartedAt.
    b.ok(&["systemctl", "restart", UNIT]);
    assert_ne!(b.show("MainPID"), main1);
    assert_eq!(b.pid_started("web"), (pid.clone(), started.clone()));
    assert_eq!(
        b.moor(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "running"
    );

    // stop: the daemon goes, the container stays.
    b.ok(&["systemctl", "stop", UNIT]);
    assert_eq!(b.show("ActiveState"), "inactive");
    assert_eq!(
        b.start_time(&pid).as_deref(),
        Some(st.as_str()),
        "container died with the daemon"
    );

    // SIGKILL of the daemon alone, then start: resumed.
    b.ok(&["systemctl", "start", UNIT]);
    let main2 = b.show("MainPID");
    b.ok(&["systemctl", "kill", "--kill-who=main", "-s", "KILL", UNIT]);
    assert!(
        wait_for(Duration::from_secs(10), || b.show("MainPID") != main2),
        "the daemon did not die"
    );
    b.ok(&["systemctl", "start", UNIT]);
    b.wait_active();
    assert_eq!(b.pid_started("web"), (pid.clone(), started));
    assert_eq!(b.start_time(&pid).as_deref(), Some(st.as_str()));

    // live-restore switched off by a reload: stop now stops the container and records its exit.
    b.write_config("{}");
    b.ok(&["systemctl", "reload", UNIT]);
    assert!(
        b.show("StatusText").ends_with("live-restore off"),
        "{}",
        b.show("StatusText")
    );
    b.ok(&["systemctl", "stop", UNIT]);
    assert_eq!(
        b.start_time(&pid),
        None,
        "container survived a stop without live-restore"
    );
    b.ok(&["systemctl", "start", UNIT]);
    let state = b.moor(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(state, "exited 143");
}

/// The host going down (`systemctl poweroff` in the box, live-restore on): the daemon stops
/// every container itself, in parallel and cleanly, before it exits; at the next boot (a new
/// box on the same state) the containers whose policy asks are started again.
#[test]
fn a_host_shutdown_stops_containers_and_the_next_boot_starts_them_by_policy() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP a_host_shutdown_stops_containers_and_the_next_boot_starts_them_by_policy: {reason}");
        return;
    }
    let mut first = SdBox::up();
    first.write_config(r#"{"live-restore": true}"#);
    first.install_unit();
    first.ok(&["systemctl", "start", UNIT]);
    // A shell that leaves with 42 on SIGTERM: the exit is the daemon's clean stop.
    let polite = "trap 'exit 42' TERM; while :; do sleep 0.1; done";
    for (name, policy) in [
        ("al", "always"),
        ("us", "unless-stopped"),
        ("no", "no"),
        ("held", "unless-stopped"),
    ] {
        first.moor(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "host",
            "sh",
            "-c",
            polite,
        ]);
    }
    first.moor(&["stop", "held"]);
    let before: Vec<(String, String)> = ["al", "us", "no"]
        .iter()
        .map(|n| first.pid_started(n))
        .collect();

    // An events stream from outside the box, open through the shutdown.
    let socket = first.scratch.join("run/moor.sock");
    let events = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s.write_all(b"GET /events HTTP/1.0\r\n\r\n").unwrap();
        let mut seen = Vec::new();
        let _ = s.read_to_end(&mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });
    std::thread::sleep(Duration::from_millis(300));
    let pid1 = std::fs::read_to_string(first.dir.join("pid"))
        .expect("the box's pid")
        .trim()
        .to_string();
    let _ = first.exec(&["systemctl", "poweroff"]);
    let gone = wait_for(Duration::from_secs(90), || {
        !Path::new(&format!("/proc/{pid1}")).exists()
    });
    assert!(gone, "the box did not power off");
    let log = std::fs::read_to_string(first.scratch.join("daemon.log")).unwrap_or_default();
    assert!(
        log.contains("the host is shutting down"),
        "the daemon did not see the shutdown:\n{log}"
    );
    assert!(log.contains("host_shutdown=true"), "{log}");
    let events = events.join().expect("the events reader");
    for name in ["al", "us", "no"] {
        let needle = "\"Action\":\"host-shutdown\"";
        let line = events
            .lines()
            .find(|l| l.contains(needle) && l.contains(&format!("\"name\":\"{name}\"")));
        assert!(
            line.is_some(),
            "no host-shutdown event for {name}:\n{events}"
        );
    }
    assert!(
        !events.contains("\"name\":\"held\"")
            || !events
                .lines()
                .any(|l| l.contains("host-shutdown") && l.contains("\"held\""))
    );

    let tmp = first._tmp.take().expect("the scratch");
    let scratch = first.scratch.clone();
    drop(first);
    let second = SdBox::boot(tmp.path().join("box2"), scratch, tmp);
    second.install_unit();
    second.ok(&["systemctl", "start", UNIT]);
    let state = |n: &str| {
        second.moor(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} [{{.State.Error}}]",
            n,
        ])
    };
    assert_eq!(
        state("no"),
        "exited 42 []",
        "the stop was the daemon's, clean"
    );
    assert_eq!(
        state("held"),
        "exited 42 []",
        "a container stopped by hand stays stopped"
    );
    for (i, name) in ["al", "us"].iter().enumerate() {
        let ok = wait_for(Duration::from_secs(10), || {
            state(name).starts_with("running")
        });
        assert!(ok, "{name} was not started again: {}", state(name));
        assert_ne!(
            second.pid_started(name).1,
            before[i].1,
            "{name} is a new run"
        );
    }
    second.moor(&["rm", "-f", "al", "us", "no", "held"]);
}
