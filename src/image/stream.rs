//! An import unpacked as its upload arrives: the HTTP body's pieces go through a channel to
//! a reader on the blocking pool, which hashes every byte (the image id covers the upload's
//! sha256) and feeds the unpack (compression detected from the first bytes). Nothing is
//! written whole to disk first; what is unpacked stays in a work directory under `tmp/`
//! until [`super::ImageDirs::commit`].

use std::io::{self, Read};

use hyper::body::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{unpack, ImageDirs, ImageError, Unpacked};

/// The reading end: pieces from the channel, hashed as they are read. A piece that is an
/// error (the upload broke) is the reader's error; the channel closed is the end.
pub struct Pieces {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    piece: Bytes,
    hasher: Sha256,
    /// Bytes read so far.
    pub read: u64,
}

impl Pieces {
    /// The reader of `rx`.
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Pieces {
        Pieces {
            rx,
            piece: Bytes::new(),
            hasher: Sha256::new(),
            read: 0,
        }
    }

    /// Reads what is left (the upload's bytes past the tar's end count in its hash) and
    /// returns the sha256 of everything, as hex.
    pub fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        let digest = self.hasher.finalize();
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.piece.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(piece) => self.piece = piece?,
            }
        }
        let n = buf.len().min(self.piece.len());
        let taken = self.piece.split_to(n);
        buf[..n].copy_from_slice(&taken);
        self.hasher.update(&taken);
        self.read += n as u64;
        Ok(n)
    }
}

impl ImageDirs {
    /// Unpacks the upload `pieces` brings (plain, gzip or zstd) into a work directory of its
    /// own, refusing more than `limit` unpacked bytes; returns it with the upload's sha256.
    /// Run on the blocking pool.
    pub fn unpack_stream(
        &self,
        mut pieces: Pieces,
        limit: u64,
    ) -> Result<(Unpacked, String), ImageError> {
        let (work, rootfs) = self.new_work("upload")?;
        let size = unpack::unpack_stream(&mut pieces, &rootfs, limit)?;
        let sha = pieces.finish().map_err(|source| ImageError::Io {
            what: "read the upload past the tar's end into",
            path: work.0.clone(),
            source,
        })?;
        Ok((Unpacked { work, size }, sha))
    }
}
