//! moor beside Docker in one run (issue 15 item 2): the load, memory and log rows.
//!
//! moor (runc runtime) and a private dockerd (`common::dockerd`: its own data root, exec
//! root and socket, no bridge, no iptables) run side by side with the same busybox image,
//! and every figure is taken from both in the same run, interleaved:
//! 1. **logs**: a container writing `LOG_MB` MB (default 200) of 100-byte lines to stdout
//!    (json-file on both), timed from the start request until its last line is in the log
//!    file; `LOG_ROUNDS` rounds (default 2), moor and Docker alternating;
//! 2. **memory**: the same number of running containers (`sleep 100000`, `--network none`)
//!    on each, PSS (/proc/PID/smaps_rollup) of the daemons (moor; dockerd + containerd) and
//!    of the per-container monitors (moor-shim; containerd-shim-runc-v2) at 20 and 120
//!    containers (`MEM_AT`, default `20,120`), and the slope between them;
//! 3. **load**: N running containers on each (default 1,000), then the `load` bench's read
//!    phases over raw HTTP/1.1 on each unix socket: list only (`LOAD_CLIENTS`, default 50,
//!    on `GET /containers/json`) and mixed (half on the list, half on
//!    `GET /containers/{id}/json`), `LOAD_SECS` each (default 10), `BESIDE_ROUNDS` rounds
//!    (default 2) of moor phase, Docker phase (the order swapped every round), with the
//!    daemons' VmRSS after each phase. Any error fails the run.
//!
//! `cargo bench --bench beside_docker [-- N]`. Root, runc, busybox and dockerd needed.
//! Under `cargo test --all-targets` (no `--bench`) a smoke run: 3 containers, 2 clients,
//! 0.2 s, 1 MB of logs, moor only unless `MOOR_BENCH_DOCKER=1` asks for Docker too.
//! Figures go into BENCHMARKS.md.

mod common;

#[path = "load/client.rs"]
mod client;
#[path = "beside_docker/docker_side.rs"]
mod docker_side;
#[allow(dead_code)]
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "beside_docker/logs.rs"]
mod logs;
#[path = "beside_docker/memory.rs"]
mod memory;
#[path = "beside_docker/moor_side.rs"]
mod moor_side;
#[allow(dead_code)]
#[path = "../tests/common/prereq.rs"]
mod prereq;
#[path = "load/read.rs"]
mod read;
#[allow(dead_code)]
#[path = "../tests/common/runc.rs"]
mod runc;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use client::Stats;
use docker_side::Docker;
use logs::{Sink, Writer};
use memory::Sample;
use moor_side::Moor;

/// What one run does.
struct Plan {
    /// Running containers on each engine during the read phases.
    containers: usize,
    /// Concurrent clients in each read phase.
    clients: usize,
    /// Length of each read phase.
    secs: f64,
    /// Rounds of read phases (each: moor, Docker, or the other way round).
    rounds: usize,
    /// Bytes each log writer writes.
    log_bytes: u64,
    /// Rounds of log writers.
    log_rounds: usize,
    /// The container counts at which memory is read.
    mem_at: [usize; 2],
    /// Whether Docker runs beside moor.
    docker: bool,
}

impl Plan {
    fn from_args() -> Plan {
        let docker = dockerd::wanted();
        let Some(containers) = common::count("beside_docker", 1000) else {
            println!("beside_docker: a smoke run (3 containers, 2 clients, 0.2 s, 1 MB of logs)");
            return Plan {
                containers: 3,
                clients: 2,
                secs: 0.2,
                rounds: 1,
                log_bytes: 1_000_000,
                log_rounds: 1,
                mem_at: [1, 3],
                docker,
            };
        };
        let mem_at: Vec<usize> = std::env::var("MEM_AT")
            .unwrap_or_else(|_| "20,120".into())
            .split(',')
            .map(|v| {
                v.trim()
                    .parse()
                    .expect("MEM_AT: two container counts, e.g. 20,120")
            })
            .collect();
        let [lo, hi] = mem_at[..] else {
            panic!("MEM_AT: two container counts, e.g. 20,120");
        };
        assert!(
            lo < hi && hi <= containers,
            "MEM_AT {lo},{hi} within 1..={containers}"
        );
        Plan {
            containers,
            clients: common::env_number("LOAD_CLIENTS", 50).max(2),
            secs: common::env_number("LOAD_SECS", 10) as f64,
            rounds: common::env_number("BESIDE_ROUNDS", 2).max(1),
            log_bytes: common::env_number("LOG_MB", 200) as u64 * 1_000_000,
            log_rounds: common::env_number("LOG_ROUNDS", 2).max(1),
            mem_at: [lo, hi],
            docker,
        }
    }
}

/// One engine under test, speaking the Docker Engine API on its socket.
enum Engine {
    Moor(Moor),
    Docker(Docker),
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Moor(_) => "moor",
            Engine::Docker(_) => "Docker",
        }
    }

    fn socket(&self) -> PathBuf {
        match self {
            Engine::Moor(m) => m.socket(),
            Engine::Docker(d) => d.socket(),
        }
    }

    fn image(&self) -> &str {
        "bb"
    }

    /// The daemon's processes: moor's daemon; dockerd and its managed containerd.
    fn daemon_pids(&self) -> Vec<i32> {
        match self {
            Engine::Moor(m) => m.daemon_pids(),
            Engine::Docker(d) => d.daemon_pids(),
        }
    }

    /// The per-container monitors: moor-shim; containerd-shim-runc-v2.
    fn monitor_pids(&self) -> Vec<i32> {
        match self {
            Engine::Moor(m) => m.shim_pids(),
            Engine::Docker(d) => d.shim_pids(),
        }
    }

    fn sample(&self, containers: usize) -> Sample {
        let monitors = self.monitor_pids();
        assert_eq!(
            monitors.len(),
            containers,
            "{}: one monitor per running container",
            self.name()
        );
        Sample::read(containers, &self.daemon_pids(), &monitors)
    }

    /// The create body of a `sleep` container.
    fn sleeper(&self) -> String {
        serde_json::json!({
            "Image": self.image(),
            "Cmd": ["sleep", "100000"],
            "HostConfig": {"NetworkMode": "none"},
        })
        .to_string()
    }
}

/// The engines in the order of round `r`: moor first in even rounds, Docker first in odd.
fn order(engines: &[Engine], r: usize) -> Vec<&Engine> {
    let mut v: Vec<&Engine> = engines.iter().collect();
    if r % 2 == 1 {
        v.reverse();
    }
    v
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The log rows, for each writer: its pace alone and every engine's MB/s per round, then
/// the medians.
fn log_rows(engines: &[Engine], plan: &Plan, tmp: &std::path::Path) {
    let mb = plan.log_bytes / 1_000_000;
    let file = tmp.join("lines");
    logs::lines_file(&file, plan.log_bytes);
    for writer in [Writer::Yes, Writer::Cat(file.clone())] {
        println!(
            "\njson-file logs, {mb} MB of 100-byte lines to stdout, written by `{}` (load average {})",
            writer.name(),
            common::load_average()
        );
        log_rows_of(engines, plan, &writer);
    }
    let _ = std::fs::remove_file(&file);
}

fn log_rows_of(engines: &[Engine], plan: &Plan, writer: &Writer) {
    println!("| engine | round | time | MB/s | log file |\n| --- | --- | --- | --- | --- |");
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); engines.len()];
    let mut alone = Vec::new();
    let row = |what: &str, r: usize, run: &logs::LogRun, rate: f64| {
        println!(
            "| {what} | {} | {:.2} s | {rate:.1} | {:.1} MB |",
            r + 1,
            run.took.as_secs_f64(),
            run.log_bytes as f64 / 1e6
        )
    };
    for r in 0..plan.log_rounds {
        // The writer alone, on moor (the engine's start and its log of one line are in its
        // time as in the others'): the pace no log path can beat.
        let first = &engines[0];
        let sock = first.socket();
        let run = logs::run(&sock, first.image(), plan.log_bytes, writer, Sink::Discard);
        let rate = run.mb_per_s(plan.log_bytes);
        alone.push(rate);
        let what = format!(
            "the writer alone (to /dev/null in a {} container)",
            first.name()
        );
        row(&what, r, &run, rate);
        for e in order(engines, r) {
            let run = logs::run(&e.socket(), e.image(), plan.log_bytes, writer, Sink::Log);
            let rate = run.mb_per_s(plan.log_bytes);
            let i = engines.iter().position(|x| std::ptr::eq(x, e)).unwrap();
            rates[i].push(rate);
            row(e.name(), r, &run, rate);
        }
    }
    let (lo, hi) = spread(&alone);
    let ceiling = median(alone);
    println!(
        "logs, {}, the writer alone: median {ceiling:.1} MB/s ({lo:.1}–{hi:.1})",
        writer.name()
    );
    for (e, r) in engines.iter().zip(rates) {
        let (lo, hi) = spread(&r);
        let rate = median(r);
        println!(
            "logs, {}, {}: median {rate:.1} MB/s ({lo:.1}–{hi:.1}), {:.0} % of the writer alone",
            writer.name(),
            e.name(),
            100.0 * rate / ceiling
        );
    }
}

/// The smallest and the largest of `v`.
fn spread(v: &[f64]) -> (f64, f64) {
    (
        v.iter().copied().fold(f64::MAX, f64::min),
        v.iter().copied().fold(0.0, f64::max),
    )
}

/// Brings every engine to `n` running containers (`ids` holds those it has).
fn grow(engines: &[Engine], ids: &mut [Vec<String>], n: usize) {
    for (e, ids) in engines.iter().zip(ids.iter_mut()) {
        let t0 = Instant::now();
        let more = n - ids.len();
        if more == 0 {
            continue;
        }
        ids.extend(read::populate(&e.socket(), more, 8, &e.sleeper()));
        println!(
            "{}: {more} containers created and started by 8 clients in {:.1} s ({:.1} ms each)",
            e.name(),
            t0.elapsed().as_secs_f64(),
            t0.elapsed().as_secs_f64() * 1000.0 / more.max(1) as f64
        );
    }
}

/// The memory rows: each engine at the two counts of `plan.mem_at`, and the slope.
fn memory_rows(engines: &[Engine], ids: &mut [Vec<String>], plan: &Plan) {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); engines.len()];
    for n in plan.mem_at {
        grow(engines, ids, n);
        // Let the monitors settle in their main loop (moor's shim trims after its start).
        std::thread::sleep(Duration::from_secs(2));
        for (e, s) in engines.iter().zip(samples.iter_mut()) {
            s.push(e.sample(n));
        }
    }
    println!(
        "\nmemory (PSS, KiB; load average {})",
        common::load_average()
    );
    println!("| engine | containers | daemons VmRSS | daemons PSS | monitors PSS | total PSS |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (e, s) in engines.iter().zip(&samples) {
        for x in s {
            println!(
                "| {} | {} | {} | {} | {} ({} monitors, {} each) | {} |",
                e.name(),
                x.containers,
                x.daemon_rss,
                x.daemon_pss,
                x.monitor_pss,
                x.monitors,
                x.monitor_pss / x.monitors.max(1) as u64,
                x.total_pss()
            );
        }
    }
    for (e, s) in engines.iter().zip(&samples) {
        let (d, m, t) = memory::slope(&s[0], &s[1]);
        println!(
            "marginal PSS per container, {} ({} to {}): {t:.0} KiB (daemons {d:.0}, monitor {m:.0})",
            e.name(),
            s[0].containers,
            s[1].containers
        );
    }
}

/// The read phases, interleaved: one row per phase, then each route's figures over all
/// rounds; returns those for the error check.
fn load_rows(engines: &[Engine], ids: &[Vec<String>], plan: &Plan) -> Vec<Stats> {
    let (n, c, s) = (plan.containers, plan.clients, plan.secs);
    let half = c / 2;
    println!("\nload: {n} running containers on each engine, {s} s per phase");
    println!("| engine, round: phase, route | requests | errors | p50 ms | p90 ms | p99 ms | max ms | daemons VmRSS after |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut merged: Vec<(String, Stats)> = Vec::new();
    for r in 0..plan.rounds {
        for (lists, inspects) in [(c, 0), (half, c - half)] {
            for e in order(engines, r) {
                let i = engines.iter().position(|x| std::ptr::eq(x, e)).unwrap();
                let [list, inspect] = read::read_phase(&e.socket(), &ids[i], lists, inspects, s);
                let rss = mib(memory::total_rss(&e.daemon_pids()));
                let what = if inspects == 0 { "list only" } else { "mixed" };
                let mut rows = vec![(format!("{lists} clients on GET /containers/json"), list)];
                if inspects > 0 {
                    rows.push((
                        format!("{inspects} clients on GET /containers/{{id}}/json"),
                        inspect,
                    ));
                }
                for (route, mut stats) in rows {
                    let label = format!("{}, {}: {what}, {route}", e.name(), r + 1);
                    println!("{} {rss} |", stats.row(&label, Some(s)));
                    let key = format!("{}: {what}, {route}", e.name());
                    match merged.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, m)) => m.merge(stats),
                        None => merged.push((key, stats)),
                    }
                }
            }
        }
        println!(
            "(round {} done, load average {})",
            r + 1,
            common::load_average()
        );
    }
    println!("\nload, all {} rounds together", plan.rounds);
    println!("{}", client::HEADER);
    let total = s * plan.rounds as f64;
    merged
        .into_iter()
        .map(|(key, mut stats)| {
            println!("{}", stats.row(&key, Some(total)));
            stats
        })
        .collect()
}

fn main() {
    let plan = Plan::from_args();
    if let Some(reason) = runc::skip_reason() {
        println!("beside_docker: skipped: {reason}");
        return;
    }
    let tmp = common::temp_dir();
    let mut engines = vec![Engine::Moor(Moor::start(
        &tmp.path().join("moor"),
        &tmp.path().join("moor-run"),
    ))];
    if plan.docker {
        engines.push(Engine::Docker(Docker::start(&tmp.path().join("docker"))));
    } else {
        println!("beside_docker: moor only (MOOR_BENCH_DOCKER=1 adds Docker to the smoke run)");
    }
    println!(
        "beside_docker: {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        common::load_average()
    );
    log_rows(&engines, &plan, tmp.path());
    let mut ids = vec![Vec::new(); engines.len()];
    memory_rows(&engines, &mut ids, &plan);
    grow(&engines, &mut ids, plan.containers);
    let all = load_rows(&engines, &ids, &plan);
    let errors: u64 = all.iter().map(|s| s.errors).sum();
    let first = all.iter().find_map(|s| s.first_error.clone());
    assert_eq!(errors, 0, "errors under load; the first: {first:?}");
}
