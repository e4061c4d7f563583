//! A hijacked session, as the docker CLI runs one for `attach`, `run -i/-t` and `exec`: the
//! request on a new connection (`Upgrade: tcp`), then stdin sent on it and the output read
//! back until the daemon closes it. With a terminal the output is one raw stream, the local
//! terminal is put in raw mode (restored on drop) and its size is sent at the start and on
//! every SIGWINCH.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{bail, Context};
use nix::sys::termios::{self, SetArg, Termios};

use crate::cli::client::{ClientError, API_VERSION};
use crate::cli::demux::{Demuxer, StreamKind};
use crate::cli::terminal;

/// Sends `POST path` with `body` on a new connection to `socket` and reads the answer head:
/// the stream on a 101, else the daemon's error.
pub fn hijack(
    socket: &std::path::Path,
    path: &str,
    body: &str,
) -> anyhow::Result<BufReader<UnixStream>> {
    let mut stream =
        UnixStream::connect(socket).with_context(|| format!("connect to {}", socket.display()))?;
    write!(
        stream,
        "POST /v{API_VERSION}{path} HTTP/1.1\r\nHost: moor\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n{body}",
        body.len()
    )
    .context("send the request")?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).context("read the answer")?;
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).context("read the answer")? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let code = status.split_whitespace().nth(1);
    if code == Some("101") {
        return Ok(reader);
    }
    let Some(code) = code.and_then(|c| c.parse().ok()) else {
        bail!("unexpected answer: {:?}", status.trim());
    };
    let mut answer = vec![0u8; content_length.min(1 << 20)];
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

/// Sends our stdin on the session (half-closing it at EOF), or half-closes at once when
/// `stdin` is false. The thread may stay blocked on a terminal: it is not joined.
pub fn send_stdin(stream: &BufReader<UnixStream>, stdin: bool) -> anyhow::Result<()> {
    if !stdin {
        return stream
            .get_ref()
            .shutdown(Shutdown::Write)
            .context("half-close the connection");
    }
    let mut to_daemon = stream
        .get_ref()
        .try_clone()
        .context("clone the connection")?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_daemon);
        let _ = to_daemon.shutdown(Shutdown::Write);
    });
    Ok(())
}

/// Copies the output to stdout (and stderr) until the daemon closes the session: raw with a
/// terminal, else demultiplexed.
pub fn copy_output(mut stream: BufReader<UnixStream>, tty: bool) -> anyhow::Result<()> {
    let mut demuxer = Demuxer::default();
    let mut buf = vec![0u8; 32 * 1024];
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    loop {
        let n = stream.read(&mut buf).context("read the output")?;
        if n == 0 {
            return Ok(());
        }
        let frames = match tty {
            true => vec![(StreamKind::Stdout, buf[..n].to_vec())],
            false => demuxer
                .push(&buf[..n])?
                .into_iter()
                .map(|f| (f.kind, f.payload))
                .collect(),
        };
        for (kind, payload) in frames {
            let written = match kind {
                StreamKind::Stderr => err.write_all(&payload).and_then(|()| err.flush()),
                _ => out.write_all(&payload).and_then(|()| out.flush()),
            };
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other.context("write the output")?,
            }
        }
    }
}

/// The local terminal in raw mode while this lives (nothing when stdin is not a terminal).
#[derive(Debug)]
pub struct RawMode {
    /// The settings to restore.
    saved: Option<Termios>,
}

impl RawMode {
    /// Puts stdin in raw mode when it is a terminal.
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        match termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw) {
            Ok(()) => RawMode { saved: Some(saved) },
            Err(_) => RawMode { saved: None },
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Sends the local terminal's size to `path` (`/containers/ID/resize` or `/exec/ID/resize`)
/// now and on every SIGWINCH, from a thread of its own (on plain connections).
pub fn follow_size(socket: PathBuf, path: String) {
    let send = move || {
        let Some((h, w)) = terminal::size() else {
            return;
        };
        if let Ok(mut s) = UnixStream::connect(&socket) {
            let _ = write!(
                s,
                "POST /v{API_VERSION}{path}?h={h}&w={w} HTTP/1.0\r\nHost: moor\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            let _ = s.read(&mut [0u8; 512]);
        }
    };
    send();
    let Ok(mut signals) = signal_hook::iterator::Signals::new([libc::SIGWINCH]) else {
        return;
    };
    std::thread::spawn(move || {
        for _ in signals.forever() {
            send();
        }
    });
}
