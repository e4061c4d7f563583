//! Terminals (Docker's Tty), for real on both runtimes: a busybox `sh` on a pty the shim
//! holds, attached raw (no multiplex header), resized, detached from with the detach keys,
//! and attached again, to the same shell, after a `kill -9` of the daemon. The docker CLI's
//! `run -it` and `attach` are driven under a pty (`script`).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::docker::docker_bin;
use common::runc::skip_reason;
use common::{Daemon, LIVE_RESTORE_ON};

/// How long an answer from the shell may take.
const ANSWER: Duration = Duration::from_secs(20);

/// A live-restore daemon on `runtime`; with runc, busybox imported as `bb`. The image and
/// the shell's argv to use.
fn daemon(runtime: &'static str) -> (Daemon, &'static str, Vec<&'static str>) {
    if runtime == "runc" {
        if let Some(reason) = skip_reason() {
            panic!("runc tests need their prerequisites: {reason}");
        }
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, runtime);
    if runtime == "runc" {
        d.import_busybox("bb");
        (d, "bb", vec!["sh"])
    } else {
        (d, "host", vec!["busybox", "sh"])
    }
}

/// Creates and starts a Tty container running `cmd`; its id.
fn start_tty(d: &Daemon, image: &str, cmd: &[&str], extra: &str) -> String {
    let body = format!(
        r#"{{"Image":"{image}","Cmd":{},"Tty":true,"OpenStdin":true,"StdinOnce":false{extra}}}"#,
        serde_json::to_string(cmd).expect("json")
    );
    let created = d.http("POST", "/containers/create", Some(&body));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["Id"].as_str().expect("Id").to_string();
    let started = d.http("POST", &format!("/containers/{id}/start"), None);
    assert_eq!(started.status, 204, "{}", started.body);
    id
}

/// A hijacked attach; the connection after the `101`, or the refusal's status and body.
fn attach(d: &Daemon, id: &str, query: &str) -> Result<UnixStream, (u16, String)> {
    hijack(d, &format!("/v1.44/containers/{id}/attach?{query}"), "")
}

/// A hijacked POST of `path` with `body`; the connection after the `101` (a raw stream), or
/// the refusal's status and body.
fn hijack(d: &Daemon, path: &str, body: &str) -> Result<UnixStream, (u16, String)> {
    let mut s = UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(ANSWER)).expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send head");
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read head");
        assert_eq!(n, 1, "closed in the head: {got:?}");
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    if head.starts_with("HTTP/1.1 101") {
        assert!(head.contains("application/vnd.docker.raw-stream"), "{head}");
        return Ok(s);
    }
    let status = head[9..12].parse().expect("status");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    Err((status, body))
}

/// Reads until the output contains `needle`; everything read.
fn read_until(s: &mut UnixStream, needle: &str) -> String {
    let deadline = Instant::now() + ANSWER;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in {got:?}");
        match s.read(&mut buf) {
            Ok(0) => panic!("closed before {needle:?}: {got:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read before {needle:?}: {e}: {got:?}"),
        }
    }
    assert!(
        !got.windows(4).any(|w| w == [1, 0, 0, 0]),
        "a multiplex header in a Tty stream: {got:?}"
    );
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the daemon closes the connection (the session ended).
fn read_to_close(s: &mut UnixStream) {
    let mut sink = Vec::new();
    match s.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) => panic!("the session did not end: {e}: {sink:?}"),
    }
}

fn running(d: &Daemon, id: &str) -> bool {
    d.inspect_field(id, "{{.State.Running}}") == "true"
}

/// The whole life of a terminal on `runtime`.
fn terminal_lives_through_detach_and_daemon_kill(runtime: &'static str) {
    let (mut d, image, sh) = daemon(runtime);
    let id = start_tty(&d, image, &sh, r#","HostConfig":{"ConsoleSize":[30,100]}"#);
    let q = "stdin=1&stdout=1&stderr=1&stream=1";
    let mut s = attach(&d, &id, q).expect("attach");
    s.write_all(b"stty size; echo hi-$((1+1)); echo err-$((2+2)) >&2\n")
        .expect("type");
    let out = read_until(&mut s, "err-4");
    assert!(out.contains("30 100"), "ConsoleSize: {out}");
    assert!(out.contains("hi-2"), "{out}");

    // Resize: the shell sees the new size.
    let resized = d.http("POST", &format!("/containers/{id}/resize?h=40&w=132"), None);
    assert_eq!(resized.status, 200, "{}", resized.body);
    s.write_all(b"stty size\n").expect("type");
    read_until(&mut s, "40 132");
    let bad = d.http("POST", &format!("/containers/{id}/resize?h=x&w=1"), None);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.message().contains("\"h\""), "{}", bad.message());

    // Logs: one raw stream; stderr went to the terminal, so it is stdout.
    let logs = d.http("GET", &format!("/containers/{id}/logs?stdout=1"), None);
    assert_eq!(logs.status, 200);
    assert!(
        logs.body.contains("hi-2") && logs.body.contains("err-4"),
        "{}",
        logs.body
    );
    assert!(
        !logs.body.contains('\u{1}'),
        "a header in raw logs: {:?}",
        logs.body
    );
    let json = std::fs::read_to_string(d.container_dir(&id).join(format!("{id}-json.log")))
        .expect("json log");
    assert!(!json.contains("\"stderr\""), "{json}");
    let cli_logs = d.cli_ok(&["logs", &id]);
    assert!(
        cli_logs.contains("hi-2") && cli_logs.contains("err-4"),
        "{cli_logs}"
    );

    // ctrl-p ctrl-q: the session ends, the container runs on.
    s.write_all(b"\x10\x11").expect("detach");
    read_to_close(&mut s);
    assert!(running(&d, &id));
    // A custom sequence; a bad one is refused.
    let mut s = attach(&d, &id, &format!("{q}&detachKeys=ctrl-x")).expect("attach");
    s.write_all(b"echo pid=$$ again-$((1+1))\n").expect("type");
    let out = read_until(&mut s, "again-2");
    let pid: String = out
        .rsplit("pid=")
        .next()
        .expect("pid")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    s.write_all(b"\x18").expect("detach");
    read_to_close(&mut s);
    assert!(running(&d, &id));
    let (status, body) = attach(&d, &id, &format!("{q}&detachKeys=ctrl-1")).expect_err("bad keys");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Invalid detach keys (ctrl-1) provided"),
        "{body}"
    );

    // kill -9 of the daemon: the shim keeps the terminal; the same shell answers after.
    let mut s = attach(&d, &id, q).expect("attach");
    d.kill9();
    read_to_close(&mut s);
    std::thread::sleep(Duration::from_millis(200));
    d.restart();
    let mut s = attach(&d, &id, q).expect("attach after restart");
    s.write_all(b"echo pid=$$ back; stty size\n").expect("type");
    let out = read_until(&mut s, "40 132");
    assert!(out.contains(&format!("pid={pid} back")), "{pid}: {out}");
    s.write_all(b"exit 3\n").expect("type");
    read_to_close(&mut s);
    assert_eq!(d.wait_code(&id), "3");
    let gone = d.http("POST", &format!("/containers/{id}/resize?h=1&w=1"), None);
    assert_eq!(gone.status, 409, "{}", gone.body);
    d.cli_ok(&["rm", &id]);
}

#[test]
fn process_terminal() {
    terminal_lives_through_detach_and_daemon_kill("process");
}

#[test]
fn runc_terminal() {
    terminal_lives_through_detach_and_daemon_kill("runc");
}

/// An exec on a terminal in a running (non-Tty) container of `runtime`.
fn exec_terminal(runtime: &'static str) {
    let (d, image, _) = daemon(runtime);
    let id = d.run_detached(&[image, "sleep", "1000"]);
    let sh = if runtime == "runc" { "sh" } else { "busybox" };
    let cmd = if runtime == "runc" {
        r#"["sh"]"#
    } else {
        r#"["busybox","sh"]"#
    };
    let create = format!(
        r#"{{"Cmd":{cmd},"Tty":true,"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"ConsoleSize":[20,70],"DetachKeys":"ctrl-x"}}"#
    );
    let created = d.http("POST", &format!("/containers/{id}/exec"), Some(&create));
    assert_eq!(created.status, 201, "{sh}: {}", created.body);
    let exec = created.json()["Id"].as_str().expect("Id").to_string();
    let mut s = hijack(&d, &format!("/exec/{exec}/start"), r#"{"Tty":true}"#).expect("start");
    // The prompt first: runc sets its terminal up while the shell starts.
    read_until(&mut s, "# ");
    s.write_all(b"stty size; echo e-$((6*7)) >&2\n")
        .expect("type");
    let out = read_until(&mut s, "e-42");
    if !out.contains("20 70") {
        // Typed while runc still set its terminal up, `stty` may have seen none: again.
        s.write_all(b"stty size\n").expect("type");
        read_until(&mut s, "20 70");
    }
    let r = d.http("POST", &format!("/exec/{exec}/resize?h=50&w=160"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    s.write_all(b"stty size\n").expect("type");
    read_until(&mut s, "50 160");
    let inspect = d.http("GET", &format!("/exec/{exec}/json"), None).json();
    assert_eq!(inspect["ProcessConfig"]["tty"], true, "{inspect}");
    assert_eq!(inspect["DetachKeys"], "ctrl-x", "{inspect}");
    // ctrl-x: the session ends, the shell runs on.
    s.write_all(b"\x18").expect("detach");
    read_to_close(&mut s);
    let inspect = d.http("GET", &format!("/exec/{exec}/json"), None).json();
    assert_eq!(inspect["Running"], true, "{inspect}");
    let bad = format!(r#"{{"Cmd":{cmd},"Tty":true,"DetachKeys":"ctrl-1"}}"#);
    let r = d.http("POST", &format!("/containers/{id}/exec"), Some(&bad));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.message().contains("Invalid detach keys (ctrl-1)"),
        "{}",
        r.message()
    );
    let r = d.http("POST", "/exec/nope/resize?h=1&w=1", None);
    assert_eq!(r.status, 404, "{}", r.body);
    d.cli_ok(&["rm", "-f", &id]);
}

#[test]
fn process_exec_terminal() {
    exec_terminal("process");
}

#[test]
fn runc_exec_terminal() {
    exec_terminal("runc");
}

#[test]
fn resize_needs_a_terminal() {
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "process");
    let id = d.run_detached(&["host", "sleep", "100"]);
    let r = d.http("POST", &format!("/containers/{id}/resize?h=10&w=10"), None);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.message().contains("Tty"), "{}", r.message());
    let r = d.http("POST", "/containers/nope/resize?h=10&w=10", None);
    assert_eq!(r.status, 404, "{}", r.body);
    d.cli_ok(&["rm", "-f", &id]);
}

/// `docker ARGS` under a pty (`script`), fed `input` step by step: each step waits for its
/// text in the output before typing. Returns the exit status and the whole output.
fn docker_in_pty(d: &Daemon, args: &str, steps: &[(&str, &[u8])]) -> (i32, String) {
    in_pty(d, &format!("{} {args}", docker_bin().display()), steps)
}

/// `moor --host unix://SOCKET ARGS` under a pty, as [`docker_in_pty`].
fn moor_in_pty(d: &Daemon, args: &str, steps: &[(&str, &[u8])]) -> (i32, String) {
    let moor = env!("CARGO_BIN_EXE_moor");
    in_pty(
        d,
        &format!("{moor} --host {} {args}", d.docker_host()),
        steps,
    )
}

/// The shell command line `line` under a pty (`script`), as [`docker_in_pty`].
fn in_pty(d: &Daemon, line: &str, steps: &[(&str, &[u8])]) -> (i32, String) {
    let args = line;
    let config = d.root().with_file_name("docker-config");
    let mut child = Command::new("script")
        .args(["-qfec", line, "/dev/null"])
        .env("DOCKER_HOST", d.docker_host())
        .env("DOCKER_CONFIG", &config)
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut out = Vec::new();
    let mut wait_for = |needle: &str, out: &mut Vec<u8>| {
        let deadline = Instant::now() + ANSWER;
        while !String::from_utf8_lossy(out).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "{args}: no {needle:?} in {:?}",
                        String::from_utf8_lossy(out)
                    );
                }
            }
        }
    };
    for (needle, input) in steps {
        wait_for(needle, &mut out);
        stdin.write_all(input).expect("type");
    }
    let deadline = Instant::now() + ANSWER;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args} did not end: {:?}", String::from_utf8_lossy(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
        out.extend_from_slice(&chunk);
    }
    drop(stdin);
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

#[test]
fn moor_run_it_attach_and_exec_it() {
    let (d, image, sh) = daemon("process");
    let sh = sh.join(" ");
    let run = format!("run -it --name m1 {image} {sh}");
    let (code, out) = moor_in_pty(
        &d,
        &run,
        &[("# ", b"tty; echo m-$((8+1))\n"), ("m-9", b"\x10\x11")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("/dev/pts/"), "a terminal: {out}");
    // The local terminal is raw: what is typed comes back once, echoed by the container's.
    assert_eq!(out.matches("echo m-$((8+1))").count(), 1, "{out}");
    assert!(running(&d, "m1"), "{out}");
    let (code, out) = moor_in_pty(
        &d,
        &format!("exec -it --detach-keys ctrl-x m1 {sh}"),
        &[("# ", b"echo x-$((2+3))\n"), ("x-5", b"exit 7\n")],
    );
    assert_eq!(code, 7, "{out}");
    let (code, out) = moor_in_pty(
        &d,
        "attach --detach-keys ctrl-x m1",
        &[("", b"echo a-$((1+2))\n"), ("a-3", b"\x18")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(running(&d, "m1"), "{out}");
    let (code, out) = moor_in_pty(
        &d,
        "attach m1",
        &[("", b"echo b-$((4+4))\n"), ("b-8", b"exit 6\n")],
    );
    assert_eq!(code, 6, "{out}");
    d.cli_ok(&["rm", "m1"]);

    // The local terminal's size: sent at the start, and again when it changes (SIGWINCH).
    // A process container shares the host's files: its `touch` lets the resize happen.
    let flag = d.root().with_file_name("resize-now");
    let moor = env!("CARGO_BIN_EXE_moor");
    let line = format!(
        "stty rows 25 cols 90; (n=0; while ! [ -e {f} ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done; stty rows 30 cols 100 </dev/tty) & \
         {moor} --host {} run -it --rm {image} {sh}",
        d.docker_host(),
        f = flag.display(),
    );
    let wait = format!(
        "stty size; touch {}; until [ \"$(stty size)\" = '30 100' ]; do sleep 0.05; done; \
         echo resized-$((1+1))\n",
        flag.display()
    );
    let (code, out) = in_pty(
        &d,
        &line,
        &[("# ", wait.as_bytes()), ("resized-2", b"exit 0\n")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("25 90"),
        "ConsoleSize from the terminal: {out}"
    );
}

#[test]
fn docker_run_it_and_attach() {
    let (d, image, _) = daemon("runc");
    let run = format!("run -it --name t1 {image} sh");
    // The prompt, then a command; ctrl-p ctrl-q detaches the CLI (exit 0).
    let (code, out) = docker_in_pty(
        &d,
        &run,
        &[
            ("# ", b"echo hi-$((3+4)); stty size\n"),
            ("hi-7", b"\x10\x11"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(running(&d, "t1"), "{out}");
    // `docker exec -it`: a second shell on a terminal of its own, with its exit code.
    let (code, out) = docker_in_pty(
        &d,
        "exec -it t1 sh",
        &[("# ", b"echo x-$((5*5))\n"), ("x-25", b"exit 4\n")],
    );
    assert_eq!(code, 4, "{out}");
    // `docker attach` reaches the same shell; `exit 5` ends it and the CLI with its code.
    let (code, out) = docker_in_pty(
        &d,
        "attach t1",
        &[
            ("", b"\n"),
            ("# ", b"echo there-$((2*3))\n"),
            ("there-6", b"exit 5\n"),
        ],
    );
    assert_eq!(code, 5, "{out}");
    assert_eq!(d.wait_code("t1"), "5");
    d.cli_ok(&["rm", "t1"]);
}
