//! The runtime's part of `docker exec`: which environment and user an exec gets, and the
//! command that runs it (`runc exec` in the container, or the command on the host). The
//! exec registry and the process's supervision stay in the daemon (`daemon/exec.rs`).

use std::path::Path;

use thiserror::Error;
use tokio::process::Command;

use super::runc::args::ExecOpts;
use super::runc::Runc;
use crate::image::user::{ExecUser, UserError};

/// Why a runtime cannot run an exec as asked.
#[derive(Debug, Error)]
pub enum ExecRuleError {
    /// The container is a runc one but the daemon has no runc.
    #[error("runc is not available to this daemon")]
    NoRunc,
    /// `User` in a process-runtime container, which runs as the daemon's user.
    #[error("User (exec in a process-runtime container) is not supported")]
    UserUnsupported,
    /// The user is not in the container's image.
    #[error(transparent)]
    User(#[from] UserError),
}

/// What an exec runs, as fixed at its create.
#[derive(Debug, Clone, Copy)]
pub struct ExecSpec<'a> {
    /// Its container's full id.
    pub container_id: &'a str,
    /// The command and its arguments (not empty).
    pub argv: &'a [String],
    /// The environment, as [`super::Runtime::exec_env`] made it.
    pub env: &'a [String],
    /// The working directory; empty = the container's.
    pub working_dir: &'a str,
    /// The user resolved in the image (runc), None = the container's.
    pub user: Option<&'a ExecUser>,
    /// Where the exec'd process's host pid is to be written (runc).
    pub pid_file: &'a Path,
    /// On a terminal (Tty): runc is given `--tty` and copies between the terminal it is
    /// started on and the one it makes in the container.
    pub tty: bool,
}

/// The command of an exec, and how to read it.
#[derive(Debug)]
pub struct ExecCommand {
    /// The process to spawn (stdio not set yet).
    pub command: Command,
    /// The process spawned is the runtime's (`runc exec`): the exec'd process's pid comes
    /// in the pid file, and the runtime's stderr says why a start failed (read even when
    /// the client does not take stderr).
    pub through_runtime: bool,
}

/// The process runtime's exec environment: the container's, overridden per key by the
/// exec's, with a PATH; no user other than the daemon's.
pub fn process_env(
    base: &[String],
    env: Vec<String>,
    user: &str,
) -> Result<(Vec<String>, Option<ExecUser>), ExecRuleError> {
    if !user.is_empty() {
        return Err(ExecRuleError::UserUnsupported);
    }
    let mut base = base.to_vec();
    if !base.iter().any(|e| e.starts_with("PATH=")) {
        base.push(format!(
            "PATH={}",
            std::env::var("PATH").unwrap_or_else(|_| super::DEFAULT_PATH.into())
        ));
    }
    Ok((merge_env(&base, &env), None))
}

/// The command on the host, with the exec's environment only, in its working directory.
pub fn process_command(exec: &ExecSpec<'_>) -> ExecCommand {
    let mut cmd = std::process::Command::new(&exec.argv[0]);
    cmd.args(&exec.argv[1..]).env_clear();
    for (k, v) in exec.env.iter().filter_map(|e| e.split_once('=')) {
        cmd.env(k, v);
    }
    let cwd = match exec.working_dir {
        "" => "/",
        dir => dir,
    };
    cmd.current_dir(cwd);
    crate::host::limits::inherit_nofile(&mut cmd);
    ExecCommand {
        command: Command::from(cmd),
        through_runtime: false,
    }
}

/// The runc runtime's exec environment: the exec's own (runc adds the container's), and
/// the user resolved in the container's rootfs.
pub fn runc_env(
    rootfs: &Path,
    env: Vec<String>,
    user: &str,
) -> Result<(Vec<String>, Option<ExecUser>), ExecRuleError> {
    if user.is_empty() {
        return Ok((env, None));
    }
    Ok((env, Some(crate::image::user::resolve(rootfs, user)?)))
}

/// `runc exec` of the command in the container; runc writes the pid file.
pub fn runc_command(
    runc: Option<&Runc>,
    exec: &ExecSpec<'_>,
) -> Result<ExecCommand, ExecRuleError> {
    let runc = runc.ok_or(ExecRuleError::NoRunc)?;
    let mut opts = ExecOpts::new()
        .pid_file(exec.pid_file)
        .env(exec.env.iter().cloned())
        .cwd(exec.working_dir)
        .tty(exec.tty);
    if let Some(u) = exec.user {
        opts = opts.user(u.uid, u.gid, &u.additional_gids);
    }
    let cmd = runc.args.exec(exec.container_id, &opts, exec.argv);
    Ok(ExecCommand {
        command: Command::from(super::runc::client::daemon_command(&cmd)),
        through_runtime: true,
    })
}

/// `key=value` entries of `base`, overridden per key by `over`.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &String| e.split_once('=').map_or(e.clone(), |(k, _)| k.to_string());
    let mut out: Vec<String> = base
        .iter()
        .filter(|b| !over.iter().any(|o| key(o) == key(b)))
        .cloned()
        .collect();
    out.extend(over.iter().cloned());
    out
}
