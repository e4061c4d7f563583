//! Issue 14, item 4: a change of daemon options never orphans a container. A daemon runs
//! under wrapper A (daemon.json `runtimes.runc.path`, a script that logs its calls and execs
//! the real runc), run directory `run` and `log-opts` max-size 10m; it is stopped (SIGTERM,
//! live restore) and started under wrapper B, run directory `run-b` and max-size 20m. The
//! containers of the first daemon run on with the same pid and `StartedAt`, inspect lists
//! the drift, `ps` marks them, and exec, pause, logs and stop work on them through wrapper A
//! and their old run directory; a new container gets B, `run-b` and 20m. Wrapper A removed,
//! a restart orphans the runc container that still runs, naming the missing binary; put
//! back, `moor admin adopt` manages it again.
//!
//! Root, runc and busybox are required: a machine without them fails this test.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{wait_for, Daemon};
use serde_json::Value;

/// How long an effect through a container's shim may take to show.
const DEADLINE: Duration = Duration::from_secs(10);

/// The real runc, from PATH.
fn real_runc() -> PathBuf {
    let path = std::env::var("PATH").expect("PATH");
    path.split(':')
        .map(|d| Path::new(d).join("runc"))
        .find(|p| p.is_file())
        .expect("runc is on PATH (apt-get install runc)")
}

/// A runc wrapper `dir/name` that appends its arguments to `dir/name.calls`, then execs
/// the real runc.
fn write_wrapper(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{calls}'\nexec '{runc}' \"$@\"\n",
        calls = path.with_extension("calls").display(),
        runc = real_runc().display(),
    );
    std::fs::write(&path, script).expect("write the wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The calls a wrapper logged.
fn calls(wrapper: &Path) -> String {
    std::fs::read_to_string(wrapper.with_extension("calls")).unwrap_or_default()
}

/// Whether `wrapper` logged a `subcommand` call naming container `id`.
fn called(wrapper: &Path, subcommand: &str, id: &str) -> bool {
    calls(wrapper).lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.contains(&subcommand) && words.contains(&id)
    })
}

/// daemon.json with live restore, `wrapper` as runc and `max_size` as the default log size.
fn config(wrapper: &Path, max_size: &str) -> String {
    serde_json::json!({
        "live-restore": true,
        "runtimes": { "runc": { "path": wrapper } },
        "log-opts": { "max-size": max_size },
    })
    .to_string()
}

/// A loop that prints `said` each time `flag` appears (and removes it), exits 0 on SIGTERM.
fn speaker(flag: &str) -> String {
    format!(
        "trap 'exit 0' TERM; echo hello; while :; do if [ -e {flag} ]; then echo said; rm {flag}; fi; sleep 0.1; done"
    )
}

/// `{{.State.Pid}} {{.State.StartedAt}}`.
fn identity(d: &Daemon, name: &str) -> String {
    d.inspect_field(
        name,
        "{{.State.Pid}} {{.State.StartedAt}} {{.State.Status}}",
    )
}

/// The inspect `Drift` list as (setting, recorded, current).
fn drift(d: &Daemon, name: &str) -> Vec<(String, String, String)> {
    let inspect = d.inspect_json(name);
    let list = inspect["Drift"].as_array().cloned().unwrap_or_else(|| {
        panic!("inspect {name} has no Drift list: {inspect}");
    });
    list.iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (s("Setting"), s("Recorded"), s("Current"))
        })
        .collect()
}

/// The shim spec a container was started with, from run directory `run_dir`.
fn shim_json(run_dir: &Path, id: &str) -> Value {
    let path = run_dir.join("containers").join(id).join("shim.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("shim.json is JSON")
}

/// Makes the container print `said` (through `flag`, touched by `touch`) and waits for it
/// in its logs: the n-th `said` line.
fn make_it_speak(d: &Daemon, name: &str, touch: impl Fn(), n: usize) {
    touch();
    let heard = wait_for(DEADLINE, || {
        d.cli_ok(&["logs", name]).matches("said").count() >= n
    });
    assert!(
        heard,
        "{name} did not log `said` #{n}: {}",
        d.cli_ok(&["logs", name])
    );
}

/// The daemon, its two wrappers and run directories, and the containers of the first one.
struct World {
    /// The daemon.
    d: Daemon,
    /// Holds the wrappers and the process container's flag file.
    _tools: tempfile::TempDir,
    /// The first daemon's runc wrapper.
    a: PathBuf,
    /// The second daemon's.
    b: PathBuf,
    /// The first daemon's run directory.
    old_run: PathBuf,
    /// The flag file the process container speaks at.
    flag: PathBuf,
    /// The runc container kept running (paused, orphaned, adopted later).
    r1: String,
    /// The runc container stopped and started again after the change.
    r3: String,
    /// The process container.
    p1: String,
    /// [`identity`] of r1, r3 and p1 before the change.
    before: Vec<String>,
}

impl World {
    /// A daemon under wrapper A, run directory `run`, max-size 10m, with r1, r3 and p1.
    fn under_a() -> World {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test runs runc containers: run it as root"
        );
        let tools = tempfile::Builder::new()
            .prefix("moor-drift-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let a = write_wrapper(tools.path(), "runc-a");
        let b = write_wrapper(tools.path(), "runc-b");
        let flag = tools.path().join("say");
        let d = Daemon::start_with_runtime(&config(&a, "10m"), "runc");
        d.import_busybox("bb");
        let r1 = d.run_detached(&["--name", "r1", "bb", "sh", "-c", &speaker("/tmp/say")]);
        let r3 = d.run_detached(&["--name", "r3", "bb", "sh", "-c", &speaker("/tmp/say")]);
        let speak = speaker(&flag.display().to_string());
        let p1 = d.run_detached(&[
            "--runtime",
            "process",
            "--name",
            "p1",
            "host",
            "sh",
            "-c",
            &speak,
        ]);
        assert!(
            called(&a, "run", &r1),
            "r1 started through A: {}",
            calls(&a)
        );
        assert!(drift(&d, "r1").is_empty(), "no drift before the change");
        let before = ["r1", "r3", "p1"].iter().map(|n| identity(&d, n)).collect();
        World {
            old_run: d.run_dir(),
            d,
            _tools: tools,
            a,
            b,
            flag,
            r1,
            r3,
            p1,
            before,
        }
    }

    /// Stops the daemon (SIGTERM, live restore) and starts it under wrapper B, run directory
    /// `run-b`, max-size 20m.
    fn change_options(&mut self) {
        self.d.stop_term();
        self.d.write_config(&config(&self.b, "20m"));
        self.d.use_run_dir("run-b");
        self.d.restart();
        assert_ne!(self.old_run, self.new_run());
    }

    fn new_run(&self) -> PathBuf {
        self.d.run_dir()
    }

    fn text(path: &Path) -> String {
        path.display().to_string()
    }
}

/// After the change: the same runs, their drift listed by inspect and marked by `ps`.
fn drift_is_shown(w: &World) {
    let d = &w.d;
    let after: Vec<String> = ["r1", "r3", "p1"].iter().map(|n| identity(d, n)).collect();
    assert_eq!(
        w.before, after,
        "same pid, StartedAt and status after the change"
    );
    for line in &w.before {
        assert!(line.ends_with("running"), "{line}");
    }
    let owned = |s: &str| s.to_string();
    let expected = vec![
        (
            owned("runtimes.runc.path"),
            World::text(&w.a),
            World::text(&w.b),
        ),
        (
            owned("exec-root"),
            World::text(&w.old_run),
            World::text(&w.new_run()),
        ),
        (
            owned("log-opts"),
            owned("max-size=10m"),
            owned("max-size=20m"),
        ),
    ];
    assert_eq!(drift(d, "r1"), expected, "r1's drift");
    assert_eq!(
        drift(d, "p1"),
        expected[1..].to_vec(),
        "p1's drift (no binary)"
    );
    let ps = d.cli_ok(&["ps"]);
    let r1_line = ps.lines().find(|l| l.ends_with("r1"));
    assert!(r1_line.is_some_and(|l| l.contains(" *")), "{ps}");
    assert!(
        ps.contains("* runs under daemon settings changed since it started (exec-root, log-opts, runtimes.runc.path)"),
        "{ps}"
    );
}

/// exec, pause, unpause, stats and logs on the old containers, through A and their old run
/// directory; their shims keep the old log options.
fn old_containers_are_managed_under_a(w: &World) {
    let (d, a, r1) = (&w.d, &w.a, &w.r1);
    let log_path = d.inspect_field("r1", "{{.LogPath}}");
    assert_eq!(d.cli_ok(&["exec", "r1", "echo", "in-r1"]).trim(), "in-r1");
    assert!(called(a, "exec", r1), "exec through A: {}", calls(a));
    d.cli_ok(&["pause", "r1"]);
    assert!(called(a, "pause", r1), "pause through A: {}", calls(a));
    assert_eq!(d.inspect_field("r1", "{{.State.Status}}"), "paused");
    d.cli_ok(&["unpause", "r1"]);
    assert!(called(a, "resume", r1), "unpause through A: {}", calls(a));
    d.cli_ok(&["exec", "r1", "sh", "-c", ": > /tmp/say"]);
    make_it_speak(d, "r1", || {}, 1);
    make_it_speak(d, "p1", || std::fs::write(&w.flag, b"").expect("touch"), 1);
    assert_eq!(d.cli_ok(&["exec", "p1", "echo", "in-p1"]).trim(), "in-p1");
    // Stats read the cgroup that runc's state (under the old run directory) names.
    let stats = d.cli_ok(&["stats", "--no-stream", "r1"]);
    assert!(stats.contains("r1"), "{stats}");
    assert_eq!(
        d.inspect_field("r1", "{{.LogPath}}"),
        log_path,
        "same log file"
    );
    assert!(
        d.cli_ok(&["logs", "r1"]).starts_with("hello\n"),
        "old lines kept"
    );
    let p1_new = w.new_run().join("containers").join(&w.p1);
    assert!(!p1_new.exists(), "p1's files stay in the old run dir");
    assert_eq!(
        shim_json(&w.old_run, r1)["log_max_size"],
        10_000_000,
        "r1 logs under 10m"
    );
}

/// A stop of an old runc container is cleaned up through A; started again, it runs under
/// B; B was never called for r1.
fn an_old_container_stops_under_a_and_starts_under_b(w: &World) {
    let (d, a, b, r3) = (&w.d, &w.a, &w.b, &w.r3);
    let b_before = calls(b);
    d.cli_ok(&["stop", "r3"]);
    assert_eq!(d.inspect_field("r3", "{{.State.ExitCode}}"), "0");
    let deleted = wait_for(DEADLINE, || called(a, "delete", r3));
    assert!(deleted, "r3's runc delete through A: {}", calls(a));
    d.cli_ok(&["start", "r3"]);
    assert!(called(b, "run", r3), "r3 restarted through B: {}", calls(b));
    assert!(
        drift(d, "r3").is_empty(),
        "r3's settings refreshed at its start"
    );
    let started = w.new_run().join("containers").join(r3).join("started.json");
    assert!(started.is_file(), "r3 in the new run dir");
    d.cli_ok(&["stop", "p1"]);
    assert_eq!(d.inspect_field("p1", "{{.State.ExitCode}}"), "0");
    let b_now = calls(b);
    let b_new = &b_now[b_before.len()..];
    assert!(!b_new.contains(w.r1.as_str()), "B called for r1: {b_new}");
    let r3_calls: Vec<&str> = b_new.lines().filter(|l| l.contains(r3.as_str())).collect();
    assert!(
        r3_calls.first().is_some_and(|l| l.contains(" run ")),
        "B's first call for r3 is its new run (its old run's calls went to A): {b_new}"
    );
}

/// A new container runs under B, in the new run dir, with the new log options.
fn a_new_container_runs_under_b(w: &World) {
    let (d, a, b) = (&w.d, &w.a, &w.b);
    let r2 = d.run_detached(&["--name", "r2", "bb", "sleep", "1000"]);
    assert!(called(b, "run", &r2), "r2 started through B: {}", calls(b));
    assert!(!called(a, "run", &r2), "r2 not through A");
    assert!(drift(d, "r2").is_empty(), "no drift for a new container");
    let new_run = w.new_run();
    assert!(new_run
        .join("containers")
        .join(&r2)
        .join("started.json")
        .is_file());
    assert_eq!(shim_json(&new_run, &r2)["log_max_size"], 20_000_000);
}

/// `moor admin inspect` with the daemon down: r1's next start.
fn next_start(d: &Daemon) -> Value {
    let out = d.admin(&["inspect", "r1", "--format", "json"]);
    let text = common::succeeded("moor admin", &["inspect"], out);
    let json: Value = serde_json::from_str(&text).expect("admin inspect json");
    json[0].clone()
}

/// Wrapper A gone: the paused r1 is an orphan naming A (dry run and start), the others run;
/// adopt refuses until A is back, then adopts it running (thawed through A); stop and rm
/// work.
fn a_missing_binary_orphans_until_adopted(w: &mut World) {
    let (a, a_text, r1) = (w.a.clone(), World::text(&w.a), w.r1.clone());
    w.d.cli_ok(&["pause", "r1"]);
    w.d.stop_term();
    assert_eq!(
        next_start(&w.d)["next_start"],
        "resume",
        "{}",
        next_start(&w.d)
    );
    let aside = a.with_extension("aside");
    std::fs::rename(&a, &aside).expect("move wrapper A aside");
    let report = next_start(&w.d);
    assert_eq!(report["next_start"], "orphan", "{report}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&a_text), "{report}");
    w.d.restart();
    let d = &w.d;
    let inspect = d.inspect_json("r1");
    let state = &inspect["State"];
    assert_eq!(inspect["Moor"]["State"], "orphaned", "{inspect}");
    let error = state["Error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&a_text),
        "the reason names {a_text}: {state}"
    );
    let pid = w.before[0].split(' ').next().expect("pid").to_string();
    assert_eq!(
        state["Pid"].as_i64().map(|p| p.to_string()),
        Some(pid),
        "left running"
    );
    for name in ["r2", "r3"] {
        assert_eq!(
            identity(d, name).split(' ').nth(2),
            Some("running"),
            "{name}"
        );
    }
    let refused = d.admin(&["adopt", &r1]);
    assert!(!refused.status.success(), "adopted without its binary");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&a_text), "{}", common::describe(&refused));

    std::fs::rename(&aside, &a).expect("put wrapper A back");
    let resumes = |w: &Path| calls(w).lines().filter(|l| l.contains(" resume ")).count();
    let resumed_before = resumes(&a);
    let adopted = d.admin(&["adopt", &r1]);
    assert!(adopted.status.success(), "{}", common::describe(&adopted));
    assert_eq!(
        identity(d, "r1"),
        w.before[0],
        "the same run, managed again"
    );
    let thawed = wait_for(DEADLINE, || resumes(&a) > resumed_before);
    assert!(
        thawed,
        "the adopted container thawed through A: {}",
        calls(&a)
    );
    d.cli_ok(&["stop", "r1"]);
    assert_eq!(d.inspect_field("r1", "{{.State.ExitCode}}"), "0");
    assert!(
        wait_for(DEADLINE, || called(&a, "delete", &r1)),
        "r1's runc delete through A: {}",
        calls(&a)
    );
    d.cli_ok(&["rm", "r1"]);
    assert!(
        wait_for(DEADLINE, || !w
            .old_run
            .join("containers")
            .join(&r1)
            .exists()),
        "r1's old run directory removed with it"
    );
}

#[test]
fn changed_daemon_options_never_orphan_a_container() {
    let mut w = World::under_a();
    w.change_options();
    drift_is_shown(&w);
    old_containers_are_managed_under_a(&w);
    an_old_container_stops_under_a_and_starts_under_b(&w);
    a_new_container_runs_under_b(&w);
    a_missing_binary_orphans_until_adopted(&mut w);
}
