//! Request heads peeked at (MSG_PEEK: nothing consumed) where they start on their
//! connection, parsed and checked ([`crate::api::head`]) before anything reads them: a Docker
//! hijack (`POST /containers/{id}/attach`, `POST /exec/{id}/start`) is told apart from what
//! goes to actix-http, and a head actix-http would refuse with plain text is refused here with
//! Docker's JSON. The first head of a connection is peeked at by [`peek`]; each later one, at
//! its request's boundary on a kept-alive connection, by the same [`HeadPeek`].

use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use actix_rt::net::UnixStream;
use nix::sys::socket::{recv, MsgFlags};
use tokio::io::Interest;

use crate::api::error::ApiError;
use crate::api::head::{self, BodyFacts, MAX_HEAD, MAX_HEADERS};
use crate::api::server::MAX_BODY;

/// How long a client may take to send a request head, from a new connection's start or from
/// the first byte of a later head.
const HEAD_DEADLINE: Duration = Duration::from_secs(30);
/// The first peek's size: most heads fit (the docker CLI's are a few hundred bytes).
const FIRST_PEEK: usize = 4 * 1024;
/// How long an incomplete head is left before it is peeked at again.
const HEAD_BACKOFF: Duration = Duration::from_millis(2);

/// What a request head is, peeked at where it starts on its connection.
#[derive(Debug)]
pub enum Peeked {
    /// A hijacked attach.
    Attach(AttachHead),
    /// An exec start (hijacked, or streamed with a plain 200).
    ExecStart(AttachHead),
    /// Anything else: for the HTTP service (nothing consumed), with how the request is framed
    /// (None: its head was too slow to peek whole).
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
    pub(crate) query: String,
    /// Whether the client asked for `Upgrade: tcp` (101) rather than a plain answer.
    pub(crate) upgrade: bool,
}

/// How a request ends and whether its connection carries more, known from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Bytes of the head.
    pub head_len: usize,
    /// What the head says of the body.
    pub body: BodyFacts,
    /// The request is its connection's last (`Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`): nothing after it is read.
    pub last: bool,
}

/// Peeks at the first request head of a new connection (MSG_PEEK: nothing is consumed).
pub async fn peek(io: &UnixStream) -> std::io::Result<Peeked> {
    let mut peek = HeadPeek::new(Some(Instant::now()));
    std::future::poll_fn(|cx| peek.poll_peek(io, cx)).await
}

/// A request head peeked at until it is complete, checked as a whole: the first of a
/// connection ([`peek`]) and each later one at its request's boundary
/// ([`crate::api::requests::Requests`]) go through the same steps.
#[derive(Debug)]
pub struct HeadPeek {
    /// The peek buffer: grown from [`FIRST_PEEK`] up to [`MAX_HEAD`] while a head fills it.
    buf: Vec<u8>,
    /// Since when the head is awaited ([`HEAD_DEADLINE`] counts from there): a new
    /// connection's start, or the first byte of a later head.
    since: Option<Instant>,
    /// The back-off before peeking again at an incomplete head.
    backoff: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl HeadPeek {
    /// A peek whose deadline counts from `since` (None: from the head's first byte).
    pub fn new(since: Option<Instant>) -> HeadPeek {
        HeadPeek {
            buf: vec![0u8; FIRST_PEEK],
            since,
            backoff: None,
        }
    }

    /// Peeks at `io` until the head is complete, refused, too slow or the client closed.
    /// Once ready, the next call starts on the next head (the deadline from its first byte).
    pub fn poll_peek(
        &mut self,
        io: &UnixStream,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<Peeked>> {
        let result = ready!(self.poll_once(io, cx));
        self.since = None;
        Poll::Ready(result)
    }

    fn poll_once(
        &mut self,
        io: &UnixStream,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<Peeked>> {
        loop {
            if let Some(sleep) = self.backoff.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.backoff = None;
            }
            ready!(io.poll_read_ready(cx))?;
            let fd = io.as_raw_fd();
            let buf = &mut self.buf;
            let n = match io.try_io(Interest::READABLE, || {
                recv(fd, &mut buf[..], MsgFlags::MSG_PEEK).map_err(std::io::Error::from)
            }) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            };
            if n == 0 {
                return Poll::Ready(Ok(Peeked::Closed));
            }
            let since = *self.since.get_or_insert_with(Instant::now);
            match parse_head(&self.buf[..n]) {
                Some(p) => return Poll::Ready(Ok(p)),
                None if n == self.buf.len() && n < MAX_HEAD => {
                    self.buf.resize((n * 4).min(MAX_HEAD), 0);
                }
                None if n == self.buf.len() => {
                    return Poll::Ready(Ok(Peeked::Refused(too_large())))
                }
                None if since.elapsed() > HEAD_DEADLINE => {
                    return Poll::Ready(Ok(Peeked::Other(None)))
                }
                // Incomplete head: the socket stays readable, so back off before peeking again.
                None => self.backoff = Some(Box::pin(tokio::time::sleep(HEAD_BACKOFF))),
            }
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
        last: !head::keeps_alive(&req),
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
}
