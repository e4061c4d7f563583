//! Docker's side of the `beside_docker` bench: the private dockerd of `common/dockerd.rs`
//! with the same busybox image as moor's (`bb`), and the processes whose memory counts
//! (dockerd, its managed containerd, one containerd-shim-runc-v2 per container), found by
//! pid under its own directory.

use std::path::{Path, PathBuf};

use crate::dockerd::Dockerd;
use crate::runc;

/// A private dockerd (no live-restore) with `bb` imported; stopped cleanly on drop (every
/// container removed, no process or mount left: see `Dockerd`).
pub struct Docker {
    /// The daemon.
    daemon: Dockerd,
    /// Its directory (`exec/` is its exec root, `docker.pid` its pid file).
    dir: PathBuf,
}

impl Docker {
    /// Starts dockerd in `dir` and imports the busybox rootfs moor's side imports.
    pub fn start(dir: &Path) -> Docker {
        let daemon = Dockerd::start(dir, false);
        let tar = dir.join("bb.tar");
        std::fs::write(&tar, runc::busybox_tar()).expect("write bb.tar");
        daemon.import_image(&tar, "bb");
        Docker {
            daemon,
            dir: dir.into(),
        }
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.daemon.socket()
    }

    /// dockerd's exec root (its managed containerd's state is under it).
    fn exec_root(&self) -> PathBuf {
        self.dir.join("exec")
    }

    /// dockerd's and its managed containerd's pids, from their pid files; panics when either
    /// is not running.
    pub fn daemon_pids(&self) -> Vec<i32> {
        [
            self.dir.join("docker.pid"),
            self.exec_root().join("containerd/containerd.pid"),
        ]
        .iter()
        .map(|file| {
            let pid: i32 = std::fs::read_to_string(file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or_else(|| panic!("no pid in {}", file.display()));
            assert!(
                Path::new(&format!("/proc/{pid}")).exists(),
                "{} names pid {pid}, which is not running",
                file.display()
            );
            pid
        })
        .collect()
    }

    /// The pids of the `containerd-shim-runc-v2` processes whose command line names this
    /// dockerd's exec root (their `-address` is its containerd's socket): its shims only.
    pub fn shim_pids(&self) -> Vec<i32> {
        let root = self.exec_root().to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    return false;
                };
                let mut args = cmdline.split(|&b| b == 0).map(String::from_utf8_lossy);
                let is_shim = args
                    .next()
                    .is_some_and(|a| a.ends_with("containerd-shim-runc-v2"));
                is_shim && args.any(|a| a.contains(&root))
            })
            .collect()
    }
}
