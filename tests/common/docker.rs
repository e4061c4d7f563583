//! The real docker CLI against the test's daemon: `DOCKER_HOST=unix://<socket>`, its own
//! DOCKER_CONFIG in the test's directory, never a real dockerd.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::{failed, run_client, succeeded, Daemon};

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
    /// killing it after [`super::CLI_DEADLINE`].
    pub fn docker(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let config: PathBuf = self.root().with_file_name("docker-config");
        let mut cmd = Command::new(docker_bin());
        cmd.args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", &config)
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        run_client(cmd, "docker", args, stdin)
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
