//! A raw HTTP/1.1 client on the daemon's unix socket (one per bench thread), and latency
//! figures. The connection is kept alive; when an answer says `Connection: close` (a daemon
//! of one request per connection, before keep-alive came back) the client connects again for
//! the next request, and that connect is part of the latency. The client reads each answer
//! whole (Content-Length or chunked) but does not parse its body: on 2 cores, the bench's own
//! JSON parsing would steal the daemon's CPU.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long an answer may take before it counts as an I/O error: dockerd's start of a
/// container took over 60 s here at a load average of 60–140 (other builds on 2 cores).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// A client's connection, opened again when the daemon closed the last one.
pub struct Conn {
    /// The daemon's socket.
    sock: std::path::PathBuf,
    /// Buffered reads of the answers; writes go to the inner stream.
    reader: BufReader<UnixStream>,
    /// The last answer said `Connection: close`.
    closed: bool,
}

/// An answer: its status and body.
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body, whole.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (for the few answers the bench inspects).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

impl Conn {
    /// Connects to `sock`.
    pub fn open(sock: &Path) -> std::io::Result<Conn> {
        Ok(Conn {
            sock: sock.to_path_buf(),
            reader: Self::connect(sock)?,
            closed: false,
        })
    }

    fn connect(sock: &Path) -> std::io::Result<BufReader<UnixStream>> {
        let s = UnixStream::connect(sock)?;
        s.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(BufReader::with_capacity(256 * 1024, s))
    }

    /// One request, on the open connection or on a new one if the daemon closed it.
    pub fn call(&mut self, method: &str, path: &str, body: &str) -> std::io::Result<Answer> {
        if std::mem::take(&mut self.closed) {
            self.reader = Self::connect(&self.sock)?;
        }
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: moor\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.reader.get_mut().write_all(head.as_bytes())?;
        self.read_answer()
    }

    fn read_answer(&mut self) -> std::io::Result<Answer> {
        let mut line = String::new();
        self.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            self.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                return Err(bad(format!("bad header {header:?}")));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("connection") {
                self.closed = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().map_err(|_| bad("bad content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let body = match (length, chunked) {
            (_, true) => self.read_chunked()?,
            (Some(n), false) => self.read_exact_vec(n)?,
            // 204 and 304 have no body.
            (None, false) => Vec::new(),
        };
        Ok(Answer { status, body })
    }

    fn read_chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| bad("bad chunk size"))?;
            body.extend(self.read_exact_vec(size)?);
            line.clear();
            self.read_line(&mut line)?;
            if size == 0 {
                return Ok(body);
            }
        }
    }

    fn read_exact_vec(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut v = vec![0; n];
        self.reader.read_exact(&mut v)?;
        Ok(v)
    }

    fn read_line(&mut self, line: &mut String) -> std::io::Result<()> {
        if self.reader.read_line(line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed by the daemon",
            ));
        }
        Ok(())
    }
}

fn bad(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// Latencies of one route or operation, and its errors.
#[derive(Default)]
pub struct Stats {
    /// Every successful request's latency.
    pub times: Vec<Duration>,
    /// Non-2xx answers and I/O errors.
    pub errors: u64,
    /// The first error seen, to print.
    pub first_error: Option<String>,
}

impl Stats {
    /// Adds one result.
    pub fn record(&mut self, took: Duration, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.times.push(took),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// Merges another thread's figures.
    pub fn merge(&mut self, other: Stats) {
        self.times.extend(other.times);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// The `q` quantile (0..=1) in ms, nearest rank; 0 without data.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.times.is_empty() {
            return 0.0;
        }
        self.times.sort_unstable();
        let rank = ((q * self.times.len() as f64).ceil() as usize).clamp(1, self.times.len());
        self.times[rank - 1].as_secs_f64() * 1000.0
    }

    /// One table row: `| name | requests | errors | p50 | p90 | p99 | max |`.
    pub fn row(&mut self, name: &str, secs: Option<f64>) -> String {
        let rate = secs.map_or(String::new(), |s| {
            format!(" ({:.0}/s)", self.times.len() as f64 / s)
        });
        let (p50, p90) = (self.quantile_ms(0.50), self.quantile_ms(0.90));
        let (p99, max) = (self.quantile_ms(0.99), self.quantile_ms(1.0));
        let total = self.times.len() as u64 + self.errors;
        let errors = self.errors;
        format!("| {name} | {total}{rate} | {errors} | {p50:.2} | {p90:.2} | {p99:.2} | {max:.2} |")
    }
}

/// The table's header, matching [`Stats::row`].
pub const HEADER: &str = "| route / operation | requests | errors | p50 ms | p90 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- | --- | --- |";
