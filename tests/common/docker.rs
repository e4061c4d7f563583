//! The real docker CLI against the test's daemon: `DOCKER_HOST=unix://<socket>`, its own
//! DOCKER_CONFIG in the test's directory, never a real dockerd.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::{describe, failed, read_all, signal, succeeded, wait_child, Daemon, CLI_DEADLINE};
use nix::sys::signal::Signal;

/// The docker CLI on PATH (Debian's `docker.io` ships it; .ci/run installs it).
pub fn docker_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("docker"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("no `docker` CLI on PATH: install Debian's docker.io (see .ci/run); its dockerd is not used")
        })
}

impl Daemon {
    /// `DOCKER_HOST=unix://<socket>` for clients of this daemon.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Runs `docker ARGS` against this daemon with `stdin` as its input (None: /dev/null),
    /// killing it after [`CLI_DEADLINE`].
    pub fn docker(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut stdout = tempfile::tempfile().expect("docker stdout file");
        let mut stderr = tempfile::tempfile().expect("docker stderr file");
        let config: PathBuf = self.root().with_file_name("docker-config");
        let mut child = Command::new(docker_bin())
            .args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", &config)
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(stdout.try_clone().expect("clone stdout file"))
            .stderr(stderr.try_clone().expect("clone stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn docker {args:?}: {e}"));
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).expect("write docker's stdin");
            // Dropping the pipe is the EOF the CLI forwards.
        }
        let status = wait_child(&mut child, CLI_DEADLINE);
        if status.is_none() {
            signal(child.id() as i32, Signal::SIGKILL);
            let _ = child.wait();
        }
        let output = Output {
            status: status.unwrap_or_default(),
            stdout: read_all(&mut stdout),
            stderr: read_all(&mut stderr),
        };
        assert!(
            status.is_some(),
            "`docker {}` did not finish within {CLI_DEADLINE:?}\n{}",
            args.join(" "),
            describe(&output)
        );
        output
    }

    /// `docker ARGS`, which must exit 0; its stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        succeeded("docker", args, self.docker(args, None))
    }

    /// `docker ARGS`, which must fail; its stderr.
    pub fn docker_fail(&self, args: &[&str]) -> String {
        let output = failed("docker", args, self.docker(args, None));
        String::from_utf8(output.stderr).expect("docker stderr is UTF-8")
    }
}
