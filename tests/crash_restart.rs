//! Crash test (sled's test_crash_recovery in spirit): the daemon is SIGKILLed at a random
//! moment while clients create, start, stop and remove containers; every restart must
//! come up, leave no container half-way (starting, removing; a `stopping` one is a stop the
//! next daemon finishes at its recorded deadline), and account for every live container
//! process: each one is a running container with that pid.

mod common;

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const ROUNDS: usize = 12;

fn one_op(d: &Daemon, rng: &mut impl Rng, names: &mut Vec<String>, n: usize) -> bool {
    let out = match rng.gen_range(0..5) {
        0 | 1 => {
            let name = format!("c{n}");
            let out = d.cli(&["run", "-d", "--name", &name, "host", "sleep", "1000"]);
            names.push(name);
            out
        }
        2 => d.cli(&["run", "-d", "host", "sh", "-c", "exit 3"]),
        3 if !names.is_empty() => {
            let name = &names[rng.gen_range(0..names.len())];
            d.cli(&["stop", "-t", "1", name])
        }
        _ if !names.is_empty() => {
            let name = names.swap_remove(rng.gen_range(0..names.len()));
            d.cli(&["rm", "-f", &name])
        }
        _ => return true,
    };
    // A refused connection means the daemon is gone: the round is over.
    !String::from_utf8_lossy(&out.stderr).contains("Cannot connect")
}

/// Live container processes according to the run directory: id -> pid.
fn live_processes(d: &Daemon) -> HashMap<String, i64> {
    let mut live = HashMap::new();
    for entry in fs::read_dir(d.run_dir().join("containers"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(text) = fs::read_to_string(entry.path().join("started.json")) else {
            continue;
        };
        let v: Value = serde_json::from_str(&text).expect("started.json is whole JSON");
        let pid = v["process"]["pid"].as_i64().unwrap();
        let start = v["process"]["start_time"].as_u64().unwrap();
        if process_is(pid as i32, start) && !zombie(pid as i32) {
            live.insert(entry.file_name().to_string_lossy().into_owned(), pid);
        }
    }
    live
}

fn zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn check_invariants(d: &Daemon, round: usize) {
    let list = d.http("GET", "/containers/json?all=1", None);
    let list: Value = serde_json::from_str(&list.body).expect("list answer");
    let mut by_id = HashMap::new();
    for c in list.as_array().unwrap() {
        let id = c["Id"].as_str().unwrap().to_string();
        let ins: Value =
            serde_json::from_str(&d.http("GET", &format!("/containers/{id}/json"), None).body)
                .unwrap();
        let state = ins["Moor"]["State"].as_str().unwrap().to_string();
        // `stopping`: a stop cut short by the kill, finished at its recorded deadline
        // (tests/interrupted_stop.rs); its process is accounted for below as a running one.
        assert!(
            matches!(
                state.as_str(),
                "created" | "running" | "stopping" | "exited"
            ),
            "round {round}: {id} left in state {state}"
        );
        by_id.insert(id, ins);
    }
    // Give shims that were mid-exit a moment, then every live process must be accounted for.
    for (id, pid) in live_processes(d) {
        let ins = by_id.get(&id).unwrap_or_else(|| {
            panic!("round {round}: live container {id} (pid {pid}) has no record")
        });
        assert_eq!(
            ins["State"]["Status"], "running",
            "round {round}: {id} runs but is not running"
        );
        assert_eq!(
            ins["State"]["Pid"].as_i64(),
            Some(pid),
            "round {round}: {id} pid"
        );
    }
    for (id, ins) in &by_id {
        if ins["State"]["Status"] == "running" {
            let pid = ins["State"]["Pid"].as_i64().unwrap() as i32;
            assert!(
                pid_alive(pid) && !zombie(pid),
                "round {round}: {id} running but pid {pid} is gone"
            );
        }
    }
}

#[test]
fn random_kills_never_lose_or_strand_a_container() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    // The seed is printed and can be given back with MOOR_CRASH_SEED to replay a failure.
    let seed: u64 = match std::env::var("MOOR_CRASH_SEED") {
        Ok(v) => v.parse().expect("MOOR_CRASH_SEED is a u64"),
        Err(_) => rand::random(),
    };
    eprintln!("random_kills_never_lose_or_strand_a_container: MOOR_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut names = Vec::new();
    let mut n = 0;
    for round in 0..ROUNDS {
        let pid = d.pid().expect("the daemon runs");
        let delay = Duration::from_millis(rng.gen_range(20..250));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        });
        while one_op(&d, &mut rng, &mut names, n) {
            n += 1;
        }
        killer.join().unwrap();
        d.kill9();
        d.restart();
        check_invariants(&d, round);
        // Names that did not survive (the create was not acknowledged) are forgotten.
        names.retain(|name| d.cli(&["inspect", name]).status.success());
    }
}
