//! The daemon's open-file limit (issue 15, scale): a daemon started with a low soft
//! `RLIMIT_NOFILE` raises it to the hard limit (it holds a descriptor per watched
//! container), and what it starts (a container, an exec) gets the soft limit back.
//!
//! One test in this file: it lowers this test process's own soft limit, which the daemon
//! inherits.

mod common;

use common::*;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The soft limit the daemon is started with here.
const LOW: u64 = 700;

/// `Max open files` of `/proc/PID/limits`: (soft, hard) as printed.
fn open_files(pid: i32) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

#[test]
fn the_daemon_raises_its_open_file_limit_and_children_get_the_old_one() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(
        hard > LOW,
        "the hard limit here ({hard}) must be above {LOW}"
    );
    setrlimit(Resource::RLIMIT_NOFILE, LOW, hard).expect("lower the soft limit");
    let d = Daemon::start("{}");
    let pid = d.pid().expect("daemon pid");
    assert_eq!(
        open_files(pid),
        (hard.to_string(), hard.to_string()),
        "the daemon's soft limit is raised to the hard one"
    );
    let shown = d.cli_ok(&["run", "--rm", "host", "sh", "-c", "ulimit -Sn; ulimit -Hn"]);
    assert_eq!(shown, format!("{LOW}\n{hard}\n"), "the container's limits");
    d.cli_ok(&["run", "-d", "--name", "sl", "host", "sleep", "1000"]);
    let exec = d.cli_ok(&["exec", "sl", "sh", "-c", "ulimit -Sn"]);
    assert_eq!(exec.trim(), LOW.to_string(), "an exec's soft limit");
    let shim = d.started_json(&d.inspect_field("sl", "{{.Id}}"))["shim"]["pid"]
        .as_i64()
        .expect("the shim's pid") as i32;
    assert_eq!(open_files(shim).0, LOW.to_string(), "the shim's soft limit");
    d.cli_ok(&["rm", "-f", "sl"]);
}
