//! The reading loop behind `GET /containers/{id}/logs`: a thread of its own reads records
//! with plain blocking I/O and sends frames, packed into chunks of up to [`CHUNK`] bytes,
//! through a small bounded channel (the HTTP body). The channel's bound is what keeps a
//! slow client from making the daemon buffer the log: at most `capacity` chunks wait.
//!
//! Following, the thread looks for new records and rotations every [`FOLLOW_POLL`], waiting in
//! between on `done`, which returns as soon as the container stops: the stream then ends after
//! one last read, without waiting for the next poll. It also stops when the client went away
//! or when a record after `until` was read.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use super::reader::LogReader;
use super::record::{frame, LogOptions, Verdict};
use super::LogsError;

/// Frames are sent in chunks of about this many bytes.
pub const CHUNK: usize = 32 * 1024;
/// How often a follower looks for new records (the latency of `logs -f`).
pub const FOLLOW_POLL: Duration = Duration::from_millis(20);

/// Waits up to the given time for the followed container to stop; true once it has.
pub type Done = Box<dyn FnMut(Duration) -> bool + Send>;

/// Starts the reading thread for `reader`; frames arrive on the returned channel, which
/// closes at the end. `done`, when following, waits for the container to stop.
pub fn spawn(
    reader: LogReader,
    opts: LogOptions,
    done: Option<Done>,
    capacity: usize,
) -> Result<mpsc::Receiver<Vec<u8>>, LogsError> {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    // "From now on" (`tail` 0, a seek to the end) is fixed here, before this returns: an
    // attach answered after it sees everything written from then on, however late the
    // thread runs. A longer tail reads back through the files on the thread.
    let mut reader = reader;
    if opts.tail == Some(0) {
        reader.tail(0)?;
    }
    std::thread::Builder::new()
        .name("moor-logs".into())
        .spawn(move || {
            if let Err(e) = pump(reader, &opts, done, &tx) {
                tracing::warn!(error = %e, "reading a log stopped");
            }
        })
        .map_err(|source| LogsError::Thread { source })?;
    Ok(rx)
}

/// What ended a pass over the records written so far.
enum Pass {
    /// Reached the end of what is written.
    End,
    /// The client went away or `until` was passed.
    Stop,
}

fn pump(
    mut reader: LogReader,
    opts: &LogOptions,
    mut done: Option<Done>,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Result<(), LogsError> {
    if let Some(n) = opts.tail.filter(|&n| n > 0) {
        reader.tail(n)?;
    }
    let mut out = Vec::with_capacity(CHUNK + 1024);
    let mut line = Vec::new();
    loop {
        if let Pass::Stop = read_pass(&mut reader, opts, &mut line, &mut out, tx)? {
            return Ok(());
        }
        let Some(is_done) = done.as_mut() else {
            return Ok(());
        };
        if reader.poll_rotation()? {
            continue;
        }
        // The wait between polls: it ends at once when the container stops.
        if is_done(FOLLOW_POLL) {
            // The shim wrote everything before it exited: one last pass gets the rest.
            reader.poll_rotation()?;
            read_pass(&mut reader, opts, &mut line, &mut out, tx)?;
            return Ok(());
        }
        if tx.is_closed() || opts.until.is_some_and(|u| Utc::now() > u) {
            return Ok(());
        }
    }
}

/// Sends every record available now; the last chunk goes out before returning.
fn read_pass(
    reader: &mut LogReader,
    opts: &LogOptions,
    line: &mut Vec<u8>,
    out: &mut Vec<u8>,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Result<Pass, LogsError> {
    let mut pass = Pass::End;
    while reader.next_record(line)? {
        if frame(line, opts, out) == Verdict::Past {
            pass = Pass::Stop;
            break;
        }
        if out.len() >= CHUNK && !send(tx, out) {
            return Ok(Pass::Stop);
        }
    }
    if !out.is_empty() && !send(tx, out) {
        return Ok(Pass::Stop);
    }
    Ok(pass)
}

/// Sends the chunk (waiting while the channel is full); false when the client went away.
fn send(tx: &mpsc::Sender<Vec<u8>>, out: &mut Vec<u8>) -> bool {
    let chunk = std::mem::replace(out, Vec::with_capacity(CHUNK + 1024));
    tx.blocking_send(chunk).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    fn rec(text: &str) -> String {
        format!(r#"{{"log":"{text}\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}}"#) + "\n"
    }

    fn payloads(bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while rest.len() >= 8 {
            let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            out.push(String::from_utf8(rest[8..8 + len].to_vec()).expect("utf8"));
            rest = &rest[8 + len..];
        }
        out
    }

    fn opts() -> LogOptions {
        LogOptions {
            stdout: true,
            stderr: true,
            ..LogOptions::default()
        }
    }

    #[test]
    fn reads_everything_and_closes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let text: String = (0..5000).map(|i| rec(&format!("line {i}"))).collect();
        fs::write(&path, text).expect("write");
        let reader = LogReader::open(&path).expect("open");
        let mut o = opts();
        o.tail = Some(2);
        let mut rx = spawn(reader, o, None, 2).expect("spawn");
        let mut all = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            all.extend(chunk);
        }
        assert_eq!(payloads(&all), ["line 4998\n", "line 4999\n"]);
    }

    #[test]
    fn follows_until_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        fs::write(&path, rec("first")).expect("write");
        let reader = LogReader::open(&path).expect("open");
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        let done = Box::new(move |wait| {
            flag.load(Ordering::SeqCst) || {
                std::thread::sleep(wait);
                false
            }
        });
        let mut rx = spawn(reader, opts(), Some(done), 4).expect("spawn");
        assert_eq!(payloads(&rx.blocking_recv().expect("first")), ["first\n"]);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        let sent = Instant::now();
        f.write_all(rec("second").as_bytes()).expect("write");
        assert_eq!(payloads(&rx.blocking_recv().expect("second")), ["second\n"]);
        assert!(sent.elapsed() < Duration::from_millis(500));
        f.write_all(rec("last").as_bytes()).expect("write");
        stopped.store(true, Ordering::SeqCst);
        let mut rest = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            rest.extend(chunk);
        }
        assert_eq!(payloads(&rest), ["last\n"]);
    }
}
