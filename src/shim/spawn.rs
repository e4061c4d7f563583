//! Starting the container: a plain process, or `runc run --detach`, with the shim's pipes as
//! its stdout and stderr, and as its stdin either /dev/null or (with `open_stdin`) a pipe
//! whose write end the shim keeps.
//!
//! A plain process is started with std's `Command` (fork + exec, with its CLOEXEC error pipe
//! carrying exec's errno back, the signal mask and SIGPIPE reset in the child) plus one
//! `pre_exec` step, `setsid`, so the process has its own session and process group and a
//! signal to its group never hits the shim. argv[0] is resolved here against the PATH of the
//! container's environment, not the shim's, before anything forks.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::{access, pipe2, AccessFlags};

use super::console;
use super::protocol::{RuntimeSpec, ShimSpec};
pub use crate::runtime::runc::args::runc_message;
use crate::runtime::runc::args::{RunOpts, RuncArgs};

/// The PATH used when neither the container's environment nor the shim has one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where runc writes the container init's pid.
pub const PID_FILE: &str = "init.pid";

/// A started container.
#[derive(Debug)]
pub struct Spawned {
    /// The container's init process, a child of the shim.
    pub pid: i32,
    /// Read end of its stdout pipe (non-blocking).
    pub stdout: File,
    /// Read end of its stderr pipe (non-blocking); None with a terminal (one stream).
    pub stderr: Option<File>,
    /// Write end of its stdin pipe (non-blocking), when stdin is open.
    pub stdin: Option<File>,
    /// With a terminal, its master; `stdout` (and `stdin`) are non-blocking duplicates.
    pub master: Option<OwnedFd>,
}

/// The container could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// The runtime spec has an empty argv.
    EmptyArgv,
    /// argv[0] was found in no PATH directory.
    NotFound {
        /// argv[0].
        program: String,
    },
    /// argv[0] was found but is not executable.
    PermissionDenied {
        /// argv[0].
        program: String,
    },
    /// The working directory is not a directory.
    Cwd {
        /// The requested directory.
        cwd: String,
        /// Why it cannot be used.
        source: io::Error,
    },
    /// exec (or a step just before it) failed in the child.
    Exec {
        /// argv[0].
        program: String,
        /// The child's errno.
        source: io::Error,
    },
    /// A pipe for the container's output could not be made.
    Pipe {
        /// The errno.
        source: Errno,
    },
    /// runc could not be run at all.
    RuncSpawn {
        /// The runc binary.
        runc: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// runc ran and failed.
    RuncFailed {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// The terminal could not be made or received from runc.
    Console {
        /// The error.
        source: io::Error,
    },
    /// runc succeeded but its pid file is unreadable.
    PidFile {
        /// The pid file.
        path: PathBuf,
        /// The error (InvalidData: not a pid).
        source: io::Error,
    },
}

impl SpawnError {
    /// Docker's exit code for a failed start: 127 not found, 126 not executable, 128 other.
    pub fn exit_code(&self) -> i32 {
        let errno = match self {
            SpawnError::NotFound { .. } => return 127,
            SpawnError::PermissionDenied { .. } => return 126,
            SpawnError::Exec { source, .. } => source.raw_os_error(),
            SpawnError::RuncFailed { stderr, .. } => return runc_exit_code(stderr),
            _ => None,
        };
        match errno {
            Some(libc::ENOENT) => 127,
            Some(libc::EACCES) | Some(libc::EPERM) => 126,
            _ => 128,
        }
    }
}

/// Docker's code for a failed `runc run`, from runc's message about the container's exec
/// (runc reports it only as text): 127 not found, 126 not executable, 128 anything else.
pub fn runc_exit_code(stderr: &str) -> i32 {
    // runc 1.1: `unable to start container process: exec: "X": executable file not found
    // in $PATH`, `exec: "/X": stat /X: no such file or directory`, `exec: "/X": permission
    // denied`. Only the text after `exec: "` is about the command.
    let Some((_, exec)) = stderr.split_once("exec: \"") else {
        return 128;
    };
    if exec.contains("executable file not found") || exec.contains("no such file or directory") {
        127
    } else if exec.contains("permission denied") {
        126
    } else {
        128
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::EmptyArgv => write!(f, "no command given"),
            SpawnError::NotFound { program } => {
                write!(f, "exec: \"{program}\": executable file not found in $PATH")
            }
            SpawnError::PermissionDenied { program } => {
                write!(f, "exec: \"{program}\": permission denied")
            }
            SpawnError::Cwd { cwd, .. } => write!(f, "chdir to cwd (\"{cwd}\")"),
            SpawnError::Exec { program, .. } => write!(f, "exec: \"{program}\""),
            SpawnError::Pipe { .. } => write!(f, "create output pipe"),
            SpawnError::RuncSpawn { runc, .. } => write!(f, "run {}", runc.display()),
            SpawnError::RuncFailed { status, stderr } => {
                write!(f, "runc run: {status}: {}", stderr.trim())
            }
            SpawnError::PidFile { path, .. } => write!(f, "read {}", path.display()),
            SpawnError::Console { .. } => write!(f, "set up the terminal"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Cwd { source, .. }
            | SpawnError::Exec { source, .. }
            | SpawnError::RuncSpawn { source, .. }
            | SpawnError::PidFile { source, .. }
            | SpawnError::Console { source } => Some(source),
            SpawnError::Pipe { source } => Some(source),
            SpawnError::EmptyArgv
            | SpawnError::NotFound { .. }
            | SpawnError::PermissionDenied { .. }
            | SpawnError::RuncFailed { .. } => None,
        }
    }
}

/// Starts what `spec` describes; `dir` is the run directory (runc's pid file goes there).
pub fn start(spec: &ShimSpec, dir: &Path) -> Result<Spawned, SpawnError> {
    if spec.tty {
        return start_tty(spec, dir);
    }
    let (out_r, out_w) = output_pipe()?;
    let (err_r, err_w) = output_pipe()?;
    let (stdin_w, stdin) = if spec.open_stdin {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|source| SpawnError::Pipe { source })?;
        fcntl(w.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|source| SpawnError::Pipe { source })?;
        (Some(File::from(w)), Stdio::from(r))
    } else {
        (None, Stdio::null())
    };
    let pid = match &spec.runtime {
        RuntimeSpec::Process { argv, env, cwd } => {
            start_process(argv, env, cwd, (stdin, out_w, err_w), false)?
        }
        RuntimeSpec::Runc {
            runc,
            root,
            runtime_args,
            bundle,
            ..
        } => {
            let runc = RuncArgs::new(runc, root).runtime_args(runtime_args.clone());
            let pid_file = dir.join(PID_FILE);
            let mut err_r = &err_r;
            let pipes = (stdin, out_w, err_w);
            start_runc(&runc, (&spec.id, bundle, &pid_file), pipes, &mut err_r)?
        }
    };
    Ok(Spawned {
        pid,
        stdout: out_r,
        stderr: Some(err_r),
        stdin: stdin_w,
        master: None,
    })
}

/// Starts the container on a terminal whose master the shim keeps.
fn start_tty(spec: &ShimSpec, dir: &Path) -> Result<Spawned, SpawnError> {
    let console = |source| SpawnError::Console { source };
    let (pid, master) = match &spec.runtime {
        RuntimeSpec::Process { argv, env, cwd } => {
            let pty = console::open_pty().map_err(|e| console(e.into()))?;
            let slave = || pty.slave.try_clone().map_err(console);
            let stdio = (Stdio::from(slave()?), slave()?, slave()?);
            (start_process(argv, env, cwd, stdio, true)?, pty.master)
        }
        RuntimeSpec::Runc {
            runc,
            root,
            runtime_args,
            bundle,
            ..
        } => {
            let runc = RuncArgs::new(runc, root).runtime_args(runtime_args.clone());
            start_runc_tty(&runc, (&spec.id, bundle, &dir.join(PID_FILE)), dir)?
        }
    };
    let [height, width] = spec.console_size;
    let dup = || console::dup_nonblocking(master.as_fd()).map_err(|e| console(e.into()));
    let held = (|| {
        if height > 0 && width > 0 {
            console::set_size(master.as_fd(), height, width).map_err(|e| console(e.into()))?;
        }
        Ok((dup()?, spec.open_stdin.then(dup).transpose()?))
    })();
    match held {
        Ok((stdout, stdin)) => Ok(Spawned {
            pid,
            stdout,
            stderr: None,
            stdin,
            master: Some(master),
        }),
        Err(e) => {
            // Never leave a process running that nobody was told about.
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            Err(e)
        }
    }
}

/// The size asked for the container's output pipes.
const PIPE_SIZE: i32 = 1024 * 1024;

/// A pipe whose read end (the shim's) is non-blocking; both ends close on exec.
fn output_pipe() -> Result<(File, OwnedFd), SpawnError> {
    let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|source| SpawnError::Pipe { source })?;
    fcntl(r.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(|source| SpawnError::Pipe { source })?;
    // A larger pipe (best effort, the unprivileged limit is 1 MiB by default) means fewer
    // wake-ups of the shim and more slack for the container while a write is slow.
    let _ = fcntl(r.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    Ok((File::from(r), w))
}

fn start_process(
    argv: &[String],
    env: &[String],
    cwd: &str,
    (stdin, stdout, stderr): (Stdio, OwnedFd, OwnedFd),
    tty: bool,
) -> Result<i32, SpawnError> {
    let program = argv.first().ok_or(SpawnError::EmptyArgv)?;
    let vars: Vec<(&str, &str)> = env.iter().filter_map(|kv| kv.split_once('=')).collect();
    let path_var = vars
        .iter()
        .rev()
        .find(|(k, _)| *k == "PATH")
        .map(|(_, v)| v.to_string())
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let resolved = resolve(program, &path_var)?;
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    match fs::metadata(cwd) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(SpawnError::Cwd {
                cwd: cwd.to_owned(),
                source: io::Error::from_raw_os_error(libc::ENOTDIR),
            })
        }
        Err(source) => {
            return Err(SpawnError::Cwd {
                cwd: cwd.to_owned(),
                source,
            })
        }
    }
    let mut cmd = Command::new(&resolved);
    cmd.arg0(program)
        .args(&argv[1..])
        .env_clear()
        .envs(vars)
        .current_dir(cwd)
        .stdin(stdin)
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    // SAFETY: the closure runs in the forked child between fork and exec, where only
    // async-signal-safe calls are allowed: it calls setsid(2) and, with a terminal, one
    // ioctl(2) (both async-signal-safe) and maps errno into an io::Error without allocating
    // (a raw OS error).
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            if tty {
                console::make_controlling()?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| SpawnError::Exec {
        program: program.clone(),
        source,
    })?;
    // The Child is dropped without waiting: the shim reaps with waitpid(-1).
    i32::try_from(child.id()).map_err(|_| SpawnError::Exec {
        program: program.clone(),
        source: io::Error::from_raw_os_error(libc::EOVERFLOW),
    })
}

/// execvp's search, done before fork: the first executable regular file named `program` in
/// `path`; EACCES when only non-executable ones exist. A name with a `/` is used as is.
fn resolve(program: &str, path: &str) -> Result<PathBuf, SpawnError> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    if program.is_empty() {
        return Err(SpawnError::NotFound {
            program: program.to_owned(),
        });
    }
    let mut denied = false;
    for dir in path.split(':') {
        let candidate = Path::new(if dir.is_empty() { "." } else { dir }).join(program);
        match fs::metadata(&candidate) {
            Ok(m) if m.is_file() => {
                if access(&candidate, AccessFlags::X_OK).is_ok() {
                    return Ok(candidate);
                }
                denied = true;
            }
            _ => {}
        }
    }
    let program = program.to_owned();
    Err(if denied {
        SpawnError::PermissionDenied { program }
    } else {
        SpawnError::NotFound { program }
    })
}

/// Runs runc with the shim's pipes as its (and so the container's) stdout and stderr, waits
/// for it, and reads the init's pid. Once runc exits, the init is re-parented to the shim
/// (the subreaper). On failure runc's stderr is read back from the pipe.
fn start_runc(
    runc: &RuncArgs,
    (id, bundle, pid_file): (&str, &Path, &Path),
    (stdin, stdout, stderr): (Stdio, OwnedFd, OwnedFd),
    stderr_reader: &mut impl Read,
) -> Result<i32, SpawnError> {
    let _ = fs::remove_file(pid_file);
    let run = runc.run(id, bundle, &RunOpts::new().detach(true).pid_file(pid_file));
    let status = run
        .to_std()
        .stdin(stdin)
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .status()
        .map_err(|source| SpawnError::RuncSpawn {
            runc: run.program.clone(),
            source,
        })?;
    if !status.success() {
        return Err(runc_failed(status, stderr_reader));
    }
    read_pid(pid_file)
}

/// `runc run --detach --console-socket`: runc sends the terminal's master to the shim
/// while it starts the container; runc's stderr goes to a pipe read on failure.
fn start_runc_tty(
    runc: &RuncArgs,
    (id, bundle, pid_file): (&str, &Path, &Path),
    dir: &Path,
) -> Result<(i32, OwnedFd), SpawnError> {
    let _ = fs::remove_file(pid_file);
    let socket =
        console::ConsoleSocket::bind(dir).map_err(|source| SpawnError::Console { source })?;
    let (err_r, err_w) = output_pipe()?;
    let opts = RunOpts::new()
        .detach(true)
        .pid_file(pid_file)
        .console_socket(socket.path());
    let run = runc.run(id, bundle, &opts);
    let spawn_err = |source| SpawnError::RuncSpawn {
        runc: run.program.clone(),
        source,
    };
    let mut child = run
        .to_std()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err_w))
        .spawn()
        .map_err(spawn_err)?;
    let master = socket.receive(&mut child);
    if master.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(spawn_err)?;
    if !status.success() {
        return Err(runc_failed(status, &mut &err_r));
    }
    match master {
        Ok(Some(master)) => Ok((read_pid(pid_file)?, master)),
        Ok(None) => Err(SpawnError::Console {
            source: io::Error::new(io::ErrorKind::InvalidData, "runc sent no console master"),
        }),
        Err(source) => Err(SpawnError::Console { source }),
    }
}

/// A failed runc, with what it wrote on stderr (read non-blocking: up to EAGAIN or EOF).
fn runc_failed(status: std::process::ExitStatus, stderr: &mut impl Read) -> SpawnError {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stderr.read(&mut buf) {
        text.extend_from_slice(&buf[..n]);
    }
    SpawnError::RuncFailed {
        status,
        stderr: runc_message(&String::from_utf8_lossy(&text)),
    }
}

/// The container init's pid, as runc wrote it.
fn read_pid(pid_file: &Path) -> Result<i32, SpawnError> {
    let pid_err = |source| SpawnError::PidFile {
        path: pid_file.to_owned(),
        source,
    };
    let text = fs::read_to_string(pid_file).map_err(pid_err)?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|&pid| pid > 1)
        .ok_or_else(|| pid_err(io::Error::new(io::ErrorKind::InvalidData, text.trim())))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn resolve_uses_the_given_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("tool");
        fs::write(&exe, "#!/bin/sh\n").expect("write");
        let path = format!("/nonexistent:{}", dir.path().display());
        // Present but not executable: EACCES, code 126.
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = resolve("tool", &path).expect_err("not executable");
        assert_eq!(err.exit_code(), 126);
        assert_eq!(err.to_string(), "exec: \"tool\": permission denied");
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(resolve("tool", &path).expect("found"), exe);
        let err = resolve("tool", "/nonexistent").expect_err("missing");
        assert_eq!(err.exit_code(), 127);
        assert_eq!(
            err.to_string(),
            "exec: \"tool\": executable file not found in $PATH"
        );
        assert_eq!(resolve("./x/y", "").expect("as is"), PathBuf::from("./x/y"));
    }

    #[test]
    fn exec_errno_maps_to_docker_codes() {
        let exec = |errno| SpawnError::Exec {
            program: "p".into(),
            source: io::Error::from_raw_os_error(errno),
        };
        assert_eq!(exec(libc::ENOENT).exit_code(), 127);
        assert_eq!(exec(libc::EACCES).exit_code(), 126);
        assert_eq!(exec(libc::ENOEXEC).exit_code(), 128);
        assert_eq!(SpawnError::EmptyArgv.exit_code(), 128);
    }

    #[test]
    fn runc_messages_map_to_docker_codes() {
        use std::os::unix::process::ExitStatusExt;
        let failed = |stderr: &str| SpawnError::RuncFailed {
            status: std::process::ExitStatus::from_raw(1 << 8),
            stderr: stderr.into(),
        };
        let start = "runc run failed: unable to start container process: ";
        let missing = format!("{start}exec: \"nope\": executable file not found in $PATH");
        assert_eq!(failed(&missing).exit_code(), 127);
        let stat = format!("{start}exec: \"/nope\": stat /nope: no such file or directory");
        assert_eq!(failed(&stat).exit_code(), 127);
        let denied = format!("{start}exec: \"/etc/passwd\": permission denied");
        assert_eq!(failed(&denied).exit_code(), 126);
        assert!(failed(&missing).to_string().contains("\"nope\""));
        let logrus =
            r#"time="2026-01-01T00:00:00Z" level=error msg="exec: \"x\": permission denied""#;
        assert_eq!(runc_message(logrus), "exec: \"x\": permission denied");
        let mount = "runc run failed: mount /x: no such file or directory";
        assert_eq!(failed(mount).exit_code(), 128);
    }
}
