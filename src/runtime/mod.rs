//! Runtimes: how the daemon starts a shim for a container and reads what the shim
//! left in the run directory. The daemon never becomes the container's parent: it
//! spawns `moor-shim`, whose first process exits at once after detaching.

pub mod adopt;
pub mod bundle;
pub mod exec;
#[cfg(test)]
pub mod fake;
pub mod freeze;
pub mod interface;
pub mod observe;
pub mod overlay;
#[allow(unsafe_code)]
pub mod pidwatch;
pub mod process;
pub mod runc;
pub mod stats;

pub use interface::{LogTarget, ProcessHandle, Runtime, RuntimeFuture, Runtimes};

use std::io;
use std::path::{Path, PathBuf};

use moor_state::record::RuntimeKind;
use moor_state::Run;
use thiserror::Error;
use tokio::io::AsyncReadExt;

use crate::host::atomic;
use crate::host::layout::Layout;
use crate::shim::protocol::{self, Report, RuntimeSpec, ShimSpec};

/// Why a shim could not be started or its files read.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// Writing the shim's spec or clearing old run files failed.
    #[error("prepare run directory {dir}")]
    Prepare {
        /// The container's run directory.
        dir: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The shim's spec file could not be written.
    #[error("write the shim spec")]
    WriteSpec(#[source] atomic::ExitFileError),
    /// The shim binary could not be executed.
    #[error("spawn shim {bin}")]
    Spawn {
        /// The shim binary.
        bin: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The shim exited without a report line.
    #[error("the shim exited without reporting (see {log})")]
    NoReport {
        /// The shim's own log.
        log: PathBuf,
    },
    /// The runc runtime could not prepare or clean up the container.
    #[error("runc runtime")]
    Runc(#[from] runc::SetupError),
    /// The container needs runc, which this daemon does not have.
    #[error("the runc runtime is not available: the daemon runs without root or runc was not found (apt-get install runc)")]
    NoRunc,
    /// A step run on the blocking pool panicked or was cancelled.
    #[error("a blocking step of the runtime did not finish")]
    Task(#[source] tokio::task::JoinError),
    /// A run file could not be read.
    #[error(transparent)]
    RunFile(#[from] RunFileError),
    /// `runc update` of a live container failed.
    #[error("update the container's cgroup")]
    Update(#[source] runc::RuncError),
    /// This runtime keeps no cgroup of the container to update.
    #[error("the {0} runtime cannot change a running container's resources")]
    UpdateUnsupported(&'static str),
}

/// What the shim said once it knew how the start went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// The process runs.
    Started(Run),
    /// It could not start: Docker's code and the reason.
    Failed {
        /// 126, 127 or 128.
        code: i32,
        /// The reason.
        error: String,
    },
}

pub use crate::host::chain;

use crate::host::runfiles::to_run;
pub use crate::host::runfiles::{
    from_identity, liveness, read_run_files, to_exit, to_identity, RunFileError, RunFiles,
};

/// Clears the run files of a previous run and writes the shim's spec (fsynced): blocking.
fn prepare_run_dir(dir: &Path, spec: &ShimSpec) -> Result<(), RuntimeError> {
    let prepare = |source| RuntimeError::Prepare {
        dir: dir.into(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(prepare)?;
    for stale in [protocol::STARTED_FILE, protocol::EXIT_FILE] {
        match std::fs::remove_file(dir.join(stale)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(prepare(e)),
            _ => {}
        }
    }
    atomic::write_json(dir, protocol::SPEC_FILE, spec).map_err(RuntimeError::WriteSpec)
}

/// Runs `step` on the blocking pool: what an actor awaits without holding up the thread
/// that every actor shares.
pub async fn blocking<T: Send + 'static>(
    step: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(RuntimeError::Task)?
}

/// Starts `shim_bin` for the container whose run directory is `dir` and waits for its report.
/// The run directory is prepared on the blocking pool; the shim is an async child.
pub async fn start_shim(
    shim_bin: &Path,
    dir: &Path,
    spec: ShimSpec,
) -> Result<StartOutcome, RuntimeError> {
    let owned = dir.to_path_buf();
    blocking(move || prepare_run_dir(&owned, &spec)).await?;

    let mut command = std::process::Command::new(shim_bin);
    for var in crate::host::MANAGER_ENV {
        command.env_remove(var);
    }
    crate::host::limits::inherit_nofile(&mut command);
    let mut command = tokio::process::Command::from(command);
    let mut child = command
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(false)
        .spawn()
        .map_err(|source| RuntimeError::Spawn {
            bin: shim_bin.into(),
            source,
        })?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        // EOF comes when the detached shim has reported and closed its stdout.
        stdout
            .read_to_string(&mut out)
            .await
            .map_err(|source| RunFileError::Read {
                path: dir.join("<shim stdout>"),
                source,
            })?;
    }
    // The spawned process exits right after detaching: reap it.
    let _ = child.wait().await;
    let line = out.lines().next().ok_or_else(|| RuntimeError::NoReport {
        log: dir.join(protocol::SHIM_LOG_FILE),
    })?;
    let report: Report = serde_json::from_str(line).map_err(|source| RunFileError::Decode {
        path: dir.join("<shim report>"),
        source,
    })?;
    Ok(match report {
        Report::Started(s) => StartOutcome::Started(to_run(&dir.join(protocol::STARTED_FILE), &s)?),
        Report::Failed { code, error } => StartOutcome::Failed { code, error },
    })
}

/// The shim's spec for a container: a process spec, or a runc bundle (overlay mount,
/// config.json) prepared on the blocking pool.
pub async fn prepare(
    runc: Option<runc::Runc>,
    layout: Layout,
    (id, spec): (String, moor_state::ContainerSpec),
    log: (PathBuf, Option<u64>, u32),
) -> Result<ShimSpec, RuntimeError> {
    match (spec.runtime, runc) {
        (RuntimeKind::Process, _) => Ok(process_spec(&id, &spec, log.0, log.1, log.2)),
        (RuntimeKind::Runc, Some(runc)) => {
            blocking(move || runc::runtime::prepare(&runc, &layout, &id, &spec, log, &[])).await
        }
        (RuntimeKind::Runc, None) => Err(RuntimeError::NoRunc),
    }
}

/// Builds the shim spec of a process-runtime container.
pub fn process_spec(
    id: &str,
    spec: &moor_state::ContainerSpec,
    log_path: PathBuf,
    log_max_size: Option<u64>,
    log_max_file: u32,
) -> ShimSpec {
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!(
            "PATH={}",
            std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into())
        ));
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) && !spec.hostname.is_empty() {
        env.push(format!("HOSTNAME={}", spec.hostname));
    }
    if spec.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    ShimSpec {
        protocol: protocol::PROTOCOL,
        id: id.into(),
        runtime: RuntimeSpec::Process {
            argv: spec.argv(),
            env,
            cwd: spec.working_dir.clone(),
        },
        log_path,
        log_max_size,
        log_max_file,
        open_stdin: spec.open_stdin,
        tty: spec.tty,
        console_size: spec.console_size,
    }
}

/// Docker's default PATH inside a container.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
