//! Issue 14, item 2: an upgrade across builds keeps every container, proven with a real older
//! build. The previous release (its commit in `tests/fixtures/previous-release`) is built
//! from the repository's history (`common::release`); its daemon starts containers (process
//! and runc, one paused, one with restart policy `always`, one logging, one that exits while
//! no daemon runs), is stopped (SIGTERM with live restore, or SIGKILL), and the current build
//! starts on the same root: every container resumes with the same pid and StartedAt, the
//! exit is recorded with its code, the log goes on in the same file, and stop, kill, exec,
//! pause/unpause, restart policies and logs work on containers whose shims the old build
//! started. The other direction: a store stamped by a newer schema is refused, untouched.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::release::previous_release;
use common::runc::{busybox_tar, skip_reason};
use common::{pid_alive, wait_for, Binaries, Daemon, LIVE_RESTORE_ON};
use moor_state::schema::{self, META_TREE, SCHEMA_KEY, SCHEMA_VERSION};

/// The logging container: one numbered line every 50 ms, forever.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.05; done";

/// How the old daemon goes away.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// SIGTERM with live restore on: the daemon exits 0, containers run on.
    Term,
    /// SIGKILL: nothing of the daemon runs its shutdown path.
    Kill,
}

/// What a container looked like under the old daemon.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// State.Pid.
    pid: i64,
    /// State.StartedAt.
    started_at: String,
    /// State.Status.
    status: String,
}

fn seen(d: &Daemon, name: &str) -> Seen {
    let v = d.inspect_json(name);
    Seen {
        pid: v["State"]["Pid"].as_i64().expect("State.Pid"),
        started_at: v["State"]["StartedAt"].as_str().expect("StartedAt").into(),
        status: v["State"]["Status"].as_str().expect("Status").into(),
    }
}

/// The numbers of the counter's `line N` records in `text`.
fn counted(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split("line ").nth(1))
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Asserts `numbers` is 1, 2, 3... without a gap or a repeat.
fn assert_unbroken(numbers: &[u64], what: &str) {
    let want: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(numbers, want.as_slice(), "{what}: lines lost or repeated");
}

/// The old daemon on runc with live restore, busybox imported as `bb` (with the old CLI).
fn old_daemon(old: &Binaries) -> Daemon {
    let d = Daemon::start_binaries(LIVE_RESTORE_ON, "runc", old.clone());
    let tar = d.root().with_file_name("bb.tar");
    std::fs::write(&tar, busybox_tar()).expect("write busybox tar");
    let out = d.cli_ok(&["image", "import", tar.to_str().expect("utf-8"), "bb"]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    d
}

/// Starts the containers under the old daemon; the short one last, right before the stop.
fn start_containers(d: &Daemon) {
    d.run_detached(&["--name", "logger", "host", "sh", "-c", COUNTER]);
    d.run_detached(&["--name", "rc", "bb", "sleep", "1000"]);
    d.run_detached(&["--name", "paused", "bb", "sleep", "1000"]);
    assert_eq!(d.cli_ok(&["pause", "paused"]).trim(), "paused");
    d.run_detached(&[
        "--name",
        "always",
        "--restart",
        "always",
        "host",
        "sleep",
        "1000",
    ]);
    assert!(
        wait_for(Duration::from_secs(10), || counted(&log_text(d, "logger"))
            .len()
            >= 5),
        "the logger wrote nothing under the old daemon"
    );
}

fn log_path(d: &Daemon, name: &str) -> PathBuf {
    PathBuf::from(d.inspect_field(name, "{{.LogPath}}"))
}

fn log_text(d: &Daemon, name: &str) -> String {
    std::fs::read_to_string(log_path(d, name)).unwrap_or_default()
}

/// The run file's process and shim pids of container `name` (id `id`).
fn run_pids(d: &Daemon, id: &str) -> (i32, i32) {
    let started = d.started_json(id);
    let pid = |key: &str| started[key]["pid"].as_i64().expect("pid in started.json") as i32;
    (pid("process"), pid("shim"))
}

fn upgrade_keeps_every_container(stop: Stop) {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let old = previous_release();
    let mut d = old_daemon(old);
    start_containers(&d);
    let live = ["logger", "rc", "paused", "always"];
    let before: BTreeMap<&str, Seen> = live.iter().map(|n| (*n, seen(&d, n))).collect();
    assert_eq!(before["paused"].status, "paused");
    let log = log_path(&d, "logger");
    let log_inode = std::fs::metadata(&log)
        .expect("the logger's log file")
        .ino();
    let short = d.run_detached(&["--name", "short", "host", "sh", "-c", "sleep 3; exit 7"]);
    let short_started = seen(&d, "short").started_at;
    match stop {
        Stop::Term => d.stop_term(),
        Stop::Kill => d.kill9(),
    }
    let old_log = std::fs::read(&log).expect("read the log with no daemon");
    let (short_pid, short_shim) = run_pids(&d, &short);
    assert!(
        wait_for(Duration::from_secs(15), || !pid_alive(short_pid)
            && !pid_alive(short_shim)),
        "the short container and its shim did not end while no daemon ran"
    );

    let version_file = d.root().join("moor.db").join(schema::VERSION_FILE);
    let old_version = std::fs::read_to_string(&version_file).unwrap_or_default();
    assert_ne!(
        old_version.trim(),
        SCHEMA_VERSION.to_string(),
        "0.1.0 writes an older schema"
    );
    d.use_binaries(Binaries::current());
    d.restart();
    // The migration to this build's schema ran (0.1.0 wrote 1 or no version file).
    let new_version = std::fs::read_to_string(&version_file).expect("the version file");
    assert_eq!(new_version.trim(), SCHEMA_VERSION.to_string());
    for name in live {
        assert_eq!(seen(&d, name), before[name], "{name} after the upgrade");
        let id = d.inspect_field(name, "{{.Id}}");
        let shim = format!("/proc/{}/exe", run_pids(&d, &id).1);
        let exe = std::fs::read_link(&shim).unwrap_or_else(|e| panic!("{shim}: {e}"));
        assert_eq!(exe, old.shim, "{name}'s shim is not the old build's");
    }
    let v = d.inspect_json("short");
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["ExitCode"], 7, "{v}");
    assert_eq!(v["State"]["StartedAt"], short_started.as_str(), "{v}");
    assert_logs_go_on(&d, &log, log_inode, &old_log);
    assert_managed(&d);
}

/// The logger's file is the same file, its old bytes untouched, new lines appended, and
/// `moor logs` reads every line once.
fn assert_logs_go_on(d: &Daemon, log: &Path, inode: u64, old: &[u8]) {
    assert_eq!(log_path(d, "logger"), log, "LogPath changed");
    let old_count = counted(&String::from_utf8_lossy(old)).len();
    assert!(
        wait_for(Duration::from_secs(10), || {
            counted(&std::fs::read_to_string(log).unwrap_or_default()).len() > old_count + 5
        }),
        "the logger's file did not grow after the upgrade"
    );
    let now = std::fs::read(log).expect("read the log");
    assert_eq!(
        std::fs::metadata(log).expect("log").ino(),
        inode,
        "a new file"
    );
    assert!(now.starts_with(old), "the old lines were rewritten");
    let logs = d.cli_ok(&["logs", "logger"]);
    assert_unbroken(&counted(&logs), "`moor logs logger` after the upgrade");
}

/// stop, kill, exec, unpause and the restart policy work on the old build's containers.
fn assert_managed(d: &Daemon) {
    assert_eq!(
        d.cli_ok(&["exec", "rc", "echo", "hi from exec"]),
        "hi from exec\n"
    );
    d.cli_ok(&["kill", "rc"]);
    assert_eq!(d.wait_code("rc"), "137");
    d.cli_ok(&["unpause", "paused"]);
    assert_eq!(d.inspect_field("paused", "{{.State.Status}}"), "running");
    assert_eq!(d.cli_ok(&["exec", "paused", "echo", "thawed"]), "thawed\n");
    d.cli_ok(&["stop", "-t", "1", "paused"]);
    assert_eq!(d.inspect_field("paused", "{{.State.Status}}"), "exited");
    d.cli_ok(&["stop", "logger"]);
    assert_eq!(d.inspect_field("logger", "{{.State.ExitCode}}"), "143");
    let pid = d.inspect_field("always", "{{.State.Pid}}");
    d.cli_ok(&["kill", "always"]);
    assert!(
        wait_for(Duration::from_secs(15), || {
            d.inspect_field("always", "{{.RestartCount}} {{.State.Status}}") == "1 running"
        }),
        "`always` was not restarted after its kill: {}",
        d.inspect_field("always", "{{.RestartCount}} {{.State.Status}}")
    );
    assert_ne!(d.inspect_field("always", "{{.State.Pid}}"), pid);
}

#[test]
fn an_old_daemon_stopped_by_sigterm_hands_its_containers_to_the_current_build() {
    upgrade_keeps_every_container(Stop::Term);
}

#[test]
fn an_old_daemon_killed_by_sigkill_hands_its_containers_to_the_current_build() {
    upgrade_keeps_every_container(Stop::Kill);
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                all.insert(path, bytes);
            }
        }
    }
    all
}

#[test]
fn a_store_written_by_a_newer_schema_is_refused_and_left_byte_identical() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    d.run_detached(&["--name", "kept", "host", "true"]);
    assert_eq!(d.wait_code("kept"), "0");
    d.stop_term();
    let store = d.root().join("moor.db");
    let newer = SCHEMA_VERSION + 1;
    // What a newer build leaves: sled's stamp and the version file beside it.
    {
        let db = sled::open(&store).expect("open the stopped daemon's store");
        let meta = db.open_tree(META_TREE).expect("meta tree");
        meta.insert(SCHEMA_KEY, &newer.to_be_bytes())
            .expect("stamp");
        db.flush().expect("flush");
    }
    schema::write_version_file(&store, newer).expect("write the version file");
    let before = files(&d.root().join("moor.db"));
    let specs = files(&d.root().join("containers"));
    let mut cmd = Command::new(common::MOOR);
    cmd.arg("daemon")
        .args(d.path_args())
        .args(["--runtime", "process"])
        .env("MOOR_SHIM", common::MOOR_SHIM)
        .env("NO_COLOR", "1");
    let out = common::run_client(cmd, "moor", &["daemon"], None);
    assert!(!out.status.success(), "{}", common::describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wants = [
        format!("schema version {newer}"),
        format!("supports up to {SCHEMA_VERSION}"),
    ];
    for want in wants {
        assert!(stderr.contains(&want), "no {want:?} in:\n{stderr}");
    }
    let after = files(&store);
    let changed: Vec<_> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(changed.is_empty(), "the store's files changed: {changed:?}");
    assert!(
        specs == files(&d.root().join("containers")),
        "spec files changed"
    );
    assert_eq!(
        std::fs::read_dir(d.root())
            .expect("root")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("moor.db."))
            .count(),
        0,
        "the store was moved aside"
    );
}
