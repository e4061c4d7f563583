//! Hostile clients: requests that used to end the daemon, sent raw over its unix socket, and
//! generated requests over every route. After each one the daemon still answers `/_ping`,
//! every refusal is a status with Docker's JSON `{"message": ...}`, and a refused request
//! leaves the container list as it was. README, "Hardening: hostile clients".

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use common::{ping, Daemon, LIVE_RESTORE_OFF};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::Value;

/// How long one raw request may take before what was read so far is its answer.
const ANSWER_DEADLINE: Duration = Duration::from_secs(3);
/// How long a read may wait once a streaming answer's status line is in.
const STREAM_IDLE: Duration = Duration::from_millis(700);

/// Debug builds serve `GET /moor/debug/panic` with this set (src/api/guard.rs); every daemon
/// of this file gets it, before the first one starts.
fn enable_debug_panic_route() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var("MOOR_DEBUG_PANIC_ROUTE", "1"));
}

fn start() -> Daemon {
    enable_debug_panic_route();
    Daemon::start(LIVE_RESTORE_OFF)
}

/// One raw answer: what came back before EOF, ECONNRESET or the deadline.
#[derive(Debug)]
struct Answer {
    /// The status code; `None` when no status line came.
    status: Option<u16>,
    /// The head, lower-cased.
    head: String,
    /// The body as sent (de-chunked when complete).
    body: Vec<u8>,
}

impl Answer {
    /// The body as Docker's error JSON; its `message`, or why it is not one.
    fn message(&self) -> Result<String, String> {
        let text = String::from_utf8_lossy(&self.body);
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text:?}"))?;
        v.get("message")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| format!("no message string: {text}"))
    }
}

/// Sends `request` on a new connection, half-closes, reads the answer.
fn send(socket: &Path, request: &[u8]) -> Answer {
    let mut stream = UnixStream::connect(socket).expect("connect to the daemon");
    stream
        .set_write_timeout(Some(ANSWER_DEADLINE))
        .expect("timeout");
    // A refusal may come before the whole request is written: keep what was.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + ANSWER_DEADLINE;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let head_done = raw.windows(4).any(|w| w == b"\r\n\r\n");
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = if head_done {
            left.min(STREAM_IDLE)
        } else {
            left
        };
        if wait.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(wait)).expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    parse_answer(&raw)
}

fn parse_answer(mut raw: &[u8]) -> Answer {
    // An interim `100 Continue` (the request sent `Expect`) precedes the answer.
    while raw.starts_with(b"HTTP/1.1 100 ") {
        match raw.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) => raw = &raw[end + 4..],
            None => break,
        }
    }
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            status: None,
            head: String::from_utf8_lossy(raw).into_owned(),
            body: Vec::new(),
        };
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let mut body = raw[end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        if let Some(plain) = dechunk(&body) {
            body = plain;
        }
    }
    Answer { status, head, body }
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&body[..line]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        body = &body[line + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

/// A request with a correct Content-Length.
fn request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: moor\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// Asserts a JSON refusal with `status` whose message contains `words`, and a live daemon.
#[track_caller]
fn assert_refused(d: &Daemon, answer: &Answer, status: u16, words: &str) {
    assert_eq!(answer.status, Some(status), "{answer:?}");
    assert!(
        answer.head.contains("content-type: application/json"),
        "{answer:?}"
    );
    let message = answer.message().unwrap_or_else(|e| panic!("{e}"));
    assert!(message.contains(words), "{message:?} lacks {words:?}");
    assert!(ping(&d.socket()), "the daemon no longer answers /_ping");
}

fn create(d: &Daemon, name: &str) -> String {
    d.cli_ok(&["create", "--name", name, "host", "true"])
        .trim()
        .to_string()
}

#[test]
fn hijack_content_lengths_never_size_a_buffer() {
    let d = start();
    create(&d, "victim");
    let lengths = [
        // Wrapped the sum and panicked on the slice.
        "18446744073709551615",
        "18446744073709551600",
        // An allocation failure: abort.
        "4611686018427387904",
        // Buffered whole: 1 GiB of daemon memory per connection.
        "1073741824",
    ];
    for cl in lengths {
        for path in [
            "/v1.44/containers/victim/attach?stream=1&stdout=1",
            "/exec/x/start",
        ] {
            let head = format!("POST {path} HTTP/1.1\r\nHost: moor\r\nContent-Length: {cl}\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n{{}}");
            let answer = send(&d.socket(), head.as_bytes());
            assert_refused(&d, &answer, 413, "request body larger than 1048576 bytes");
        }
    }
    let bad =
        "POST /containers/victim/attach HTTP/1.0\r\nContent-Length: 99999999999999999999\r\n\r\n";
    assert_refused(
        &d,
        &send(&d.socket(), bad.as_bytes()),
        400,
        "Content-Length",
    );
    let chunked = request(
        "POST",
        "/exec/x/start",
        &["Transfer-Encoding: chunked"],
        b"",
    );
    let chunked = String::from_utf8(chunked)
        .unwrap()
        .replace("Content-Length: 0\r\n", "");
    assert_refused(&d, &send(&d.socket(), chunked.as_bytes()), 411, "chunked");
    let short = "POST /exec/x/start HTTP/1.0\r\nContent-Length: 10\r\n\r\n{}";
    assert_refused(
        &d,
        &send(&d.socket(), short.as_bytes()),
        400,
        "ended before",
    );
}

#[test]
fn durations_past_the_calendar_are_a_400_naming_the_parameter() {
    let d = start();
    create(&d, "victim");
    let far = [
        "99999999999h",
        "9000000000000",
        "-99999999999999",
        "99999999999999999999",
    ];
    for value in far {
        for (path, name) in [
            (
                format!("/containers/victim/logs?stdout=1&since={value}"),
                "since",
            ),
            (
                format!("/containers/victim/logs?stdout=1&until={value}"),
                "until",
            ),
            (format!("/events?since={value}"), "since"),
            (format!("/events?until={value}"), "until"),
        ] {
            let answer = send(&d.socket(), &request("GET", &path, &[], b""));
            assert_refused(&d, &answer, 400, &format!("query parameter \"{name}\""));
        }
        let filters = format!("{{\"until\":[\"{value}\"]}}");
        let path = format!("/containers/prune?filters={}", percent(&filters));
        let answer = send(&d.socket(), &request("POST", &path, &[], b""));
        assert_refused(&d, &answer, 400, "query parameter \"until\"");
    }
    // Go's largest duration still works.
    let ok = send(
        &d.socket(),
        &request(
            "GET",
            "/containers/victim/logs?stdout=1&since=2562047h",
            &[],
            b"",
        ),
    );
    assert_eq!(ok.status, Some(200), "{ok:?}");
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn actix_refusals_are_json_too() {
    let d = start();
    let big = vec![b' '; (1 << 20) + 1];
    let answer = send(
        &d.socket(),
        &request("POST", "/containers/create", &[], &big),
    );
    assert_refused(&d, &answer, 413, "");
    let announced =
        "POST /containers/create HTTP/1.0\r\nContent-Length: 18446744073709551615\r\n\r\n{}";
    assert_refused(&d, &send(&d.socket(), announced.as_bytes()), 413, "");
    let answer = send(&d.socket(), &request("GET", "/no/such/route", &[], b""));
    assert_refused(&d, &answer, 404, "page not found");
    let answer = send(
        &d.socket(),
        &request("GET", "/containers/json?all=maybe", &[], b""),
    );
    assert_refused(&d, &answer, 400, "\"all\"");
    let answer = send(
        &d.socket(),
        &request("GET", "/containers/json?filters=%7B", &[], b""),
    );
    assert_refused(&d, &answer, 400, "invalid JSON");
    let answer = send(&d.socket(), b"GET / HTTP/1.1\r\n\r\n");
    assert_refused(&d, &answer, 400, "Host");
    let answer = send(&d.socket(), b"GET /\x01 HTTP/1.0\r\n\r\n");
    assert_refused(&d, &answer, 400, "malformed request head");
    let long = format!("GET /_ping HTTP/1.0\r\nX: {}\r\n\r\n", "a".repeat(70_000));
    assert_refused(&d, &send(&d.socket(), long.as_bytes()), 431, "too large");
}

/// A second request on a kept-alive connection is never read by actix-http's own parser
/// (whose refusals are a plain-text 400): every answer closes its connection, so each request
/// head is the first of its connection and checked where it is peeked at.
#[test]
fn a_second_request_on_a_connection_is_never_answered_outside_the_json_rule() {
    let d = start();
    let pipelined =
        b"GET /_ping HTTP/1.1\r\nHost: moor\r\n\r\nGET /\x01 HTTP/1.1\r\nHost: moor\r\n\r\n";
    let answer = send(&d.socket(), pipelined);
    assert_eq!(answer.status, Some(200), "{}", answer.head);
    assert!(
        answer.head.contains("connection: close"),
        "the first answer keeps the connection open: {}",
        answer.head
    );
    assert_eq!(
        answer.body,
        b"OK",
        "a second answer followed the first on the same connection: {:?}",
        String::from_utf8_lossy(&answer.body)
    );
    // The same malformed head, first on its own connection: refused with JSON.
    let answer = send(&d.socket(), b"GET /\x01 HTTP/1.1\r\nHost: moor\r\n\r\n");
    assert_refused(&d, &answer, 400, "malformed request head");
}

#[test]
fn a_panicking_handler_is_a_500_and_the_daemon_serves_on() {
    let d = start();
    for _ in 0..3 {
        let answer = send(&d.socket(), &request("GET", "/moor/debug/panic", &[], b""));
        assert_refused(&d, &answer, 500, "the request handler panicked");
    }
    assert!(
        d.output().contains("a request handler panicked"),
        "the panic is logged"
    );
}

#[test]
fn the_release_profile_unwinds() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("read Cargo.toml");
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a release profile");
    let release = release.split("\n[").next().unwrap_or_default();
    assert!(
        release.lines().any(|l| l.trim() == "panic = \"unwind\""),
        "[profile.release] must unwind so that a handler's panic is a 500:\n{release}"
    );
    let unit = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/moor.service"),
    )
    .expect("read the unit");
    assert!(unit.lines().any(|l| l.trim() == "Restart=on-failure"));
}

/// A tmpfs of `size` over `dir`, unmounted (lazily) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn over(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).expect("create the mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount (the test needs root)");
        assert!(status.success(), "mount a tmpfs on {}", dir.display());
        Tmpfs(dir.to_owned())
    }

    /// Writes a file until the tmpfs is full.
    fn fill(&self) {
        let mut f = fs::File::create(self.0.join("filler")).expect("create filler");
        let block = vec![0u8; 4096];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return,
                Err(e) => panic!("fill the tmpfs: {e}"),
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_at_create_says_no_space_left_on_device() {
    let d = start();
    let before = snapshot(&d.socket());
    let full = Tmpfs::over(&d.root().join("containers"), "256k");
    full.fill();
    let body = br#"{"Image":"host","Cmd":["true"]}"#;
    let answer = send(
        &d.socket(),
        &request(
            "POST",
            "/containers/create",
            &["Content-Type: application/json"],
            body,
        ),
    );
    assert_refused(&d, &answer, 500, "No space left on device");
    let message = answer.message().unwrap();
    assert_eq!(
        message.matches("No space left on device").count(),
        1,
        "the cause is shown once: {message}"
    );
    assert!(
        d.output().contains("No space left on device"),
        "the cause is in the daemon's log"
    );
    assert_eq!(
        snapshot(&d.socket()),
        before,
        "a failed create leaves nothing"
    );
    drop(full);
    let answer = send(
        &d.socket(),
        &request(
            "POST",
            "/containers/create",
            &["Content-Type: application/json"],
            body,
        ),
    );
    assert_eq!(answer.status, Some(201), "{answer:?}");
}

/// Every container's id, name and state, sorted.
fn snapshot(socket: &Path) -> Vec<(String, String, String)> {
    let answer = send(socket, &request("GET", "/containers/json?all=1", &[], b""));
    assert_eq!(answer.status, Some(200), "{answer:?}");
    let list: Value = serde_json::from_slice(&answer.body).expect("a JSON list");
    let mut out: Vec<_> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            (
                c["Id"].as_str().unwrap_or_default().to_string(),
                c["Names"].to_string(),
                c["State"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The snapshot once it stopped changing (a kill's exit lands after its answer).
fn settled(socket: &Path) -> Vec<(String, String, String)> {
    let mut last = snapshot(socket);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(60));
        let now = snapshot(socket);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// The request generator (a file of its own: Cargo does not take `tests/*/` files for test
/// targets).
#[path = "hostile/generated.rs"]
mod generated;

#[test]
fn generated_requests_never_end_the_daemon_and_refusals_are_json() {
    let d = start();
    create(&d, "fixed");
    let mut runner = TestRunner::new(Config {
        cases: 150,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/hostile.txt"
        )))),
        ..Config::default()
    });
    let baseline = std::cell::RefCell::new(settled(&d.socket()));
    runner
        .run(&generated::request(), |req| {
            let answer = send(&d.socket(), &req.bytes);
            prop_assert!(ping(&d.socket()), "the daemon died on {:?}", req.shown());
            let Some(status) = answer.status else {
                return Err(TestCaseError::fail(format!(
                    "no answer to {:?}: {answer:?}",
                    req.shown()
                )));
            };
            if status >= 400 {
                if !req.head_only {
                    let m = answer.message();
                    prop_assert!(m.is_ok(), "{} to {:?}: {:?}", status, req.shown(), m);
                }
                let after = snapshot(&d.socket());
                prop_assert_eq!(
                    &after,
                    &*baseline.borrow(),
                    "a refused {:?} changed state",
                    req.shown()
                );
            } else {
                if !snapshot(&d.socket()).iter().any(|c| c.1.contains("/fixed")) {
                    // Removed or pruned: the next cases need it again.
                    let body = br#"{"Image":"host","Cmd":["true"]}"#;
                    let again = request("POST", "/containers/create?name=fixed", &[], body);
                    prop_assert_eq!(send(&d.socket(), &again).status, Some(201));
                }
                *baseline.borrow_mut() = settled(&d.socket());
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ping(&d.socket()));
}
