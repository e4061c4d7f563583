//! moor-shim: detaches, starts the container process, drains its output into the log,
//! reaps it and writes its exit status. std, libc, nix and serde only: no async runtime.
//!
//! The order of [`run`], after the spawned process has read `shim.json`:
//! detach (double fork, setsid, stdio, subreaper) → block SIGCHLD → open the log → start the
//! container → `started.json` → report line on stdout → stdout to /dev/null → main loop
//! (output to the log, reap) → `exit.json` → exit. A start that fails writes `exit.json`
//! with `start_error` and reports `Failed` instead.

#[allow(unsafe_code)]
pub mod adopt;
pub mod clock;
#[allow(unsafe_code)]
pub mod console;
#[allow(unsafe_code)]
pub mod daemonize;
pub mod log_file;
pub mod log_pipeline;
pub mod log_writer;
pub mod protocol;
#[allow(unsafe_code)]
pub mod reaper;
#[allow(unsafe_code)]
pub mod record;
#[allow(unsafe_code)]
pub mod spawn;
pub mod stdin;
#[allow(unsafe_code)]
pub mod trim;

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use self::daemonize::{DaemonizeError, Role};
use self::log_writer::{FileSink, LogWriter};
use self::protocol::{
    ExitKind, ExitStatus, Report, ShimSpec, Started, EXIT_FILE, OLDEST_READABLE_PROTOCOL, PROTOCOL,
    SPEC_FILE, STARTED_FILE,
};
use self::reaper::ReaperError;
use self::spawn::SpawnError;
use crate::host::atomic::{self, ExitFileError};
use crate::identity::{self, IdentityError};

/// Exit code for a start that failed before the container could run.
const START_FAILED: i32 = 128;

/// What can stop the shim.
#[derive(Debug)]
pub enum ShimError {
    /// The run directory or `shim.json` cannot be read.
    ReadSpec {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `shim.json` is not a valid spec.
    ParseSpec {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// `shim.json` was written for a protocol this shim does not speak.
    Protocol {
        /// The spec's protocol (0 if absent).
        found: u64,
    },
    /// Detaching failed.
    Daemonize(DaemonizeError),
    /// The log file cannot be opened.
    OpenLog {
        /// The log file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The stdin FIFO cannot be made or opened.
    OpenStdin {
        /// The FIFO.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The container could not be started.
    Spawn(SpawnError),
    /// The shim or the container could not be identified.
    Identity(IdentityError),
    /// `started.json` or `exit.json` could not be written.
    File(ExitFileError),
    /// The main loop failed.
    Reaper(ReaperError),
}

impl fmt::Display for ShimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShimError::ReadSpec { path, .. } => write!(f, "read {}", path.display()),
            ShimError::ParseSpec { path, .. } => write!(f, "parse {}", path.display()),
            ShimError::Protocol { found } => write!(
                f,
                "shim.json protocol {found} is not supported (this shim reads \
                 {OLDEST_READABLE_PROTOCOL}..={PROTOCOL})"
            ),
            ShimError::Daemonize(_) => write!(f, "detach"),
            ShimError::OpenLog { path, .. } => write!(f, "open log {}", path.display()),
            ShimError::OpenStdin { path, .. } => write!(f, "open stdin fifo {}", path.display()),
            ShimError::Spawn(_) => write!(f, "start container"),
            ShimError::Identity(_) => write!(f, "identify process"),
            ShimError::File(_) => write!(f, "write run file"),
            ShimError::Reaper(_) => write!(f, "supervise"),
        }
    }
}

impl std::error::Error for ShimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShimError::ReadSpec { source, .. }
            | ShimError::OpenLog { source, .. }
            | ShimError::OpenStdin { source, .. } => Some(source),
            ShimError::ParseSpec { source, .. } => Some(source),
            ShimError::Protocol { .. } => None,
            ShimError::Daemonize(e) => Some(e),
            ShimError::Spawn(e) => Some(e),
            ShimError::Identity(e) => Some(e),
            ShimError::File(e) => Some(e),
            ShimError::Reaper(e) => Some(e),
        }
    }
}

pub use crate::host::chain;

/// The whole shim, for `moor-shim <container-run-dir>`; returns the process exit code.
pub fn run(dir: &Path) -> i32 {
    let dir = match fs::canonicalize(dir) {
        Ok(dir) => dir,
        Err(source) => {
            let err = ShimError::ReadSpec {
                path: dir.to_owned(),
                source,
            };
            report(&Report::Failed {
                code: START_FAILED,
                error: chain(&err),
            });
            return 1;
        }
    };
    let spec = match read_spec(&dir) {
        Ok(spec) => spec,
        Err(err) => {
            fail(&dir, START_FAILED, &chain(&err));
            return 1;
        }
    };
    match daemonize::detach(&dir) {
        Ok(Role::Exit) => return 0,
        Ok(Role::Shim) => {}
        Err(err) => {
            fail(&dir, START_FAILED, &chain(&ShimError::Daemonize(err)));
            return 1;
        }
    }
    match serve(&dir, &spec) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("moor-shim: {}", chain(&err));
            1
        }
    }
}

/// Reads `shim.json`, checking its protocol before its shape.
pub fn read_spec(dir: &Path) -> Result<ShimSpec, ShimError> {
    let path = dir.join(SPEC_FILE);
    let text = fs::read(&path).map_err(|source| ShimError::ReadSpec {
        path: path.clone(),
        source,
    })?;
    let parse = |source| ShimError::ParseSpec {
        path: path.clone(),
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(parse)?;
    let found = value.get("protocol").and_then(|p| p.as_u64()).unwrap_or(0);
    if found < u64::from(OLDEST_READABLE_PROTOCOL) || found > u64::from(PROTOCOL) {
        return Err(ShimError::Protocol { found });
    }
    serde_json::from_value(value).map_err(parse)
}

/// How long the shim reaps what was left of a process container's group after its init.
const LEFTOVER_REAP: std::time::Duration = std::time::Duration::from_millis(200);

/// The detached shim: start, report, supervise, record the exit.
fn serve(dir: &Path, spec: &ShimSpec) -> Result<(), ShimError> {
    let Running {
        record,
        child,
        sfd,
        mut log,
        stdin_fifo,
        control,
    } = match start(dir, spec) {
        Ok(running) => running,
        Err((code, err)) => {
            fail(dir, code, &chain(&err));
            return Ok(());
        }
    };
    report(&Report::Started(record));
    release_stdout();
    // Off the start path: the daemon has its answer. The idle loop needs little of what the
    // start touched.
    trim::trim();
    let forward = match (stdin_fifo, child.stdin) {
        (Some(fifo), Some(pipe)) => Some(stdin::StdinForward::new(fifo, pipe)),
        _ => None,
    };
    let outputs = reaper::Streams {
        stdout: child.stdout,
        stderr: child.stderr,
        stdin: forward,
        control,
    };
    let group = matches!(spec.runtime, protocol::RuntimeSpec::Process { .. });
    let exit =
        reaper::supervise(child.pid, group, &sfd, outputs, &mut log).map_err(ShimError::Reaper)?;
    if group {
        reaper::reap_leftovers(LEFTOVER_REAP);
    }
    // Before exit.json: a reader following the log stops once the container has exited.
    log.close();
    log.sink_mut().remove_reserve();
    let status = ExitStatus {
        protocol: PROTOCOL,
        exit,
        finished_at: clock::now_fixed(),
        start_error: None,
        oom_killed: oom_killed(spec),
    };
    atomic::write_json(dir, EXIT_FILE, &status).map_err(ShimError::File)
}

/// What a successful start hands to the main loop.
struct Running {
    /// The content of `started.json`, for the report.
    record: Started,
    /// The container's pid and output pipes.
    child: spawn::Spawned,
    /// SIGCHLD, blocked since before the start.
    sfd: nix::sys::signalfd::SignalFd,
    /// The opened log.
    log: LogWriter<FileSink>,
    /// The read end of the stdin FIFO, when stdin is open.
    stdin_fifo: Option<fs::File>,
    /// With a terminal, its control FIFO.
    control: Option<console::Control>,
}

/// Everything up to `started.json`; on error, the Docker exit code to report with it.
fn start(dir: &Path, spec: &ShimSpec) -> Result<Running, (i32, ShimError)> {
    let other = |e| (START_FAILED, e);
    let sfd = reaper::block_sigchld()
        .map_err(ShimError::Reaper)
        .map_err(other)?;
    let sink = FileSink::open(&spec.log_path, spec.log_max_file)
        .map_err(|source| ShimError::OpenLog {
            path: spec.log_path.clone(),
            source,
        })
        .map_err(other)?;
    // The FIFO exists and is read before the container starts: a writer that can open it
    // knows the shim is there.
    let stdin_fifo = if spec.open_stdin {
        // With a terminal the FIFO is held read-write: a client that goes leaves the
        // terminal's input open for the next one (Docker closes a Tty's stdin never).
        let fifo = stdin::open_fifo(dir, spec.tty)
            .map_err(|source| ShimError::OpenStdin {
                path: dir.join(protocol::STDIN_FIFO),
                source,
            })
            .map_err(other)?;
        Some(fifo)
    } else {
        None
    };
    let mut child = spawn::start(spec, dir).map_err(|e| (e.exit_code(), ShimError::Spawn(e)))?;
    let mut control = None;
    let record = child
        .master
        .take()
        .map(|master| console::Control::open(dir, master))
        .transpose()
        .map_err(|source| ShimError::Spawn(SpawnError::Console { source }))
        .and_then(|c| {
            control = c;
            identity::identify(nix::unistd::getpid().as_raw()).map_err(ShimError::Identity)
        })
        .and_then(|shim| {
            identity::identify(child.pid)
                .map(|process| Started {
                    protocol: PROTOCOL,
                    shim,
                    process,
                    started_at: clock::now_fixed(),
                })
                .map_err(ShimError::Identity)
        })
        .and_then(|record| {
            atomic::write_json(dir, STARTED_FILE, &record).map_err(ShimError::File)?;
            Ok(record)
        });
    match record {
        Ok(record) => Ok(Running {
            record,
            child,
            sfd,
            log: LogWriter::new(sink, spec.log_max_size),
            stdin_fifo,
            control,
        }),
        Err(err) => {
            // Never leave a process running that nobody was told about.
            let pid = nix::unistd::Pid::from_raw(child.pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            Err((START_FAILED, err))
        }
    }
}

/// Whether the container's memory cgroup counted an OOM kill: the `oom_kill N` line of
/// `memory.oom_control` (cgroup v1) or `memory.events` (v2). Read before `runc delete`
/// removes the cgroup.
fn oom_killed(spec: &ShimSpec) -> bool {
    let protocol::RuntimeSpec::Runc {
        memory_cgroup: Some(dir),
        ..
    } = &spec.runtime
    else {
        return false;
    };
    ["memory.oom_control", "memory.events"].iter().any(|f| {
        fs::read_to_string(dir.join(f)).is_ok_and(|text| {
            text.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

/// A failed start: `exit.json` with the error (when the directory allows), then the report.
fn fail(dir: &Path, code: i32, error: &str) {
    let status = ExitStatus {
        protocol: PROTOCOL,
        exit: ExitKind::Code(code),
        finished_at: clock::now_fixed(),
        start_error: Some(error.to_owned()),
        oom_killed: false,
    };
    if let Err(e) = atomic::write_json(dir, EXIT_FILE, &status) {
        eprintln!("moor-shim: {}", chain(&e));
    }
    report(&Report::Failed {
        code,
        error: error.to_owned(),
    });
}

/// Writes the one report line on stdout. A daemon that went away (EPIPE; SIGPIPE is ignored
/// by the Rust runtime) is not an error: the files carry the same facts.
fn report(report: &Report) {
    let mut line = match serde_json::to_vec(report) {
        Ok(line) => line,
        Err(e) => {
            eprintln!("moor-shim: encode report: {e}");
            return;
        }
    };
    line.push(b'\n');
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
        eprintln!("moor-shim: write report: {e}");
    }
}

/// An adoption that failed: the report only (no `exit.json`: the process still runs).
fn fail_report(error: &str, code: i32) -> i32 {
    eprintln!("moor-shim: adopt: {error}");
    report(&Report::Failed {
        code,
        error: error.to_owned(),
    });
    code
}

/// Points stdout at /dev/null, closing the report pipe: the daemon sees EOF.
fn release_stdout() {
    let result = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .and_then(|null| {
            nix::unistd::dup2(null.as_raw_fd(), libc::STDOUT_FILENO)
                .map(drop)
                .map_err(io::Error::from)
        });
    if let Err(e) = result {
        eprintln!("moor-shim: release stdout: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_protocol_is_refused_before_parsing() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join(SPEC_FILE),
            r#"{"protocol": 7, "new": true}"#,
        )
        .expect("write");
        match read_spec(dir.path()) {
            Err(ShimError::Protocol { found: 7 }) => {}
            other => panic!("expected Protocol, got {other:?}"),
        }
        fs::write(dir.path().join(SPEC_FILE), r#"{"protocol": 1}"#).expect("write");
        assert!(matches!(
            read_spec(dir.path()),
            Err(ShimError::ParseSpec { .. })
        ));
    }

    #[test]
    fn chain_joins_sources() {
        let err = ShimError::Spawn(SpawnError::Pipe {
            source: nix::errno::Errno::EMFILE,
        });
        assert_eq!(
            chain(&err),
            "start container: create output pipe: EMFILE: Too many open files"
        );
    }
}
