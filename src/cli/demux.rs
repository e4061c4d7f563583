//! Docker's multiplexed stream: frames of an 8-byte header (stream type 0 stdin, 1 stdout,
//! 2 stderr, 3 system error; three zero bytes; big-endian u32 length) and the payload.
//! Frames may be split anywhere across reads, so the demultiplexer buffers.

use std::io::Write;

use thiserror::Error;

use super::client::BodyStream;

/// Length of a frame header.
const HEADER_LEN: usize = 8;

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Type 0: docker writes it to stdout.
    Stdin,
    /// Type 1.
    Stdout,
    /// Type 2.
    Stderr,
    /// Type 3: an error from the daemon in the middle of the stream.
    System,
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its stream.
    pub kind: StreamKind,
    /// Its bytes.
    pub payload: Vec<u8>,
}

/// Why a stream could not be demultiplexed or copied.
#[derive(Debug, Error)]
pub enum DemuxError {
    /// A header with an unknown stream type: this is not a multiplexed stream.
    #[error("unknown stream type {kind} in a multiplexed stream")]
    UnknownStream {
        /// The byte found.
        kind: u8,
    },
    /// The daemon reported an error inside the stream.
    #[error("{message}")]
    System {
        /// Its text.
        message: String,
    },
    /// Reading the stream failed.
    #[error("read the stream")]
    Read(#[source] super::client::ClientError),
    /// Writing our stdout or stderr failed.
    #[error("write the output")]
    Write(#[source] std::io::Error),
}

/// Splits a byte stream into frames.
#[derive(Debug, Default)]
pub struct Demuxer {
    /// Bytes received but not yet a whole frame.
    buffer: Vec<u8>,
}

impl Demuxer {
    /// Adds bytes; returns every frame now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, DemuxError> {
        self.buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut start = 0;
        while self.buffer.len() - start >= HEADER_LEN {
            let header = &self.buffer[start..start + HEADER_LEN];
            let kind = match header[0] {
                0 => StreamKind::Stdin,
                1 => StreamKind::Stdout,
                2 => StreamKind::Stderr,
                3 => StreamKind::System,
                kind => return Err(DemuxError::UnknownStream { kind }),
            };
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let end = start + HEADER_LEN + len;
            if self.buffer.len() < end {
                break;
            }
            frames.push(Frame {
                kind,
                payload: self.buffer[start + HEADER_LEN..end].to_vec(),
            });
            start = end;
        }
        self.buffer.drain(..start);
        Ok(frames)
    }

    /// Whether a partial frame is left (the stream ended in the middle of one).
    pub fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }
}

/// Copies a multiplexed body to `out` (stdin and stdout frames) and `err` (stderr frames)
/// until it ends. A write to a closed pipe ends the copy quietly.
pub fn copy_stream<O: Write, E: Write>(
    stream: &mut BodyStream<'_>,
    out: &mut O,
    err: &mut E,
) -> Result<(), DemuxError> {
    let mut demuxer = Demuxer::default();
    while let Some(chunk) = stream.next_chunk().map_err(DemuxError::Read)? {
        for frame in demuxer.push(&chunk)? {
            let written = match frame.kind {
                StreamKind::Stdin | StreamKind::Stdout => write_all(out, &frame.payload),
                StreamKind::Stderr => write_all(err, &frame.payload),
                StreamKind::System => {
                    return Err(DemuxError::System {
                        message: String::from_utf8_lossy(&frame.payload).trim().to_string(),
                    })
                }
            };
            match written {
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other.map_err(DemuxError::Write)?,
            }
        }
    }
    Ok(())
}

/// Writes and flushes, so output interleaves as the container wrote it.
fn write_all<W: Write>(writer: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind, 0, 0, 0];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn whole_frames() {
        let mut bytes = frame(1, b"out\n");
        bytes.extend(frame(2, b"err\n"));
        bytes.extend(frame(1, b""));
        let frames = Demuxer::default().push(&bytes).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames[0],
            Frame {
                kind: StreamKind::Stdout,
                payload: b"out\n".to_vec()
            }
        );
        assert_eq!(
            frames[1],
            Frame {
                kind: StreamKind::Stderr,
                payload: b"err\n".to_vec()
            }
        );
        assert!(frames[2].payload.is_empty());
    }

    #[test]
    fn frames_split_at_every_byte() {
        let mut bytes = frame(1, b"hello ");
        bytes.extend(frame(2, b"world"));
        let mut demuxer = Demuxer::default();
        let mut frames = Vec::new();
        for byte in &bytes {
            frames.extend(demuxer.push(std::slice::from_ref(byte)).unwrap());
        }
        assert!(!demuxer.has_partial());
        let kinds: Vec<_> = frames.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [StreamKind::Stdout, StreamKind::Stderr]);
        assert_eq!(frames[0].payload, b"hello ");
        assert_eq!(frames[1].payload, b"world");
    }

    #[test]
    fn partial_frame_waits_for_the_rest() {
        let bytes = frame(1, b"abcdef");
        let mut demuxer = Demuxer::default();
        assert!(demuxer.push(&bytes[..10]).unwrap().is_empty());
        assert!(demuxer.has_partial());
        let frames = demuxer.push(&bytes[10..]).unwrap();
        assert_eq!(frames[0].payload, b"abcdef");
    }

    #[test]
    fn unknown_stream_type_is_an_error() {
        let error = Demuxer::default().push(&frame(9, b"x")).unwrap_err();
        assert!(matches!(error, DemuxError::UnknownStream { kind: 9 }));
    }
}
