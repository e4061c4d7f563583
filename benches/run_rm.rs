//! `moor run --rm IMAGE true` end to end (the CLI process, with the daemon on runc and a
//! busybox image), against a bare `runc run` of an equivalent bundle, interleaved in the same
//! run. Target: within 1.25x of runc. Beside them, in the same rounds, `docker run --rm
//! --network none IMAGE true` (the docker CLI) against a private dockerd with the same image
//! (see `common/dockerd.rs`; `MOOR_BENCH_DOCKER=0` leaves it out). Root only.
//! `cargo bench --bench run_rm [-- N]` (default 30). Figures go into BENCHMARKS.md.
//! `RUN_RM_BEFORE=DIR` (a directory holding another build's `moor` and `moor-shim`) times
//! that build too, its CLI against its own daemon, interleaved round by round with this
//! build and runc: before and after in one run.

mod common;

#[allow(dead_code)]
#[path = "common/dockerd.rs"]
mod dockerd;

#[allow(dead_code)]
#[path = "../tests/common/prereq.rs"]
mod prereq;

#[allow(dead_code)]
#[path = "../tests/common/runc.rs"]
mod runc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::MOOR;

/// The daemon, killed and reaped on every path out (panics included), then the runc state
/// and mounts it may have left cleaned.
struct DaemonGuard {
    /// The daemon process.
    child: Child,
    /// The build's `moor` (the CLI talking to this daemon; the daemon's binary too).
    moor: PathBuf,
    /// The bench's temp dir.
    base: PathBuf,
    /// The daemon's run directory (tmpfs when there is one).
    run_dir: PathBuf,
}

impl DaemonGuard {
    /// This build's daemon.
    fn start(base: &Path, run_dir: &Path) -> DaemonGuard {
        let child = common::spawn_daemon(base, run_dir, "{}", &["--runtime", "runc"]);
        DaemonGuard::ready(child, MOOR.into(), base, run_dir)
    }

    /// The daemon of the build in `dir` (its `moor` and `moor-shim`).
    fn start_build(dir: &Path, base: &Path, run_dir: &Path) -> DaemonGuard {
        let (moor, shim) = (dir.join("moor"), dir.join("moor-shim"));
        let bins = (moor.as_os_str(), shim.as_os_str());
        let child = common::spawn_daemon_of(bins, base, run_dir, "{}", &["--runtime", "runc"]);
        DaemonGuard::ready(child, moor, base, run_dir)
    }

    fn ready(child: Child, moor: PathBuf, base: &Path, run_dir: &Path) -> DaemonGuard {
        let guard = DaemonGuard {
            child,
            moor,
            base: base.into(),
            run_dir: run_dir.into(),
        };
        let up = common::wait_ready(
            &common::socket(base),
            Duration::from_secs(30),
            Duration::from_millis(2),
        );
        assert!(up, "daemon never ready");
        guard
    }

    /// Times one `moor run --rm bb true` of this build.
    fn run_rm(&self) -> Duration {
        let host = self.host();
        time(Command::new(&self.moor).args(["--host", &host, "run", "--rm", "bb", "true"]))
    }

    fn host(&self) -> String {
        format!("unix://{}", self.base.join("s.sock").display())
    }

    /// Runs the CLI; panics unless it succeeds. Returns its stdout.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.moor)
            .arg("--host")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run moor");
        assert!(
            out.status.success(),
            "moor {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        // A graceful stop waits for the background clean-up of the last removals.
        // Our own child's pid, not reaped yet: it cannot name another process.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
        // The run directory is outside `base` when it is on tmpfs.
        for dir in [&self.base, &self.run_dir] {
            runc::clean_up(&self.run_dir, dir);
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// A bundle for bare runc: the config.json moor generated for a busybox container (read
/// while one runs), with `true` as its process and its own cgroup, and the image unpacked.
fn runc_bundle(d: &DaemonGuard, tar: &[u8], dir: &Path) {
    let id = d
        .cli(&["run", "-d", "bb", "sleep", "1000"])
        .trim()
        .to_string();
    let config = d
        .run_dir
        .join("containers")
        .join(&id)
        .join("bundle/config.json");
    let text = std::fs::read_to_string(&config).expect("moor's config.json");
    d.cli(&["rm", "-f", &id]);
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("config.json");
    v["process"]["args"] = serde_json::json!(["true"]);
    v["process"]["terminal"] = serde_json::json!(false);
    v["root"]["path"] = serde_json::json!("rootfs");
    v["linux"]["cgroupsPath"] = serde_json::json!(format!("/moor-bench/{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rootfs")).expect("mkdir rootfs");
    tar::Archive::new(tar)
        .unpack(dir.join("rootfs"))
        .expect("unpack busybox");
    std::fs::write(dir.join("config.json"), v.to_string()).expect("write config.json");
}

fn time(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("spawn");
    let elapsed = t.elapsed();
    assert!(status.success(), "{cmd:?}: {status}");
    elapsed
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median, 10th and 90th percentile, min and max.
fn summary(mut v: Vec<Duration>) -> [Duration; 5] {
    v.sort();
    let at = |p: usize| v[(v.len() - 1) * p / 100];
    [at(50), at(10), at(90), at(0), at(100)]
}

/// One line of figures for `what`; returns its median.
fn report(what: &str, v: Vec<Duration>) -> Duration {
    let [m, p10, p90, min, max] = summary(v);
    println!(
        "{what}: median {:.1} ms (p10 {:.1}, p90 {:.1}; min {:.1}, max {:.1})",
        ms(m),
        ms(p10),
        ms(p90),
        ms(min),
        ms(max)
    );
    m
}

/// The figures of moor (`m`), bare runc (`r`) and Docker (`k`, empty when not run) and
/// their ratios; the median of runc.
fn print_results(m: Vec<Duration>, r: Vec<Duration>, k: Vec<Duration>) -> Duration {
    let rm = report("runc run (baseline)", r);
    let mm = report("moor run --rm bb true", m);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("moor vs runc: {:.2}x (target 1.25x)", ratio(mm, rm));
    if !k.is_empty() {
        let km = report("docker run --rm --network none bb true", k);
        println!(
            "Docker vs runc: {:.2}x; moor {:.1}x faster than Docker",
            ratio(km, rm),
            ratio(km, mm)
        );
    }
    rm
}

/// A private dockerd with the busybox image as `bb`, when Docker is wanted.
fn start_docker(base: &Path) -> Option<dockerd::Dockerd> {
    if !dockerd::wanted() {
        println!("Docker: not run (MOOR_BENCH_DOCKER=0)");
        return None;
    }
    let d = dockerd::Dockerd::start(&base.join("docker"), false);
    d.import_image(&base.join("bb.tar"), "bb");
    Some(d)
}

/// A daemon of one build with the busybox image imported, its run directory on tmpfs (as
/// /run/moor is in production; state stays on disk).
fn daemon(
    base: &Path,
    tar: &[u8],
    build: Option<&Path>,
) -> (DaemonGuard, Option<tempfile::TempDir>) {
    std::fs::create_dir_all(base).expect("mkdir base");
    std::fs::write(base.join("bb.tar"), tar).expect("write bb.tar");
    let run_tmp = tempfile::Builder::new()
        .prefix("moor-bench-run-")
        .tempdir_in("/dev/shm")
        .ok();
    let run_dir = run_tmp
        .as_ref()
        .map_or_else(|| base.join("run"), |t| t.path().to_path_buf());
    println!("run dir: {}", run_dir.display());
    let d = match build {
        Some(dir) => DaemonGuard::start_build(dir, base, &run_dir),
        None => DaemonGuard::start(base, &run_dir),
    };
    let tar_path = base.join("bb.tar").to_string_lossy().into_owned();
    d.cli(&["image", "import", &tar_path, "bb"]);
    (d, run_tmp)
}

fn main() {
    let Some(n) = common::count("run_rm", 30) else {
        return;
    };
    if let Some(reason) = runc::skip_reason() {
        println!("run_rm: skipped: {reason}");
        return;
    }
    let tmp = common::temp_dir();
    let base = tmp.path();
    let tar = runc::busybox_tar();
    let (d, _run_tmp) = daemon(base, &tar, None);
    let before_dir = std::env::var_os("RUN_RM_BEFORE").map(PathBuf::from);
    let before = before_dir
        .as_deref()
        .map(|dir| daemon(&base.join("before"), &tar, Some(dir)));
    let bundle = base.join("bundle");
    runc_bundle(&d, &tar, &bundle);
    let docker = start_docker(base);

    let runc_root = base.join("runc-root");
    let mut count = 0;
    let mut runc_run = || {
        count += 1;
        time(
            Command::new("runc")
                .arg("--root")
                .arg(&runc_root)
                .args(["run", &format!("bench-{count}")])
                .current_dir(&bundle),
        )
    };
    let docker_run = || {
        docker.as_ref().map(|dk| {
            time(
                dk.cli_command()
                    .args(["run", "--rm", "--network", "none", "bb", "true"]),
            )
        })
    };
    // Warm-up (page cache, first cgroup creation), then interleaved so that load from
    // elsewhere on the machine hits every contender alike.
    let (mut m, mut r, mut b, mut k) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The order turns each round: whoever follows a moor run shares the machine with its
    // background clean-up (`runc delete`, unmount), and that cost rotates too.
    for round in 0..n + 3 {
        let (mut tm, mut tr, mut tb, mut tk) = (None, None, None, None);
        for i in 0..4 {
            match (round + i) % 4 {
                0 => tm = Some(d.run_rm()),
                1 => tr = Some(runc_run()),
                2 => tb = before.as_ref().map(|(d, _)| d.run_rm()),
                _ => tk = docker_run(),
            }
        }
        if round >= 3 {
            m.extend(tm);
            r.extend(tr);
            b.extend(tb);
            k.extend(tk);
        }
    }
    println!("runs: {n} each, interleaved");
    let rm = print_results(m, r, k);
    if let Some(dir) = &before_dir {
        let bm = report(&format!("before ({})", dir.display()), b);
        println!(
            "before vs runc: {:.2}x",
            bm.as_secs_f64() / rm.as_secs_f64()
        );
    }
    drop(before);
    if let Some(dk) = docker {
        dk.stop();
    }
    drop(d);
}
