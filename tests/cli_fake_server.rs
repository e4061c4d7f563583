//! The `moor` binary against a fake daemon: a unix socket in a temp dir answering canned
//! responses and recording every request, so the CLI's requests and output can be checked
//! without the real daemon.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// One canned answer: for requests whose `METHOD PATH` starts with `prefix`.
struct Route {
    /// `GET /v1.44/containers/json` and the like.
    prefix: &'static str,
    /// Something the rest of the line must also contain (empty: anything).
    contains: &'static str,
    /// HTTP status.
    status: u16,
    /// Body bytes.
    body: Vec<u8>,
}

/// A request the fake daemon received.
#[derive(Debug, Clone)]
struct Recorded {
    /// `METHOD PATH`.
    line: String,
    /// The body.
    body: String,
}

/// The fake daemon: its socket lives as long as `dir`.
struct FakeDaemon {
    /// Holds the socket's directory.
    _dir: tempfile::TempDir,
    /// The socket.
    socket: PathBuf,
    /// What came in, in order.
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeDaemon {
    fn start(routes: Vec<Route>) -> FakeDaemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("moor.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let recorded = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let routes = Arc::clone(&routes);
                let recorded = Arc::clone(&recorded);
                std::thread::spawn(move || serve(stream, &routes, &recorded));
            }
        });
        FakeDaemon {
            _dir: dir,
            socket,
            requests,
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn moor(&self, args: &[&str]) -> Output {
        moor(&self.host(), args)
    }

    fn lines(&self) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .map(|request| request.line.clone())
            .collect()
    }

    fn body_of(&self, prefix: &str) -> String {
        let requests = self.requests.lock().unwrap();
        let request = requests
            .iter()
            .find(|request| request.line.starts_with(prefix));
        request.expect("request was made").body.clone()
    }
}

/// Answers requests on one connection until the client closes it.
fn serve(stream: UnixStream, routes: &[Route], recorded: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let line = request_line.rsplit_once(' ').unwrap().0.to_string();
        let route = routes
            .iter()
            .find(|route| line.starts_with(route.prefix) && line.contains(route.contains));
        recorded.lock().unwrap().push(Recorded {
            line: line.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let (status, body) = match route {
            Some(route) => (route.status, route.body.clone()),
            None => (404, br#"{"message":"page not found"}"#.to_vec()),
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&body).is_err() {
            return;
        }
    }
}

fn moor(host: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moor"))
        .arg("--host")
        .arg(host)
        .args(args)
        .env_remove("MOOR_HOST")
        .output()
        .unwrap()
}

fn route(prefix: &'static str, status: u16, body: &str) -> Route {
    Route {
        prefix,
        contains: "",
        status,
        body: body.as_bytes().to_vec(),
    }
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![kind, 0, 0, 0];
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn ps_prints_the_table() {
    let list = format!(
        r#"[{{"Id":"{ID}","Names":["/web"],"Image":"host","Command":"sleep 1000","Created":1,"State":"running","Status":"Up 5 seconds"}}]"#
    );
    let daemon = FakeDaemon::start(vec![route("GET /v1.44/containers/json", 200, &list)]);
    let output = daemon.moor(&["ps", "-a"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("0123456789ab   host      \"sleep 1000\"   "),
        "{stdout}"
    );
    assert!(
        lines[1].ends_with("Up 5 seconds             web"),
        "{stdout}"
    );
    assert_eq!(daemon.lines(), ["GET /v1.44/containers/json?all=1"]);

    let output = daemon.moor(&["ps", "-q", "--no-trunc"]);
    assert_eq!(text(&output.stdout), format!("{ID}\n"));
}

#[test]
fn inspect_with_a_template() {
    let inspect =
        r#"{"Id":"abc","Name":"/web","State":{"Status":"running","Pid":1234,"ExitCode":0}}"#;
    let daemon = FakeDaemon::start(vec![route("GET /v1.44/containers/web/json", 200, inspect)]);
    let output = daemon.moor(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "1234\n");

    let output = daemon.moor(&["inspect", "web"]);
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("[\n    {\n        \"Id\": \"abc\",\n"),
        "{stdout}"
    );
    assert_eq!(daemon.lines().len(), 2);
}

#[test]
fn rm_of_a_missing_container() {
    let missing = r#"{"message":"No such container: x"}"#;
    let daemon = FakeDaemon::start(vec![route("DELETE /v1.44/containers/x", 404, missing)]);
    let output = daemon.moor(&["rm", "-f", "x"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "Error response from daemon: No such container: x\n"
    );
    assert!(output.stdout.is_empty());
    assert_eq!(daemon.lines(), ["DELETE /v1.44/containers/x?force=1"]);
}

#[test]
fn daemon_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/moor.sock", dir.path().display());
    let output = moor(&host, &["ps"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let expected = format!("Cannot connect to the moor daemon at {host}: is the daemon running?");
    assert!(stderr.contains(&expected), "{stderr}");

    let output = moor(&host, &["run", "host", "true"]);
    assert_eq!(output.status.code(), Some(125));
}

/// A daemon for `run`: create answers ID, wait answers 3, start 204, logs two frames.
fn run_daemon() -> FakeDaemon {
    let mut logs = frame(1, b"out\n");
    logs.extend(frame(2, b"err\n"));
    let created = format!(r#"{{"Id":"{ID}","Warnings":[]}}"#);
    FakeDaemon::start(vec![
        route("POST /v1.44/containers/create", 201, &created),
        Route {
            prefix: "POST /v1.44/containers/0123456789abcdef",
            contains: "/wait",
            status: 200,
            body: br#"{"StatusCode":3}"#.to_vec(),
        },
        route("POST /v1.44/containers/0123456789abcdef", 204, ""),
        Route {
            prefix: "GET /v1.44/containers/0123456789abcdef",
            contains: "/logs?",
            status: 200,
            body: logs,
        },
    ])
}

#[test]
fn run_follows_output_and_exits_with_the_code() {
    let daemon = run_daemon();
    let output = daemon.moor(&[
        "run", "--name", "web", "-e", "A=1", "host", "sh", "-c", "exit 3",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "out\n");
    assert_eq!(text(&output.stderr), "err\n");
    let prefix = format!("/v1.44/containers/{ID}");
    assert_eq!(
        daemon.lines(),
        [
            "POST /v1.44/containers/create?name=web".to_string(),
            format!("GET {prefix}/logs?follow=1&stdout=1&stderr=1"),
            format!("POST {prefix}/start"),
            format!("POST {prefix}/wait"),
        ]
    );
    let create: serde_json::Value =
        serde_json::from_str(&daemon.body_of("POST /v1.44/containers/create")).unwrap();
    assert_eq!(create["Image"], "host");
    assert_eq!(create["Cmd"], serde_json::json!(["sh", "-c", "exit 3"]));
    assert_eq!(create["Env"], serde_json::json!(["A=1"]));
    assert_eq!(create["HostConfig"]["LogConfig"]["Type"], "json-file");
}

#[test]
fn run_rm_waits_for_removal_before_starting() {
    let daemon = run_daemon();
    let output = daemon.moor(&["run", "--rm", "host", "true"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    let lines = daemon.lines();
    let prefix = format!("/v1.44/containers/{ID}");
    // The wait and the output stream travel together (either may reach the server first),
    // and both before the start.
    let mut before_start = lines[1..3].to_vec();
    before_start.sort();
    assert_eq!(
        before_start,
        [
            format!("GET {prefix}/logs?follow=1&stdout=1&stderr=1"),
            format!("POST {prefix}/wait?condition=removed"),
        ]
    );
    assert_eq!(lines[3], format!("POST {prefix}/start"));
    let create: serde_json::Value =
        serde_json::from_str(&daemon.body_of("POST /v1.44/containers/create")).unwrap();
    assert_eq!(create["HostConfig"]["AutoRemove"], true);
}

#[test]
fn run_detached_prints_the_id() {
    let daemon = run_daemon();
    let output = daemon.moor(&["run", "-d", "host", "sleep", "9"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), format!("{ID}\n"));
    assert_eq!(daemon.lines().len(), 2);
}

#[test]
fn logs_are_demultiplexed() {
    let daemon = run_daemon();
    let output = daemon.moor(&["logs", "--tail", "5", "-t", ID]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "out\n");
    assert_eq!(text(&output.stderr), "err\n");
    let expected = format!("GET /v1.44/containers/{ID}/logs?stdout=1&stderr=1&tail=5&timestamps=1");
    assert_eq!(daemon.lines(), [expected]);
}
