//! The files and the report through which the daemon and moor-shim talk.
//!
//! The daemon writes [`ShimSpec`] to `<run>/containers/<id>/shim.json` and starts
//! `moor-shim <that dir>` with its stdout on a pipe. The shim detaches, starts the
//! process, writes [`Started`] atomically to `started.json`, writes one [`Report`]
//! line to the pipe and closes it. When the process ends the shim writes
//! [`ExitStatus`] atomically to `exit.json` and exits. Every file carries
//! `protocol`; a daemon reads the current and the previous version.
//!
//! This module is shared by the daemon and the shim: std and serde only.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The protocol version this build writes.
pub const PROTOCOL: u32 = 1;
/// The oldest protocol version this build still reads.
pub const OLDEST_READABLE_PROTOCOL: u32 = 1;

/// Written by the daemon before it starts the shim.
pub const SPEC_FILE: &str = "shim.json";
/// Written by the shim once the process runs.
pub const STARTED_FILE: &str = "started.json";
/// Written by the shim once the process ended (or could not start).
pub const EXIT_FILE: &str = "exit.json";
/// The shim's own diagnostics (its stderr after it detached).
pub const SHIM_LOG_FILE: &str = "shim.log";
/// A FIFO the shim reads and forwards to the container's stdin (when `open_stdin`); the
/// first writer's close is the container's stdin EOF (Docker's StdinOnce).
pub const STDIN_FIFO: &str = "stdin.fifo";

/// With `tty`, a FIFO the shim reads for control lines: `resize HEIGHT WIDTH`.
pub const CONTROL_FIFO: &str = "control.fifo";
/// With `tty` and the runc runtime, the socket over which runc hands the pty master to the
/// shim (`runc run --console-socket`); removed once the master arrived.
pub const CONSOLE_SOCKET: &str = "console.sock";

/// A process identity as the shim records it (same JSON shape as `moor_state::ProcessIdentity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Host pid.
    pub pid: i32,
    /// Field 22 of /proc/PID/stat.
    pub start_time: u64,
    /// /proc/sys/kernel/random/boot_id.
    pub boot_id: String,
}

/// What to run and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeSpec {
    /// A plain host process.
    Process {
        /// argv; argv[0] is looked up in the PATH of `env` (or the shim's own PATH).
        argv: Vec<String>,
        /// The whole environment, `KEY=VALUE`.
        env: Vec<String>,
        /// Working directory (`/` if empty).
        cwd: String,
    },
    /// An OCI container: `runc --root ROOT [RUNTIME_ARGS] run --detach --pid-file F --bundle
    /// BUNDLE ID`.
    Runc {
        /// Path of the runc binary.
        runc: PathBuf,
        /// runc's state directory (`--root`).
        root: PathBuf,
        /// Extra global options (daemon.json `runtimeArgs`); absent in older files.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        runtime_args: Vec<String>,
        /// The OCI bundle directory (config.json and rootfs).
        bundle: PathBuf,
        /// The container's memory cgroup directory, read after the exit for OOM kills.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memory_cgroup: Option<PathBuf>,
    },
}

/// What the daemon asks the shim to do (`shim.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimSpec {
    /// [`PROTOCOL`] of the daemon that wrote it.
    pub protocol: u32,
    /// The container id (64 hex).
    pub id: String,
    /// What to run.
    pub runtime: RuntimeSpec,
    /// The json-file log the shim appends to.
    pub log_path: PathBuf,
    /// Rotate the log when it would exceed this many bytes (None: never).
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// How many log files to keep when rotating (at least 1).
    #[serde(default = "one")]
    pub log_max_file: u32,
    /// Give the container a stdin pipe fed from [`STDIN_FIFO`] (Docker's OpenStdin);
    /// false: its stdin is /dev/null.
    #[serde(default)]
    pub open_stdin: bool,
    /// Give the container a pseudo-terminal (Docker's Tty): the shim holds its master, logs
    /// what it reads from it as stdout, writes [`STDIN_FIFO`] into it and resizes it on a
    /// line in [`CONTROL_FIFO`].
    #[serde(default)]
    pub tty: bool,
    /// The terminal's size at start, `[height, width]`; `[0, 0]` leaves the pty's default.
    #[serde(default)]
    pub console_size: [u16; 2],
}

fn one() -> u32 {
    1
}

/// `started.json`: the run, as the shim recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// [`PROTOCOL`] of the shim that wrote it.
    pub protocol: u32,
    /// The shim itself (after it detached).
    pub shim: Identity,
    /// The container's init process.
    pub process: Identity,
    /// RFC 3339 UTC with nanoseconds: Docker's StartedAt.
    pub started_at: String,
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitKind {
    /// exit(2) with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

/// `exit.json`: how and when the process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// [`PROTOCOL`] of the shim that wrote it.
    pub protocol: u32,
    /// How it ended.
    pub exit: ExitKind,
    /// RFC 3339 UTC with nanoseconds: Docker's FinishedAt.
    pub finished_at: String,
    /// Set when the process could not be started; `exit` is then 126, 127 or 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
    /// Set when the kernel's OOM killer killed a process of the container (Docker's OOMKilled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
}

/// The one line the shim writes to its stdout pipe once it knows how the start went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// The process runs; the same content as `started.json`.
    Started(Started),
    /// The process could not be started.
    Failed {
        /// Docker's code: 127 not found, 126 not executable, 128 other.
        code: i32,
        /// What went wrong.
        error: String,
    },
}
