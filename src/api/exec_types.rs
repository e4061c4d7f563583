//! Docker Engine API types of `exec` (moby `api/types/container/exec.go`), shared by the
//! server and moor's CLI. Field names are Docker's; unknown fields are tolerated.

use serde::{Deserialize, Serialize};

/// `POST /containers/{id}/exec` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecCreateRequest {
    /// The command and its arguments.
    pub cmd: Option<Vec<String>>,
    /// Forward the client's stdin.
    pub attach_stdin: bool,
    /// Send stdout.
    pub attach_stdout: bool,
    /// Send stderr.
    pub attach_stderr: bool,
    /// Run on a terminal: one raw output stream, resizable (`/exec/{id}/resize`).
    pub tty: bool,
    /// The terminal's size at start, `[height, width]`.
    pub console_size: Option<[u16; 2]>,
    /// `KEY=VALUE` added to (and overriding) the container's environment.
    pub env: Option<Vec<String>>,
    /// Working directory; empty = the container's.
    pub working_dir: Option<String>,
    /// `USER[:GROUP]`; empty = the container's.
    pub user: Option<String>,
    /// `--privileged`: refused when true (not implemented).
    pub privileged: bool,
    /// `--detach-keys`: the sequence that ends a Tty exec's session (Docker's spec).
    pub detach_keys: Option<String>,
}

/// `POST /containers/{id}/exec` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecCreateResponse {
    /// The exec id (64 hex).
    #[serde(rename = "Id")]
    pub id: String,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartRequest {
    /// Start and answer at once, output dropped.
    pub detach: bool,
    /// The client's view of the exec's Tty (the exec's own, from its create, is used).
    pub tty: bool,
    /// The terminal's size, set once the exec runs.
    pub console_size: Option<[u16; 2]>,
}

/// `GET /exec/{id}/json` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    /// The exec id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its container's id.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// Whether the process runs.
    pub running: bool,
    /// Its exit code; null until it exited.
    pub exit_code: Option<i32>,
    /// Its host pid (0 before the start).
    pub pid: i32,
    /// Whether stdin is forwarded.
    pub open_stdin: bool,
    /// Whether stdout is sent.
    pub open_stdout: bool,
    /// Whether stderr is sent.
    pub open_stderr: bool,
    /// Always false (moby's field).
    pub can_remove: bool,
    /// The detach keys given at create.
    pub detach_keys: String,
    /// What runs.
    pub process_config: ProcessConfig,
}

/// `ExecInspect.ProcessConfig` (lowercase names, as moby's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// The program.
    pub entrypoint: String,
    /// Its arguments.
    pub arguments: Vec<String>,
    /// Whether it runs on a terminal.
    pub tty: bool,
    /// Always false (ignored).
    pub privileged: bool,
    /// The user as given.
    pub user: String,
}
