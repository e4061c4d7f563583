//! Memory of idle shims: 20 containers (process runtime, `sleep`), the average VmRSS and PSS
//! (/proc/PID/smaps_rollup) of their shims, with the daemon's own in the same run as the
//! comparison. Target: shim RSS under 1 MiB (containerd-shim-runc-v2: 13 MiB).
//! `cargo bench --bench shim_rss [-- N]` (default 20). Figures go into BENCHMARKS.md.

mod common;

use std::time::Duration;

/// A `Key:   N kB` field of a /proc file, in KiB.
fn kib(path: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{key} in {path}"))
}

/// VmRSS and PSS of a process, in KiB.
fn memory(pid: i32) -> (u64, u64) {
    (
        kib(&format!("/proc/{pid}/status"), "VmRSS:"),
        kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:"),
    )
}

fn main() {
    let Some(n) = common::count("shim_rss", 20) else {
        return;
    };
    let tmp = common::temp_dir();
    let d = common::DaemonGuard::start(tmp.path());
    let body = r#"{"Image":"host","Cmd":["sleep","100000"]}"#;
    for _ in 0..n {
        let answer = d
            .request("POST", "/containers/create", body)
            .expect("create");
        let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(json).expect("create answer");
        let id = v["Id"]
            .as_str()
            .unwrap_or_else(|| panic!("create: {answer}"));
        let started = d
            .request("POST", &format!("/containers/{id}/start"), "")
            .expect("start");
        assert!(
            started.starts_with("HTTP/1.0 204") || started.starts_with("HTTP/1.1 204"),
            "{started}"
        );
    }
    // Idle: let the shims settle in their main loop.
    std::thread::sleep(Duration::from_millis(500));
    let pids = d.runs();
    assert_eq!(pids.len(), n, "every shim recorded");
    let (mut rss, mut pss) = (0, 0);
    for (shim, _) in &pids {
        let (r, p) = memory(*shim);
        rss += r;
        pss += p;
    }
    let (drss, dpss) = memory(d.child.id() as i32);
    println!("idle shims: {n} (process runtime, sleep)");
    println!(
        "shim: VmRSS {} KiB, PSS {} KiB (average)",
        rss / n as u64,
        pss / n as u64
    );
    println!("daemon (comparison): VmRSS {drss} KiB, PSS {dpss} KiB");
    println!("target: shim VmRSS under 1024 KiB (containerd-shim-runc-v2: 13 MiB)");
    drop(d);
}
