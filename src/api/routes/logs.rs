//! `GET /containers/{id}/logs`: parses the query, opens the log and hands it to
//! `crate::logs::stream`, whose frames (Docker's multiplexed stream format) become the body.

use std::sync::mpsc::RecvTimeoutError;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::api::error::ApiError;
use crate::api::routes::{flag, time_param, Query};
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{
    InspectContainer, ResolveContainer, WaitCondition, WaitContainer, WaitOutcome,
};
pub use crate::logs::LogOptions;
use crate::logs::{self, LogReader};
use moor_state::State;

/// Chunks of frames that may wait for a slow client (each up to `logs::stream::CHUNK`).
const BUFFERED_CHUNKS: usize = 8;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/logs", web::get().to(logs));
}

async fn logs(
    state: web::Data<ApiState>,
    path: web::Path<super::IdPath>,
    q: Query,
) -> Result<HttpResponse, ApiError> {
    let (id, addr) = state
        .supervisor
        .send(ResolveContainer(path.id.clone()))
        .await
        .map_err(ContainerError::from)??;
    let mut opts = options(&q)?;
    let follow = flag(&q, "follow", false)?;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    // A Tty container's log is one stream, sent raw as Docker does.
    opts.raw = rec.spec.tty;
    let done: Option<logs::stream::Done> = if follow {
        // A container that never ran is followed through its next run.
        let condition = match rec.state {
            State::Created => WaitCondition::NextExit,
            _ => WaitCondition::NotRunning,
        };
        let rx = addr
            .send(WaitContainer(condition))
            .await
            .map_err(ContainerError::from)?;
        Some(stopped(rx))
    } else {
        None
    };
    // Opened before answering: a `--rm` container's log may be unlinked right after it ends.
    let reader = LogReader::open(&state.shared.layout.log_path(&id))?;
    let rx = logs::stream::spawn(reader, opts, done, BUFFERED_CHUNKS)?;
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, actix_web::Error>(web::Bytes::from(b)), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type(stream_type(rec.spec.tty))
        .streaming(body))
}

/// Docker's content type of a container's output: raw for a Tty container.
pub fn stream_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The query as [`LogOptions`].
fn options(q: &Query) -> Result<LogOptions, ApiError> {
    let opts = LogOptions {
        stdout: flag(q, "stdout", false)?,
        stderr: flag(q, "stderr", false)?,
        timestamps: flag(q, "timestamps", false)?,
        tail: match q.get("tail").map(String::as_str) {
            None | Some("") | Some("all") => None,
            Some(n) => Some(n.parse().map_err(|_| ApiError::Query {
                name: "tail",
                value: n.into(),
            })?),
        },
        since: when(q, "since")?,
        until: when(q, "until")?,
        raw: false,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::Query {
            name: "stdout/stderr",
            value: "you must choose at least one stream".into(),
        });
    }
    Ok(opts)
}

fn when(q: &Query, name: &'static str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") | Some("0") => Ok(None),
        Some(v) => time_param(name, v).map(Some),
    }
}

/// The container's wait answer as the reader's wait for the stop.
fn stopped(rx: oneshot::Receiver<WaitOutcome>) -> logs::stream::Done {
    // The reading thread blocks on a std channel that a task fills when the wait answers (or
    // is dropped): the stream ends as soon as the container stops.
    let (tx, stop) = std::sync::mpsc::channel::<()>();
    actix_rt::spawn(async move {
        let _ = rx.await;
        let _ = tx.send(());
    });
    Box::new(move |wait| !matches!(stop.recv_timeout(wait), Err(RecvTimeoutError::Timeout)))
}

/// Starts following the log at `path` until the end (or, with `done`, until the container
/// stopped): the attach route's output half. Where it starts (`opts.tail`) is fixed before
/// this returns, so an attach answered afterwards loses nothing written meanwhile. `file`
/// tells whether the log existed when the request came; the reader opens its own
/// descriptors. `None` when there is nothing to follow.
pub fn follow(
    path: &std::path::Path,
    file: Option<tokio::fs::File>,
    opts: LogOptions,
    done: Option<oneshot::Receiver<WaitOutcome>>,
) -> Option<mpsc::Receiver<Vec<u8>>> {
    if file.is_none() && done.is_none() {
        return None;
    }
    let reader = LogReader::open(path)
        .map_err(|e| tracing::warn!(error = %e, "open log"))
        .ok()?;
    logs::stream::spawn(reader, opts, done.map(stopped), BUFFERED_CHUNKS)
        .map_err(|e| tracing::warn!(error = %e, "read log"))
        .ok()
}

/// Sends the frames [`follow`] reads to `tx`, until they end or `tx` is dropped.
pub async fn forward(rx: Option<mpsc::Receiver<Vec<u8>>>, tx: mpsc::Sender<web::Bytes>) {
    let Some(mut rx) = rx else { return };
    while let Some(chunk) = rx.recv().await {
        if tx.send(web::Bytes::from(chunk)).await.is_err() {
            return;
        }
    }
}
