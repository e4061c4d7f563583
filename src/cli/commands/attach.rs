//! `moor attach` and the attached part of `moor run -i/-t`: a hijacked
//! `POST /containers/{id}/attach` (stdin with `-i`, raw local terminal and its size with a
//! Tty container), until the container stops or the detach keys end the session; the exit
//! code is the container's, or 0 once detached from a container that runs on.

use clap::Args;

use super::container_path;
use crate::api::types::{ContainerInspect, WaitResponse};
use crate::cli::client::{encode, Client};
use crate::cli::session;

/// `moor attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not send the local stdin.
    #[arg(long)]
    pub no_stdin: bool,
    /// The key sequence that detaches from a terminal (Docker's spec; default ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// The container (name, id or id prefix).
    pub container: String,
}

/// Attaches to a running container.
pub fn execute(client: &Client, args: &AttachArgs) -> anyhow::Result<i32> {
    let info: ContainerInspect = client.get(&container_path(&args.container, "/json"))?;
    if !info.state.running {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let stdin = !args.no_stdin && info.config.open_stdin;
    let session = Session {
        id: &info.id,
        tty: info.config.tty,
        stdin,
        detach_keys: args.detach_keys.as_deref(),
    };
    let stream = session.open(client)?;
    session.serve(client, stream, true)?;
    after(client, &info.id)
}

/// One attach session to container `id`.
pub struct Session<'a> {
    /// The container's id.
    pub id: &'a str,
    /// It has a terminal.
    pub tty: bool,
    /// Send the local stdin.
    pub stdin: bool,
    /// `--detach-keys`.
    pub detach_keys: Option<&'a str>,
}

impl Session<'_> {
    /// The hijacked connection (before a start, for `run`).
    pub fn open(
        &self,
        client: &Client,
    ) -> anyhow::Result<std::io::BufReader<std::os::unix::net::UnixStream>> {
        let mut query = String::from("stream=1&stdout=1&stderr=1");
        if self.stdin {
            query.push_str("&stdin=1");
        }
        if let Some(keys) = self.detach_keys {
            query.push_str(&format!("&detachKeys={}", encode(keys)));
        }
        let path = container_path(self.id, &format!("/attach?{query}"));
        session::hijack(client.socket(), &path, "")
    }

    /// Sends stdin and copies the output until the session ends; with a terminal, raw mode
    /// and the size (`resize`: now and on SIGWINCH; after a start for `run`).
    pub fn serve(
        &self,
        client: &Client,
        stream: std::io::BufReader<std::os::unix::net::UnixStream>,
        resize: bool,
    ) -> anyhow::Result<()> {
        let raw = self.tty.then(session::RawMode::enter);
        if self.tty && resize {
            session::follow_size(
                client.socket().to_path_buf(),
                container_path(self.id, "/resize"),
            );
        }
        session::send_stdin(&stream, self.stdin)?;
        let copied = session::copy_output(stream, self.tty);
        drop(raw);
        copied
    }
}

/// The exit code once a session ended: 0 if the container runs on (detached), else its code.
pub fn after(client: &Client, id: &str) -> anyhow::Result<i32> {
    let info: ContainerInspect = client.get(&container_path(id, "/json"))?;
    if info.state.running {
        return Ok(0);
    }
    let answer: WaitResponse = client.post_answer(&container_path(id, "/wait"))?;
    super::wait::exit_code(answer)
}
