//! The state file reader against real runc containers: at each step of a container's life
//! (created, running, paused, resumed, stopped, deleted) it says what `runc state` says.
//! Needs root, runc and /bin/busybox: a missing one fails the test unless `MOOR_TEST_SKIP`
//! names `runc` (as the integration tests do).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moor_state::reconcile::RuntimeState;

use super::status;
use crate::runtime::runc::ContainerState;

/// None when the test can run; the reason to skip when `MOOR_TEST_SKIP` allows it; a panic
/// otherwise.
fn missing_prerequisite() -> Option<String> {
    let reason = if !nix::unistd::geteuid().is_root() {
        "not root"
    } else if Command::new("runc").arg("--version").output().is_err() {
        "runc is not on PATH"
    } else if !Path::new("/bin/busybox").is_file() {
        "/bin/busybox is missing"
    } else {
        return None;
    };
    let skip = std::env::var("MOOR_TEST_SKIP").unwrap_or_default();
    if skip
        .split(',')
        .any(|p| matches!(p.trim(), "runc" | "root" | "all"))
    {
        return Some(reason.into());
    }
    panic!("this test needs root, runc and busybox: {reason}; set MOOR_TEST_SKIP=runc to skip");
}

/// runc under its own root in a temp dir; every container it made is deleted on drop.
struct Runc {
    dir: tempfile::TempDir,
    ids: Vec<String>,
}

impl Runc {
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("runc")
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run runc")
    }

    /// Runs a command whose container may hold stdout and stderr: not captured.
    fn ok(&self, args: &[&str]) {
        let status = Command::new("runc")
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run runc");
        assert!(status.success(), "runc {args:?}: {status}");
    }

    /// What `runc state` says, as the reconciler reads it (Missing when it fails and runc
    /// has no directory for the container).
    fn state(&self, id: &str) -> Option<RuntimeState> {
        let out = self.run(&["state", id]);
        if !out.status.success() {
            return (!self.root().join(id).exists()).then_some(RuntimeState::Missing);
        }
        let state: ContainerState = serde_json::from_slice(&out.stdout).expect("runc state");
        state.runtime_state()
    }

    /// The reader and `runc state` agree on `id`, and say `expected`.
    fn agree(&self, id: &str, expected: RuntimeState) {
        let read = status(&self.root(), id);
        assert_eq!(read, self.state(id), "state.json reader against runc state");
        assert_eq!(read, Some(expected));
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.run(&["delete", "--force", id]);
        }
    }
}

/// A bundle of busybox running `sleep 1000`, in its own cgroup.
fn bundle(dir: &Path, id: &str) -> PathBuf {
    let bundle = dir.join(format!("bundle-{id}"));
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("mkdir rootfs");
    for d in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(bundle.join("rootfs").join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", bin.join("sleep")).expect("symlink");
    let spec = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()
        .expect("runc spec");
    assert!(spec.success(), "runc spec");
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).expect("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("config.json");
    v["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    v["process"]["terminal"] = serde_json::json!(false);
    v["linux"]["cgroupsPath"] = serde_json::json!(format!("/moor-state-file-test-{id}"));
    std::fs::write(&path, v.to_string()).expect("write config.json");
    bundle
}

#[test]
fn the_state_file_says_what_runc_state_says() {
    if let Some(reason) = missing_prerequisite() {
        println!("skipped: {reason}");
        return;
    }
    let mut runc = Runc {
        dir: tempfile::Builder::new()
            .prefix("moor-statefile-")
            .tempdir_in("/tmp")
            .expect("tempdir"),
        ids: Vec::new(),
    };
    let pid = std::process::id();
    let (created, run) = (format!("sf-created-{pid}"), format!("sf-run-{pid}"));
    runc.ids = vec![created.clone(), run.clone()];
    runc.agree(&run, RuntimeState::Missing);

    let b = bundle(runc.dir.path(), &created);
    runc.ok(&["create", "--bundle", b.to_str().expect("utf-8"), &created]);
    runc.agree(&created, RuntimeState::Created);

    let b = bundle(runc.dir.path(), &run);
    runc.ok(&[
        "run",
        "--detach",
        "--bundle",
        b.to_str().expect("utf-8"),
        &run,
    ]);
    runc.agree(&run, RuntimeState::Running);
    runc.ok(&["pause", &run]);
    runc.agree(&run, RuntimeState::Paused);
    runc.ok(&["resume", &run]);
    runc.agree(&run, RuntimeState::Running);

    runc.ok(&["kill", &run, "KILL"]);
    let t0 = Instant::now();
    while runc.state(&run) != Some(RuntimeState::Stopped) {
        assert!(t0.elapsed() < Duration::from_secs(10), "never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    runc.agree(&run, RuntimeState::Stopped);
    runc.ok(&["delete", &run]);
    runc.agree(&run, RuntimeState::Missing);
}
