//! Restore benchmark on runc: N running runc containers (busybox `sleep`), the daemon killed
//! with SIGKILL and started again; time from its spawn until `GET /containers/json` lists
//! the N containers running. Prints the reconciler's own time (its `reconciler finished`
//! log line) and the gap between its end and the first answer of the API.
//! Beside it, round by round, a private dockerd (live-restore) with N containers of the same
//! image, killed with SIGKILL and started again the same way (its containerd's reap is
//! waited for and not counted): see `common/dockerd.rs`; `MOOR_BENCH_DOCKER=0` leaves it out.
//! `cargo bench --bench restore_runc [-- N...]` (default 100; several N, e.g. `100 300 1000`,
//! grow the same daemons from one to the next; env `RESTORE_ROUNDS`, default 3;
//! `MOOR_BENCH_DAEMON=PATH` runs another build of the daemon, to compare two builds back to
//! back). Root, runc and /bin/busybox needed. Figures go into BENCHMARKS.md.

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
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use common::request;

/// How many clients create and start the containers at once.
const CREATORS: usize = 4;

/// The daemon under test: its directories and, while it runs, its process.
struct Bench {
    /// The bench's temp dir (root, socket, logs).
    base: PathBuf,
    /// The run directory (on tmpfs when there is one, as /run/moor in production).
    run_dir: PathBuf,
    /// The daemon, when running.
    child: Option<Child>,
    /// Its log (RUST_LOG=info, appended across starts).
    log: PathBuf,
}

impl Bench {
    fn socket(&self) -> PathBuf {
        common::socket(&self.base)
    }

    fn spawn(&mut self) {
        let child = common::spawn_daemon_logged(
            &self.base,
            &self.run_dir,
            r#"{"live-restore": true}"#,
            &["--runtime", "runc"],
            "info",
            &self.log,
        );
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Our own child, not reaped yet: its pid names no other process.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn cli(&self, args: &[&str]) {
        let out = Command::new(common::MOOR)
            .arg("--host")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run moor");
        assert!(
            out.status.success(),
            "moor {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.kill9();
        // `runc delete --force` kills each container; its shim then exits.
        runc::clean_up(&self.run_dir, &self.base);
        runc::clean_up(&self.run_dir, &self.run_dir);
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// moor's container: busybox `sleep`.
const MOOR_BODY: &str = r#"{"Image":"bb","Cmd":["sleep","100000"]}"#;
/// Docker's: the same image and command, `--network none`.
const DOCKER_BODY: &str =
    r#"{"Image":"bb","Cmd":["sleep","100000"],"HostConfig":{"NetworkMode":"none"}}"#;

/// Creates and starts `n` containers of `body` on the API at `sock`, `CREATORS` clients at
/// once.
fn start_containers(sock: &Path, body: &str, n: usize) -> Duration {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for k in 0..CREATORS {
            let count = n / CREATORS + usize::from(k < n % CREATORS);
            s.spawn(move || {
                for _ in 0..count {
                    let id =
                        common::id_of(&request(sock, "POST", "/containers/create", body).unwrap());
                    let answer = request(sock, "POST", &format!("/containers/{id}/start"), "")
                        .expect("start answer");
                    assert!(status_is(&answer, "204"), "start: {answer}");
                }
            });
        }
    });
    t0.elapsed()
}

/// Whether an HTTP answer has this status code.
fn status_is(answer: &str, code: &str) -> bool {
    answer.split(' ').nth(1) == Some(code)
}

/// Running containers in a `/containers/json` answer (None: no answer, or not a 200).
fn running_listed(sock: &Path) -> Option<usize> {
    let answer = request(sock, "GET", "/containers/json", "")?;
    status_is(&answer, "200").then(|| answer.matches(r#""State":"running""#).count())
}

/// Polls `GET /containers/json` on `sock` every 1 ms from `t0` until it lists `n` running:
/// (`t0` to the first answer, `t0` to `n` listed, wall time of the first answer). Panics
/// after `limit`, with `what` and the list.
fn poll_listed(
    sock: &Path,
    n: usize,
    t0: Instant,
    limit: Duration,
    what: &str,
) -> (Duration, Duration, SystemTime) {
    let mut first = None;
    loop {
        if let Some(listed) = running_listed(sock) {
            let at = (t0.elapsed(), SystemTime::now());
            let first = *first.get_or_insert(at);
            if listed == n {
                return (first.0, t0.elapsed(), first.1);
            }
        }
        if t0.elapsed() > limit {
            let states = request(sock, "GET", "/containers/json?all=1", "").unwrap_or_default();
            panic!("{what}: never listed {n} running: {states}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One restart of moor: (spawn to the first answer, spawn to N listed running, wall time of
/// the first answer). On a failure its log is kept beside the temp dir.
fn restart(b: &mut Bench, n: usize) -> (Duration, Duration, SystemTime) {
    b.kill9();
    let kept = std::env::temp_dir().join("restore_runc-failed.log");
    let t0 = Instant::now();
    b.spawn();
    let sock = b.socket();
    let result =
        std::panic::catch_unwind(|| poll_listed(&sock, n, t0, Duration::from_secs(120), "moor"));
    result.unwrap_or_else(|e| {
        let _ = std::fs::copy(&b.log, &kept);
        eprintln!("(moor's log: {})", kept.display());
        std::panic::resume_unwind(e)
    })
}

/// One restart of Docker: SIGKILL to dockerd, its containerd's reap waited for (returned,
/// not counted), then spawn to the first answer and to N listed running.
fn restart_docker(d: &mut dockerd::Dockerd, n: usize) -> (Duration, Duration, Duration) {
    let reap = d.kill9();
    let t0 = Instant::now();
    d.spawn();
    let what = format!("dockerd (log: {})", d.log().display());
    let (first, listed, _) = poll_listed(&d.socket(), n, t0, Duration::from_secs(300), &what);
    (first, listed, reap)
}

/// The last `reconciler finished` line of the log: its time stamp and `elapsed_ms`.
fn reconciler_finished(log: &Path) -> (DateTime<Utc>, f64) {
    let text = std::fs::read_to_string(log).expect("read the daemon's log");
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("reconciler finished"))
        .expect("a `reconciler finished` line in the daemon's log");
    let at = line
        .split_whitespace()
        .next()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .expect("a time stamp first on the line")
        .with_timezone(&Utc);
    let elapsed = line
        .split("elapsed_ms=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("elapsed_ms on the line");
    (at, elapsed)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// "median (min–max)" in ms.
fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("{:.1} ms ({min:.1}–{max:.1})", median(v))
}

/// Figures of one N, each a list over the rounds (ms).
#[derive(Default)]
struct Figures {
    /// Containers running in each daemon.
    n: usize,
    /// moor: spawn to N listed running.
    listed: Vec<f64>,
    /// moor: spawn to the first answer.
    first: Vec<f64>,
    /// moor: the reconciler's `elapsed_ms`.
    reconciler: Vec<f64>,
    /// moor: the reconciler's end to the first answer.
    gap: Vec<f64>,
    /// Docker: spawn of dockerd to N listed running.
    docker_listed: Vec<f64>,
    /// Docker: spawn to the first answer.
    docker_first: Vec<f64>,
    /// Docker: the wait for containerd's reap before the spawn (not counted).
    docker_reap: Vec<f64>,
}

/// `rounds` restarts of moor and (when there) Docker, alternating which goes first.
fn measure(
    b: &mut Bench,
    mut docker: Option<&mut dockerd::Dockerd>,
    n: usize,
    rounds: usize,
) -> Figures {
    let mut f = Figures {
        n,
        ..Figures::default()
    };
    for round in 0..rounds {
        let docker_first = round % 2 == 1;
        if docker_first {
            if let Some(d) = docker.as_deref_mut() {
                measure_docker(d, &mut f);
            }
        }
        let (first, listed, first_at) = restart(b, n);
        let (finished_at, elapsed) = reconciler_finished(&b.log);
        let first_at: DateTime<Utc> = first_at.into();
        let gap = (first_at - finished_at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        f.first.push(ms(first));
        f.listed.push(ms(listed));
        f.reconciler.push(elapsed);
        f.gap.push(gap);
        println!(
            "N = {n}, moor: first answer {:.1} ms, {n} listed running {:.1} ms, reconciler {elapsed:.1} ms, its end to the first answer {gap:.1} ms",
            ms(first),
            ms(listed),
        );
        if !docker_first {
            if let Some(d) = docker.as_deref_mut() {
                measure_docker(d, &mut f);
            }
        }
    }
    f
}

fn measure_docker(d: &mut dockerd::Dockerd, f: &mut Figures) {
    let n = f.n;
    let (first, listed, reap) = restart_docker(d, n);
    f.docker_first.push(ms(first));
    f.docker_listed.push(ms(listed));
    f.docker_reap.push(ms(reap));
    println!(
        "N = {n}, Docker: first answer {:.1} ms, {n} listed running {:.1} ms (containerd reaped {:.1} ms after the kill, not counted)",
        ms(first),
        ms(listed),
        ms(reap)
    );
}

/// The table of every N: medians with min–max, per container, and the factor.
fn print_table(all: &[Figures]) {
    println!();
    println!("| N | moor: restart to N listed running | per container | Docker: restart to N listed running | per container | moor vs Docker |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for f in all {
        let m = median(&f.listed);
        let (docker, per, factor) = if f.docker_listed.is_empty() {
            ("not run".to_string(), String::new(), String::new())
        } else {
            let d = median(&f.docker_listed);
            (
                spread(&f.docker_listed),
                format!("{:.2} ms", d / f.n as f64),
                format!("{:.1}× faster", d / m),
            )
        };
        println!(
            "| {} | {} | {:.2} ms | {docker} | {per} | {factor} |",
            f.n,
            spread(&f.listed),
            m / f.n as f64,
        );
    }
    println!();
    for f in all {
        print!(
            "N = {}: moor first answer {}, reconciler {}, its end to the first answer {}",
            f.n,
            spread(&f.first),
            spread(&f.reconciler),
            spread(&f.gap)
        );
        if !f.docker_listed.is_empty() {
            print!(
                "; Docker first answer {}, containerd's reap (not counted) {}",
                spread(&f.docker_first),
                spread(&f.docker_reap)
            );
        }
        println!();
    }
}

/// Every N among the arguments, ascending (`first` when there is only the default).
fn counts(first: usize) -> Vec<usize> {
    let mut v: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if v.is_empty() {
        v.push(first);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// MemAvailable from /proc/meminfo, in MiB.
fn mem_available_mib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// The moor daemon with the busybox image imported as `bb`, and the image's tar.
fn start_moor(tmp: &Path, run_dir: PathBuf) -> Bench {
    let mut b = Bench {
        base: tmp.to_path_buf(),
        run_dir,
        child: None,
        log: tmp.join("daemon.log"),
    };
    std::fs::write(b.base.join("bb.tar"), runc::busybox_tar()).expect("write bb.tar");
    b.spawn();
    let up = common::wait_ready(
        &b.socket(),
        Duration::from_secs(30),
        Duration::from_millis(2),
    );
    assert!(up, "daemon never ready");
    b.cli(&[
        "image",
        "import",
        &b.base.join("bb.tar").to_string_lossy(),
        "bb",
    ]);
    b
}

fn main() {
    let Some(n) = common::count("restore_runc", 100) else {
        return;
    };
    if let Some(reason) = runc::skip_reason() {
        println!("restore_runc: skipped: {reason}");
        return;
    }
    let rounds = common::env_number("RESTORE_ROUNDS", 3);
    let tmp = common::temp_dir();
    let run_tmp = tempfile::Builder::new()
        .prefix("moor-bench-run-")
        .tempdir_in("/dev/shm")
        .ok();
    let run_dir = run_tmp
        .as_ref()
        .map_or_else(|| tmp.path().join("run"), |t| t.path().to_path_buf());
    let mut b = start_moor(tmp.path(), run_dir);
    let mut docker = dockerd::wanted().then(|| {
        let d = dockerd::Dockerd::start(&tmp.path().join("docker"), true);
        d.import_image(&tmp.path().join("bb.tar"), "bb");
        d
    });
    let mut all = Vec::new();
    let mut have = 0;
    for n in counts(n) {
        let each = ms(start_containers(&b.socket(), MOOR_BODY, n - have)) / (n - have) as f64;
        assert_eq!(running_listed(&b.socket()), Some(n), "moor: {n} running");
        print!(
            "N = {n}: create+start through the API ({CREATORS} clients): moor {each:.1} ms each"
        );
        if let Some(d) = &docker {
            let each = ms(start_containers(&d.socket(), DOCKER_BODY, n - have));
            assert_eq!(running_listed(&d.socket()), Some(n), "Docker: {n} running");
            print!(", Docker {:.1} ms each", each / (n - have) as f64);
        }
        println!("; MemAvailable {} MiB", mem_available_mib());
        have = n;
        all.push(measure(&mut b, docker.as_mut(), n, rounds));
    }
    println!("rounds: {rounds} (medians, min–max)");
    print_table(&all);
    if let Some(d) = docker {
        d.stop();
    }
}
