//! The container's output as Docker json-file records, byte-compatible with Docker's driver.
//!
//! One line per record: `{"log":"<text>","stream":"stdout","time":"<RFC3339Nano>"}\n`, encoded
//! by [`super::record`] exactly as Docker's driver does. Each stream is split on `\n`; a record
//! is at most 16 KiB (Docker's copier buffer), longer lines become several records and only
//! the last one ends in `\n`. Records are batched: one write(2) per poll iteration. A failing
//! write never blocks the container: the bytes are counted as dropped and reported in a
//! record on the stderr stream once writing works again. So that the report is written even
//! on a disk that stays full, [`FileSink`] keeps a small reserve file next to the log and
//! deletes it to make room for the last report when the shim ends ([`LogWriter::close`]).

use std::io;

use super::clock::{self, Timestamp};
pub use super::log_file::{FileSink, LogSink, RESERVE_SIZE};
use super::record::{encode, find_newline};

/// The most bytes one record's `log` holds (including its trailing `\n`).
pub const MAX_RECORD: usize = 16 * 1024;

/// Which of the container's output streams a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

impl Stream {
    /// The `stream` value Docker writes.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Turns the two output streams into json-file records and writes them in batches.
#[derive(Debug)]
pub struct LogWriter<S> {
    /// Where batches go.
    sink: S,
    /// Rotate before the file would exceed this many bytes (None: never).
    max_size: Option<u64>,
    /// Encoded records not written yet (written by [`LogWriter::flush`]).
    batch: Vec<u8>,
    /// Output bytes (before encoding) in `batch`, for drop accounting.
    batch_output: u64,
    /// Per record in `batch`: (end offset in `batch`, output bytes up to its end), so that a
    /// batch too large for the space left can be written in part, record by record.
    bounds: Vec<(usize, u64)>,
    /// Per stream ([`Stream::index`]): bytes of a line whose `\n` has not arrived yet.
    pending: [Vec<u8>; 2],
    /// Output bytes lost to failed writes since the last successful one.
    dropped: u64,
    /// The error of the last failed write, reported with `dropped`.
    last_error: Option<String>,
    /// A record moved out of `batch` while the file rotates (kept to reuse its allocation).
    spill: Vec<u8>,
}

impl<S: LogSink> LogWriter<S> {
    /// A writer into `sink`, rotating at `max_size` bytes.
    pub fn new(sink: S, max_size: Option<u64>) -> LogWriter<S> {
        LogWriter {
            sink,
            max_size,
            batch: Vec::new(),
            batch_output: 0,
            bounds: Vec::new(),
            pending: [Vec::new(), Vec::new()],
            dropped: 0,
            last_error: None,
            spill: Vec::new(),
        }
    }

    /// The sink (tests look at what was written).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, to tidy it up at the end.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Output bytes dropped since the last successful write.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Takes output read from `stream` at `time`: every complete line (and every full 16 KiB
    /// piece of a longer one) becomes a record in the batch; the rest waits for more.
    pub fn push(&mut self, stream: Stream, data: &[u8], time: Timestamp) {
        let mut pending = std::mem::take(&mut self.pending[stream.index()]);
        pending.extend_from_slice(data);
        let time = clock::go_rfc3339_nano(time);
        let mut start = 0;
        loop {
            let rest = &pending[start..];
            let window = &rest[..rest.len().min(MAX_RECORD)];
            let len = match find_newline(window) {
                Some(nl) => nl + 1,
                None if rest.len() >= MAX_RECORD => MAX_RECORD,
                None => break,
            };
            self.add_record(stream, &rest[..len], &time);
            start += len;
        }
        pending.drain(..start);
        self.pending[stream.index()] = pending;
    }

    /// The stream ended (EOF, or the process exited): its partial line becomes a record
    /// without `\n`.
    pub fn finish(&mut self, stream: Stream, time: Timestamp) {
        let pending = std::mem::take(&mut self.pending[stream.index()]);
        if !pending.is_empty() {
            self.add_record(stream, &pending, &clock::go_rfc3339_nano(time));
        }
    }

    /// Writes the batch in one append. On failure the batch is dropped (counted), so the
    /// caller can keep draining the container's pipes.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let result = if self.dropped > 0 {
            let mut out = self.notice();
            out.extend_from_slice(&self.batch);
            self.sink.append(&out)
        } else {
            self.sink.append(&self.batch)
        };
        match result {
            Ok(()) => {
                self.dropped = 0;
                self.last_error = None;
            }
            Err(e) => self.salvage(e),
        }
        self.batch.clear();
        self.batch_output = 0;
        self.bounds.clear();
    }

    /// After a failed batch: writes what still fits in pieces of whole records (on a disk
    /// that is filling up), counts the rest as dropped.
    fn salvage(&mut self, first: io::Error) {
        const PIECE: usize = 64 * 1024;
        let mut error = first;
        let (mut start, mut start_output) = (0usize, 0u64);
        let mut i = 0;
        while i < self.bounds.len() {
            // The longest run of records from `start` within PIECE bytes (at least one).
            let mut j = i;
            while j + 1 < self.bounds.len() && self.bounds[j + 1].0 - start <= PIECE {
                j += 1;
            }
            let (end, end_output) = self.bounds[j];
            let piece = &self.batch[start..end];
            let result = if self.dropped > 0 {
                let mut out = self.notice();
                out.extend_from_slice(piece);
                self.sink.append(&out)
            } else {
                self.sink.append(piece)
            };
            match result {
                Ok(()) => {
                    self.dropped = 0;
                    self.last_error = None;
                }
                Err(e) => {
                    error = e;
                    break;
                }
            }
            (start, start_output) = (end, end_output);
            i = j + 1;
        }
        if start < self.batch.len() {
            self.dropped += self.batch_output - start_output;
            self.last_error = Some(error.to_string());
        }
    }

    /// The end: flushes, then makes sure a pending drop report is written, using the
    /// sink's reserve when the disk is still full.
    pub fn close(&mut self) {
        self.flush();
        if self.dropped == 0 {
            return;
        }
        let notice = self.notice();
        let written = self.sink.append(&notice).is_ok()
            || (self.sink.release_reserve() && self.sink.append(&notice).is_ok());
        if written {
            self.dropped = 0;
            self.last_error = None;
        } else {
            eprintln!("moor-shim: could not report {} dropped bytes", self.dropped);
        }
    }

    /// The drop report record.
    fn notice(&self) -> Vec<u8> {
        let text = format!(
            "moor-shim: dropped {} bytes of output: {}\n",
            self.dropped,
            self.last_error.as_deref().unwrap_or("write failed")
        );
        let mut out = Vec::with_capacity(text.len() + 128);
        encode(
            &mut out,
            Stream::Stderr,
            text.as_bytes(),
            &clock::go_rfc3339_nano(Timestamp::now()),
        );
        out
    }

    fn add_record(&mut self, stream: Stream, log: &[u8], time: &str) {
        let mark = self.batch.len();
        encode(&mut self.batch, stream, log, time);
        if let Some(max) = self.max_size {
            if self.sink.size() + self.batch.len() as u64 > max {
                // The new record starts the next file: set it aside, write the rest, rotate.
                self.spill.clear();
                self.spill.extend_from_slice(&self.batch[mark..]);
                self.batch.truncate(mark);
                self.flush();
                if self.sink.size() > 0 {
                    if let Err(e) = self.sink.rotate() {
                        eprintln!("moor-shim: rotate log: {e}");
                    }
                }
                self.batch.extend_from_slice(&self.spill);
            }
        }
        self.batch_output += log.len() as u64;
        self.bounds.push((self.batch.len(), self.batch_output));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory sink that fails while `fail` is set; releasing its reserve ends that.
    #[derive(Default)]
    struct MemSink {
        files: Vec<Vec<u8>>,
        current: Vec<u8>,
        fail: bool,
        reserve: bool,
        /// Fails appends that would grow `current` beyond this (a filling disk).
        capacity: Option<usize>,
    }

    impl LogSink for MemSink {
        fn append(&mut self, buf: &[u8]) -> io::Result<()> {
            let full = self
                .capacity
                .is_some_and(|c| self.current.len() + buf.len() > c);
            if self.fail || full {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.current.extend_from_slice(buf);
            Ok(())
        }
        fn size(&self) -> u64 {
            self.current.len() as u64
        }
        fn rotate(&mut self) -> io::Result<()> {
            self.files.push(std::mem::take(&mut self.current));
            Ok(())
        }
        fn release_reserve(&mut self) -> bool {
            let had = std::mem::take(&mut self.reserve);
            self.fail &= !had;
            had
        }
    }

    const T: Timestamp = Timestamp {
        secs: 0,
        nanos: 5_000,
    };

    fn lines(sink: &MemSink) -> Vec<serde_json::Value> {
        String::from_utf8(sink.current.clone())
            .expect("utf8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    #[test]
    fn record_bytes_match_docker() {
        let mut w = LogWriter::new(MemSink::default(), None);
        w.push(Stream::Stdout, b"hi <b>&\t\"x\"\\\n", T);
        w.flush();
        assert_eq!(
            String::from_utf8(w.sink().current.clone()).expect("utf8"),
            "{\"log\":\"hi \\u003cb\\u003e\\u0026\\u0009\\\"x\\\"\\\\\\n\",\
             \"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:00.000005Z\"}\n"
        );
    }

    #[test]
    fn splits_lines_and_streams() {
        let mut w = LogWriter::new(MemSink::default(), None);
        w.push(Stream::Stdout, b"one\ntw", T);
        w.push(Stream::Stderr, b"err\n", T);
        w.push(Stream::Stdout, b"o\n\n", T);
        w.flush();
        let got: Vec<(String, String)> = lines(w.sink())
            .iter()
            .map(|v| {
                (
                    v["log"].as_str().expect("log").into(),
                    v["stream"].as_str().expect("stream").into(),
                )
            })
            .collect();
        let want = [
            ("one\n", "stdout"),
            ("err\n", "stderr"),
            ("two\n", "stdout"),
            ("\n", "stdout"),
        ];
        assert_eq!(got, want.map(|(l, s)| (l.to_owned(), s.to_owned())));
    }

    #[test]
    fn long_line_is_split_at_16_kib() {
        let mut w = LogWriter::new(MemSink::default(), None);
        let mut data = vec![b'x'; MAX_RECORD * 2 + 10];
        data.push(b'\n');
        w.push(Stream::Stdout, &data[..100], T);
        w.push(Stream::Stdout, &data[100..], T);
        w.flush();
        let logs: Vec<String> = lines(w.sink())
            .iter()
            .map(|v| v["log"].as_str().expect("log").into())
            .collect();
        assert_eq!(logs.len(), 3);
        assert_eq!(logs[0].len(), MAX_RECORD);
        assert!(!logs[0].ends_with('\n'));
        assert_eq!(logs[1].len(), MAX_RECORD);
        assert_eq!(logs[2], format!("{}\n", "x".repeat(10)));
        // A line that fits with its newline is one record.
        let mut w = LogWriter::new(MemSink::default(), None);
        let mut fits = vec![b'y'; MAX_RECORD - 1];
        fits.push(b'\n');
        w.push(Stream::Stderr, &fits, T);
        w.flush();
        assert_eq!(lines(w.sink()).len(), 1);
    }

    #[test]
    fn partial_line_waits_then_is_flushed_at_end() {
        let mut w = LogWriter::new(MemSink::default(), None);
        w.push(Stream::Stdout, b"no newline", T);
        w.flush();
        assert!(w.sink().current.is_empty());
        w.finish(Stream::Stdout, T);
        w.finish(Stream::Stderr, T);
        w.flush();
        let got = lines(w.sink());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["log"], "no newline");
    }

    #[test]
    fn rotates_before_exceeding_max_size() {
        let one_record = {
            let mut v = Vec::new();
            encode(
                &mut v,
                Stream::Stdout,
                b"0123456789\n",
                &clock::go_rfc3339_nano(T),
            );
            v.len() as u64
        };
        let mut w = LogWriter::new(MemSink::default(), Some(one_record * 2));
        for _ in 0..5 {
            w.push(Stream::Stdout, b"0123456789\n", T);
        }
        w.flush();
        let sink = w.sink();
        assert_eq!(sink.files.len(), 2);
        assert!(sink.files.iter().all(|f| f.len() as u64 == one_record * 2));
        assert_eq!(sink.current.len() as u64, one_record);
    }

    #[test]
    fn failed_writes_are_counted_and_reported() {
        let mut w = LogWriter::new(MemSink::default(), None);
        w.sink.fail = true;
        w.push(Stream::Stdout, b"lost one\n", T);
        w.flush();
        w.push(Stream::Stderr, b"lost two\n", T);
        w.flush();
        assert_eq!(w.dropped(), 18);
        w.sink.fail = false;
        w.push(Stream::Stdout, b"kept\n", T);
        w.flush();
        assert_eq!(w.dropped(), 0);
        let got = lines(w.sink());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["stream"], "stderr");
        let notice = got[0]["log"].as_str().expect("log");
        assert!(
            notice.starts_with("moor-shim: dropped 18 bytes of output: "),
            "{notice}"
        );
        assert!(notice.ends_with('\n'));
        assert_eq!(got[1]["log"], "kept\n");
    }

    #[test]
    fn close_reports_drops_on_a_disk_that_stays_full() {
        let mut w = LogWriter::new(MemSink::default(), None);
        w.sink.fail = true;
        w.sink.reserve = true;
        w.push(Stream::Stdout, b"lost\n", T);
        w.close();
        assert_eq!(w.dropped(), 0);
        let got = lines(w.sink());
        assert_eq!(got.len(), 1);
        assert!(got[0]["log"]
            .as_str()
            .expect("log")
            .starts_with("moor-shim: dropped 5 bytes of output: "));
    }

    #[test]
    fn a_filling_disk_keeps_the_records_that_fit() {
        let mut w = LogWriter::new(MemSink::default(), None);
        w.sink.capacity = Some(200_000);
        for i in 0..10_000 {
            w.push(Stream::Stdout, format!("{i:09}\n").as_bytes(), T);
        }
        w.flush();
        let kept = w.sink().current.len();
        assert!(kept > 200_000 - 70_000 && kept <= 200_000, "{kept}");
        let records = lines(w.sink()).len() as u64;
        assert_eq!(w.dropped(), (10_000 - records) * 10);
    }
}
