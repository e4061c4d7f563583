//! Shim log throughput against `cat FILE | cat > out`, in the same run.
//!
//! A file of `LOG_BENCH_MB` MB (default 100) of text lines is written once. The baseline is
//! `sh -c 'cat FILE | cat > OUT'`: a pipe drained into a file with no processing. The shim run
//! is `moor-shim` supervising `cat FILE`: the same pipe, drained by the shim into the
//! json-file log (records encoded, batched, rotation checks). Each is timed from spawn to the
//! end (`exit.json` for the shim), best of `LOG_BENCH_RUNS` (default 3); MB/s are of the
//! container's output (input bytes), so the two figures compare directly.
//!
//! Run: `cargo bench --bench log_throughput` (`LOG_BENCH_DIR` picks the file system).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use moor::shim::protocol::{RuntimeSpec, ShimSpec, EXIT_FILE, PROTOCOL, SPEC_FILE};

const MOOR_SHIM: &str = env!("CARGO_BIN_EXE_moor-shim");

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes about `mb` MB of numbered lines of varying length; returns (bytes, lines).
fn make_input(path: &Path, mb: u64) -> (u64, u64) {
    let mut out = BufWriter::new(File::create(path).expect("create input"));
    let (mut bytes, mut lines) = (0u64, 0u64);
    let filler = "the quick brown fox jumps over the lazy dog 0123456789 ".repeat(4);
    while bytes < mb * 1_000_000 {
        let line = format!("line {lines:09} {}\n", &filler[..(lines % 160) as usize]);
        out.write_all(line.as_bytes()).expect("write input");
        bytes += line.len() as u64;
        lines += 1;
    }
    out.flush().expect("flush input");
    (bytes, lines)
}

/// One `cat FILE | cat > OUT`.
fn run_cat(input: &Path, out: &Path) -> Duration {
    let script = format!("cat '{}' | cat > '{}'", input.display(), out.display());
    let start = Instant::now();
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .expect("run sh");
    let took = start.elapsed();
    assert!(status.success(), "cat pipeline failed: {status}");
    took
}

/// One shim run of `cat FILE` into `dir/log/bench-json.log`; returns (time, log path).
fn run_shim(input: &Path, dir: &Path) -> (Duration, std::path::PathBuf) {
    let run = dir.join("run");
    fs::create_dir_all(&run).expect("create run dir");
    let log = dir.join("log").join("bench-json.log");
    let spec = ShimSpec {
        protocol: PROTOCOL,
        id: "bench".into(),
        runtime: RuntimeSpec::Process {
            argv: vec!["cat".into(), input.display().to_string()],
            env: vec![format!(
                "PATH={}",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
            )],
            cwd: "/".into(),
        },
        log_path: log.clone(),
        log_max_size: None,
        log_max_file: 1,
        open_stdin: false,
        tty: false,
        console_size: [0, 0],
    };
    fs::write(
        run.join(SPEC_FILE),
        serde_json::to_vec(&spec).expect("encode spec"),
    )
    .expect("write shim.json");
    let start = Instant::now();
    let mut child = Command::new(MOOR_SHIM)
        .arg(&run)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn moor-shim");
    let mut report = String::new();
    let stdout = child.stdout.take().expect("shim stdout");
    BufReader::new(stdout)
        .read_line(&mut report)
        .expect("read report");
    assert!(report.contains("started"), "shim did not start: {report}");
    child.wait().expect("reap the shim's first process");
    while !run.join(EXIT_FILE).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "shim never finished"
        );
        thread::sleep(Duration::from_micros(500));
    }
    (start.elapsed(), log)
}

fn count_lines(path: &Path) -> u64 {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).expect("open log"));
    let mut n = 0u64;
    loop {
        let buf = reader.fill_buf().expect("read log");
        if buf.is_empty() {
            return n;
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        reader.consume(len);
    }
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: a 1 MB smoke run then.
    let measuring = std::env::args().any(|a| a == "--bench");
    let mb = if measuring {
        env_number("LOG_BENCH_MB", 100)
    } else {
        1
    };
    let runs = if measuring {
        env_number("LOG_BENCH_RUNS", 3).max(1)
    } else {
        1
    };
    let dir = match std::env::var_os("LOG_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .expect("tempdir");
    let input = dir.path().join("input.txt");
    let (bytes, lines) = make_input(&input, mb);
    let mut best_cat = Duration::MAX;
    let mut best_shim = Duration::MAX;
    let mut log_bytes = 0;
    for i in 0..runs {
        let out = dir.path().join("cat.out");
        best_cat = best_cat.min(run_cat(&input, &out));
        fs::remove_file(&out).expect("remove cat output");
        let shim_dir = dir.path().join(format!("shim{i}"));
        let (took, log) = run_shim(&input, &shim_dir);
        best_shim = best_shim.min(took);
        assert_eq!(count_lines(&log), lines, "every line is one record");
        log_bytes = fs::metadata(&log).expect("stat log").len();
        fs::remove_dir_all(&shim_dir).expect("remove shim dir");
    }
    let cat = mb_per_s(bytes, best_cat);
    let shim = mb_per_s(bytes, best_shim);
    println!("log_throughput: {bytes} bytes, {lines} lines, best of {runs}");
    println!("  cat | cat > file : {cat:8.1} MB/s ({best_cat:?})");
    println!("  moor-shim -> log : {shim:8.1} MB/s ({best_shim:?}), log {log_bytes} bytes");
    println!("  ratio shim/cat   : {:.2} (goal >= 0.50)", shim / cat);
}
