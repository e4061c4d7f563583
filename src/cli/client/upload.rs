//! An upload streamed from a reader (a file, stdin): read in 1 MiB pieces on a thread of
//! its own and sent as they come (chunked), so the CLI holds one piece at a time whatever
//! the size (`moor image import`, `moor image load`), with a progress bar when asked.

use std::io::Read;

use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::http::Method;

use super::{check_status, collect, Client, ClientError};

/// The piece read at a time.
const PIECE: usize = 1 << 20;

impl Client {
    /// `POST path` with `reader`'s bytes as the body (`content_type`), `progress` moved on
    /// as they are read; returns the whole answer.
    pub fn post_reader(
        &self,
        path: &str,
        content_type: &str,
        reader: impl Read + Send + 'static,
        progress: Option<indicatif::ProgressBar>,
    ) -> Result<Bytes, ClientError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut piece = vec![0u8; PIECE];
            loop {
                let item = match reader.read(&mut piece) {
                    Ok(0) => break,
                    Ok(n) => Ok(Bytes::copy_from_slice(&piece[..n])),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                if let (Ok(bytes), Some(bar)) = (&item, &progress) {
                    bar.inc(bytes.len() as u64);
                }
                let failed = item.is_err();
                // The request gone (refused early): nothing more to send.
                if tx.blocking_send(item).is_err() || failed {
                    break;
                }
            }
            if let Some(bar) = progress {
                bar.finish_and_clear();
            }
        });
        let pieces = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item.map(Frame::data), rx))
        });
        let body = StreamBody::new(pieces).boxed_unsync();
        self.runtime.block_on(async {
            let response = self
                .send_body(Method::POST, path, body, Some(content_type), None)
                .await?;
            let response = check_status(response, path).await?;
            collect(response.into_body(), path).await
        })
    }
}
