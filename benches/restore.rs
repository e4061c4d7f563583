//! Restore benchmark: how long a restarted daemon takes to find N running containers
//! again (reconciler + actors + API serving), against the same daemon starting with
//! none, in the same run. `cargo bench --bench restore [-- N]` (default 1000).
//! Figures go into BENCHMARKS.md.

mod common;

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use common::request;

/// One daemon's directories.
struct Dirs {
    /// Temp dir holding everything.
    base: PathBuf,
}

impl Dirs {
    fn socket(&self) -> PathBuf {
        common::socket(&self.base)
    }
}

fn start(d: &Dirs) -> Child {
    common::spawn_daemon(
        &d.base,
        &d.base.join("run"),
        r#"{"live-restore": true}"#,
        &[],
    )
}

/// Time from spawning the daemon until `/_ping` answers.
fn time_to_ready(d: &Dirs) -> (Child, Duration) {
    let t0 = Instant::now();
    let mut child = start(d);
    let poll = Duration::from_millis(1);
    if !common::wait_ready(&d.socket(), Duration::from_secs(120), poll) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("daemon never ready");
    }
    (child, t0.elapsed())
}

fn kill9(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let Some(n) = common::count("restore", 1000) else {
        return;
    };
    let tmp = common::temp_dir();
    let empty = Dirs {
        base: tmp.path().join("empty"),
    };
    let full = Dirs {
        base: tmp.path().join("full"),
    };
    std::fs::create_dir_all(&empty.base).unwrap();
    std::fs::create_dir_all(&full.base).unwrap();

    // Baseline: the same daemon with no containers, 5 times.
    let mut base = Vec::new();
    for _ in 0..5 {
        let (c, t) = time_to_ready(&empty);
        base.push(t);
        kill9(c);
    }

    let (c, _) = time_to_ready(&full);
    let body = r#"{"Image":"host","Cmd":["sleep","100000"]}"#;
    let t0 = Instant::now();
    for _ in 0..n {
        let id =
            common::id_of(&request(&full.socket(), "POST", "/containers/create", body).unwrap());
        request(
            &full.socket(),
            "POST",
            &format!("/containers/{id}/start"),
            "",
        )
        .unwrap();
    }
    let create_start = t0.elapsed();
    let mut restore = Vec::new();
    kill9(c);
    for _ in 0..3 {
        let (c, t) = time_to_ready(&full);
        restore.push(t);
        let running = request(&full.socket(), "GET", "/containers/json", "").unwrap();
        let listed = running.matches("\"Id\"").count();
        assert_eq!(listed, n, "every container is running again");
        kill9(c);
    }
    common::kill_recorded(&full.base.join("run"));

    let b = median(base);
    let r = median(restore);
    println!("containers: {n}");
    println!(
        "create+start, through the API: {:.1} ms each",
        create_start.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "daemon ready, no containers (baseline): {:.1} ms",
        b.as_secs_f64() * 1000.0
    );
    println!(
        "daemon ready, {n} running containers restored: {:.1} ms",
        r.as_secs_f64() * 1000.0
    );
    println!(
        "restore cost: {:.3} ms per container",
        (r.saturating_sub(b)).as_secs_f64() * 1000.0 / n as f64
    );
}
