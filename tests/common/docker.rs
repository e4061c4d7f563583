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

/// The interpreter with the Docker SDK for Python: `MOOR_TEST_PYTHON`, else the venv
/// `.ci/run` makes (`target/pyvenv`); a missing one fails the test, naming how to make it.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MOOR_TEST_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyvenv/bin/python");
    assert!(
        venv.is_file(),
        "{} is missing: create it with `python3 -m venv target/pyvenv && target/pyvenv/bin/pip install docker` (see .ci/run)",
        venv.display()
    );
    venv
}

impl Daemon {
    /// Runs `tests/python/SCRIPT ARGS` with the Docker SDK against this daemon
    /// (`DOCKER_HOST`), killed after `deadline_secs` so a hung SDK call fails the test.
    pub fn docker_py(&self, script: &str, args: &[&std::ffi::OsStr], deadline_secs: u32) -> Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script);
        Command::new("timeout")
            .args(["-s", "KILL", &deadline_secs.to_string()])
            .arg(python())
            .arg(&script)
            .args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the SDK script")
    }
}
