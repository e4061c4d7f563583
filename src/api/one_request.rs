//! One request per connection, as actix-http sees it: [`OneRequest`] hands it the bytes of the
//! connection's first request (its head, checked where it was peeked at, and its body as the
//! head frames it) and nothing after. A client that pipelines a second request gets no answer
//! to it (the connection closes after the first answer, which says `Connection: close`), never
//! actix-http's own plain-text 400 for a malformed head. End of input still reaches actix-http,
//! so a streamed answer stops when its client goes.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::head::BodyFacts;

/// How the first request ends, known from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Bytes of the head.
    pub head_len: usize,
    /// What the head says of the body.
    pub body: BodyFacts,
}

/// Where the reader is in the first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// This many bytes of head and fixed-length body remain, then (if chunked) the chunks.
    Bytes(u64, bool),
    /// Inside a chunked body.
    Chunks(Chunk),
    /// The request has ended: later bytes are dropped.
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

impl Left {
    fn of(framing: Option<Framing>) -> Left {
        let Some(f) = framing else {
            return Left::All;
        };
        let fixed = (f.head_len as u64).saturating_add(f.body.content_length.unwrap_or(0));
        match f.body.chunked {
            true => Left::Bytes(f.head_len as u64, true),
            false => Left::Bytes(fixed, false),
        }
    }

    /// How many of `bytes` belong to the request; moves past them.
    fn take(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        while used < bytes.len() {
            match *self {
                Left::All => return bytes.len(),
                Left::Done => return used,
                Left::Bytes(0, true) => *self = Left::Chunks(Chunk::Size(0, false)),
                Left::Bytes(0, false) => *self = Left::Done,
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
        if *self == Left::Bytes(0, false) {
            *self = Left::Done;
        }
        used
    }
}

/// A connection that reads as if it carried only its first request.
#[derive(Debug)]
pub struct OneRequest<S> {
    inner: S,
    left: Left,
}

impl<S> OneRequest<S> {
    /// Wraps `inner`, whose first request is framed as `framing` (None: unknown, pass all).
    pub fn new(inner: S, framing: Option<Framing>) -> Self {
        OneRequest {
            inner,
            left: Left::of(framing),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for OneRequest<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.left != Left::Done {
                let start = buf.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                let used = this.left.take(&buf.filled()[start..]);
                buf.set_filled(start + used);
                return Poll::Ready(Ok(()));
            }
            // Past the request: drop what comes, pass on the end of input.
            let mut scratch = [0u8; 4096];
            let mut drop = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut drop))?;
            if drop.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for OneRequest<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(head_len: usize, content_length: Option<u64>, chunked: bool) -> Option<Framing> {
        Some(Framing {
            head_len,
            body: BodyFacts {
                content_length,
                chunked,
            },
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
