//! A kept-alive connection as actix-http sees it: [`Requests`] hands it one request at a
//! time, its head (checked where it was peeked at, [`crate::api::peek`]) and its body as the
//! head frames it, and never reads past it. At the boundary the next head is peeked at and
//! checked exactly as a connection's first one: a well-formed one passes to actix-http
//! (keep-alive); a hijack (attach, exec start) or a refused head ends actix-http's input
//! there, and the stream is handed back ([`Connection::take_next`]) to be served raw or
//! answered with Docker's JSON error. actix-http's own parser never sees a head moor has not
//! checked, so its plain-text 400 never reaches a client. An answer whose next head is
//! already known to be refused (pipelined) says `Connection: close` and ends the connection
//! ([`close_before_refusal`]). End of input still reaches actix-http, so a streamed answer
//! stops when its client goes.

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use actix_rt::net::UnixStream;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::peek::{Framing, HeadPeek, Peeked};

/// Where the reader is in the current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// This many bytes of head and fixed-length body remain, then (if chunked) the chunks.
    Bytes(u64, bool),
    /// Inside a chunked body.
    Chunks(Chunk),
    /// The request has ended: the next head is peeked at.
    Done,
    /// Framing unknown (a head too slow to peek whole) or malformed: everything passes.
    All,
}

/// A chunked body's framing (RFC 9112 §7.1), tracked byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In a size line: the size so far, whether past the digits (an extension).
    Size(u64, bool),
    /// The size line's CR was seen.
    SizeLf(u64),
    /// This many data bytes remain.
    Data(u64),
    /// Expecting the CR after the data.
    DataCr,
    /// Expecting the LF after the data.
    DataLf,
    /// In the trailer: whether the current line is still empty, whether its CR was seen.
    Trailer(bool, bool),
}

/// What one byte does to a chunked body: the next state, or the end (`None`), or malformed.
fn step(state: Chunk, byte: u8) -> Result<Option<Chunk>, ()> {
    use Chunk::*;
    Ok(Some(match (state, byte) {
        (Size(n, false), b) if b.is_ascii_hexdigit() => {
            let digit = u64::from((b as char).to_digit(16).ok_or(())?);
            Size(
                n.checked_mul(16)
                    .and_then(|n| n.checked_add(digit))
                    .ok_or(())?,
                false,
            )
        }
        (Size(n, _), b'\r') => SizeLf(n),
        (Size(n, _), _) => Size(n, true),
        (SizeLf(0), b'\n') => Trailer(true, false),
        (SizeLf(n), b'\n') => Data(n),
        (Data(n), _) if n > 1 => Data(n - 1),
        (Data(_), _) => DataCr,
        (DataCr, b'\r') => DataLf,
        (DataLf, b'\n') => Size(0, false),
        (Trailer(empty, false), b'\r') => Trailer(empty, true),
        (Trailer(true, true), b'\n') => return Ok(None),
        (Trailer(false, true), b'\n') => Trailer(true, false),
        (Trailer(_, _), _) => Trailer(false, false),
        _ => return Err(()),
    }))
}

impl Chunk {
    /// The fewest bytes left in the request from this state (at least 1): reading that many
    /// never reads past the request.
    fn min_left(self) -> u64 {
        use Chunk::*;
        // The last chunk and the trailer's end: `0\r\n\r\n`.
        const LAST: u64 = 5;
        match self {
            Size(_, _) => 4,
            SizeLf(0) => 3,
            SizeLf(n) => n.saturating_add(3 + LAST),
            Data(n) => n.saturating_add(2 + LAST),
            DataCr => 2 + LAST,
            DataLf => 1 + LAST,
            Trailer(true, false) => 2,
            Trailer(true, true) => 1,
            Trailer(false, false) => 4,
            Trailer(false, true) => 3,
        }
    }
}

impl Left {
    fn of(framing: Option<Framing>) -> Left {
        let Some(f) = framing else {
            return Left::All;
        };
        let fixed = (f.head_len as u64).saturating_add(f.body.content_length.unwrap_or(0));
        let mut left = match f.body.chunked {
            true => Left::Bytes(f.head_len as u64, true),
            false => Left::Bytes(fixed, false),
        };
        left.settle();
        left
    }

    /// Moves past an exhausted fixed part.
    fn settle(&mut self) {
        match *self {
            Left::Bytes(0, true) => *self = Left::Chunks(Chunk::Size(0, false)),
            Left::Bytes(0, false) => *self = Left::Done,
            _ => {}
        }
    }

    /// How many bytes may be read without reading past the request.
    fn safe_len(&self) -> usize {
        let n = match *self {
            Left::All => u64::MAX,
            Left::Done => 0,
            Left::Bytes(n, _) => n,
            Left::Chunks(c) => c.min_left(),
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// How many of `bytes` belong to the request; moves past them.
    fn take(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        while used < bytes.len() {
            self.settle();
            match *self {
                Left::All => return bytes.len(),
                Left::Done => return used,
                Left::Bytes(n, chunked) => {
                    let k = n.min((bytes.len() - used) as u64);
                    used += k as usize;
                    *self = Left::Bytes(n - k, chunked);
                }
                Left::Chunks(state) => {
                    *self = match step(state, bytes[used]) {
                        Ok(Some(next)) => Left::Chunks(next),
                        Ok(None) => Left::Done,
                        Err(()) => Left::All,
                    };
                    used += 1;
                }
            }
        }
        self.settle();
        used
    }
}

/// What a connection's requests share with their answers and with what serves the
/// connection after actix-http.
#[derive(Debug, Default)]
pub struct Connection {
    /// Request heads handed to actix-http so far.
    requests: Cell<u64>,
    /// Answers begun so far (actix-http answers a connection's requests in order).
    answers: Cell<u64>,
    /// The head found after the last request actix-http got, when it is not for actix-http
    /// (a hijack or a refusal): actix-http's input ended there.
    next: RefCell<Option<Peeked>>,
    /// The number of the request after which `next` is a refusal.
    refused_after: Cell<Option<u64>>,
    /// The answer to that request said `Connection: close`: nothing more is written.
    closed_by_answer: Cell<bool>,
    /// The stream, handed back when actix-http dropped it with `next` set.
    handed: RefCell<Option<UnixStream>>,
}

impl Connection {
    /// After actix-http is done: the stream and the head left to serve on it (raw), if
    /// any. An answer that already said `Connection: close` leaves [`Peeked::Closed`].
    pub fn take_next(&self) -> Option<(UnixStream, Peeked)> {
        let io = self.handed.borrow_mut().take()?;
        let next = self.next.borrow_mut().take()?;
        match self.closed_by_answer.get() {
            true => Some((io, Peeked::Closed)),
            false => Some((io, next)),
        }
    }
}

/// A connection that reads as the requests actix-http may see, one at a time.
#[derive(Debug)]
pub struct Requests {
    /// The stream; handed to [`Connection`] on drop when a head is left to serve raw.
    io: Option<UnixStream>,
    /// Where the reader is in the current request.
    left: Left,
    /// The current request is the connection's last: what follows it is dropped.
    last: bool,
    /// The peek at the next head, at the current request's boundary.
    peek: HeadPeek,
    /// Shared with the answers (through the connection's extensions) and the server.
    conn: Rc<Connection>,
}

impl Requests {
    /// Wraps `io`, whose first request is framed as `framing` (None: unknown, pass all).
    pub fn new(io: UnixStream, framing: Option<Framing>, conn: Rc<Connection>) -> Self {
        conn.requests.set(1);
        Requests {
            io: Some(io),
            left: Left::of(framing),
            last: framing.is_some_and(|f| f.last),
            peek: HeadPeek::new(None),
            conn,
        }
    }

    /// What the connection's requests share.
    pub fn connection(&self) -> &Rc<Connection> {
        &self.conn
    }

    /// At a request's boundary: Ready(true) once the next request is for actix-http,
    /// Ready(false) for the end of its input (the client closed, or the head is left to
    /// serve raw).
    fn poll_next_head(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.conn.next.borrow().is_some() {
            return Poll::Ready(Ok(false));
        }
        let io = self.io.as_ref().ok_or_else(handed_off)?;
        match ready!(self.peek.poll_peek(io, cx))? {
            Peeked::Closed => Poll::Ready(Ok(false)),
            Peeked::Other(framing) => {
                self.left = Left::of(framing);
                self.last = framing.is_some_and(|f| f.last);
                self.conn.requests.set(self.conn.requests.get() + 1);
                Poll::Ready(Ok(true))
            }
            next => {
                if matches!(next, Peeked::Refused(_)) {
                    self.conn.refused_after.set(Some(self.conn.requests.get()));
                }
                *self.conn.next.borrow_mut() = Some(next);
                Poll::Ready(Ok(false))
            }
        }
    }
}

/// The stream was handed back: nothing reads or writes it here any more.
fn handed_off() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was handed back",
    )
}

/// Reads and drops what follows a connection's last request; passes on the end of input.
fn drop_rest(io: &mut UnixStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    loop {
        let mut scratch = [0u8; 4096];
        let mut drop = ReadBuf::new(&mut scratch);
        ready!(Pin::new(&mut *io).poll_read(cx, &mut drop))?;
        if drop.filled().is_empty() {
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncRead for Requests {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.left == Left::Done {
            if this.last {
                return drop_rest(this.io.as_mut().ok_or_else(handed_off)?, cx);
            }
            if !ready!(this.poll_next_head(cx))? {
                return Poll::Ready(Ok(()));
            }
        }
        let limit = this.left.safe_len().min(buf.remaining());
        if limit == 0 {
            return Poll::Ready(Ok(()));
        }
        let io = this.io.as_mut().ok_or_else(handed_off)?;
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(limit));
        ready!(Pin::new(io).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        let used = this.left.take(part.filled());
        debug_assert_eq!(used, n, "a read went past the request");
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Requests {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let io = self.get_mut().io.as_mut().ok_or_else(handed_off)?;
        Pin::new(io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = self.get_mut().io.as_mut().ok_or_else(handed_off)?;
        Pin::new(io).poll_flush(cx)
    }

    /// A stream to be handed back is only flushed: what serves its next head writes on.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let handing = this.conn.next.borrow().is_some();
        let io = this.io.as_mut().ok_or_else(handed_off)?;
        match handing {
            true => Pin::new(io).poll_flush(cx),
            false => Pin::new(io).poll_shutdown(cx),
        }
    }
}

impl Drop for Requests {
    fn drop(&mut self) {
        if self.conn.next.borrow().is_some() {
            *self.conn.handed.borrow_mut() = self.io.take();
        }
    }
}

/// Makes the answer to the request just before a refused head (pipelined, already peeked at)
/// say `Connection: close`: the connection ends with it (RFC 9112 §9.6), and the refused head
/// gets no answer. A head refused after its previous answer kept the connection open is
/// answered with Docker's JSON error instead.
pub async fn close_before_refusal(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let conn = req.conn_data::<Rc<Connection>>().cloned();
    let number = conn.as_ref().map(|c| {
        c.answers.set(c.answers.get() + 1);
        c.answers.get()
    });
    let mut res = next.call(req).await?;
    if let Some(conn) =
        conn.filter(|c| c.refused_after.get().is_some() && c.refused_after.get() == number)
    {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        conn.closed_by_answer.set(true);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::head::BodyFacts;

    fn framing(head_len: usize, content_length: Option<u64>, chunked: bool) -> Option<Framing> {
        Some(Framing {
            head_len,
            body: BodyFacts {
                content_length,
                chunked,
            },
            last: false,
        })
    }

    /// Feeds `bytes` in pieces of `piece`; what passes.
    fn pass(framing: Option<Framing>, bytes: &[u8], piece: usize) -> Vec<u8> {
        let mut left = Left::of(framing);
        let mut out = Vec::new();
        for part in bytes.chunks(piece) {
            let used = left.take(part);
            out.extend_from_slice(&part[..used]);
        }
        out
    }

    #[test]
    fn a_fixed_length_request_ends_at_its_body() {
        let first = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let all = [&first[..], b"GET /\x01 HTTP/1.1\r\n\r\n"].concat();
        for piece in [1, 2, 7, all.len()] {
            assert_eq!(
                pass(framing(first.len() - 3, Some(3), false), &all, piece),
                first
            );
        }
    }

    #[test]
    fn a_chunked_request_ends_after_its_trailer() {
        let head = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body = b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        let first = [&head[..], &body[..]].concat();
        let all = [&first[..], b"GET / HTTP/1.1\r\n\r\n"].concat();
        for piece in [1, 3, all.len()] {
            assert_eq!(pass(framing(head.len(), None, true), &all, piece), first);
        }
    }

    /// Reads as [`Requests`] does, each read at most [`Left::safe_len`]: what it got, and
    /// whether every read was used whole (none went past the request).
    fn read_bounded(framing: Option<Framing>, bytes: &[u8]) -> (Vec<u8>, bool) {
        let mut left = Left::of(framing);
        let (mut at, mut whole) = (0, true);
        while left != Left::Done && at < bytes.len() {
            let n = left.safe_len().min(bytes.len() - at);
            whole &= left.take(&bytes[at..at + n]) == n;
            at += n;
        }
        (bytes[..at].to_vec(), whole)
    }

    #[test]
    fn bounded_reads_never_pass_the_boundary() {
        let fixed = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let next = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let all = [&fixed[..], next].concat();
        let got = read_bounded(framing(fixed.len() - 3, Some(3), false), &all);
        assert_eq!(got, (fixed.to_vec(), true));
        let head = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            &b"0\r\n\r\n"[..],
            b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
            b"00000\r\n\r\n",
        ] {
            let first = [&head[..], body].concat();
            let all = [&first[..], next].concat();
            let got = read_bounded(framing(head.len(), None, true), &all);
            assert_eq!(got, (first, true), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn malformed_chunks_or_an_unknown_head_pass_everything() {
        let all = b"POST /a HTTP/1.1\r\n\r\nzz\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(pass(framing(20, None, true), all, 4), all.to_vec());
        assert_eq!(pass(None, all, 4), all.to_vec());
    }

    #[test]
    fn a_chunk_size_past_u64_is_malformed() {
        assert_eq!(step(Chunk::Size(u64::MAX, false), b'f'), Err(()));
    }
}
