//! Load benchmark (issue 18 "Load", issue 15 `GET /containers/json` row).
//!
//! A daemon (process runtime) runs N containers (`sleep`, default 1,000), created over the
//! API by a few concurrent clients. Then, over the unix socket with raw HTTP/1.1 keep-alive
//! clients on threads:
//! 1. `list`: 50 clients on `GET /containers/json` for 10 s (the issue 15 target: p99 ≤ 20 ms);
//! 2. `mixed`: 25 clients on the list and 25 on `GET /containers/{id}/json` (random ids);
//! 3. `churn`: 20 clients creating, starting, stopping (`t=1`) and removing 500 containers in
//!    all, each its own sequence; then the invariants (removed ones gone with their processes,
//!    no container listed running with a dead pid, names unique).
//!
//! Errors are non-2xx answers and I/O errors; any error or broken invariant fails the run.
//! The daemon's RSS is read before and after each phase.
//!
//! `cargo bench --bench load [-- N]` (env: `LOAD_SECS`, seconds per read phase, default 10;
//! `LOAD_CLIENTS`, default 50; `LOAD_CHURN`, default 500; `LOAD_CHURN_ROUNDS`, default 1, the
//! RSS read after each: growth from round to round is a leak). Under `cargo test --all-targets`
//! (no `--bench`) it does a smoke run: 5 containers, 4 clients, 0.3 s. Figures go into
//! BENCHMARKS.md.

#[path = "load/churn.rs"]
mod churn;
#[path = "load/client.rs"]
mod client;
mod common;
#[path = "load/read.rs"]
mod read;

use std::time::Instant;

use client::Conn;
use common::DaemonGuard;
use read::{populate, read_phase};

/// What one run does.
struct Plan {
    /// Containers running during the read phases.
    containers: usize,
    /// Concurrent clients in each read phase.
    clients: usize,
    /// Length of each read phase.
    secs: f64,
    /// Concurrent clients in the churn phase.
    churn_clients: usize,
    /// Containers created and removed by the churn clients, in all, per round.
    churn_total: usize,
    /// Rounds of churn (RSS is read after each: growth from round to round is a leak).
    churn_rounds: usize,
}

impl Plan {
    fn from_args() -> Plan {
        let Some(containers) = common::count("load", 1000) else {
            println!("load: a smoke run (5 containers, 4 clients, 0.3 s)");
            return Plan {
                containers: 5,
                clients: 4,
                secs: 0.3,
                churn_clients: 2,
                churn_total: 4,
                churn_rounds: 2,
            };
        };
        Plan {
            containers,
            clients: common::env_number("LOAD_CLIENTS", 50).max(2),
            secs: common::env_number("LOAD_SECS", 10) as f64,
            churn_clients: 20,
            churn_total: common::env_number("LOAD_CHURN", 500),
            churn_rounds: common::env_number("LOAD_CHURN_ROUNDS", 1).max(1),
        }
    }
}

/// The daemon's memory now.
fn mem(daemon: &DaemonGuard) -> Mem {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss: field("VmRSS"),
        anon: field("RssAnon"),
        threads: field("Threads"),
    }
}

/// The daemon's memory at one point of the run.
#[derive(Clone, Copy)]
struct Mem {
    /// VmRSS, KiB.
    rss: u64,
    /// RssAnon (the heap and thread stacks; the rest is the binary's pages), KiB.
    anon: u64,
    /// Threads.
    threads: u64,
}

impl std::fmt::Display for Mem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        write!(
            f,
            "{:.1} MiB (anon {:.1}, {} threads)",
            mib(self.rss),
            mib(self.anon),
            self.threads
        )
    }
}

fn main() {
    let plan = Plan::from_args();
    let tmp = common::temp_dir();
    let daemon = DaemonGuard::start(tmp.path());
    let sock = daemon.socket();
    let rss_idle = mem(&daemon);

    let t0 = Instant::now();
    let body = r#"{"Image":"host","Cmd":["sleep","100000"]}"#;
    let ids = populate(&sock, plan.containers, 8, body);
    let populate_took = t0.elapsed();
    let rss_full = mem(&daemon);

    let half = plan.clients / 2;
    let [mut list_only, _] = read_phase(&sock, &ids, plan.clients, 0, plan.secs);
    let [mut mixed_list, mut mixed_inspect] =
        read_phase(&sock, &ids, half, plan.clients - half, plan.secs);
    let rss_read = mem(&daemon);

    let mut ops = churn::Ops::default();
    let mut removed = Vec::new();
    let mut rss_churn = Vec::new();
    for round in 0..plan.churn_rounds {
        let (o, r) = churn::run(&sock, round, plan.churn_clients, plan.churn_total);
        ops.merge(o);
        removed.extend(r);
        rss_churn.push(mem(&daemon));
    }
    let mut broken = churn::check_invariants(&sock, &removed);
    let listed = Conn::open(&sock)
        .and_then(|mut c| c.call("GET", "/containers/json", ""))
        .map(|a| a.json().as_array().map_or(0, Vec::len))
        .unwrap_or(0);
    if listed != plan.containers {
        broken.push(format!(
            "{listed} running listed, {} expected",
            plan.containers
        ));
    }

    let (n, c, s) = (plan.containers, plan.clients, plan.secs);
    println!(
        "load: {n} running containers (created and started by 8 clients in {:.1} s)",
        populate_took.as_secs_f64()
    );
    println!("{}", client::HEADER);
    println!(
        "{}",
        list_only.row(
            &format!("list only, {c} clients, {s} s: GET /containers/json"),
            Some(s)
        )
    );
    println!(
        "{}",
        mixed_list.row(
            &format!("mixed, {half} clients: GET /containers/json"),
            Some(s)
        )
    );
    println!(
        "{}",
        mixed_inspect.row(
            &format!("mixed, {} clients: GET /containers/{{id}}/json", c - half),
            Some(s)
        )
    );
    let churn_label = format!(
        "churn, {} clients, {} x {} containers:",
        plan.churn_clients, plan.churn_rounds, plan.churn_total
    );
    println!("{}", ops.create.row(&format!("{churn_label} create"), None));
    println!("{}", ops.start.row(&format!("{churn_label} start"), None));
    println!("{}", ops.stop.row(&format!("{churn_label} stop t=1"), None));
    println!("{}", ops.remove.row(&format!("{churn_label} remove"), None));
    println!("daemon RSS: idle {rss_idle}");
    println!("daemon RSS: {n} running {rss_full}");
    println!("daemon RSS: after the read phases {rss_read}");
    for (round, mem) in rss_churn.iter().enumerate() {
        println!("daemon RSS: after churn round {} {mem}", round + 1);
    }
    println!(
        "invariants after the churn: {}",
        if broken.is_empty() {
            "all hold".to_string()
        } else {
            broken.join("; ")
        }
    );

    let all = [
        &list_only,
        &mixed_list,
        &mixed_inspect,
        &ops.create,
        &ops.start,
        &ops.stop,
        &ops.remove,
    ];
    let errors: u64 = all.iter().map(|s| s.errors).sum();
    let first = all.iter().find_map(|s| s.first_error.clone());
    assert_eq!(errors, 0, "errors under load; the first: {first:?}");
    assert!(broken.is_empty(), "invariants broken: {broken:?}");
    assert_eq!(
        removed.len(),
        plan.churn_total * plan.churn_rounds,
        "every churn container removed"
    );
}
