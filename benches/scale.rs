//! Scale benchmark (issue 15 item 3): N process-runtime containers (`sleep 100000`) through
//! every phase of their life, each phase timed per container, to find what grows faster than
//! linearly with N.
//!
//! For each N given (`cargo bench --bench scale [-- N...]`, default 1000 3000 10000), in a
//! fresh root: create N (several clients), start N, then `SCALE_ROUNDS` (default 3) times:
//! SIGKILL the daemon, start the same daemon on an empty root (the baseline, interleaved) and
//! then on this root, timing spawn to `/_ping` and spawn to all N listed running; then list
//! and inspect latencies, stop all, remove all. The daemon's RSS, descriptors and threads are
//! read after each phase. Every process is killed by pid at the end (and on a panic).

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::request;

/// Concurrent clients for create, start, stop and remove.
const CLIENTS: usize = 8;

/// One daemon's directories and, while it runs, its process.
struct Daemon {
    /// Root, socket, config and log.
    base: PathBuf,
    /// The run directory (tmpfs when there is one, as /run/moor in production).
    run_dir: PathBuf,
    /// The daemon, while it runs.
    child: Option<Child>,
}

impl Daemon {
    fn new(base: PathBuf, run_dir: PathBuf) -> Daemon {
        std::fs::create_dir_all(&base).expect("bench dir");
        Daemon {
            base,
            run_dir,
            child: None,
        }
    }

    fn socket(&self) -> PathBuf {
        common::socket(&self.base)
    }

    fn log(&self) -> PathBuf {
        self.base.join("daemon.log")
    }

    fn spawn(&mut self) {
        self.child = Some(common::spawn_daemon_logged(
            &self.base,
            &self.run_dir,
            r#"{"live-restore": true}"#,
            &[],
            "warn,moor::daemon::reconciler=info",
            &self.log(),
        ));
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Our own child, not reaped yet: its pid names no other process.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Spawn to `/_ping` answering, and spawn to `n` listed running.
    fn restart(&mut self, n: usize) -> (Duration, Duration) {
        let sock = self.socket();
        let t0 = Instant::now();
        self.spawn();
        let up = common::wait_ready(&sock, Duration::from_secs(300), Duration::from_millis(1));
        assert!(up, "daemon never ready (log: {})", self.log().display());
        let ping = t0.elapsed();
        loop {
            if running_listed(&sock) == Some(n) {
                return (ping, t0.elapsed());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "never listed {n} running (log: {})",
                self.log().display()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        common::kill_recorded(&self.run_dir);
    }
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

/// Runs `op` on every item, `CLIENTS` threads at once; the wall time.
fn fan_out<T: Sync>(items: &[T], op: impl Fn(&T) + Sync) -> Duration {
    let t0 = Instant::now();
    let chunk = items.len().div_ceil(CLIENTS).max(1);
    std::thread::scope(|s| {
        for part in items.chunks(chunk) {
            let op = &op;
            s.spawn(move || part.iter().for_each(op));
        }
    });
    t0.elapsed()
}

/// Creates `n` containers, `CLIENTS` at once: their ids and the wall time.
fn create_all(sock: &Path, n: usize) -> (Vec<String>, Duration) {
    let t0 = Instant::now();
    let ids = std::sync::Mutex::new(Vec::with_capacity(n));
    let slots: Vec<usize> = (0..n).collect();
    fan_out(&slots, |_| {
        let body = r#"{"Image":"host","Cmd":["sleep","100000"]}"#;
        let answer = request(sock, "POST", "/containers/create", body).expect("create answer");
        ids.lock().unwrap().push(common::id_of(&answer));
    });
    (ids.into_inner().unwrap(), t0.elapsed())
}

/// `POST /containers/{id}/{verb}` for every id (expects 204).
fn each(
    sock: &Path,
    ids: &[String],
    method: &str,
    path: impl Fn(&str) -> String + Sync,
) -> Duration {
    fan_out(ids, |id| {
        let answer = request(sock, method, &path(id), "").expect("an answer");
        assert!(status_is(&answer, "204"), "{method} {}: {answer}", path(id));
    })
}

/// VmRSS (MiB), open descriptors and threads of `pid`.
fn usage(pid: u32) -> (f64, usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (field("VmRSS:") / 1024.0, fds, field("Threads:") as usize)
}

/// CPU seconds (user + system) `pid` has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |i: usize| -> f64 {
        rest.split_whitespace()
            .nth(i - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // In USER_HZ ticks: 100 per second on Linux.
    (field(14) + field(15)) / 100.0
}

/// The daemon's usage `SETTLE` after a list, labelled `what`: a daemon returns the heap
/// its rebuilt lists freed a few seconds after them (`TrimAfterLists`, 5 s).
fn settled(pid: u32, what: &str) -> String {
    std::thread::sleep(SETTLE);
    let (rss, fds, threads) = usage(pid);
    format!(
        "{what}, {} s after a list: RSS {rss:.1} MiB, {fds} fds, {threads} threads",
        SETTLE.as_secs()
    )
}

/// See [`settled`].
const SETTLE: Duration = Duration::from_secs(6);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Latencies (ms) of `count` requests `path(i)`, one after another.
fn latencies(sock: &Path, count: usize, path: impl Fn(usize) -> String) -> Vec<f64> {
    (0..count)
        .map(|i| {
            let t0 = Instant::now();
            let answer = request(sock, "GET", &path(i), "").expect("an answer");
            assert!(status_is(&answer, "200"), "GET {}: not 200", path(i));
            ms(t0.elapsed())
        })
        .collect()
}

/// The last `reconciler finished` line's `elapsed_ms`.
fn reconciler_ms(log: &Path) -> f64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| l.contains("reconciler finished"))
        .and_then(|l| l.split("elapsed_ms=").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A phase's wall time and the daemon's CPU time in it, in all and per container.
fn per(d: Duration, cpu: f64, n: usize) -> String {
    format!(
        "{:.1} s, {:.2} ms each; daemon CPU {:.1} s, {:.2} ms each",
        d.as_secs_f64(),
        ms(d) / n as f64,
        cpu,
        cpu * 1000.0 / n as f64
    )
}

fn median(v: &[f64]) -> f64 {
    percentile(v.to_vec(), 0.5)
}

/// One scale run at `n` containers; prints its figures.
fn run(n: usize, rounds: usize, tmp: &Path, shm: &Path) {
    let dirs = |name: &str| {
        (
            tmp.join(format!("{name}{n}")),
            shm.join(format!("{name}{n}")),
        )
    };
    let (base, run_dir) = dirs("full");
    let mut full = Daemon::new(base, run_dir);
    let (base, run_dir) = dirs("empty");
    let mut empty = Daemon::new(base, run_dir);
    println!("== N = {n} (load average {})", common::load_average());
    full.spawn();
    assert!(common::wait_ready(
        &full.socket(),
        Duration::from_secs(60),
        Duration::from_millis(2)
    ));
    let sock = full.socket();
    let (rss0, fds0, _) = usage(full.pid());
    let cpu0 = cpu_secs(full.pid());
    let (ids, created) = create_all(&sock, n);
    println!("create: {}", per(created, cpu_secs(full.pid()) - cpu0, n));
    let cpu0 = cpu_secs(full.pid());
    let started = each(&sock, &ids, "POST", |id| format!("/containers/{id}/start"));
    println!("start: {}", per(started, cpu_secs(full.pid()) - cpu0, n));
    assert_eq!(running_listed(&sock), Some(n), "{n} running");
    let (rss, fds, threads) = usage(full.pid());
    println!("daemon, {n} running: RSS {rss:.1} MiB (idle {rss0:.1}), {fds} fds (idle {fds0}), {threads} threads");
    println!("{}", settled(full.pid(), &format!("daemon, {n} running")));

    let (mut base_ping, mut ping, mut listed, mut rec) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        full.kill9();
        let (p, _) = empty.restart(0);
        base_ping.push(ms(p));
        empty.kill9();
        let (p, l) = full.restart(n);
        ping.push(ms(p));
        listed.push(ms(l));
        rec.push(reconciler_ms(&full.log()));
        println!(
            "restart: baseline (0 containers) ping {:.1} ms; {n}: ping {:.1} ms, all listed running {:.1} ms, reconciler {:.1} ms",
            base_ping.last().unwrap(), ping.last().unwrap(), listed.last().unwrap(), rec.last().unwrap()
        );
    }
    let (rss, fds, threads) = usage(full.pid());
    println!(
        "restart medians: baseline {:.1} ms, ping {:.1} ms, listed {:.1} ms ({:.3} ms per container over the baseline), reconciler {:.1} ms; RSS after {rss:.1} MiB, {fds} fds, {threads} threads",
        median(&base_ping), median(&ping), median(&listed),
        (median(&listed) - median(&base_ping)) / n as f64, median(&rec)
    );
    let cpu0 = cpu_secs(full.pid());
    std::thread::sleep(Duration::from_secs(5));
    println!(
        "daemon CPU in the 5 s after the last restart's list: {:.2} s",
        cpu_secs(full.pid()) - cpu0
    );
    let (rss, fds, threads) = usage(full.pid());
    println!(
        "daemon 5 s after the last restart's list: RSS {rss:.1} MiB, {fds} fds, {threads} threads"
    );
    let list = latencies(&sock, 20, |_| "/containers/json".into());
    let inspect = latencies(&sock, 500, |i| {
        format!("/containers/{}/json", ids[(i * 7919) % n])
    });
    println!(
        "list (20, sequential): p50 {:.1} ms, max {:.1} ms; inspect (500): p50 {:.2} ms, p99 {:.2} ms",
        median(&list), percentile(list.clone(), 1.0), median(&inspect), percentile(inspect.clone(), 0.99)
    );
    let cpu0 = cpu_secs(full.pid());
    let stopped = each(&sock, &ids, "POST", |id| {
        format!("/containers/{id}/stop?t=5")
    });
    println!("stop: {}", per(stopped, cpu_secs(full.pid()) - cpu0, n));
    let cpu0 = cpu_secs(full.pid());
    let removed = each(&sock, &ids, "DELETE", |id| format!("/containers/{id}"));
    println!("remove: {}", per(removed, cpu_secs(full.pid()) - cpu0, n));
    let (rss, fds, threads) = usage(full.pid());
    println!("daemon after removing all: RSS {rss:.1} MiB, {fds} fds, {threads} threads");
    assert_eq!(running_listed(&sock), Some(0), "none left");
    println!("{}", settled(full.pid(), "daemon after removing all"));
}

fn main() {
    // Nothing to do under `cargo test --all-targets`; the first N, or 1,000 and more below.
    let Some(first) = common::count("scale", 1000) else {
        return;
    };
    let mut counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if counts.is_empty() {
        counts = vec![first, 3000, 10000];
    }
    let rounds = common::env_number("SCALE_ROUNDS", 3);
    let tmp = common::temp_dir();
    let shm = tempfile::Builder::new()
        .prefix("moor-bench-scale-")
        .tempdir_in("/dev/shm")
        .expect("a temp dir on /dev/shm");
    for n in counts {
        run(n, rounds, tmp.path(), shm.path());
    }
}
