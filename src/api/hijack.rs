//! Docker's hijacked `attach`, served raw on the socket (see `server.rs` for why).
//!
//! The docker CLI sends `POST /containers/{id}/attach?stream=1&stdout=1&stderr=1[&stdin=1]`
//! with `Upgrade: tcp` on a fresh connection and expects `101 UPGRADED`, then the
//! multiplexed stream (8-byte frames). Output is the container's json log followed from its
//! current end (from its start with `logs=1`) until the container stops; stdin bytes go to
//! the FIFO the shim feeds to the container's stdin, and the client's half-close (EOF) is
//! the container's stdin EOF. `POST /exec/{id}/start` is told apart here too and served by
//! [`crate::api::routes::exec::serve_start`] with the same helpers.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix_rt::net::UnixStream;
use actix_web::{web, ResponseError};
use nix::sys::socket::{recv, MsgFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::api::detach::{self, Escape};
use crate::api::error::ApiError;
use crate::api::guard::unwinding;
use crate::api::head::{self, MAX_HEAD, MAX_HEADERS};
use crate::api::one_request::Framing;
use crate::api::routes::logs::{pump, LogOptions};
use crate::api::routes::{flag, Query};
use crate::api::server::{ApiState, MAX_BODY};
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{InspectContainer, ResolveContainer, WaitCondition, WaitContainer};
use crate::shim::protocol::STDIN_FIFO;
use moor_state::State;

/// How long a client may take to send its first request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(30);
/// Stdin bytes held while the container has not started yet.
const MAX_EARLY_STDIN: usize = 1 << 20;
/// How often the stdin FIFO is tried while the container is not running yet.
const FIFO_RETRY: Duration = Duration::from_millis(20);
/// After a refusal, how long what the client still sends is read and dropped before the
/// close (closing a unix socket with unread bytes makes the client's read fail with
/// ECONNRESET, and it would lose the answer).
const LINGER: Duration = Duration::from_secs(2);
/// The most bytes read and dropped after a refusal.
const LINGER_BYTES: usize = 4 * MAX_BODY;

/// What the first request head of a connection is.
#[derive(Debug)]
pub enum Peeked {
    /// A hijacked attach.
    Attach(AttachHead),
    /// An exec start (hijacked, or streamed with a plain 200).
    ExecStart(AttachHead),
    /// Anything else: for the HTTP service (nothing consumed), with how its first request is
    /// framed (None: its head was too slow to peek whole).
    Other(Option<Framing>),
    /// The client closed before sending a head.
    Closed,
    /// A head refused before any route sees it (malformed, too large, a body too large for a
    /// hijacked route): answered with this error.
    Refused(ApiError),
}

/// A parsed attach (or exec start) request head.
#[derive(Debug)]
pub struct AttachHead {
    /// Bytes of the head, consumed before the 101 (at most [`MAX_HEAD`]).
    pub(crate) head_len: usize,
    /// The body length (0 for the docker CLI's attach; exec start's JSON), checked to be at
    /// most [`MAX_BODY`].
    pub(crate) body_len: usize,
    /// The `{id}` segment: container id, name or id prefix; or the exec id.
    pub(crate) id: String,
    /// The query string, undecoded.
    query: String,
    /// Whether the client asked for `Upgrade: tcp` (101) rather than a plain answer.
    pub(crate) upgrade: bool,
}

/// The answer head that switches a connection to the raw multiplexed stream.
pub(crate) const UPGRADED: &str = "HTTP/1.1 101 UPGRADED\r\n\
                    Content-Type: application/vnd.docker.multiplexed-stream\r\n\
                    Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

/// The answer head of an attach to a Tty container: its one stream, raw (Docker's).
pub(crate) const UPGRADED_RAW: &str = "HTTP/1.1 101 UPGRADED\r\n\
                    Content-Type: application/vnd.docker.raw-stream\r\n\
                    Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

/// Peeks at the first request head (MSG_PEEK: nothing is consumed).
pub async fn peek(io: &UnixStream) -> std::io::Result<Peeked> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut buf = vec![0u8; MAX_HEAD];
    loop {
        io.readable().await?;
        let fd = io.as_raw_fd();
        let n = match io.try_io(Interest::READABLE, || {
            recv(fd, &mut buf, MsgFlags::MSG_PEEK).map_err(std::io::Error::from)
        }) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(Peeked::Closed);
        }
        match parse_head(&buf[..n]) {
            Some(p) => return Ok(p),
            None if n == buf.len() => return Ok(Peeked::Refused(too_large())),
            None if Instant::now() > deadline => return Ok(Peeked::Other(None)),
            // Incomplete head: the socket stays readable, so back off before peeking again.
            None => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// The refusal of a head over the limits.
fn too_large() -> ApiError {
    ApiError::HeadTooLarge {
        max_bytes: MAX_HEAD,
        max_headers: MAX_HEADERS,
    }
}

/// Parses and checks a complete head; `None` while it is incomplete.
fn parse_head(bytes: &[u8]) -> Option<Peeked> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return None,
        Err(httparse::Error::TooManyHeaders) => return Some(Peeked::Refused(too_large())),
        Err(e) => return Some(Peeked::Refused(ApiError::MalformedHead(e))),
    };
    let facts = match head::check(&req) {
        Ok(facts) => facts,
        Err(e) => return Some(Peeked::Refused(e)),
    };
    let other = Peeked::Other(Some(Framing {
        head_len,
        body: facts,
    }));
    if req.method != Some("POST") {
        return Some(other);
    }
    let (path, query) = req
        .path
        .unwrap_or("")
        .split_once('?')
        .unwrap_or((req.path.unwrap_or(""), ""));
    let Some((target, id)) = hijack_target(path) else {
        return Some(other);
    };
    let route = match target {
        Target::Attach => "attach",
        Target::ExecStart => "exec start",
    };
    let body_len = match head::hijack_body(facts, route, MAX_BODY) {
        Ok(n) => n,
        Err(e) => return Some(Peeked::Refused(e)),
    };
    let upgrade = req
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade") && h.value.eq_ignore_ascii_case(b"tcp"));
    let head = AttachHead {
        head_len,
        body_len,
        id: id.to_string(),
        query: query.to_string(),
        upgrade,
    };
    Some(match target {
        Target::Attach => Peeked::Attach(head),
        Target::ExecStart => Peeked::ExecStart(head),
    })
}

/// Reads the head and the body of a hijacked request (both bounded when parsed); the body.
pub(crate) async fn consume(io: &mut UnixStream, head: &AttachHead) -> Result<Vec<u8>, ApiError> {
    let incomplete = |_| ApiError::BodyIncomplete {
        expected: head.body_len,
    };
    let mut bytes = vec![0u8; head.head_len];
    io.read_exact(&mut bytes).await.map_err(incomplete)?;
    let mut body = vec![0u8; head.body_len];
    io.read_exact(&mut body).await.map_err(incomplete)?;
    Ok(body)
}

/// Answers with an error, then reads and drops what the client still sends (a bounded
/// amount, for a bounded time) before the close: see [`LINGER`].
pub(crate) async fn refuse(mut io: UnixStream, e: &ApiError) {
    if io.write_all(&error_response(e)).await.is_err() {
        return;
    }
    let _ = io.shutdown().await;
    let drain = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        while total < LINGER_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total = total.saturating_add(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Which hijackable endpoint a path is.
enum Target {
    /// `/containers/{id}/attach`.
    Attach,
    /// `/exec/{id}/start`.
    ExecStart,
}

/// The endpoint and `{id}` of `[/vX.Y]/containers/{id}/attach` or `[/vX.Y]/exec/{id}/start`.
fn hijack_target(path: &str) -> Option<(Target, &str)> {
    let mut parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts.first().is_some_and(|p| {
        p.strip_prefix('v')
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    }) {
        parts.remove(0);
    }
    match parts.as_slice() {
        ["containers", id, "attach"] if !id.is_empty() => Some((Target::Attach, id)),
        ["exec", id, "start"] if !id.is_empty() => Some((Target::ExecStart, id)),
        _ => None,
    }
}

/// What the attach streams, from its query.
struct AttachOptions {
    /// Forward the client's bytes to the container's stdin.
    stdin: bool,
    /// The detach key sequence (`detachKeys`; Docker's default ctrl-p ctrl-q), watched
    /// for in the input of a Tty container.
    detach_keys: Vec<u8>,
    /// Output streams and where to start.
    log: LogOptions,
    /// Follow until the container stops.
    stream: bool,
}

fn options(query: &str) -> Result<AttachOptions, ApiError> {
    let q: Query = web::Query::from_query(query).map_err(|_| ApiError::Query {
        name: "query",
        value: query.into(),
    })?;
    let logs = flag(&q, "logs", false)?;
    Ok(AttachOptions {
        stdin: flag(&q, "stdin", false)?,
        detach_keys: detach::parse(q.get("detachKeys").map(String::as_str))?,
        stream: flag(&q, "stream", false)?,
        log: LogOptions {
            stdout: flag(&q, "stdout", false)?,
            stderr: flag(&q, "stderr", false)?,
            timestamps: false,
            // Without `logs`, only what is written from now on.
            tail: if logs { None } else { Some(0) },
            since: None,
            until: None,
            raw: false,
        },
    })
}

/// Serves one hijacked attach connection to its end.
pub async fn attach(mut io: UnixStream, head: AttachHead, state: web::Data<ApiState>) {
    // An attach has no use for a body: it is read (bounded) and dropped.
    if let Err(e) = consume(&mut io, &head).await {
        return refuse(io, &e).await;
    }
    let prepared = unwinding("attach", prepare(&head, &state)).await;
    let (opts, output, fifo, tty) = match prepared {
        Ok(p) => p,
        Err(e) => return refuse(io, &e).await,
    };
    let answer = if tty { UPGRADED_RAW } else { UPGRADED };
    if io.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let (rd, wr) = io.into_split();
    let Some(path) = fifo.filter(|_| opts.stdin) else {
        drop(rd);
        return send_output(wr, output).await;
    };
    // With a terminal, the detach keys, and the client's EOF, end the session (Docker's):
    // the container and its terminal stay as they are.
    let escape = tty.then(|| Escape::new(opts.detach_keys));
    let mut feeder = actix_rt::spawn(feed_stdin(rd, path, escape));
    if tty {
        tokio::select! {
            () = send_output(wr, output) => feeder.abort(),
            _ = &mut feeder => {}
        }
    } else {
        send_output(wr, output).await;
        feeder.abort();
    }
}

/// Resolves the container and starts following its log; the FIFO when its stdin is open.
async fn prepare(head: &AttachHead, state: &web::Data<ApiState>) -> Result<Prepared, ApiError> {
    let mut opts = options(&head.query)?;
    let (id, addr) = state
        .supervisor
        .send(ResolveContainer(head.id.clone()))
        .await
        .map_err(ContainerError::from)??;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    let done = if opts.stream {
        // Attached before the start (docker run): follow through the next run.
        let condition = match rec.state {
            State::Created => WaitCondition::NextExit,
            _ => WaitCondition::NotRunning,
        };
        Some(
            addr.send(WaitContainer(condition))
                .await
                .map_err(ContainerError::from)?,
        )
    } else {
        None
    };
    let path = state.shared.layout.log_path(&id);
    let file = tokio::fs::File::open(&path).await.ok();
    opts.log.raw = rec.spec.tty;
    let (tx, rx) = mpsc::channel::<web::Bytes>(32);
    actix_rt::spawn(pump(path, file, opts.log.clone(), done, tx));
    let fifo = rec
        .spec
        .open_stdin
        .then(|| state.shared.run_container_dir(&rec).join(STDIN_FIFO));
    Ok((opts, rx, fifo, rec.spec.tty))
}

/// What an attach serves: its options, the output, the stdin FIFO (when stdin is open),
/// whether the container has a terminal.
type Prepared = (
    AttachOptions,
    mpsc::Receiver<web::Bytes>,
    Option<PathBuf>,
    bool,
);

/// Writes the frames until the container stopped, then closes the connection.
pub(crate) async fn send_output(mut wr: OwnedWriteHalf, mut output: mpsc::Receiver<web::Bytes>) {
    while let Some(frame) = output.recv().await {
        if wr.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// Copies the client's bytes to the stdin FIFO until the client's EOF (which closes it)
/// or, with `escape`, the detach keys. Bytes sent before the container runs (the FIFO has
/// no reader yet) are held and sent once it does.
async fn feed_stdin(mut rd: OwnedReadHalf, fifo: PathBuf, mut escape: Option<Escape>) {
    let mut pending = Vec::new();
    let mut sender = None;
    let mut ended = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if sender.is_none() {
            sender = tokio::net::unix::pipe::OpenOptions::new()
                .open_sender(&fifo)
                .ok();
        }
        if let Some(s) = sender.as_mut() {
            if s.write_all(&pending).await.is_err() || ended {
                return;
            }
            pending.clear();
        } else if ended || pending.len() >= MAX_EARLY_STDIN {
            tokio::time::sleep(FIFO_RETRY).await;
            continue;
        }
        let read = if sender.is_some() {
            Some(rd.read(&mut buf).await)
        } else {
            tokio::select! {
                r = rd.read(&mut buf) => Some(r),
                () = tokio::time::sleep(FIFO_RETRY) => None,
            }
        };
        match read {
            None => {}
            Some(Ok(0) | Err(_)) => ended = true,
            Some(Ok(n)) => match escape.as_mut() {
                Some(esc) => ended = esc.filter(&buf[..n], &mut pending),
                None => pending.extend_from_slice(&buf[..n]),
            },
        }
    }
}

/// Copies the client's bytes to an exec's stdin until the client's EOF or, with `escape`,
/// the detach keys; the stdin is then dropped.
pub(crate) async fn copy_input(
    mut rd: OwnedReadHalf,
    mut stdin: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    mut escape: Option<Escape>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pass = Vec::new();
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pass.clear();
        let detached = match escape.as_mut() {
            Some(esc) => esc.filter(&buf[..n], &mut pass),
            None => {
                pass.extend_from_slice(&buf[..n]);
                false
            }
        };
        if stdin.write_all(&pass).await.is_err() || stdin.flush().await.is_err() || detached {
            return;
        }
    }
}

/// An error as a complete HTTP response (the connection is closed after it).
pub(crate) fn error_response(e: &ApiError) -> Vec<u8> {
    let status = e.status_code();
    let body = serde_json::json!({ "message": e.message() }).to_string();
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Api-Version: {}\r\nConnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
        crate::api::routes::system::API_VERSION,
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_attach_heads_only() {
        let head = b"POST /v1.44/containers/abc/attach?stderr=1&stdout=1&stream=1 HTTP/1.1\r\n\
                     Host: api.moby.localhost\r\nContent-Length: 0\r\nConnection: Upgrade\r\n\
                     Upgrade: tcp\r\n\r\nstdin bytes";
        match parse_head(head) {
            Some(Peeked::Attach(a)) => {
                assert_eq!(a.id, "abc");
                assert_eq!(a.query, "stderr=1&stdout=1&stream=1");
                assert_eq!(a.head_len, head.len() - b"stdin bytes".len());
                assert_eq!(a.body_len, 0);
            }
            other => panic!("not an attach: {other:?}"),
        }
        assert!(parse_head(b"POST /containers/abc/attach HTTP/1.1\r\nHost:").is_none());
        assert!(matches!(
            parse_head(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Peeked::Other(Some(_)))
        ));
        assert!(matches!(
            parse_head(b"POST /containers/abc/start HTTP/1.0\r\n\r\n"),
            Some(Peeked::Other(Some(_)))
        ));
        let id = |p| hijack_target(p).map(|(_, id)| id);
        assert_eq!(id("/containers/x/attach"), Some("x"));
        assert_eq!(id("/v1.24/containers/x/attach"), Some("x"));
        assert_eq!(id("/vx/containers/x/attach"), None);
        let exec = b"POST /v1.44/exec/e1/start HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\
                     Upgrade: tcp\r\n\r\n{}";
        match parse_head(exec) {
            Some(Peeked::ExecStart(a)) => {
                assert_eq!((a.id.as_str(), a.body_len, a.upgrade), ("e1", 2, true));
            }
            other => panic!("not an exec start: {other:?}"),
        }
        assert!(matches!(
            parse_head(b"POST /exec/e1/resize HTTP/1.0\r\n\r\n"),
            Some(Peeked::Other(Some(_)))
        ));
    }

    #[test]
    fn client_lengths_never_size_a_buffer() {
        let attach = |cl: &str| {
            let head =
                format!("POST /containers/c/attach HTTP/1.0\r\nContent-Length: {cl}\r\n\r\n");
            parse_head(head.as_bytes())
        };
        for huge in ["18446744073709551615", "18446744073709551600", "1048577"] {
            assert!(
                matches!(
                    attach(huge),
                    Some(Peeked::Refused(ApiError::BodyTooLarge { .. }))
                ),
                "{huge}"
            );
        }
        assert!(matches!(
            attach("99999999999999999999999"),
            Some(Peeked::Refused(ApiError::ContentLength { .. }))
        ));
        assert!(matches!(attach("1048576"), Some(Peeked::Attach(a)) if a.body_len == 1 << 20));
        let chunked =
            b"POST /exec/e/start HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            parse_head(chunked),
            Some(Peeked::Refused(ApiError::LengthRequired { .. }))
        ));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let head = format!("GET /_ping HTTP/1.0\r\n{many}\r\n");
        assert!(matches!(
            parse_head(head.as_bytes()),
            Some(Peeked::Refused(ApiError::HeadTooLarge { .. }))
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/2.0\r\n\r\n"),
            Some(Peeked::Refused(ApiError::MalformedHead(_)))
        ));
    }

    #[test]
    fn errors_are_json_responses() {
        let text = String::from_utf8(error_response(&ApiError::NoSuchImage("x".into()))).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Type: application/json\r\n"));
        assert!(text.ends_with(r#"{"message":"No such image: x"}"#));
    }
}
