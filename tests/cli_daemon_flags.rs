//! The command line's own promises (issue 16, item 5): shell completion and man pages from
//! the same definitions as `--help`; `moor daemon` honours `-H` as dockerd does (the socket
//! it listens on) or refuses it, has `--live-restore`, says when the file `--validate` was
//! given does not exist, and prints an error once.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

fn moor(args: &[&str]) -> Output {
    Command::new(MOOR)
        .args(args)
        .env_remove("MOOR_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("run moor")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn completion_scripts_load_in_their_shells() {
    let bash = moor(&["completion", "bash"]);
    assert!(bash.status.success(), "{}", describe(&bash));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("moor.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    // Loaded by bash, the function completes `moor` (and offers `run` for `moor ru`).
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p moor && COMP_WORDS=(moor ru) && COMP_CWORD=1 \
             && _moor moor ru moor && echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("run bash");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{}", describe(&check));
    assert!(said.contains("-F _moor moor"), "{said}");
    assert!(said.split_whitespace().any(|w| w == "run"), "{said}");
    for shell in ["zsh", "fish"] {
        let out = moor(&["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("moor") && text.contains("daemon"),
            "{shell}: {text}"
        );
    }
    let bad = moor(&["completion", "tcsh"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("tcsh"), "{}", describe(&bad));
}

#[test]
fn man_pages_cover_every_command() {
    let out = moor(&["man"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH moor 1"));
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = moor(&["man", "--dir", pages.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    for page in [
        "moor.1",
        "moor-run.1",
        "moor-daemon.1",
        "moor-image-ls.1",
        "moor-admin-upgrade.1",
    ] {
        let text =
            std::fs::read_to_string(pages.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".SH NAME"), "{page}: {text}");
    }
    let run = std::fs::read_to_string(pages.join("moor-run.1")).unwrap();
    assert!(run.contains("publish"), "moor-run.1 lists run's options");
}

#[test]
fn validate_names_a_missing_file_and_prints_an_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let out = moor(&[
        "daemon",
        "--validate",
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("nope.json does not exist"),
        "{}",
        describe(&out)
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{bad").unwrap();
    let out = moor(&["daemon", "--validate", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = stderr(&out);
    assert_eq!(text.matches("key must be a string").count(), 1, "{text}");
    assert_eq!(text.matches("bad.json").count(), 1, "{text}");
}

#[test]
fn live_restore_flag_turns_it_on_and_refuses_the_key_in_the_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both.json");
    std::fs::write(&both, r#"{"live-restore": false}"#).unwrap();
    let out = moor(&[
        "daemon",
        "--validate",
        "--live-restore",
        "--config",
        both.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out)
            .contains("specified both as a flag and in the configuration file: live-restore"),
        "{}",
        describe(&out)
    );
    let d = Daemon::start(r#"{}"#);
    let off = d.http("GET", "/info", None).json()["LiveRestoreEnabled"].clone();
    assert_eq!(off, false);
    drop(d);
    let started = started_daemon(dir.path(), &["--live-restore"], None);
    let info = raw_get(&started.socket, "/info");
    assert!(info.contains("\"LiveRestoreEnabled\":true"), "{info}");
}

#[test]
fn dash_h_is_the_socket_the_daemon_listens_on() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("h.sock");
    let host = format!("unix://{}", socket.display());
    let started = started_daemon(dir.path(), &["-H", &host], Some(&socket));
    assert!(raw_get(&started.socket, "/_ping").ends_with("OK"));
    drop(started);
    let out = moor(&["-H", "tcp://127.0.0.1:2375", "daemon", "--validate"]);
    let refused = moor(&[
        "daemon",
        "-H",
        "tcp://127.0.0.1:2375",
        "--root",
        dir.path().join("r2").to_str().unwrap(),
        "--run-dir",
        dir.path().join("d2").to_str().unwrap(),
    ]);
    for out in [out, refused] {
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(
            stderr(&out).contains("unix socket only"),
            "{}",
            describe(&out)
        );
    }
}

/// A daemon started by hand (no `--socket` unless `socket` is None: then the run dir's),
/// killed by pid when dropped.
struct Started {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn started_daemon(dir: &Path, extra: &[&str], socket: Option<&Path>) -> Started {
    let run = dir.join(format!("run-{}", extra.len()));
    // No bridge: a daemon outside a test's network namespace must not touch the host's.
    let config = dir.join("no-bridge.json");
    std::fs::write(&config, r#"{"bridge": "none"}"#).expect("write daemon.json");
    let mut cmd = Command::new(MOOR);
    cmd.arg("daemon")
        .args(extra)
        .arg("--runtime")
        .arg("process")
        .arg("--root")
        .arg(dir.join(format!("root-{}", extra.len())))
        .arg("--run-dir")
        .arg(&run)
        .arg("--config")
        .arg(&config)
        .env_remove("MOOR_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let socket = socket
        .map(Path::to_path_buf)
        .unwrap_or(run.join("moor.sock"));
    let child = cmd.spawn().expect("spawn moor daemon");
    let started = Started { child, socket };
    assert!(
        wait_for(Duration::from_secs(20), || started.socket.exists()),
        "the daemon never listened on {}",
        started.socket.display()
    );
    started
}

fn raw_get(socket: &Path, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.0\r\nHost: moor\r\n\r\n");
    let answer = raw_request(socket, &request, Duration::from_secs(10)).expect("answer");
    answer.body
}

#[test]
fn admin_pid_names_the_daemon_of_the_root() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let out = d.admin(&["pid"]);
    assert!(out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(said, d.pid().expect("the daemon runs").to_string());
    d.kill9();
    let out = d.admin(&["pid"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("no moor daemon runs on"),
        "{}",
        describe(&out)
    );
}
