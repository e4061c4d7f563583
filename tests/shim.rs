//! The real moor-shim binary against plain processes: report line, run files, json-file log,
//! exit statuses, detaching. Every test uses its own temp run directory and kills what it
//! started by verified pidfd (never by name).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moor::identity::{self, Check, PidFd};
use moor::shim::protocol::{
    ExitKind, ExitStatus, Identity, Report, RuntimeSpec, ShimSpec, Started, EXIT_FILE, PROTOCOL,
    SPEC_FILE, STARTED_FILE,
};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(10);

/// Kills (SIGKILL through a verified pidfd) every recorded process still alive on drop, so a
/// failing test leaves nothing behind and a reused pid is never hit.
#[derive(Default)]
struct Cleanup(Vec<Identity>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in &self.0 {
            if let Ok(fd) = PidFd::open_verified(id) {
                let _ = fd.send_signal(libc::SIGKILL);
            }
        }
    }
}

/// One shim run in its own temp run directory.
struct Shim {
    /// The run directory (shim.json, started.json, exit.json, shim.log).
    dir: tempfile::TempDir,
    /// The report line the shim wrote.
    report: Report,
    /// What to kill when the test ends (held for its Drop).
    _cleanup: Cleanup,
}

impl Shim {
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("logs/c-json.log")
    }

    fn started(&self) -> Started {
        match &self.report {
            Report::Started(started) => started.clone(),
            Report::Failed { code, error } => panic!("start failed ({code}): {error}"),
        }
    }

    fn wait_exit(&self) -> ExitStatus {
        let text = wait_file(&self.dir.path().join(EXIT_FILE));
        serde_json::from_str(&text).expect("exit.json")
    }

    fn records(&self) -> Vec<Value> {
        fs::read_to_string(self.log_path())
            .expect("read log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("log record is json"))
            .collect()
    }
}

fn process_spec(argv: &[&str]) -> RuntimeSpec {
    RuntimeSpec::Process {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/usr/bin:/bin".into(), "LANG=C".into()],
        cwd: String::new(),
    }
}

/// Writes shim.json (with `protocol`), runs the real binary, reads its report line.
fn start_with(runtime: RuntimeSpec, protocol: u32) -> (Shim, std::process::ExitStatus) {
    start_spec(runtime, protocol, |_| {})
}

/// [`start_with`], letting `tweak` change the spec before it is written.
fn start_spec(
    runtime: RuntimeSpec,
    protocol: u32,
    tweak: impl FnOnce(&mut ShimSpec),
) -> (Shim, std::process::ExitStatus) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = ShimSpec {
        protocol,
        id: "c".repeat(64),
        runtime,
        log_path: dir.path().join("logs/c-json.log"),
        log_max_size: None,
        log_max_file: 1,
        open_stdin: false,
        tty: false,
        console_size: [0, 0],
    };
    tweak(&mut spec);
    fs::write(
        dir.path().join(SPEC_FILE),
        serde_json::to_vec(&spec).expect("encode spec"),
    )
    .expect("write spec");
    let mut child = Command::new(env!("CARGO_BIN_EXE_moor-shim"))
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn moor-shim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read report");
    let status = child.wait().expect("wait for the spawned moor-shim");
    let report: Report = serde_json::from_str(&line).unwrap_or_else(|e| {
        let log = fs::read_to_string(dir.path().join("shim.log")).unwrap_or_default();
        panic!("bad report {line:?}: {e}; shim.log: {log}")
    });
    let mut cleanup = Cleanup::default();
    if let Report::Started(s) = &report {
        cleanup.0.extend([s.process.clone(), s.shim.clone()]);
    }
    let shim = Shim {
        dir,
        report,
        _cleanup: cleanup,
    };
    (shim, status)
}

fn start(argv: &[&str]) -> Shim {
    let (shim, status) = start_with(process_spec(argv), PROTOCOL);
    assert!(
        status.success(),
        "the spawned process exits 0 at once: {status}"
    );
    shim
}

fn wait_file(path: &Path) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ppid(pid: i32) -> i32 {
    identity::stat(pid)
        .expect("stat")
        .expect("process exists")
        .ppid
}

fn kill(id: &Identity, signal: i32) {
    PidFd::open_verified(id)
        .expect("verified pidfd")
        .send_signal(signal)
        .expect("signal");
}

#[test]
fn started_records_identities_and_a_detached_parent() {
    let shim = start(&["sleep", "100"]);
    let started = shim.started();
    let on_disk: Started =
        serde_json::from_str(&wait_file(&shim.dir.path().join(STARTED_FILE))).expect("parse");
    assert_eq!(on_disk, started);
    assert_eq!(started.protocol, PROTOCOL);
    assert_eq!(
        identity::check(&started.process).expect("check"),
        Check::Alive
    );
    assert_eq!(identity::check(&started.shim).expect("check"), Check::Alive);
    assert_eq!(
        ppid(started.process.pid),
        started.shim.pid,
        "the shim is the parent"
    );
    let me = i32::try_from(std::process::id()).expect("pid");
    assert_ne!(
        ppid(started.shim.pid),
        me,
        "the shim detached from its spawner"
    );
    assert_eq!(
        started.started_at.len(),
        "2026-11-27T16:00:00.123456789Z".len()
    );

    kill(&started.process, libc::SIGTERM);
    let exit = shim.wait_exit();
    assert_eq!(exit.exit, ExitKind::Signal(libc::SIGTERM));
    assert_eq!(exit.start_error, None);
    assert!(exit.finished_at >= started.started_at);
}

#[test]
fn output_streams_and_exit_code() {
    let script = "echo out; echo err >&2; grep SigBlk /proc/self/status; printf tail; exit 3";
    let shim = start(&["sh", "-c", script]);
    assert_eq!(shim.wait_exit().exit, ExitKind::Code(3));
    let records = shim.records();
    let pairs: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["log"].as_str().expect("log"),
                r["stream"].as_str().expect("stream"),
            )
        })
        .collect();
    assert!(pairs.contains(&("out\n", "stdout")), "{pairs:?}");
    assert!(pairs.contains(&("err\n", "stderr")), "{pairs:?}");
    // The container does not inherit the shim's blocked SIGCHLD.
    assert!(
        pairs.contains(&("SigBlk:\t0000000000000000\n", "stdout")),
        "{pairs:?}"
    );
    // A last line without newline is a record without "\n".
    assert!(pairs.contains(&("tail", "stdout")), "{pairs:?}");
    for r in &records {
        let time = r["time"].as_str().expect("time");
        assert!(time.ends_with('Z') && time.starts_with("20"), "{time}");
    }
}

#[test]
fn missing_command_fails_with_127() {
    let (shim, status) = start_with(process_spec(&["no-such-command-moor"]), PROTOCOL);
    assert!(status.success());
    let message = "exec: \"no-such-command-moor\": executable file not found in $PATH";
    match &shim.report {
        Report::Failed { code, error } => {
            assert_eq!(*code, 127);
            assert!(error.ends_with(message), "{error}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let exit = shim.wait_exit();
    assert_eq!(exit.exit, ExitKind::Code(127));
    assert!(exit.start_error.expect("start_error").ends_with(message));
}

#[test]
fn unknown_protocol_is_refused() {
    let (shim, status) = start_with(process_spec(&["true"]), PROTOCOL + 98);
    assert!(!status.success(), "refused before detaching: {status}");
    match &shim.report {
        Report::Failed { code, error } => {
            assert_eq!(*code, 128);
            assert!(error.contains("protocol 99"), "{error}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn background_child_neither_delays_the_exit_nor_outlives_it() {
    let shim = start(&["sh", "-c", "sleep 100 & echo $!; exit 0"]);
    let began = Instant::now();
    let exit = shim.wait_exit();
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "exit.json came late"
    );
    assert_eq!(exit.exit, ExitKind::Code(0));
    let records = shim.records();
    let bg: i32 = records[0]["log"]
        .as_str()
        .expect("log")
        .trim()
        .parse()
        .expect("the background pid");
    // It went with the container's init (its process group is killed), and was reaped.
    let gone = |pid: i32| std::fs::metadata(format!("/proc/{pid}")).is_err();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(bg) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !gone(bg) {
        // Identify it before killing, so a test failure leaves nothing behind.
        if let Ok(id) = identity::identify(bg) {
            kill(&id, libc::SIGKILL);
        }
        panic!("the background sleep {bg} outlived the container");
    }
}

#[test]
fn many_lines_arrive_complete_and_in_order() {
    const LINES: usize = 200_000;
    let shim = start(&["seq", "1", &LINES.to_string()]);
    assert_eq!(shim.wait_exit().exit, ExitKind::Code(0));
    let text = fs::read_to_string(shim.log_path()).expect("read log");
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        let record: Value = serde_json::from_str(line).expect("json");
        assert_eq!(record["log"], format!("{}\n", i + 1));
        assert_eq!(record["stream"], "stdout");
        count += 1;
    }
    assert_eq!(count, LINES);
}

/// Issue 18, item 4: a rotation that fails (here `.1` is a non-empty directory, which
/// neither unlink nor rename can replace, even as root) is reported once in the shim's own
/// log; every line is still drained into the current file and the exit is recorded.
#[test]
fn a_failing_rotation_is_reported_once_and_output_keeps_flowing() {
    const LINES: u32 = 50_000;
    let (shim, _) = start_spec(
        process_spec(&["seq", "1", &LINES.to_string()]),
        PROTOCOL,
        |spec| {
            spec.log_max_size = Some(10_000);
            spec.log_max_file = 2;
            let blocker = PathBuf::from(format!("{}.1/x", spec.log_path.display()));
            fs::create_dir_all(blocker).expect("make .1 a non-empty directory");
        },
    );
    assert_eq!(shim.wait_exit().exit, ExitKind::Code(0));
    let records = shim.records();
    assert_eq!(records.len(), LINES as usize, "every line drained");
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["log"], format!("{}\n", i + 1));
    }
    let shim_log = fs::read_to_string(shim.dir.path().join("shim.log")).expect("shim.log");
    assert_eq!(
        shim_log.matches("rotate log:").count(),
        1,
        "reported once: {shim_log}"
    );
}

#[test]
fn log_is_rotated_by_size() {
    let (shim, _) = start_spec(process_spec(&["seq", "1", "3000"]), PROTOCOL, |spec| {
        spec.log_max_size = Some(10_000);
        spec.log_max_file = 3;
    });
    assert_eq!(shim.wait_exit().exit, ExitKind::Code(0));
    let path = shim.log_path();
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
    let older = fs::read_to_string(numbered(1)).expect("c-json.log.1");
    assert!(numbered(2).exists());
    assert!(!numbered(3).exists(), "only max_file files are kept");
    for file in [path.clone(), numbered(1), numbered(2)] {
        assert!(fs::metadata(&file).expect("stat").len() <= 10_000);
    }
    let last = shim.records().pop().expect("a record");
    assert_eq!(last["log"], "3000\n");
    let first_kept: Value =
        serde_json::from_str(older.lines().next().expect("line")).expect("json");
    let first_kept: u32 = first_kept["log"]
        .as_str()
        .expect("log")
        .trim()
        .parse()
        .expect("n");
    assert!(first_kept > 1, "the oldest lines were rotated away");
}

#[test]
fn argv0_is_found_on_the_containers_path() {
    let tools = tempfile::tempdir().expect("tempdir");
    let tool = tools.path().join("moor-test-tool");
    fs::write(&tool, "#!/bin/sh\necho \"tool $1\"\n").expect("write tool");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).expect("chmod");
    let runtime = RuntimeSpec::Process {
        argv: vec!["moor-test-tool".into(), "ran".into()],
        env: vec![format!("PATH={}:/usr/bin:/bin", tools.path().display())],
        cwd: tools.path().display().to_string(),
    };
    let (shim, _) = start_with(runtime, PROTOCOL);
    shim.started();
    assert_eq!(shim.wait_exit().exit, ExitKind::Code(0));
    assert_eq!(shim.records()[0]["log"], "tool ran\n");
}

#[test]
fn shim_sources_use_only_std_libc_nix_serde() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        root.join("src/identity.rs"),
        root.join("src/bin/moor-shim.rs"),
        // The shim builds its `runc run` with the daemon's runc argv builder.
        root.join("src/runtime/runc/args.rs"),
        // Atomic writes and the error chain come from the host layer the daemon shares.
        root.join("src/host/mod.rs"),
        root.join("src/host/atomic.rs"),
    ];
    for entry in fs::read_dir(root.join("src/shim")).expect("ls src/shim") {
        files.push(entry.expect("entry").path());
    }
    let allowed = [
        "std",
        "libc",
        "nix",
        "serde",
        "serde_json",
        "super",
        "crate",
        "self",
        "moor",
    ];
    let forbidden = ["tokio", "actix", "tracing", "chrono", "anyhow", "thiserror"];
    let mut checked = 0;
    for file in &files {
        let text = fs::read_to_string(file).expect("read source");
        for line in text.lines().map(str::trim) {
            if let Some(path) = line.strip_prefix("use ") {
                let krate = path.split([':', ';', ' ', '{']).next().unwrap_or_default();
                assert!(allowed.contains(&krate), "{}: {line}", file.display());
                checked += 1;
            }
            for name in forbidden {
                assert!(
                    !line.contains(&format!("{name}::")),
                    "{}: {line}",
                    file.display()
                );
            }
            if let Some(rest) = line.split("crate::").nth(1) {
                assert!(
                    rest.starts_with("shim")
                        || rest.starts_with("identity")
                        || rest.starts_with("runtime::runc::args")
                        || rest.starts_with("host::atomic")
                        || rest.starts_with("host::chain"),
                    "{}: {line}",
                    file.display()
                );
            }
        }
    }
    assert!(checked > 20, "only {checked} use lines found");
}
