//! Keep-alive on the API socket: several requests on one connection, one after the other or
//! pipelined, each head checked where it starts as a connection's first one is: a well-formed
//! one is answered on the same connection, a malformed one with Docker's JSON error (then the
//! close), a hijack after other requests gets the raw stream, and an idle connection is
//! closed after the keep-alive timeout. README, "Hardening: hostile clients".

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Daemon, LIVE_RESTORE_OFF};
use serde_json::Value;

/// How long one answer may take.
const ANSWER: Duration = Duration::from_secs(30);

/// One answer read off a kept-alive connection.
#[derive(Debug)]
struct Answer {
    /// The status code.
    status: u16,
    /// The head, lower-cased.
    head: String,
    /// The body, de-chunked.
    body: Vec<u8>,
}

impl Answer {
    /// Whether the answer ends its connection.
    fn closes(&self) -> bool {
        self.head.contains("\r\nconnection: close")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Docker's error text.
    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or_default().into()
    }
}

/// A client connection that reads one answer at a time, as a keep-alive pool does.
struct Client {
    reader: BufReader<UnixStream>,
}

impl Client {
    fn connect(d: &Daemon) -> Client {
        let s = UnixStream::connect(d.socket()).expect("connect to the daemon");
        s.set_read_timeout(Some(ANSWER)).expect("timeout");
        Client {
            reader: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// Reads one whole answer (Content-Length, chunked, or none).
    fn answer(&mut self) -> Answer {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read the head");
            assert!(n > 0, "the connection closed before an answer: {head:?}");
            head.push_str(&line.to_ascii_lowercase());
            if line == "\r\n" {
                break;
            }
        }
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        let status = status.unwrap_or_else(|| panic!("no status: {head:?}"));
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().expect("a length"));
        let body = if head.contains("transfer-encoding: chunked") {
            self.chunked()
        } else {
            let mut body = vec![0; length.unwrap_or(0)];
            self.reader.read_exact(&mut body).expect("read the body");
            body
        };
        Answer { status, head, body }
    }

    fn chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("hex size");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).expect("chunk");
            body.extend_from_slice(&chunk[..size]);
            if size == 0 {
                return body;
            }
        }
    }

    /// One request and its answer.
    fn call(&mut self, request: &[u8]) -> Answer {
        self.send(request);
        self.answer()
    }

    /// Whether the daemon closed the connection (EOF or reset) within `deadline`, with no
    /// byte sent before.
    fn closed_within(&mut self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        let mut byte = [0u8; 1];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let s = self.reader.get_mut();
            s.set_read_timeout(Some(left)).expect("timeout");
            match self.reader.read(&mut byte) {
                Ok(0) => return true,
                Ok(_) => panic!("unexpected bytes from the daemon"),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}

/// A request with a correct Content-Length.
fn request(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: moor\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    request("GET", path, "")
}

#[test]
fn requests_one_after_the_other_share_a_connection() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let mut c = Client::connect(&d);
    let ping = c.call(&get("/_ping"));
    assert_eq!((ping.status, ping.body.as_slice()), (200, &b"OK"[..]));
    assert!(!ping.closes(), "the answer closes: {}", ping.head);
    let version = c.call(&get("/v1.44/version"));
    assert_eq!(version.status, 200, "{version:?}");
    assert!(!version.closes(), "{}", version.head);
    // A body as Content-Length frames it, then one chunked, then a request after them.
    let body = r#"{"Image":"host","Cmd":["true"]}"#;
    let created = c.call(&request("POST", "/v1.44/containers/create?name=one", body));
    assert_eq!(created.status, 201, "{created:?}");
    let chunked = format!(
        "POST /v1.44/containers/create?name=two HTTP/1.1\r\nHost: moor\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x};ext=1\r\n{body}\r\n0\r\nX-Trailer: 1\r\n\r\n",
        body.len()
    );
    let created = c.call(chunked.as_bytes());
    assert_eq!(created.status, 201, "{created:?}");
    let list = c.call(&get("/v1.44/containers/json?all=1"));
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json().as_array().map(Vec::len), Some(2), "{list:?}");
    // An HTTP/1.1 request asking for the close gets it.
    let last = c.call(b"GET /_ping HTTP/1.1\r\nHost: moor\r\nConnection: close\r\n\r\n");
    assert!(last.closes(), "{}", last.head);
    assert!(c.closed_within(ANSWER));
}

#[test]
fn a_malformed_head_after_an_answer_is_refused_with_json() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let refusals: [(&[u8], u16, &str); 3] = [
        (
            b"GET /\x01 HTTP/1.1\r\nHost: moor\r\n\r\n",
            400,
            "malformed request head",
        ),
        (b"GET /_ping HTTP/1.1\r\n\r\n", 400, "Host"),
        (
            b"POST /containers/create HTTP/1.1\r\nHost: moor\r\nContent-Length: 1\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
            400,
            "both Content-Length and Transfer-Encoding",
        ),
    ];
    for (bad, status, words) in refusals {
        let mut c = Client::connect(&d);
        let ping = c.call(&get("/_ping"));
        assert_eq!(ping.status, 200);
        assert!(!ping.closes(), "{}", ping.head);
        let refused = c.call(bad);
        assert_eq!(refused.status, status, "{refused:?}");
        assert!(
            refused.head.contains("content-type: application/json"),
            "{refused:?}"
        );
        assert!(
            refused.message().contains(words),
            "{refused:?} lacks {words:?}"
        );
        assert!(refused.closes(), "{}", refused.head);
        assert!(
            c.closed_within(ANSWER),
            "the connection stays open after the refusal"
        );
    }
    let mut c = Client::connect(&d);
    assert_eq!(c.call(&get("/_ping")).status, 200);
    let long = format!(
        "GET /_ping HTTP/1.1\r\nHost: moor\r\nX: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    let refused = c.call(long.as_bytes());
    assert_eq!(refused.status, 431, "{refused:?}");
    assert!(refused.message().contains("too large"), "{refused:?}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let mut c = Client::connect(&d);
    let body = r#"{"Image":"host","Cmd":["true"]}"#;
    let pipelined = [
        get("/_ping"),
        request("POST", "/v1.44/containers/create?name=piped", body),
        get("/v1.44/containers/piped/json"),
    ]
    .concat();
    c.send(&pipelined);
    let ping = c.answer();
    assert_eq!((ping.status, ping.body.as_slice()), (200, &b"OK"[..]));
    assert!(!ping.closes(), "{}", ping.head);
    let created = c.answer();
    assert_eq!(created.status, 201, "{created:?}");
    let inspect = c.answer();
    assert_eq!(inspect.status, 200, "{inspect:?}");
    assert_eq!(inspect.json()["Name"], "/piped");
    assert!(!inspect.closes(), "{}", inspect.head);
    // The connection is still open for the next one.
    assert_eq!(c.call(&get("/_ping")).status, 200);
}

#[test]
fn an_exec_start_after_other_requests_gets_the_raw_stream() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    d.run_detached(&["--name", "box", "host", "sleep", "1000"]);
    // As docker-py does: the exec is created and started on one pooled connection.
    let mut c = Client::connect(&d);
    assert_eq!(c.call(&get("/_ping")).status, 200);
    let exec = r#"{"Cmd":["echo","hello from exec"],"AttachStdout":true,"AttachStderr":true}"#;
    let created = c.call(&request("POST", "/v1.44/containers/box/exec", exec));
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json()["Id"]
        .as_str()
        .expect("an exec id")
        .to_string();
    let start = r#"{"Detach":false,"Tty":false}"#;
    let head = format!(
        "POST /v1.44/exec/{id}/start HTTP/1.1\r\nHost: moor\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n{start}",
        start.len()
    );
    c.send(head.as_bytes());
    let mut answer = String::new();
    c.reader.read_line(&mut answer).expect("status line");
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer:?}");
    let mut stream = Vec::new();
    let _ = c.reader.read_to_end(&mut stream);
    // One stdout frame: [1, 0, 0, 0, length (4 bytes, big-endian)], then the bytes.
    let text = String::from_utf8_lossy(&stream);
    assert!(text.contains("hello from exec\n"), "{text:?}");
    let frame = stream.windows(4).position(|w| w == [1, 0, 0, 0]);
    assert!(frame.is_some(), "no stdout frame in {stream:?}");
    d.cli_ok(&["rm", "-f", "box"]);
}

#[test]
fn idle_connections_are_closed_after_the_keep_alive() {
    // Debug builds take the keep-alive from this variable (src/api/server.rs).
    let d = Daemon::start_with_env(LIVE_RESTORE_OFF, &[("MOOR_DEBUG_KEEP_ALIVE_MS", "1500")]);
    let mut c = Client::connect(&d);
    let ping = c.call(&get("/_ping"));
    assert!(!ping.closes(), "{}", ping.head);
    assert!(
        c.closed_within(ANSWER),
        "an idle kept-alive connection stays open"
    );
    // A connection that never sends a head is closed too.
    let mut silent = Client::connect(&d);
    assert!(
        silent.closed_within(ANSWER),
        "a silent new connection stays open"
    );
    assert!(common::ping(&d.socket()));
}
