//! [`Client::post_pending_while`] against a fake daemon on a temporary socket: the wait of
//! `run --rm` and the output stream go out together, so a daemon that answers one only once
//! it has seen the other (each round trip costs the run) still registers the wait at once.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use super::Client;

/// Accepts one connection and reads its request head; returns it with its first line.
fn accept_head(listener: &UnixListener) -> (UnixStream, String) {
    let (stream, _) = listener.accept().expect("accept");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("request line");
    let mut line = String::new();
    while reader.read_line(&mut line).expect("header") > 2 {
        line.clear();
    }
    (stream, first)
}

#[test]
fn the_pending_request_and_the_one_during_it_travel_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("d.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    // The fake daemon answers neither request before it has both.
    let server = std::thread::spawn(move || {
        let (a, first_a) = accept_head(&listener);
        let (b, first_b) = accept_head(&listener);
        let (mut wait, mut logs) = match first_a.starts_with("POST") {
            true => (a, b),
            false => (b, a),
        };
        logs.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .expect("answer the stream");
        let body = "{\"StatusCode\":0}";
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        wait.write_all(answer.as_bytes()).expect("answer the wait");
        (first_a, first_b)
    });
    let client = Client::new(&format!("unix://{}", socket.display())).expect("client");
    let (pending, during) = client.post_pending_while("/containers/x/wait", || {
        client.get_raw("/containers/x/logs")
    });
    let pending = pending.expect("the wait");
    assert_eq!(during.expect("the stream"), "ok");
    assert!(
        pending.registered(),
        "the wait was sent after its grace ran out, not with the other request"
    );
    let answer: crate::api::types::WaitResponse = client.finish(pending).expect("wait answer");
    assert_eq!(answer.status_code, 0);
    let (first_a, first_b) = server.join().expect("server");
    assert!(first_a.starts_with("POST") || first_b.starts_with("POST"));
}
