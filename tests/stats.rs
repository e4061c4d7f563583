//! `GET /containers/{id}/stats` (issue 11's runtime stats, issue 16's Docker shape): what a
//! container uses, read by its runtime (the cgroup for runc, the session's /proc entries for
//! the process runtime), in Docker's JSON, streamed once a second or as one object with a
//! reading a second older as its precpu; `docker stats` and `moor stats` draw it.

mod common;

use std::time::Duration;

use common::runc::skip_reason;
use common::*;
use serde_json::Value;

/// A shell that keeps one CPU busy for `secs` seconds, then exits.
fn burn(secs: u32) -> String {
    format!("end=$(($(date +%s)+{secs})); while [ $(date +%s) -lt $end ]; do :; done")
}

fn stats(d: &Daemon, name: &str, query: &str) -> Value {
    let answer = d.http(
        "GET",
        &format!("/v1.44/containers/{name}/stats?{query}"),
        None,
    );
    assert_eq!(answer.status, 200, "stats {name}?{query}: {}", answer.body);
    answer.json()
}

fn total(v: &Value, which: &str) -> u64 {
    v[which]["cpu_usage"]["total_usage"].as_u64().unwrap_or(0)
}

/// The host's memory, bytes.
fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .expect("MemTotal")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a number");
    kib * 1024
}

#[test]
fn a_process_container_is_read_from_its_session() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.run_detached(&["--name", "burner", "host", "sh", "-c", &burn(60)]);
    let used = || {
        total(
            &stats(&d, "burner", "stream=false&one-shot=true"),
            "cpu_stats",
        )
    };
    assert!(
        wait_for(Duration::from_secs(10), || used() > 0),
        "no CPU time is counted"
    );
    let v = stats(&d, "burner", "stream=false");
    assert_eq!(v["name"], "/burner");
    assert!(total(&v, "cpu_stats") > total(&v, "precpu_stats"), "{v}");
    assert!(total(&v, "precpu_stats") > 0, "{v}");
    let system = |w: &str| v[w]["system_cpu_usage"].as_u64().unwrap_or(0);
    assert!(system("cpu_stats") > system("precpu_stats"), "{v}");
    assert!(v["pids_stats"]["current"].as_u64() >= Some(1), "{v}");
    assert!(v["memory_stats"]["usage"].as_u64() > Some(0), "{v}");
    assert_eq!(v["memory_stats"]["limit"].as_u64(), Some(host_memory()));
    assert!(parse_time(v["read"].as_str().unwrap()) > parse_time(v["preread"].as_str().unwrap()));
    assert!(
        v.get("networks").is_none(),
        "the host's network has no devices of its own: {v}"
    );

    let once = stats(&d, "burner", "stream=false&one-shot=true");
    assert_eq!(once["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(total(&once, "precpu_stats"), 0);
    assert!(total(&once, "cpu_stats") > 0);

    let both = d.http(
        "GET",
        "/v1.44/containers/burner/stats?stream=1&one-shot=1",
        None,
    );
    assert_eq!(both.status, 400);
    assert!(both.message().contains("one-shot"), "{}", both.message());
    let bad = d.http("GET", "/v1.44/containers/burner/stats?stream=maybe", None);
    assert_eq!(bad.status, 400);
    assert!(bad.message().contains("stream"), "{}", bad.message());
    let missing = d.http("GET", "/v1.44/containers/nosuch/stats?stream=0", None);
    assert_eq!(missing.status, 404);

    let row = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.PIDs}}",
        "burner",
    ]);
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"burner"), "{row}");
    let cpu: f64 = fields[1]
        .trim_end_matches('%')
        .parse()
        .expect("a CPU percentage");
    assert!(cpu > 1.0, "a busy loop shows as busy: {row}");

    let table = d.cli_ok(&["stats", "--no-stream", "burner"]);
    assert!(table.starts_with("CONTAINER ID"), "{table}");
    assert!(
        table.lines().nth(1).is_some_and(|l| l.contains("burner")),
        "{table}"
    );
    d.cli_ok(&["rm", "-f", "burner"]);
}

#[test]
fn a_stream_sends_one_object_a_second_and_ends_when_the_container_stops() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.run_detached(&["--name", "short", "host", "sh", "-c", &burn(3)]);
    let request = "GET /v1.44/containers/short/stats HTTP/1.0\r\n\r\n";
    let answer = raw_request(&d.socket(), request, Duration::from_secs(30)).expect("stats stream");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let objects: Vec<Value> = answer
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert!(
        objects.len() >= 3,
        "{} objects: {}",
        objects.len(),
        answer.body
    );
    let (last, running) = objects.split_last().unwrap();
    assert_eq!(
        last["read"], "0001-01-01T00:00:00Z",
        "the stream ends with the empty object"
    );
    for pair in running.windows(2) {
        assert_eq!(
            total(&pair[1], "precpu_stats"),
            total(&pair[0], "cpu_stats")
        );
        assert_eq!(pair[1]["preread"], pair[0]["read"]);
    }

    d.wait_code("short");
    let stopped = stats(&d, "short", "stream=false");
    assert_eq!(stopped["read"], "0001-01-01T00:00:00Z");
    assert_eq!(stopped["memory_stats"], serde_json::json!({}));
    assert_eq!(stopped["name"], "/short");
}

#[test]
fn a_runc_container_is_read_from_its_cgroup() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    d.import_busybox("bb");
    let busy = "while :; do :; done";
    d.run_detached(&[
        "--name",
        "capped",
        "-m",
        "64m",
        "--pids-limit",
        "20",
        "bb",
        "sh",
        "-c",
        busy,
    ]);
    let v = stats(&d, "capped", "stream=false");
    assert_eq!(v["memory_stats"]["limit"].as_u64(), Some(64 << 20), "{v}");
    assert_eq!(v["pids_stats"]["limit"].as_u64(), Some(20), "{v}");
    assert!(v["pids_stats"]["current"].as_u64() >= Some(1), "{v}");
    assert!(v["memory_stats"]["usage"].as_u64() > Some(0), "{v}");
    assert!(
        v["memory_stats"]["stats"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(total(&v, "cpu_stats") > total(&v, "precpu_stats"), "{v}");
    let per_cpu = v["cpu_stats"]["cpu_usage"]["percpu_usage"]
        .as_array()
        .map(Vec::len);
    let online = v["cpu_stats"]["online_cpus"].as_u64().map(|n| n as usize);
    assert!(per_cpu.is_some() && per_cpu >= online, "{v}");
    let row = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}",
        "capped",
    ]);
    assert!(row.trim().ends_with("/ 64MiB"), "{row}");
    d.cli_ok(&["rm", "-f", "capped"]);
}
