//! Issue 11's "off the actor thread": a slow runc holds up only its own container. The
//! daemon's runc is a wrapper script (daemon.json `runtimes.runc.path`) that sleeps 5 s on
//! `pause` (and on `delete` once asked), then execs the real runc. While one container is
//! pausing, `ps`, `inspect` and `start` of other containers answer within 1 s; the paused
//! container's own `unpause` waits for the pause and leaves it consistent. The same holds
//! while a slow `runc delete` cleans up after an exit. Every call carries daemon.json's
//! `runtimeArgs`.
//!
//! Root, runc and busybox are required: a machine without them fails these tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::runc::clean_up;
use common::{wait_for, Daemon};

/// daemon.json `runtimeArgs` of the wrapper: a global option every runc call must carry.
const RUNTIME_ARG: &str = "--log-format=text";
/// How long the wrapper sleeps.
const SLOW: Duration = Duration::from_secs(5);
/// How long another container's request may take while one runc call is slow.
const DEADLINE: Duration = Duration::from_secs(1);

/// The real runc, from PATH.
fn real_runc() -> PathBuf {
    let path = std::env::var("PATH").expect("PATH");
    path.split(':')
        .map(|d| Path::new(d).join("runc"))
        .find(|p| p.is_file())
        .expect("runc is on PATH (apt-get install runc)")
}

/// Writes the wrapper into `dir`: it appends its arguments to `calls`; before `pause` (always) or `delete` (once `slow-delete`
/// exists in `dir`) it marks the call in `dir` and sleeps, then it execs the real runc.
fn write_wrapper(dir: &Path) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
echo "$*" >> '{dir}/calls'
for a in "$@"; do
  case "$a" in
    pause) touch '{dir}/pausing'; sleep {secs}; break ;;
    delete) if [ -e '{dir}/slow-delete' ]; then touch '{dir}/deleting'; sleep {secs}; fi; break ;;
    run|state|resume|exec|kill|ps|create|start) break ;;
  esac
done
exec '{runc}' "$@"
"#,
        dir = dir.display(),
        secs = SLOW.as_secs(),
        runc = real_runc().display(),
    );
    let path = dir.join("slow-runc");
    std::fs::write(&path, script).expect("write the wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A runc daemon whose runc is the wrapper, with busybox imported as `bb`.
fn daemon(wrapper_dir: &Path) -> Daemon {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs runc containers: run it as root"
    );
    let wrapper = write_wrapper(wrapper_dir);
    let config = serde_json::json!({
        "live-restore": true,
        "runtimes": { "runc": { "path": wrapper, "runtimeArgs": [RUNTIME_ARG] } },
    });
    let d = Daemon::start_with_runtime(&config.to_string(), "runc");
    d.import_busybox("bb");
    d
}

/// Waits for `child` and panics with its output unless it exited 0.
fn finished_ok(child: Child, what: &str) {
    let out = child.wait_with_output().expect("wait for moor");
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn state(d: &Daemon, name: &str) -> String {
    d.inspect_field(name, "{{.State.Status}} {{.State.Paused}}")
}

/// Deletes this daemon's runc containers and unmounts its rootfs mounts on drop, a failed
/// test included (declared after the daemon, so dropped before it).
struct CleanUp {
    /// The daemon's run directory (runc's `--root` is under it).
    run_dir: PathBuf,
    /// The test's directory (mounts under it go).
    base: PathBuf,
}

impl CleanUp {
    fn new(d: &Daemon) -> CleanUp {
        CleanUp {
            run_dir: d.run_dir(),
            base: d.root().parent().expect("test dir").to_path_buf(),
        }
    }
}

impl Drop for CleanUp {
    fn drop(&mut self) {
        clean_up(&self.run_dir, &self.base);
    }
}

/// Whether `child` is still running.
fn running(child: &mut Child) -> bool {
    child.try_wait().expect("try_wait").is_none()
}

#[test]
fn a_slow_pause_holds_up_only_its_own_container() {
    let wrapper_dir = tempfile::tempdir().expect("tempdir");
    let d = daemon(wrapper_dir.path());
    let _clean_up = CleanUp::new(&d);
    d.run_detached(&["--name", "slow", "bb", "sleep", "1000"]);
    d.run_detached(&["--name", "other", "bb", "sleep", "1000"]);
    d.cli_ok(&["create", "--name", "idle", "bb", "sleep", "1000"]);

    let mut pause = d.cli_in_background(&["pause", "slow"]);
    let pausing = wrapper_dir.path().join("pausing");
    assert!(
        wait_for(Duration::from_secs(10), || pausing.exists()),
        "runc pause never ran"
    );
    // The pause is now sleeping in runc: its container's next request waits for it.
    let mut unpause = d.cli_in_background(&["unpause", "slow"]);

    let list = d.within_deadline("GET", "/v1.44/containers/json?all=1", DEADLINE);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(
        list.json().as_array().map(Vec::len),
        Some(3),
        "{}",
        list.body
    );
    let other = d.within_deadline("GET", "/v1.44/containers/other/json", DEADLINE);
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.json()["State"]["Status"], "running");
    let start = d.within_deadline("POST", "/v1.44/containers/idle/start", DEADLINE);
    assert_eq!(start.status, 204, "{}", start.body);
    assert!(
        running(&mut pause),
        "the pause ended before the other requests were made"
    );
    assert!(
        running(&mut unpause),
        "the unpause did not wait for the pause"
    );

    // Ordered after the pause: the unpause neither failed ("not paused") nor overtook it.
    finished_ok(pause, "pause");
    finished_ok(unpause, "unpause");
    assert_eq!(state(&d, "slow"), "running false");
    assert_eq!(state(&d, "idle"), "running false");
    let id = d.inspect_field("slow", "{{.Id}}");
    let runc_state = Command::new(real_runc())
        .arg("--root")
        .arg(d.run_dir().join("runc"))
        .args(["state", &id])
        .output()
        .expect("runc state");
    let runc_state: serde_json::Value =
        serde_json::from_slice(&runc_state.stdout).expect("runc state JSON");
    assert_eq!(runc_state["status"], "running", "{runc_state}");

    // A slow `runc delete` after an exit holds up nothing else either.
    std::fs::write(wrapper_dir.path().join("slow-delete"), "").expect("mark");
    d.cli_ok(&["kill", "other"]);
    let deleting = wrapper_dir.path().join("deleting");
    assert!(
        wait_for(Duration::from_secs(10), || deleting.exists()),
        "runc delete never ran"
    );
    let list = d.within_deadline("GET", "/v1.44/containers/json?all=1", DEADLINE);
    assert_eq!(list.status, 200, "{}", list.body);
    let idle = d.within_deadline("GET", "/v1.44/containers/idle/json", DEADLINE);
    assert_eq!(idle.json()["State"]["Status"], "running");
    let stop = d.within_deadline("POST", "/v1.44/containers/idle/kill", DEADLINE);
    assert_eq!(stop.status, 204, "{}", stop.body);
    assert_eq!(state(&d, "other"), "exited false");

    std::fs::remove_file(wrapper_dir.path().join("slow-delete")).expect("unmark");
    d.cli_ok(&["rm", "-f", "slow", "other", "idle"]);

    // daemon.json's runtimeArgs reach every runc call: the shim's `run` and the daemon's.
    let calls = std::fs::read_to_string(wrapper_dir.path().join("calls")).expect("calls");
    for sub in ["run", "pause", "resume", "delete"] {
        let call = calls
            .lines()
            .find(|l| l.split(' ').any(|w| w == sub))
            .unwrap_or_else(|| panic!("no runc {sub} call in:\n{calls}"));
        assert!(
            call.split(' ').any(|w| w == RUNTIME_ARG),
            "runc {sub} without {RUNTIME_ARG}: {call}"
        );
    }
}
