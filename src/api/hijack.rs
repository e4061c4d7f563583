//! Docker's hijacked `attach`, served raw on the socket (see `server.rs` for why).
//!
//! The docker CLI sends `POST /containers/{id}/attach?stream=1&stdout=1&stderr=1[&stdin=1]`
//! with `Upgrade: tcp` (on a fresh connection; docker-py may send it on a kept-alive one,
//! after other requests: [`crate::api::requests`]) and expects `101 UPGRADED`, then the
//! multiplexed stream (8-byte frames). Output is the container's json log followed from its
//! current end (from its start with `logs=1`) until the container stops; stdin bytes go to
//! the FIFO the shim feeds to the container's stdin, and the client's half-close (EOF) is
//! the container's stdin EOF. Both are told apart where their head is peeked at
//! ([`crate::api::peek`]); `POST /exec/{id}/start` is served by
//! [`crate::api::routes::exec::serve_start`] with the same helpers.

use std::path::PathBuf;
use std::time::Duration;

use actix_rt::net::UnixStream;
use actix_web::{web, ResponseError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::api::detach::{self, Escape};
use crate::api::error::ApiError;
use crate::api::guard::unwinding;
use crate::api::peek::AttachHead;
use crate::api::routes::logs::{follow, forward, LogOptions};
use crate::api::routes::{flag, Query};
use crate::api::server::{ApiState, MAX_BODY};
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{InspectContainer, ResolveContainer, WaitCondition, WaitContainer};
use crate::shim::protocol::STDIN_FIFO;
use moor_state::State;

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

/// The answer head that switches a connection to the raw multiplexed stream.
pub(crate) const UPGRADED: &str = "HTTP/1.1 101 UPGRADED\r\n\
                    Content-Type: application/vnd.docker.multiplexed-stream\r\n\
                    Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

/// The answer head of an attach to a Tty container: its one stream, raw (Docker's).
pub(crate) const UPGRADED_RAW: &str = "HTTP/1.1 101 UPGRADED\r\n\
                    Content-Type: application/vnd.docker.raw-stream\r\n\
                    Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

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
    linger(io).await;
}

/// Ends the connection's output, then reads and drops what the client still sends (a
/// bounded amount, for a bounded time) before the close: see [`LINGER`].
pub(crate) async fn linger(mut io: UnixStream) {
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
    // Following from now, before the client is answered and can write to stdin.
    let frames = follow(&path, file, opts.log.clone(), done);
    actix_rt::spawn(forward(frames, tx));
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
    fn errors_are_json_responses() {
        let text = String::from_utf8(error_response(&ApiError::NoSuchImage("x".into()))).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Type: application/json\r\n"));
        assert!(text.ends_with(r#"{"message":"No such image: x"}"#));
    }
}
