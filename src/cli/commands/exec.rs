//! `moor exec`: run a command in a running container, as `docker exec` does: create the exec
//! instance, start it on a hijacked connection (`Upgrade: tcp`; stdin sent on it with `-i`,
//! half-closed at its EOF), print the output (demultiplexed, or raw on a terminal with `-t`),
//! then exit with the command's code read from `GET /exec/{id}/json` (0 once detached).

use clap::Args;

use super::container_path;
use crate::api::exec_types::{ExecCreateRequest, ExecCreateResponse, ExecInspect};
use crate::cli::client::Client;
use crate::cli::session;

/// `moor exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open and send it to the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Run the command on a terminal (raw local terminal, its size followed).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The key sequence that detaches from a terminal (Docker's spec; default ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Run the command in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User (NAME or UID, optionally :GROUP); runc containers only.
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The container (name, id or id prefix).
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs the command; the exit code is the command's (0 with `-d` or once detached).
pub fn execute(client: &Client, args: &ExecArgs) -> anyhow::Result<i32> {
    let attach = !args.detach;
    let req = ExecCreateRequest {
        cmd: Some(args.command.clone()),
        attach_stdin: attach && args.interactive,
        attach_stdout: attach,
        attach_stderr: attach,
        tty: args.tty,
        console_size: args
            .tty
            .then(crate::cli::terminal::size)
            .flatten()
            .map(|(h, w)| [h, w]),
        env: Some(args.env.clone()),
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
        detach_keys: args.detach_keys.clone(),
        ..Default::default()
    };
    let created: ExecCreateResponse =
        client.post(&container_path(&args.container, "/exec"), &req)?;
    let id = created.id;
    let body = serde_json::json!({ "Detach": args.detach, "Tty": args.tty }).to_string();
    if args.detach {
        client.post_bytes(&format!("/exec/{id}/start"), body.into())?;
        return Ok(0);
    }
    let stream = session::hijack(client.socket(), &format!("/exec/{id}/start"), &body)?;
    let raw = args.tty.then(session::RawMode::enter);
    if args.tty {
        session::follow_size(client.socket().to_path_buf(), format!("/exec/{id}/resize"));
    }
    session::send_stdin(&stream, args.interactive)?;
    let copied = session::copy_output(stream, args.tty);
    drop(raw);
    copied?;
    let info: ExecInspect = client.get(&format!("/exec/{id}/json"))?;
    Ok(if info.running {
        0
    } else {
        info.exit_code.unwrap_or(0)
    })
}
