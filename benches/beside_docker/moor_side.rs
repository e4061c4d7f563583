//! moor's side of the `beside_docker` bench: a daemon on runc with the busybox image `bb`
//! imported, and the processes whose memory counts (the daemon, one shim per container).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{common, runc};

/// A moor daemon (runc runtime) in the bench's own directories; on every path out (panics
/// included) it is killed, each container is deleted with `runc delete --force` (its shim
/// then exits) and the overlay mounts under its root are unmounted.
pub struct Moor {
    /// The daemon's base directory (root, socket, config, the image tar).
    base: PathBuf,
    /// Its run directory.
    run_dir: PathBuf,
    /// The daemon.
    child: Child,
}

impl Moor {
    /// Starts the daemon in `base` (run directory `run_dir`) and imports busybox as `bb`.
    pub fn start(base: &Path, run_dir: &Path) -> Moor {
        std::fs::create_dir_all(base).expect("create moor's base dir");
        let child = common::spawn_daemon(base, run_dir, "{}", &["--runtime", "runc"]);
        let moor = Moor {
            base: base.into(),
            run_dir: run_dir.into(),
            child,
        };
        let up = common::wait_ready(
            &moor.socket(),
            Duration::from_secs(30),
            Duration::from_millis(2),
        );
        assert!(up, "moor daemon never ready");
        let tar = base.join("bb.tar");
        std::fs::write(&tar, runc::busybox_tar()).expect("write bb.tar");
        let out = Command::new(common::MOOR)
            .arg("--host")
            .arg(format!("unix://{}", moor.socket().display()))
            .args(["image", "import"])
            .arg(&tar)
            .arg("bb")
            .stdin(Stdio::null())
            .output()
            .expect("run moor image import");
        assert!(
            out.status.success(),
            "moor image import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        moor
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        common::socket(&self.base)
    }

    /// The daemon's pid.
    pub fn daemon_pids(&self) -> Vec<i32> {
        vec![self.child.id() as i32]
    }

    /// The pid of every running shim the run directory records.
    pub fn shim_pids(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir(self.run_dir.join("containers")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| !e.path().join("exit.json").exists())
            .filter_map(|e| std::fs::read_to_string(e.path().join("started.json")).ok())
            .filter_map(|text| {
                let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                Some(v["shim"]["pid"].as_i64()? as i32)
            })
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .collect()
    }
}

impl Drop for Moor {
    fn drop(&mut self) {
        // Our own child, not reaped yet: its pid names no other process.
        let _ = self.child.kill();
        let _ = self.child.wait();
        runc::clean_up(&self.run_dir, &self.base);
        runc::clean_up(&self.run_dir, &self.run_dir);
    }
}
