//! The daemon's runc client: runs what [`super::args`] builds as an async child process
//! (tokio::process), captures its output and returns a typed result. Nothing here blocks the
//! thread it is awaited on; the two `*_blocking` calls are for the code that runs before the
//! actors do (the reconciler) or on a clean-up thread.

use std::io;
use std::process::{Output, Stdio};

use moor_state::reconcile::RuntimeState;
use serde::Deserialize;
use thiserror::Error;

use super::args::{DeleteOpts, RuncArgs, RuncCommand};

/// Why a runc command did not do what it was asked.
#[derive(Debug, Error)]
pub enum RuncError {
    /// runc could not be executed.
    #[error("run {program} {subcommand}")]
    Spawn {
        /// The runc binary.
        program: String,
        /// The subcommand.
        subcommand: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// runc ran and failed.
    #[error("runc {subcommand} failed ({status}): {}", message(stderr))]
    CommandFailed {
        /// The subcommand.
        subcommand: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stdout.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `runc state` printed something that is not its JSON.
    #[error("runc state printed an unexpected document")]
    Decode(#[source] serde_json::Error),
}

use super::args::runc_message as message;

/// What `runc state` says about a container (the fields moor reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContainerState {
    /// The container id.
    pub id: String,
    /// The init's host pid (0 once stopped).
    pub pid: i32,
    /// `creating`, `created`, `running`, `pausing`, `paused` or `stopped`.
    pub status: String,
    /// The bundle directory.
    pub bundle: std::path::PathBuf,
}

impl ContainerState {
    /// The reconciler's view of the status; None for a status runc did not document.
    pub fn runtime_state(&self) -> Option<RuntimeState> {
        match self.status.as_str() {
            "created" | "creating" => Some(RuntimeState::Created),
            "running" => Some(RuntimeState::Running),
            "paused" | "pausing" => Some(RuntimeState::Paused),
            "stopped" => Some(RuntimeState::Stopped),
            _ => None,
        }
    }
}

/// The runc binary with moor's global options; every call is one [`RuncCommand`].
#[derive(Debug, Clone)]
pub struct Runc {
    /// The global options (binary, `--root`, daemon.json `runtimeArgs`...).
    pub args: RuncArgs,
}

/// A finished command as a result: its output when it exited 0.
fn checked(command: &RuncCommand, out: io::Result<Output>) -> Result<Output, RuncError> {
    let out = out.map_err(|source| RuncError::Spawn {
        program: command.program.display().to_string(),
        subcommand: command.subcommand,
        source,
    })?;
    if out.status.success() {
        return Ok(out);
    }
    Err(RuncError::CommandFailed {
        subcommand: command.subcommand,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `command` as the daemon starts it: with the open-file limit the daemon was started with
/// (`host::limits`), not the one it raised for itself.
pub fn daemon_command(command: &RuncCommand) -> std::process::Command {
    let mut cmd = command.to_std();
    crate::host::limits::inherit_nofile(&mut cmd);
    cmd
}

/// Runs `command` as an async child (stdin /dev/null, output captured).
pub async fn output(command: &RuncCommand) -> Result<Output, RuncError> {
    let out = tokio::process::Command::from(daemon_command(command))
        .stdin(Stdio::null())
        .kill_on_drop(false)
        .output()
        .await;
    checked(command, out)
}

/// Runs `command` on this thread: only where no actor waits on it.
pub fn output_blocking(command: &RuncCommand) -> Result<Output, RuncError> {
    checked(
        command,
        daemon_command(command).stdin(Stdio::null()).output(),
    )
}

fn parse_state(out: &Output) -> Result<ContainerState, RuncError> {
    serde_json::from_slice(&out.stdout).map_err(RuncError::Decode)
}

impl Runc {
    /// A client with these global options.
    pub fn new(args: RuncArgs) -> Self {
        Runc { args }
    }

    /// `runc --root`.
    pub fn root(&self) -> &std::path::Path {
        &self.args.root
    }

    /// Whether runc keeps state for `id` (its directory under `--root`).
    pub fn knows(&self, id: &str) -> bool {
        self.args.root.join(id).exists()
    }

    /// `runc pause ID`.
    pub async fn pause(&self, id: &str) -> Result<(), RuncError> {
        output(&self.args.pause(id)).await.map(drop)
    }

    /// `runc resume ID`.
    pub async fn resume(&self, id: &str) -> Result<(), RuncError> {
        output(&self.args.resume(id)).await.map(drop)
    }

    /// `runc update [opts] ID`: the cgroup settings of a live container.
    pub async fn update(&self, id: &str, opts: &super::args::UpdateOpts) -> Result<(), RuncError> {
        output(&self.args.update(id, opts)).await.map(drop)
    }

    /// `runc state ID`, parsed.
    pub async fn state(&self, id: &str) -> Result<ContainerState, RuncError> {
        parse_state(&output(&self.args.state(id)).await?)
    }

    /// `runc state ID` on this thread (the reconciler, before the actors run).
    pub fn state_blocking(&self, id: &str) -> Result<ContainerState, RuncError> {
        parse_state(&output_blocking(&self.args.state(id))?)
    }

    /// What `runc state ID` would say, read from runc's state file; None when only runc can
    /// tell, or when daemon.json's `runtimeArgs` move its root (`--root`).
    pub fn cgroup_paths(&self, id: &str) -> Option<std::collections::HashMap<String, String>> {
        let moved = self.args.runtime_args.iter();
        match moved
            .into_iter()
            .any(|a| a == "--root" || a.starts_with("--root="))
        {
            true => None,
            false => super::state_file::cgroup_paths(self.root(), id),
        }
    }

    /// What `runc state` would say of `id`, from its state file (None: ask runc).
    pub fn state_from_file(&self, id: &str) -> Option<RuntimeState> {
        let moved = self
            .args
            .runtime_args
            .iter()
            .any(|a| a == "--root" || a.starts_with("--root="));
        match moved {
            true => None,
            false => super::state_file::status(self.root(), id),
        }
    }

    /// `runc delete --force ID`; a container runc does not know (or no longer knows once
    /// the call failed) is not an error.
    pub async fn delete_force(&self, id: &str) -> Result<(), RuncError> {
        if !self.knows(id) {
            return Ok(());
        }
        let res = output(&self.args.delete(id, DeleteOpts { force: true })).await;
        self.deleted(id, res)
    }

    /// [`Self::delete_force`] on this thread (start-up and the clean-up thread).
    pub fn delete_force_blocking(&self, id: &str) -> Result<(), RuncError> {
        if !self.knows(id) {
            return Ok(());
        }
        let res = output_blocking(&self.args.delete(id, DeleteOpts { force: true }));
        self.deleted(id, res)
    }

    fn deleted(&self, id: &str, res: Result<Output, RuncError>) -> Result<(), RuncError> {
        match res {
            Err(_) if !self.knows(id) => Ok(()),
            res => res.map(drop),
        }
    }

    /// The reconciler's reading of `runc state ID`: Missing when runc has no state for it,
    /// None when runc cannot tell (it failed while its state directory exists). Read from
    /// runc's state file where that gives what `runc state` would ([`super::state_file`]),
    /// else from `runc state` itself.
    pub fn observe_blocking(&self, id: &str) -> Option<RuntimeState> {
        if !self.knows(id) {
            return Some(RuntimeState::Missing);
        }
        if let Some(state) = self.state_from_file(id) {
            return Some(state);
        }
        match self.state_blocking(id) {
            Ok(state) => state.runtime_state(),
            Err(_) if !self.knows(id) => Some(RuntimeState::Missing),
            Err(e) => {
                tracing::warn!(container_id = %&id[..12.min(id.len())], error = %e, "runc state failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A fake runc printing `stdout` and exiting with `code`.
    fn fake(dir: &std::path::Path, stdout: &str, code: i32) -> Runc {
        let bin = dir.join("runc");
        let script = format!(
            "#!/bin/sh\nprintf '%s' '{stdout}'\necho 'level=error msg=\"no such\"' >&2\nexit {code}\n"
        );
        std::fs::write(&bin, script).expect("write fake runc");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Runc::new(RuncArgs::new(bin, dir.join("root")))
    }

    #[tokio::test]
    async fn state_is_parsed_and_failures_are_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = r#"{"ociVersion":"1.0.2","id":"abc","pid":42,"status":"paused","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z","owner":""}"#;
        let state = fake(dir.path(), json, 0).state("abc").await.expect("state");
        assert_eq!((state.id.as_str(), state.pid), ("abc", 42));
        assert_eq!(state.runtime_state(), Some(RuntimeState::Paused));

        let err = fake(dir.path(), "out", 3).pause("abc").await.unwrap_err();
        let RuncError::CommandFailed {
            subcommand,
            status,
            stdout,
            stderr,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(
            (*subcommand, status.code(), stdout.as_str()),
            ("pause", Some(3), "out")
        );
        assert!(stderr.contains("no such"), "{stderr}");
        assert_eq!(
            err.to_string(),
            "runc pause failed (exit status: 3): no such"
        );

        let err = fake(dir.path(), "not json", 0)
            .state("abc")
            .await
            .unwrap_err();
        assert!(matches!(err, RuncError::Decode(_)), "{err:?}");
        let missing = Runc::new(RuncArgs::new(dir.path().join("nope"), dir.path()));
        let err = missing.resume("abc").await.unwrap_err();
        assert!(
            matches!(
                err,
                RuncError::Spawn {
                    subcommand: "resume",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn delete_of_an_unknown_container_is_not_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Fails if run: runc has no state for "abc", so it must not be.
        let runc = fake(dir.path(), "", 1);
        runc.delete_force("abc").await.expect("nothing to delete");
        std::fs::create_dir_all(dir.path().join("root/abc")).expect("mkdir");
        assert!(runc.delete_force("abc").await.is_err());
        assert!(runc.delete_force_blocking("abc").is_err());
        assert_eq!(runc.observe_blocking("other"), Some(RuntimeState::Missing));
        assert_eq!(runc.observe_blocking("abc"), None);
    }
}
