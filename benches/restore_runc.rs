//! Restore benchmark on runc: N running runc containers (busybox `sleep`), the daemon killed
//! with SIGKILL and started again; time from its spawn until `GET /containers/json` lists
//! the N containers running. Prints the reconciler's own time (its `reconciler finished`
//! log line) and the gap between its end and the first answer of the API.
//! `cargo bench --bench restore_runc [-- N]` (default 100; env `RESTORE_ROUNDS`, default 3;
//! `MOOR_BENCH_DAEMON=PATH` runs another build of the daemon, to compare two builds back to
//! back). Root, runc and /bin/busybox needed. Figures go into BENCHMARKS.md.

mod common;

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

fn id_of(answer: &str) -> String {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).expect("create answer");
    match v["Id"].as_str() {
        Some(id) => id.to_string(),
        None => panic!("create failed: {answer}"),
    }
}

/// Creates and starts `n` busybox `sleep` containers, `CREATORS` clients at once.
fn start_containers(sock: &Path, n: usize) -> Duration {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for k in 0..CREATORS {
            let count = n / CREATORS + usize::from(k < n % CREATORS);
            s.spawn(move || {
                let body = r#"{"Image":"bb","Cmd":["sleep","100000"]}"#;
                for _ in 0..count {
                    let id = id_of(&request(sock, "POST", "/containers/create", body).unwrap());
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

/// One restart: (spawn to the first answer, spawn to N listed running, wall time of the
/// first answer).
fn restart(b: &mut Bench, n: usize) -> (Duration, Duration, SystemTime) {
    let sock = b.socket();
    let t0 = Instant::now();
    b.spawn();
    let mut first = None;
    loop {
        if let Some(listed) = running_listed(&sock) {
            let at = (t0.elapsed(), SystemTime::now());
            let first = *first.get_or_insert(at);
            if listed == n {
                return (first.0, t0.elapsed(), first.1);
            }
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let kept = std::env::temp_dir().join("restore_runc-failed.log");
            let _ = std::fs::copy(&b.log, &kept);
            let states = request(&sock, "GET", "/containers/json?all=1", "").unwrap_or_default();
            panic!(
                "never listed {n} running: {states}\n(daemon log: {})",
                kept.display()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Some(n) = common::count("restore_runc", 100) else {
        return;
    };
    if let Some(reason) = runc::skip_reason() {
        println!("restore_runc: skipped: {reason}");
        return;
    }
    let rounds: usize = std::env::var("RESTORE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = common::temp_dir();
    let run_tmp = tempfile::Builder::new()
        .prefix("moor-bench-run-")
        .tempdir_in("/dev/shm")
        .ok();
    let run_dir = run_tmp
        .as_ref()
        .map_or_else(|| tmp.path().join("run"), |t| t.path().to_path_buf());
    let mut b = Bench {
        base: tmp.path().to_path_buf(),
        run_dir,
        child: None,
        log: tmp.path().join("daemon.log"),
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
    let create_start = start_containers(&b.socket(), n);
    assert_eq!(running_listed(&b.socket()), Some(n), "{n} running");

    let (mut first, mut listed, mut reconciler, mut gap) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        b.kill9();
        let (f, l, first_at) = restart(&mut b, n);
        let (finished_at, elapsed) = reconciler_finished(&b.log);
        let first_at: DateTime<Utc> = first_at.into();
        first.push(ms(f));
        listed.push(ms(l));
        reconciler.push(elapsed);
        gap.push((first_at - finished_at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        println!(
            "round: first answer {:.1} ms, {n} listed running {:.1} ms, reconciler {elapsed:.1} ms, its end to the first answer {:.1} ms",
            ms(f),
            ms(l),
            gap.last().copied().unwrap_or_default()
        );
    }
    println!("runc containers: {n}, rounds: {rounds} (medians below)");
    println!(
        "create+start through the API ({CREATORS} clients): {:.1} ms each",
        ms(create_start) / n as f64
    );
    let listed = median(listed);
    println!(
        "restart to {n} listed running: {listed:.1} ms ({:.2} ms per container)",
        listed / n as f64
    );
    println!("restart to the first answer: {:.1} ms", median(first));
    println!("reconciler (its elapsed_ms): {:.1} ms", median(reconciler));
    println!(
        "reconciler's end to the first answer: {:.1} ms",
        median(gap)
    );
}
