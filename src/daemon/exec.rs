//! `docker exec`: the registry of exec instances and the processes behind them.
//!
//! An exec instance is created for a running container, started once, and remembered with
//! its exit code until its container is removed. Like Docker's, the process is the daemon's
//! own child (`runc exec` for a runc container, a plain host process for the process
//! runtime) and its record lives in memory only: it is not promised to survive a daemon
//! restart. A supervising task reaps it, records the exit code before the output stream
//! ends (the docker CLI asks for the code right after), and publishes `exec_die`. When its
//! container exits, a still running exec process is killed (SIGKILL), as the kernel does to
//! the processes of a runc container's pid namespace: a host process would outlive it.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tokio::sync::{mpsc, Notify};

use crate::daemon::events::DockerEvent;
use crate::daemon::Shared;
use crate::image::user::ExecUser;
#[cfg(test)]
use crate::runtime::exec::merge_env;
use crate::runtime::exec::{ExecCommand, ExecRuleError, ExecSpec};
use crate::runtime::Runtime;

pub mod bounded;
mod registry;
mod stdio;
mod terminal;
pub use registry::{ExecEntry, ExecRegistry, ExecStatus};

/// How long output is still read after the process exited (a background child of it may
/// hold the pipes open).
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// Output frames buffered for a slow client.
const FRAMES: usize = 32;

/// Why an exec instance could not be started.
#[derive(Debug, Error)]
pub enum ExecError {
    /// No instance has this id (or its container was removed).
    #[error("No such exec instance: {0}")]
    NotFound(String),
    /// It runs already.
    #[error("Error: Exec command {0} is already running")]
    Running(String),
    /// It ran already.
    #[error("Error: Exec command {0} has already run")]
    Ran(String),
    /// The container is a runc one but the daemon has no runc.
    #[error("runc is not available to this daemon")]
    NoRunc,
    /// The container does not run (Docker's 409).
    #[error("Container {0} is not running")]
    NotRunning(String),
    /// The container is paused (Docker's 409).
    #[error("Container {0} is paused, unpause the container before exec")]
    Paused(String),
    /// `User` in a process-runtime container, which runs as the daemon's user.
    #[error("User (exec in a process-runtime container) is not supported")]
    UserUnsupported,
    /// The exec's `User` is not in the container's image.
    #[error(transparent)]
    User(#[from] crate::image::user::UserError),
    /// A resize of an exec that has no terminal or does not run.
    #[error("Exec {0} has no running TTY to resize (it was not created with Tty, or it ended)")]
    NoTty(String),
    /// The exec's terminal could not be opened.
    #[error("open a terminal for the exec")]
    Terminal(#[source] std::io::Error),
    /// The process could not be started.
    #[error("cannot start {program}")]
    Spawn {
        /// The program (runc, or the command itself).
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<ExecRuleError> for ExecError {
    fn from(e: ExecRuleError) -> Self {
        match e {
            ExecRuleError::NoRunc => ExecError::NoRunc,
            ExecRuleError::UserUnsupported => ExecError::UserUnsupported,
            ExecRuleError::User(e) => ExecError::User(e),
        }
    }
}

/// What an exec instance runs, fixed at create.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Its container's full id.
    pub container_id: String,
    /// Its container's name (event attribute).
    pub container_name: String,
    /// Its container's image (event attribute).
    pub image: String,
    /// The runtime of its container, under the settings the container was started with.
    pub runtime: Arc<dyn Runtime>,
    /// Its container's run directory (the exec's pid file goes there).
    pub run_dir: std::path::PathBuf,
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// The environment: the container's overridden by the exec's (process runtime), the
    /// exec's own only (runc adds them to the container's, later entries winning).
    pub env: Vec<String>,
    /// The working directory; empty = the container's.
    pub working_dir: String,
    /// The user as the client gave it (inspect's `ProcessConfig.user`).
    pub user: String,
    /// The user resolved in the container's image (runc only; None = the container's).
    pub exec_user: Option<ExecUser>,
    /// Forward the client's stdin.
    pub attach_stdin: bool,
    /// Send stdout.
    pub attach_stdout: bool,
    /// Send stderr.
    pub attach_stderr: bool,
    /// On a terminal (Tty): one raw output stream.
    pub tty: bool,
    /// The terminal's size at start, `[height, width]` (`[0, 0]`: the default).
    pub console_size: [u16; 2],
    /// The detach keys as given (checked at create; empty: Docker's default).
    pub detach_keys: String,
}

/// What a client asked of an exec at create (the API's request, checked for a command).
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The command and its arguments (not empty).
    pub argv: Vec<String>,
    /// `KEY=value` entries for the process.
    pub env: Vec<String>,
    /// The user as the client gave it; empty = the container's.
    pub user: String,
    /// The working directory; empty = the container's.
    pub working_dir: String,
    /// Forward the client's stdin.
    pub attach_stdin: bool,
    /// Send stdout.
    pub attach_stdout: bool,
    /// Send stderr.
    pub attach_stderr: bool,
    /// On a terminal (Tty).
    pub tty: bool,
    /// The terminal's size at start (`[0, 0]`: the default).
    pub console_size: [u16; 2],
    /// The detach keys as given (checked; empty: Docker's default).
    pub detach_keys: String,
}

/// The exec instance `req` makes in the container `rec` (its container actor calls this
/// with the record it owns): the environment as its runtime sees it, the user resolved in
/// the image (runc).
pub fn config_for(
    shared: &Shared,
    rec: &moor_state::ContainerRecord,
    runtime: Arc<dyn Runtime>,
    req: ExecRequest,
) -> Result<ExecConfig, ExecError> {
    let spec = &rec.spec;
    let (env, exec_user) = runtime.exec_env(&rec.id, spec, req.env, &req.user)?;
    let working_dir = match req.working_dir.as_str() {
        "" => spec.working_dir.clone(),
        dir => dir.to_string(),
    };
    Ok(ExecConfig {
        container_id: rec.id.clone(),
        container_name: rec.name.clone(),
        image: spec.image.clone(),
        runtime,
        run_dir: shared.run_container_dir(rec),
        argv: req.argv,
        env,
        working_dir,
        user: req.user,
        exec_user,
        attach_stdin: req.attach_stdin,
        attach_stdout: req.attach_stdout,
        attach_stderr: req.attach_stderr,
        tty: req.tty,
        console_size: req.console_size,
        detach_keys: req.detach_keys,
    })
}

impl ExecConfig {
    /// `<entrypoint> <arguments...>` as Docker writes it in event actions.
    pub fn command_line(&self) -> String {
        let (first, rest) = self
            .argv
            .split_first()
            .map_or(("", &[][..]), |(f, r)| (f, r));
        format!("{first} {}", rest.join(" "))
    }
}

/// A started exec: its output frames and its stdin, as asked.
pub struct ExecRun {
    /// Multiplexed frames (8-byte header + payload), or with a terminal its raw output,
    /// until the process ended; None detached.
    pub output: Option<mpsc::Receiver<Bytes>>,
    /// The process's stdin (its terminal's input), when the client's is forwarded.
    pub stdin: Option<stdio::Input>,
}

/// Starts a created exec instance. `attached`: the client streams (else output is dropped
/// and stdin is /dev/null). The process is reaped by a task on the current runtime.
pub fn start(shared: &Arc<Shared>, id: &str, attached: bool) -> Result<ExecRun, ExecError> {
    let config = shared.execs.begin(id)?;
    publish(
        shared,
        &config,
        id,
        format!("exec_start: {}", config.command_line()),
        &[],
    );
    let pid_file = config.run_dir.join(format!("exec-{id}.pid"));
    let runtime = config.runtime.clone();
    let spec = ExecSpec {
        container_id: &config.container_id,
        argv: &config.argv,
        env: &config.env,
        working_dir: &config.working_dir,
        user: config.exec_user.as_ref(),
        pid_file: &pid_file,
        tty: config.tty,
    };
    let ExecCommand {
        command: mut cmd,
        through_runtime,
    } = runtime.exec_command(&spec)?;
    let term = stdio::prepare(&mut cmd, &config, attached, through_runtime).map_err(|e| {
        finish(shared, &config, id, 0, 126);
        ExecError::Terminal(e)
    })?;
    cmd.kill_on_drop(false);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(source) => {
            let code = if source.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            finish(shared, &config, id, 0, code);
            let program = cmd.as_std().get_program().to_string_lossy().into_owned();
            return Err(ExecError::Spawn { program, source });
        }
    };
    let pid = child.id().map_or(0, |p| p as i32);
    let kill = Arc::new(Notify::new());
    shared.execs.running(id, pid, kill.clone());
    if through_runtime {
        actix_rt::spawn(read_pid_file(shared.clone(), id.to_string(), pid_file));
    }
    let (tx, rx) = mpsc::channel(FRAMES);
    let (stdin, outputs) = stdio::split(
        (shared, id),
        &mut child,
        term,
        &config,
        (attached, through_runtime),
    );
    actix_rt::spawn(supervise(
        shared.clone(),
        (config, id.to_string()),
        (child, kill),
        outputs,
        tx,
    ));
    Ok(ExecRun {
        output: attached.then_some(rx),
        stdin,
    })
}

/// Takes the exec'd process's pid from runc's pid file (runc's own pid until then), then
/// removes the file.
async fn read_pid_file(shared: Arc<Shared>, id: String, path: std::path::PathBuf) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<i32>() {
            shared.execs.exec_pid(&id, pid);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = tokio::fs::remove_file(&path).await;
}

/// One output of an exec process, read by a pump.
type Output = Box<dyn AsyncRead + Send + Unpin>;

/// Forwards output, reaps the process, records its exit, then ends the output.
async fn supervise(
    shared: Arc<Shared>,
    (config, id): (ExecConfig, String),
    (mut child, kill): (Child, Arc<Notify>),
    outputs: [Option<(Output, Stream)>; 2],
    tx: mpsc::Sender<Bytes>,
) {
    let pid = child.id().map_or(0, |p| p as i32);
    let pumps = outputs.map(|o| o.map(|(r, stream)| actix_rt::spawn(pump(r, stream, tx.clone()))));
    let waited = tokio::select! {
        status = child.wait() => status,
        () = kill.notified() => {
            // The process a runtime runs for us first (a killed `runc exec` leaves it).
            bounded::kill_runtime_child(&shared, &id, pid);
            // Still our unreaped child: its pid cannot have been reused.
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let code = match waited {
        Ok(status) => exit_code(status),
        Err(e) => {
            tracing::warn!(exec_id = %id, error = %e, "cannot wait for an exec process");
            -1
        }
    };
    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    let mut start_failure = None;
    for task in pumps.into_iter().flatten() {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(Some(failed))) => start_failure = Some(failed),
            Ok(_) => {}
            Err(_) => abort.abort(),
        }
    }
    // runc exits 255 when the command could not be started; Docker's code says why.
    let code = match start_failure {
        Some(failed) if code == RUNC_FAILED => failed,
        _ => code,
    };
    finish(&shared, &config, &id, pid, code);
    // Only now may the output end: `tx` kept the stream open until the exit was recorded.
    drop(tx);
}

/// Records the exit and publishes `exec_die`.
fn finish(shared: &Shared, config: &ExecConfig, id: &str, pid: i32, code: i32) {
    shared.execs.set(id, ExecStatus::Exited { pid, code });
    publish(
        shared,
        config,
        id,
        "exec_die",
        &[("exitCode", code.to_string())],
    );
}

/// Publishes a container event about an exec instance (moby adds `execID`).
pub fn publish(
    shared: &Shared,
    config: &ExecConfig,
    id: &str,
    action: impl Into<std::borrow::Cow<'static, str>>,
    extra: &[(&str, String)],
) {
    let mut attrs = vec![("execID", id.to_string())];
    attrs.extend(extra.iter().cloned());
    shared.events.publish(DockerEvent::container(
        action,
        &config.container_id,
        &config.container_name,
        &config.image,
        &attrs,
    ));
}

/// Docker's exit code: the code, or 128 + the signal.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Which output a pipe is.
#[derive(Debug, Clone, Copy)]
enum Stream {
    /// The process's stdout.
    Stdout,
    /// The process's stderr.
    Stderr,
    /// Its terminal: one stream, sent raw (no frame header).
    Tty,
    /// The stderr of `runc exec`: the process's, or runc's own error when the command could
    /// not be started (then rewritten as Docker writes it); `forward`: the client wants it.
    RuncStderr {
        /// Send it to the client.
        forward: bool,
    },
}

/// `runc exec`'s exit code when it could not start the command.
const RUNC_FAILED: i32 = 255;

/// Reads a pipe into frames; keeps reading (and dropping) when the client is gone, so the
/// process never blocks on a full pipe. For runc's stderr, returns Docker's exit code when
/// the first thing written is runc's own start error (see [`runc_start_error`]).
async fn pump<R: AsyncRead + Unpin>(
    mut pipe: R,
    stream: Stream,
    tx: mpsc::Sender<Bytes>,
) -> Option<i32> {
    let (kind, mut open) = match stream {
        Stream::Stdout | Stream::Tty => (1, true),
        Stream::Stderr => (2, true),
        Stream::RuncStderr { forward } => (2, forward),
    };
    let mut buf = vec![0u8; 32 * 1024];
    let mut first = matches!(stream, Stream::RuncStderr { .. });
    let mut failed = None;
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return failed,
            Ok(n) => n,
        };
        let mut payload = &buf[..n];
        let translated;
        if std::mem::take(&mut first) {
            if let Some((text, code)) = runc_start_error(payload) {
                failed = Some(code);
                translated = text;
                payload = translated.as_bytes();
            }
        }
        let chunk = match stream {
            Stream::Tty => Bytes::copy_from_slice(payload),
            _ => frame(kind, payload),
        };
        if open && tx.send(chunk).await.is_err() {
            open = false;
        }
    }
}

/// runc's logrus line when `runc exec` could not start the command (`level=error
/// msg="exec failed: ..."`), as Docker reports it (`OCI runtime exec failed: ...: unknown`),
/// with Docker's exit code: 127 not found, 126 not executable or anything else.
fn runc_start_error(first: &[u8]) -> Option<(String, i32)> {
    let text = std::str::from_utf8(first).ok()?;
    if !text.starts_with("time=\"") || !text.contains("level=error msg=\"exec failed: ") {
        return None;
    }
    let message = crate::runtime::runc::args::runc_message(text);
    let code = match crate::shim::spawn::runc_exit_code(&message) {
        127 => 127,
        _ => 126,
    };
    Some((
        format!("OCI runtime exec failed: {message}: unknown\n"),
        code,
    ))
}

/// One multiplexed frame: `[kind, 0, 0, 0, len_be32]` + payload.
pub fn frame(kind: u8, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(payload);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn exec_env_overrides_per_key() {
        let base = vec!["A=0".to_string(), "PATH=/bin".to_string()];
        let over = vec!["A=1".to_string(), "B=2".to_string()];
        assert_eq!(super::merge_env(&base, &over), ["PATH=/bin", "A=1", "B=2"]);
    }

    use super::*;

    #[test]
    fn runc_start_errors_read_as_dockers() {
        let line = |msg: &str| format!("time=\"2026-11-27T20:11:04Z\" level=error msg=\"{msg}\"\n");
        let (text, code) = runc_start_error(
            line(r#"exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH"#)
                .as_bytes(),
        )
        .expect("runc's error");
        assert_eq!(code, 127);
        assert_eq!(
            text,
            "OCI runtime exec failed: exec failed: unable to start container process: \
             exec: \"nosuch\": executable file not found in $PATH: unknown\n"
        );
        let denied = line(
            r#"exec failed: unable to start container process: exec: \"/etc\": permission denied"#,
        );
        assert_eq!(runc_start_error(denied.as_bytes()).map(|f| f.1), Some(126));
        // The process's own output, even one that looks alike later on, is left alone.
        assert_eq!(runc_start_error(b"exec failed: nosuch\n"), None);
        assert_eq!(
            runc_start_error(b"time=\"x\" level=info msg=\"hi\"\n"),
            None
        );
    }

    fn config(container: &str) -> ExecConfig {
        ExecConfig {
            container_id: container.into(),
            container_name: "c".into(),
            image: "host".into(),
            runtime: Arc::new(crate::runtime::fake::FakeRuntime::default()),
            run_dir: "/nonexistent".into(),
            argv: vec!["sh".into(), "-c".into(), "exit 3".into()],
            env: vec![],
            working_dir: String::new(),
            user: String::new(),
            exec_user: None,
            attach_stdin: false,
            attach_stdout: true,
            attach_stderr: true,
            tty: false,
            console_size: [0, 0],
            detach_keys: String::new(),
        }
    }

    #[test]
    fn starts_once_and_is_forgotten_with_its_container() {
        let reg = ExecRegistry::default();
        let id = reg.insert(config("a"));
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(reg.begin(&id).is_ok());
        assert!(matches!(reg.begin(&id), Err(ExecError::Running(_))));
        let kill = Arc::new(Notify::new());
        reg.running(&id, 5, kill.clone());
        reg.container_exited("b");
        reg.container_exited("a");
        // The permit is stored: the supervising task sees it even if it waits later.
        let woken = futures_util::FutureExt::now_or_never(kill.notified());
        assert!(woken.is_some());
        reg.set(&id, ExecStatus::Exited { pid: 5, code: 3 });
        assert!(reg.get(&id).is_some_and(|e| e.kill.is_none()));
        assert!(matches!(reg.begin(&id), Err(ExecError::Ran(_))));
        assert!(matches!(reg.begin("nope"), Err(ExecError::NotFound(_))));
        let other = reg.insert(config("b"));
        reg.forget_container("a");
        assert!(reg.get(&id).is_none());
        assert!(reg.get(&other).is_some());
    }

    #[test]
    fn command_line_and_frames_are_dockers() {
        assert_eq!(config("a").command_line(), "sh -c exit 3");
        let mut c = config("a");
        c.argv = vec!["ls".into()];
        assert_eq!(c.command_line(), "ls ");
        assert_eq!(&frame(2, b"hi")[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }
}
