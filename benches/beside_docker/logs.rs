//! json-file log throughput: one container writing `bytes` of 100-byte lines to stdout, then
//! an end marker; timed from the start request until the marker is in the log file (read
//! from the file's tail, so the time covers the engine's whole log path, not only the
//! container's run). Two writers: `yes | head -c` (a pipeline of small writes, as programs
//! log) and `cat` of a file of those lines bind-mounted from the host (64 KiB writes: the log
//! path's own capacity). The baseline of each is the same container with the lines sent to
//! `/dev/null` inside it (only the marker reaches the log): the pace of the writer itself,
//! the most any engine's log path can reach.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::client::Conn;

/// The line the container repeats: 99 printable bytes and a newline.
const LINE: &str = "the quick brown fox jumps over the lazy dog 0123456789 \
                    the quick brown fox jumps over the lazy dog.";
const _: () = assert!(LINE.len() == 99);

/// The container's last line, looked for in the log file's tail.
const END: &str = "moor-bench-log-end";

/// Where the writer's lines go.
#[derive(Clone, Copy, PartialEq)]
pub enum Sink {
    /// To stdout: the engine's log path.
    Log,
    /// To `/dev/null` inside the container: the writer's own pace (the baseline).
    Discard,
}

/// What writes the lines.
#[derive(Clone)]
pub enum Writer {
    /// `busybox yes LINE | busybox head -c BYTES`.
    Yes,
    /// `busybox cat` of this host file (made by [`lines_file`]), bind-mounted read-only.
    Cat(PathBuf),
}

/// Where [`Writer::Cat`]'s file is in the container.
const LINES_IN_CONTAINER: &str = "/moor-bench-lines";

impl Writer {
    /// What the table calls it.
    pub fn name(&self) -> &'static str {
        match self {
            Writer::Yes => "yes | head -c",
            Writer::Cat(_) => "cat FILE",
        }
    }
}

/// Writes `bytes` bytes of [`LINE`]s to `path` (for [`Writer::Cat`]).
pub fn lines_file(path: &Path, bytes: u64) {
    let line = format!("{LINE}\n");
    let block = line.repeat(64 * 1024 / line.len());
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(path).expect("create the lines file"));
    let mut left = bytes as usize;
    while left > 0 {
        let n = left.min(block.len());
        f.write_all(&block.as_bytes()[..n])
            .expect("write the lines file");
        left -= n;
    }
    f.flush().expect("write the lines file");
}

/// The create body of a container whose `writer` writes `bytes` bytes to `sink`, then
/// [`END`] to stdout.
pub fn body(image: &str, bytes: u64, writer: &Writer, sink: Sink) -> String {
    let to = match sink {
        Sink::Log => "",
        Sink::Discard => " > /dev/null",
    };
    let (write, binds) = match writer {
        Writer::Yes => (
            format!("/bin/busybox yes '{LINE}' | /bin/busybox head -c {bytes}"),
            vec![],
        ),
        Writer::Cat(file) => (
            format!("/bin/busybox cat {LINES_IN_CONTAINER}"),
            vec![format!("{}:{LINES_IN_CONTAINER}:ro", file.display())],
        ),
    };
    let script = format!("{write}{to}; echo {END}");
    serde_json::json!({
        "Image": image,
        "Cmd": ["/bin/sh", "-c", script],
        "HostConfig": {"NetworkMode": "none", "Binds": binds},
    })
    .to_string()
}

/// One run's figures.
pub struct LogRun {
    /// From the start request to the end marker in the log file.
    pub took: Duration,
    /// The log file's size then.
    pub log_bytes: u64,
}

impl LogRun {
    /// Throughput of the container's output, MB/s (10^6 bytes).
    pub fn mb_per_s(&self, bytes: u64) -> f64 {
        bytes as f64 / 1e6 / self.took.as_secs_f64()
    }
}

/// Creates, starts and times one writer on the API at `sock`, then removes it.
pub fn run(sock: &Path, image: &str, bytes: u64, writer: &Writer, sink: Sink) -> LogRun {
    let mut conn = Conn::open(sock).expect("connect");
    let a = conn
        .call(
            "POST",
            "/containers/create",
            &body(image, bytes, writer, sink),
        )
        .expect("create");
    assert_eq!(
        a.status,
        201,
        "create: {}",
        String::from_utf8_lossy(&a.body)
    );
    let id = a.json()["Id"].as_str().expect("Id").to_string();
    let t0 = Instant::now();
    let a = conn
        .call("POST", &format!("/containers/{id}/start"), "")
        .expect("start");
    assert_eq!(a.status, 204, "start: {}", String::from_utf8_lossy(&a.body));
    let log = log_path(&mut conn, &id);
    let log_bytes = loop {
        if let Some(len) = ends_with_marker(&log) {
            break len;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "no {END} in {} after 600 s",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = t0.elapsed();
    let a = conn
        .call("DELETE", &format!("/containers/{id}?force=1"), "")
        .expect("remove");
    assert_eq!(
        a.status,
        204,
        "remove: {}",
        String::from_utf8_lossy(&a.body)
    );
    LogRun { took, log_bytes }
}

/// The container's `LogPath` (Docker sets it when the container starts).
fn log_path(conn: &mut Conn, id: &str) -> std::path::PathBuf {
    let a = conn
        .call("GET", &format!("/containers/{id}/json"), "")
        .expect("inspect");
    assert_eq!(
        a.status,
        200,
        "inspect: {}",
        String::from_utf8_lossy(&a.body)
    );
    let path = a.json()["LogPath"].as_str().unwrap_or_default().to_string();
    assert!(!path.is_empty(), "no LogPath in the inspect of {id}");
    path.into()
}

/// The file's size when its last 256 bytes hold [`END`].
fn ends_with_marker(log: &Path) -> Option<u64> {
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(256))).ok()?;
    let mut tail = Vec::with_capacity(256);
    f.read_to_end(&mut tail).ok()?;
    let needle = END.as_bytes();
    tail.windows(needle.len())
        .any(|w| w == needle)
        .then_some(len)
}
