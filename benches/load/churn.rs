//! The churn phase: clients each creating, starting, stopping (`t=1`) and removing their own
//! containers, timed per operation; then the invariants the daemon must keep after it.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use moor::identity::{check, identify, Check};
use moor::shim::protocol::Identity;

use crate::client::{Conn, Stats};

/// Figures of one operation across every churn client.
#[derive(Default)]
pub struct Ops {
    /// `POST /containers/create`.
    pub create: Stats,
    /// `POST /containers/{id}/start`.
    pub start: Stats,
    /// `POST /containers/{id}/stop?t=1`.
    pub stop: Stats,
    /// `DELETE /containers/{id}`.
    pub remove: Stats,
}

/// What a churn client saw of one container it removed.
pub struct Removed {
    /// The container's id.
    pub id: String,
    /// Its container process and shim while it ran, as identities (pid + start time).
    pub processes: Vec<Identity>,
}

/// Runs `clients` threads sharing `total` containers; returns the figures and what each
/// removed. Container `i` of client `c` in round `round` is named `churn-round-c-i`.
pub fn run(sock: &Path, round: usize, clients: usize, total: usize) -> (Ops, Vec<Removed>) {
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let sock = sock.to_path_buf();
            let share = total / clients + usize::from(c < total % clients);
            std::thread::spawn(move || client(&sock, round, c, share))
        })
        .collect();
    let mut ops = Ops::default();
    let mut removed = Vec::new();
    for t in threads {
        let (o, r) = t.join().expect("churn client panicked");
        ops.merge(o);
        removed.extend(r);
    }
    (ops, removed)
}

impl Ops {
    /// Adds the figures of `other` (another client, another round).
    pub fn merge(&mut self, other: Ops) {
        self.create.merge(other.create);
        self.start.merge(other.start);
        self.stop.merge(other.stop);
        self.remove.merge(other.remove);
    }
}

/// Times one call; a non-2xx status (or an I/O error) is an error.
fn timed(
    conn: &mut Conn,
    stats: &mut Stats,
    method: &str,
    path: &str,
    body: &str,
) -> Option<crate::client::Answer> {
    let t0 = Instant::now();
    let answer = conn.call(method, path, body);
    let took = t0.elapsed();
    match answer {
        Ok(a) if (200..300).contains(&a.status) => {
            stats.record(took, Ok(()));
            Some(a)
        }
        Ok(a) => {
            let text = String::from_utf8_lossy(&a.body).into_owned();
            stats.record(took, Err(format!("{method} {path}: {} {text}", a.status)));
            None
        }
        Err(e) => {
            stats.record(took, Err(format!("{method} {path}: {e}")));
            None
        }
    }
}

fn client(sock: &Path, round: usize, c: usize, count: usize) -> (Ops, Vec<Removed>) {
    let mut conn = Conn::open(sock).expect("connect");
    let mut ops = Ops::default();
    let mut removed = Vec::new();
    let body = r#"{"Image":"host","Cmd":["sleep","100000"]}"#;
    for i in 0..count {
        let path = format!("/containers/create?name=churn-{round}-{c}-{i}");
        let Some(created) = timed(&mut conn, &mut ops.create, "POST", &path, body) else {
            continue;
        };
        let id = created.json()["Id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        timed(
            &mut conn,
            &mut ops.start,
            "POST",
            &format!("/containers/{id}/start"),
            "",
        );
        // Not timed: what the API reports of the running container, for the invariants.
        let processes = conn
            .call("GET", &format!("/containers/{id}/json"), "")
            .map(|a| running_processes(&a.json()))
            .unwrap_or_default();
        timed(
            &mut conn,
            &mut ops.stop,
            "POST",
            &format!("/containers/{id}/stop?t=1"),
            "",
        );
        if timed(
            &mut conn,
            &mut ops.remove,
            "DELETE",
            &format!("/containers/{id}"),
            "",
        )
        .is_some()
        {
            removed.push(Removed { id, processes });
        }
    }
    (ops, removed)
}

/// The identities of an inspected container's process and shim (those still alive).
pub fn running_processes(inspect: &serde_json::Value) -> Vec<Identity> {
    [&inspect["State"]["Pid"], &inspect["Moor"]["ShimPid"]]
        .into_iter()
        .filter_map(|p| p.as_i64())
        .filter(|&p| p > 0)
        .filter_map(|p| identify(p as i32).ok())
        .collect()
}

/// The invariants after the churn; each broken one is a line of the result.
pub fn check_invariants(sock: &Path, removed: &[Removed]) -> Vec<String> {
    let mut conn = Conn::open(sock).expect("connect");
    let mut broken = Vec::new();
    for r in removed {
        match conn.call("GET", &format!("/containers/{}/json", r.id), "") {
            Ok(a) if a.status == 404 => {}
            Ok(a) => broken.push(format!("removed {} answers {}", r.id, a.status)),
            Err(e) => broken.push(format!("inspect of removed {}: {e}", r.id)),
        }
    }
    // A removed container's shim may still be writing its last files: give it 5 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = |r: &Removed| -> Vec<i32> {
        r.processes
            .iter()
            .filter(|id| matches!(check(id), Ok(Check::Alive)))
            .map(|id| id.pid)
            .collect()
    };
    while removed.iter().any(|r| !alive(r).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for r in removed {
        for pid in alive(r) {
            broken.push(format!("removed {} left process {pid} alive", r.id));
        }
    }
    let list = conn
        .call("GET", "/containers/json?all=1", "")
        .expect("list")
        .json();
    let entries = list.as_array().cloned().unwrap_or_default();
    let gone: HashSet<&str> = removed.iter().map(|r| r.id.as_str()).collect();
    let mut names = HashSet::new();
    for e in &entries {
        for n in e["Names"].as_array().into_iter().flatten() {
            if !names.insert(n.as_str().unwrap_or_default().to_string()) {
                broken.push(format!("name {n} listed twice"));
            }
        }
        let id = e["Id"].as_str().unwrap_or_default();
        if gone.contains(id) {
            broken.push(format!("removed {id} still listed"));
        }
        if e["State"] == "running" {
            let inspect = conn
                .call("GET", &format!("/containers/{id}/json"), "")
                .map(|a| a.json())
                .unwrap_or_default();
            let pid = inspect["State"]["Pid"].as_i64().unwrap_or(0) as i32;
            let live = pid > 0
                && moor::identity::stat(pid)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.state != 'Z');
            if !live {
                broken.push(format!("{id} listed running with dead pid {pid}"));
            }
        }
    }
    broken
}
