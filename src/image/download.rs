//! One layer blob's download into its hidden file under `images/tmp/`: streamed, hashed on
//! the way, with Docker's `Downloading` progress. A download that breaks (a reset connection,
//! a truncated answer) is taken up again where it broke with an HTTP Range request, as
//! Docker's puller does: up to [`ATTEMPTS`] tries, `Retrying in N seconds` between them. A
//! registry that answers a Range request with the whole blob (200: no Range support) starts
//! it again from zero. Nothing is trusted piecewise: the caller checks the sha256 of the whole
//! file before anything of it becomes visible.

use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use oci_client::client::BlobResponse;
use oci_client::manifest::OciDescriptor;
use oci_client::{Client, Reference};

use super::registry::{classify, layer_error, short, PullError};
use super::{HashingFile, ImageError};

/// How many times a layer's download is tried (Docker's `maxDownloadAttempts`).
pub const ATTEMPTS: u32 = 5;

/// A blob's bytes as they come.
type Bytes = BoxStream<'static, Result<hyper::body::Bytes, std::io::Error>>;

/// Why one try ended early.
enum Broke {
    /// The stream broke: worth another try from where it broke.
    Stream(std::io::Error),
    /// The file could not be written: no other try helps.
    File(ImageError),
}

/// The stream of `layer` from byte `offset` on; `true` with it when the registry sent the
/// whole blob instead.
async fn open(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
    offset: u64,
) -> Result<(Bytes, bool), PullError> {
    let failed = |e| classify(&reference.whole(), e);
    if offset == 0 {
        let whole = client.pull_blob_stream(reference, layer).await;
        return whole.map(|s| (s.stream, true)).map_err(failed);
    }
    let answer = client.pull_blob_stream_partial(reference, layer, offset, None);
    match answer.await.map_err(failed)? {
        BlobResponse::Partial(s) => Ok((s.stream, false)),
        BlobResponse::Full(s) => Ok((s.stream, true)),
    }
}

/// Appends `stream` to `file`, counting in `current`.
async fn copy(
    mut stream: Bytes,
    file: &mut HashingFile,
    current: &mut u64,
    total: u64,
    send: &impl Fn(&str, Option<(u64, u64)>),
) -> Result<(), Broke> {
    let mut shown = *current;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Broke::Stream)?;
        file.write(&chunk).map_err(Broke::File)?;
        *current += chunk.len() as u64;
        // A line per 512 KiB and the last one: enough for a bar, not a flood.
        if *current - shown >= 512 << 10 || *current == total {
            send("Downloading", Some((*current, total)));
            shown = *current;
        }
    }
    Ok(())
}

/// Downloads `layer` of `reference` into `file` (empty), resuming a broken download with a
/// Range request; `send` gets the layer's progress.
pub async fn download(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
    file: &mut HashingFile,
    send: &impl Fn(Option<String>, &str, Option<(u64, u64)>),
) -> Result<(), PullError> {
    let id = short(&layer.digest);
    let send = |status: &str, detail| send(Some(id.clone()), status, detail);
    let total = u64::try_from(layer.size).unwrap_or(0);
    let mut current = 0u64;
    let mut attempt = 1;
    loop {
        let (stream, whole) = open(client, reference, layer, current).await?;
        if whole && current > 0 {
            tracing::info!(digest = %layer.digest, offset = current, "no Range support: the download starts again");
            file.restart().map_err(|e| layer_error(&layer.digest, e))?;
            current = 0;
        }
        let source = match copy(stream, file, &mut current, total, &send).await {
            Ok(()) => return Ok(()),
            Err(Broke::File(e)) => return Err(layer_error(&layer.digest, e)),
            Err(Broke::Stream(source)) => source,
        };
        // All bytes came (a digest oci-client found wrong) or no tries left: an error.
        if current >= total || attempt >= ATTEMPTS {
            return Err(PullError::Download {
                digest: layer.digest.clone(),
                source,
            });
        }
        let wait = u64::from(attempt);
        tracing::warn!(digest = %layer.digest, offset = current, attempt, error = %source,
            "layer download broke: resuming");
        let plural = if wait == 1 { "" } else { "s" };
        send(&format!("Retrying in {wait} second{plural}"), None);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        attempt += 1;
    }
}
