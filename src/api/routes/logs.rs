//! `GET /containers/{id}/logs`: the json-file log read in Docker's multiplexed stream
//! format (8-byte header: stream, 0, 0, 0, big-endian length). Streamed through a
//! bounded channel, never loaded whole; `follow` polls for new lines and ends when
//! the container stops.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::api::error::ApiError;
use crate::api::routes::{flag, Query};
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{
    InspectContainer, ResolveContainer, WaitCondition, WaitContainer, WaitOutcome,
};
use moor_state::State;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/logs", web::get().to(logs));
}

/// What the client asked to read.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Include stdout records.
    pub stdout: bool,
    /// Include stderr records.
    pub stderr: bool,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Only the last N lines (None: all).
    pub tail: Option<u64>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only records before this time.
    pub until: Option<DateTime<Utc>>,
}

/// One json-file record.
#[derive(Debug, Deserialize)]
struct Record {
    /// The text, with its newline if it had one.
    log: String,
    /// `stdout` or `stderr`.
    stream: String,
    /// RFC 3339 with nanoseconds.
    time: String,
}

/// Parses Docker's `since`/`until`: UNIX seconds with an optional fraction, or RFC 3339.
pub fn parse_when(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = secs.parse().ok()?;
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    DateTime::from_timestamp(secs, nanos)
}

/// Turns one json-file line into a multiplexed frame, or `None` if filtered out.
pub fn frame(line: &[u8], opts: &LogOptions) -> Option<Vec<u8>> {
    let rec: Record = serde_json::from_slice(line).ok()?;
    let kind = match rec.stream.as_str() {
        "stdout" if opts.stdout => 1u8,
        "stderr" if opts.stderr => 2u8,
        _ => return None,
    };
    if opts.since.is_some() || opts.until.is_some() {
        let t = DateTime::parse_from_rfc3339(&rec.time)
            .ok()?
            .with_timezone(&Utc);
        if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t >= u) {
            return None;
        }
    }
    let payload = if opts.timestamps {
        format!("{} {}", rec.time, rec.log)
    } else {
        rec.log
    };
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload.as_bytes());
    Some(out)
}

/// The offset of the first of the last `n` lines of a file.
pub fn tail_offset(path: &Path, n: u64) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut seen = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let chunk = (buf.len() as u64).min(pos);
        pos -= chunk;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..chunk as usize])?;
        for i in (0..chunk as usize).rev() {
            let abs = pos + i as u64;
            if buf[i] == b'\n' && abs != len - 1 {
                seen += 1;
                if seen == n {
                    return Ok(abs + 1);
                }
            }
        }
    }
    Ok(0)
}

async fn logs(
    state: web::Data<ApiState>,
    path: web::Path<crate::api::routes::containers::IdPath>,
    q: Query,
) -> Result<HttpResponse, ApiError> {
    let (id, addr) = state
        .supervisor
        .send(ResolveContainer(path.id.clone()))
        .await
        .map_err(ContainerError::from)??;
    let opts = LogOptions {
        stdout: flag(&q, "stdout", false)?,
        stderr: flag(&q, "stderr", false)?,
        timestamps: flag(&q, "timestamps", false)?,
        tail: match q.get("tail").map(String::as_str) {
            None | Some("") | Some("all") => None,
            Some(n) => Some(n.parse().map_err(|_| ApiError::Query {
                name: "tail",
                value: n.into(),
            })?),
        },
        since: when(&q, "since")?,
        until: when(&q, "until")?,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::Query {
            name: "stdout/stderr",
            value: "you must choose at least one stream".into(),
        });
    }
    let follow = flag(&q, "follow", false)?;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    let done = if follow {
        // A container that never ran is followed through its next run.
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
    // Opened before answering: a `--rm` container's log may be unlinked right after it ends.
    let path = state.shared.layout.log_path(&id);
    let file = tokio::fs::File::open(&path).await.ok();
    let (tx, rx) = mpsc::channel::<web::Bytes>(32);
    actix_rt::spawn(pump(path, file, opts, done, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, actix_web::Error>(b), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.docker.multiplexed-stream")
        .streaming(body))
}

fn when(q: &Query, name: &'static str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") | Some("0") => Ok(None),
        Some(v) => parse_when(v).map(Some).ok_or_else(|| ApiError::Query {
            name,
            value: v.into(),
        }),
    }
}

/// Reads the log from the requested position and sends frames until the end
/// (or, following, until the container stopped and the rest was read).
pub async fn pump(
    path: PathBuf,
    file: Option<tokio::fs::File>,
    opts: LogOptions,
    mut done: Option<oneshot::Receiver<WaitOutcome>>,
    tx: mpsc::Sender<web::Bytes>,
) {
    let Some(mut file) = file else {
        return;
    };
    if let Some(n) = opts.tail {
        let p = path.clone();
        let start = tokio::task::spawn_blocking(move || tail_offset(&p, n))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        if file.seek(SeekFrom::Start(start)).await.is_err() {
            return;
        }
    }
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let mut last_round = false;
    loop {
        match reader.read_until(b'\n', &mut line).await {
            Ok(n) if n > 0 && line.ends_with(b"\n") => {
                if let Some(f) = frame(&line, &opts) {
                    if tx.send(web::Bytes::from(f)).await.is_err() {
                        return;
                    }
                }
                line.clear();
                continue;
            }
            Ok(_) => {}
            Err(_) => return,
        }
        // At the end of what is written so far (`line` may hold a partial record).
        if done.is_none() || last_round || tx.is_closed() {
            return;
        }
        last_round = wait_step(&mut done).await;
    }
}

/// Waits a little for more output; true once the container stopped.
async fn wait_step(done: &mut Option<oneshot::Receiver<WaitOutcome>>) -> bool {
    let Some(rx) = done.as_mut() else {
        return true;
    };
    tokio::select! {
        _ = rx => {
            *done = None;
            true
        }
        _ = tokio::time::sleep(Duration::from_millis(50)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn opts() -> LogOptions {
        LogOptions {
            stdout: true,
            stderr: true,
            timestamps: false,
            tail: None,
            since: None,
            until: None,
        }
    }

    #[test]
    fn frames_carry_stream_and_length() {
        let line = br#"{"log":"hi\n","stream":"stderr","time":"2026-11-27T16:00:00.000000001Z"}"#;
        let f = frame(line, &opts()).unwrap();
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&f[8..], b"hi\n");
        let mut o = opts();
        o.stderr = false;
        assert!(frame(line, &o).is_none());
        o.stderr = true;
        o.timestamps = true;
        let f = frame(line, &o).unwrap();
        assert_eq!(&f[8..], b"2026-11-27T16:00:00.000000001Z hi\n");
    }

    #[test]
    fn tail_finds_the_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let mut f = std::fs::File::create(&p).unwrap();
        for i in 0..100_000 {
            writeln!(f, "line {i}").unwrap();
        }
        drop(f);
        let off = tail_offset(&p, 2).unwrap();
        let mut rest = String::new();
        let mut f = std::fs::File::open(&p).unwrap();
        f.seek(SeekFrom::Start(off)).unwrap();
        f.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "line 99998\nline 99999\n");
        assert_eq!(tail_offset(&p, 1_000_000).unwrap(), 0);
    }

    #[test]
    fn since_accepts_unix_and_rfc3339() {
        let a = parse_when("1700000000.5").unwrap();
        assert_eq!(a.timestamp_subsec_nanos(), 500_000_000);
        assert_eq!(parse_when("2023-11-14T22:13:20.5Z"), Some(a));
        assert!(parse_when("yesterday").is_none());
    }
}
