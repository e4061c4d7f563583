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
pub use super::log_file::{FileSink, LogSink, Rotation, RESERVE_SIZE};
use super::log_pipeline::Pipeline;
use super::record::{encode, encode_with, find_newline, Tail};

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

/// Encoded records waiting to be written, with what a partial write needs.
#[derive(Debug, Default)]
struct Batch {
    /// The records, one line each.
    bytes: Vec<u8>,
    /// Output bytes (before encoding) in `bytes`, for drop accounting.
    output: u64,
    /// Per record: (end offset in `bytes`, output bytes up to its end), so that a batch too
    /// large for the space left can be written in part, record by record.
    bounds: Vec<(usize, u64)>,
}

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.output = 0;
        self.bounds.clear();
    }
}

impl AsRef<[u8]> for Batch {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Batches at least this large are written on the writer thread ([`Pipeline`]) while the
/// next one is encoded; smaller ones (a quiet container) are written at once.
const PIPELINE_MIN: usize = 64 * 1024;

/// Turns the two output streams into json-file records and writes them in batches.
#[derive(Debug)]
pub struct LogWriter<S> {
    /// Where batches go; None while it is on the writer thread with a batch.
    sink: Option<S>,
    /// When to rotate (`max-size`), and the back-off after a failed rotation.
    rotation: Rotation,
    /// Records not written yet (written by [`LogWriter::flush`]).
    batch: Batch,
    /// A written batch kept for its allocation.
    spare: Batch,
    /// The writer thread, once a large batch has started it.
    pipeline: Option<Pipeline<S, Batch>>,
    /// The sink's size once the batch in flight is written (valid while `sink` is None).
    size_after: u64,
    /// Per stream ([`Stream::index`]): bytes of a line whose `\n` has not arrived yet.
    pending: [Vec<u8>; 2],
    /// Output bytes lost to failed writes since the last successful one.
    dropped: u64,
    /// The error of the last failed write, reported with `dropped`.
    last_error: Option<String>,
    /// A record moved out of `batch` while the file rotates (kept to reuse its allocation).
    spill: Vec<u8>,
}

impl<S: LogSink + Send + 'static> LogWriter<S> {
    /// A writer into `sink`, rotating at `max_size` bytes.
    pub fn new(sink: S, max_size: Option<u64>) -> LogWriter<S> {
        LogWriter {
            sink: Some(sink),
            rotation: Rotation::new(max_size),
            batch: Batch::default(),
            spare: Batch::default(),
            pipeline: None,
            size_after: 0,
            pending: [Vec::new(), Vec::new()],
            dropped: 0,
            last_error: None,
            spill: Vec::new(),
        }
    }

    /// The sink, once the batch in flight (if any) is written.
    pub fn sink(&mut self) -> &S {
        self.sink_mut()
    }

    /// The sink, once the batch in flight (if any) is written: to tidy it up at the end.
    pub fn sink_mut(&mut self) -> &mut S {
        self.settle();
        match self.sink.as_mut() {
            Some(sink) => sink,
            None => unreachable!("settle brings the sink back"),
        }
    }

    /// Output bytes dropped since the last successful write.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Takes output read from `stream` at `time`: every complete line (and every full 16 KiB
    /// piece of a longer one) becomes a record in the batch; the rest waits for more.
    pub fn push(&mut self, stream: Stream, data: &[u8], time: Timestamp) {
        let tail = Tail::new(stream, &clock::go_rfc3339_nano(time));
        let mut pending = std::mem::take(&mut self.pending[stream.index()]);
        let mut data = data;
        if !pending.is_empty() {
            // Complete the waiting line first; only its bytes are copied.
            let missing = MAX_RECORD - pending.len();
            let take = match find_newline(&data[..data.len().min(missing)]) {
                Some(nl) => nl + 1,
                None if data.len() >= missing => missing,
                None => {
                    pending.extend_from_slice(data);
                    self.pending[stream.index()] = pending;
                    return;
                }
            };
            pending.extend_from_slice(&data[..take]);
            self.add_record(&pending, &tail);
            pending.clear();
            data = &data[take..];
        }
        // Whole lines straight from `data`, without copying them first.
        let mut start = 0;
        loop {
            let rest = &data[start..];
            let window = &rest[..rest.len().min(MAX_RECORD)];
            let len = match find_newline(window) {
                Some(nl) => nl + 1,
                None if rest.len() >= MAX_RECORD => MAX_RECORD,
                None => break,
            };
            self.add_record(&rest[..len], &tail);
            start += len;
        }
        pending.extend_from_slice(&data[start..]);
        self.pending[stream.index()] = pending;
    }

    /// The stream ended (EOF, or the process exited): its partial line becomes a record
    /// without `\n`.
    pub fn finish(&mut self, stream: Stream, time: Timestamp) {
        let pending = std::mem::take(&mut self.pending[stream.index()]);
        if !pending.is_empty() {
            self.add_record(&pending, &Tail::new(stream, &clock::go_rfc3339_nano(time)));
        }
    }

    /// Writes the batch in one append: on the writer thread for a large batch (returning at
    /// once), here for a small one. On failure the batch is dropped (counted), so the caller
    /// can keep draining the container's pipes.
    pub fn flush(&mut self) {
        self.settle();
        if self.batch.bytes.is_empty() {
            return;
        }
        if self.dropped == 0 && self.batch.bytes.len() >= PIPELINE_MIN && self.hand_over() {
            return;
        }
        let mut sink = self.sink.take().expect("settled");
        let result = if self.dropped > 0 {
            let mut out = self.notice();
            out.extend_from_slice(&self.batch.bytes);
            sink.append(&out)
        } else {
            sink.append(&self.batch.bytes)
        };
        // The spare allocation becomes the next batch; this one the next spare.
        let next = std::mem::take(&mut self.spare);
        let batch = std::mem::replace(&mut self.batch, next);
        self.written(sink, batch, result);
    }

    /// Sends the batch to the writer thread (starting it the first time); false if there is
    /// no thread to be had, and the batch is still here.
    fn hand_over(&mut self) -> bool {
        if self.pipeline.is_none() {
            match Pipeline::start(S::append) {
                Ok(pipeline) => self.pipeline = Some(pipeline),
                Err(e) => {
                    eprintln!("moor-shim: start the log writer thread: {e}");
                    return false;
                }
            }
        }
        let Some(pipeline) = self.pipeline.as_ref() else {
            return false;
        };
        let sink = self.sink.take().expect("settled");
        let next = std::mem::take(&mut self.spare);
        let batch = std::mem::replace(&mut self.batch, next);
        self.size_after = sink.size() + batch.bytes.len() as u64;
        match pipeline.send(sink, batch) {
            Ok(()) => true,
            Err((sink, batch)) => {
                self.sink = Some(sink);
                self.spare = std::mem::replace(&mut self.batch, batch);
                self.pipeline = None;
                false
            }
        }
    }

    /// Waits for the batch on the writer thread, if one is there, and takes its outcome.
    fn settle(&mut self) {
        if self.sink.is_some() {
            return;
        }
        match self.pipeline.as_ref().and_then(Pipeline::wait) {
            Some((sink, batch, result)) => self.written(sink, batch, result),
            None => unreachable!("the writer thread gives the sink back before it ends"),
        }
    }

    /// The outcome of writing `batch` into `sink`: drop accounting, and the batch's
    /// allocation kept for the next one.
    fn written(&mut self, sink: S, mut batch: Batch, result: io::Result<()>) {
        self.sink = Some(sink);
        match result {
            Ok(()) => {
                self.dropped = 0;
                self.last_error = None;
            }
            Err(e) => self.salvage(&batch, e),
        }
        batch.clear();
        self.spare = batch;
    }

    /// After a failed batch: writes what still fits in pieces of whole records (on a disk
    /// that is filling up), counts the rest as dropped.
    fn salvage(&mut self, batch: &Batch, first: io::Error) {
        const PIECE: usize = 64 * 1024;
        let mut error = first;
        let (mut start, mut start_output) = (0usize, 0u64);
        let mut i = 0;
        while i < batch.bounds.len() {
            // The longest run of records from `start` within PIECE bytes (at least one).
            let mut j = i;
            while j + 1 < batch.bounds.len() && batch.bounds[j + 1].0 - start <= PIECE {
                j += 1;
            }
            let (end, end_output) = batch.bounds[j];
            let piece = &batch.bytes[start..end];
            let notice = (self.dropped > 0).then(|| self.notice());
            let sink = self.sink.as_mut().expect("settled");
            let result = match notice {
                Some(mut out) => {
                    out.extend_from_slice(piece);
                    sink.append(&out)
                }
                None => sink.append(piece),
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
        if start < batch.bytes.len() {
            self.dropped += batch.output - start_output;
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
        let sink = self.sink_mut();
        let written = sink.append(&notice).is_ok()
            || (sink.release_reserve() && sink.append(&notice).is_ok());
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

    /// The sink's size once what is in flight is written.
    fn sink_size(&self) -> u64 {
        match &self.sink {
            Some(sink) => sink.size(),
            None => self.size_after,
        }
    }

    fn add_record(&mut self, log: &[u8], tail: &Tail) {
        let mark = self.batch.bytes.len();
        encode_with(&mut self.batch.bytes, log, tail);
        if let Some(max) = self.rotation.limit() {
            if self.sink_size() + self.batch.bytes.len() as u64 > max {
                // The new record starts the next file: set it aside, write the rest, rotate.
                self.spill.clear();
                self.spill.extend_from_slice(&self.batch.bytes[mark..]);
                self.batch.bytes.truncate(mark);
                self.flush();
                self.settle();
                if let Some(sink) = self.sink.as_mut().filter(|s| s.size() > 0) {
                    self.rotation.rotate(sink);
                }
                self.batch.bytes.extend_from_slice(&self.spill);
            }
        }
        self.batch.output += log.len() as u64;
        self.batch
            .bounds
            .push((self.batch.bytes.len(), self.batch.output));
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
    fn records_do_not_depend_on_how_reads_split_the_output() {
        let mut data = Vec::new();
        for i in 0..50 {
            data.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        data.extend(std::iter::repeat_n(b'l', MAX_RECORD * 2 + 3));
        data.extend_from_slice(b"\nshort\n\n");
        data.extend(std::iter::repeat_n(b'm', MAX_RECORD - 1));
        data.extend_from_slice(b"\nend");
        let records = |chunk: usize| {
            let mut w = LogWriter::new(MemSink::default(), None);
            for piece in data.chunks(chunk) {
                w.push(Stream::Stdout, piece, T);
            }
            w.finish(Stream::Stdout, T);
            w.flush();
            w.sink().current.clone()
        };
        let whole = records(data.len());
        for chunk in [
            1,
            2,
            7,
            100,
            4096,
            MAX_RECORD - 1,
            MAX_RECORD,
            MAX_RECORD + 1,
        ] {
            assert!(records(chunk) == whole, "chunk {chunk}");
        }
        let mut w = LogWriter::new(MemSink::default(), None);
        w.sink_mut().current = whole;
        assert_eq!(lines(w.sink()).len(), 50 + 3 + 2 + 1 + 1);
    }

    #[test]
    fn large_batches_on_the_writer_thread_keep_order_and_drop_accounting() {
        let mut w = LogWriter::new(MemSink::default(), None);
        let line = |i: usize| format!("{i:099}\n");
        let mut want = Vec::new();
        for round in 0..6 {
            if round == 2 {
                w.sink_mut().fail = true;
            }
            if round == 3 {
                w.sink_mut().fail = false;
            }
            // 1,000 records of 100 bytes: well over PIPELINE_MIN encoded.
            for i in round * 1000..(round + 1) * 1000 {
                w.push(Stream::Stdout, line(i).as_bytes(), T);
                if round != 2 {
                    want.push(line(i));
                }
            }
            w.flush();
            assert!(w.pipeline.is_some(), "round {round}: written on the thread");
        }
        w.close();
        let got: Vec<String> = lines(w.sink())
            .iter()
            .map(|v| v["log"].as_str().expect("log").to_owned())
            .collect();
        // The batch of round 2 failed: its 100,000 bytes are reported before round 3's.
        assert_eq!(got.len(), want.len() + 1);
        assert!(got[2000].starts_with("moor-shim: dropped 100000 bytes of output: "));
        assert_eq!(got[..2000], want[..2000]);
        assert_eq!(got[2001..], want[2000..]);
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
        w.sink_mut().fail = true;
        w.push(Stream::Stdout, b"lost one\n", T);
        w.flush();
        w.push(Stream::Stderr, b"lost two\n", T);
        w.flush();
        assert_eq!(w.dropped(), 18);
        w.sink_mut().fail = false;
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
        w.sink_mut().fail = true;
        w.sink_mut().reserve = true;
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
        w.sink_mut().capacity = Some(200_000);
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
