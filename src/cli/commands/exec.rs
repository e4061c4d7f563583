//! `moor exec`: run a command in a running container, as `docker exec` does: create the exec
//! instance, start it on a hijacked connection (`Upgrade: tcp`; stdin sent on it with `-i`,
//! half-closed at its EOF), print the demultiplexed output, then exit with the command's code
//! read from `GET /exec/{id}/json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context};
use clap::Args;

use super::container_path;
use crate::api::exec_types::{ExecCreateRequest, ExecCreateResponse, ExecInspect};
use crate::cli::client::{Client, ClientError, API_VERSION};
use crate::cli::demux::{Demuxer, StreamKind};

/// `moor exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open and send it to the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,
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

/// Runs the command; the exit code is the command's (0 with `-d`).
pub fn execute(client: &Client, args: &ExecArgs) -> anyhow::Result<i32> {
    let attach = !args.detach;
    let req = ExecCreateRequest {
        cmd: Some(args.command.clone()),
        attach_stdin: attach && args.interactive,
        attach_stdout: attach,
        attach_stderr: attach,
        env: Some(args.env.clone()),
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
        ..Default::default()
    };
    let created: ExecCreateResponse =
        client.post(&container_path(&args.container, "/exec"), &req)?;
    let id = created.id;
    let body = serde_json::json!({ "Detach": args.detach, "Tty": false }).to_string();
    if args.detach {
        client.post_bytes(&format!("/exec/{id}/start"), body.into())?;
        return Ok(0);
    }
    let stream = hijack(client, &id, &body)?;
    let feeder = match args.interactive {
        true => {
            let mut to_daemon = stream
                .get_ref()
                .try_clone()
                .context("clone the exec connection")?;
            Some(std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_daemon);
                let _ = to_daemon.shutdown(Shutdown::Write);
            }))
        }
        false => {
            stream
                .get_ref()
                .shutdown(Shutdown::Write)
                .context("half-close the exec connection")?;
            None
        }
    };
    copy_output(stream)?;
    // The feeder may still wait for stdin (a terminal): it is not joined.
    drop(feeder);
    let info: ExecInspect = client.get(&format!("/exec/{id}/json"))?;
    Ok(info.exit_code.unwrap_or(0))
}

/// Sends the start on a new connection and reads the answer head: the stream on a 101.
fn hijack(client: &Client, id: &str, body: &str) -> anyhow::Result<BufReader<UnixStream>> {
    let socket = client.socket();
    let mut stream =
        UnixStream::connect(socket).with_context(|| format!("connect to {}", socket.display()))?;
    write!(
        stream,
        "POST /v{API_VERSION}/exec/{id}/start HTTP/1.1\r\nHost: moor\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n{body}",
        body.len()
    )
    .context("send the exec start")?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).context("read the answer")?;
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).context("read the answer")? == 0 {
            break;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    if status.split_whitespace().nth(1) == Some("101") {
        return Ok(reader);
    }
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok());
    let Some(code) = code else {
        bail!("unexpected answer to the exec start: {:?}", status.trim());
    };
    let mut answer = vec![0u8; content_length];
    let _ = reader.read_exact(&mut answer);
    let message = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| status.trim().to_string());
    Err(ClientError::Api {
        status: code,
        message,
    }
    .into())
}

/// Demultiplexes the stream to stdout and stderr until the daemon closes it.
fn copy_output(mut stream: BufReader<UnixStream>) -> anyhow::Result<()> {
    let mut demuxer = Demuxer::default();
    let mut buf = vec![0u8; 32 * 1024];
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    loop {
        let n = stream.read(&mut buf).context("read the exec output")?;
        if n == 0 {
            return Ok(());
        }
        for frame in demuxer.push(&buf[..n])? {
            let written = match frame.kind {
                StreamKind::Stderr => err.write_all(&frame.payload).and_then(|()| err.flush()),
                _ => out.write_all(&frame.payload).and_then(|()| out.flush()),
            };
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other.context("write the exec output")?,
            }
        }
    }
}
