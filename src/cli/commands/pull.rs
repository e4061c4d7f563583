//! `moor pull NAME[:TAG|@DIGEST]`: `POST /images/create?fromImage=` and the progress stream
//! drawn as it comes: on a terminal one bar per layer (indicatif) with size and rate,
//! otherwise one line per layer step (`ID: Pull complete`), then the digest and the status.

use std::collections::HashMap;
use std::io::IsTerminal;

use anyhow::Context;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::api::image_types::PullMessage;
use crate::cli::client::{encode, Client};

/// `moor pull` options.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: NAME[:TAG] or NAME@sha256:DIGEST.
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
    /// The platform to pick from a multi-platform image (default: the host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
}

/// How the progress is shown.
enum View {
    /// One bar per layer.
    Bars {
        /// The bars' container.
        multi: MultiProgress,
        /// Layer id -> its bar.
        bars: HashMap<String, ProgressBar>,
        /// Where the lines after the bars go (stderr for `run` and `create`).
        stderr: bool,
    },
    /// One line per step, on stdout or (`run`, `create`: their stdout is the container's)
    /// stderr.
    Lines {
        /// Whether the lines go to stderr.
        stderr: bool,
    },
}

/// Prints a line on stdout or stderr.
fn emit(stderr: bool, text: &str) {
    match stderr {
        true => eprintln!("{text}"),
        false => println!("{text}"),
    }
}

/// A layer's line while it has no size yet (or when it needs none): its status only.
const STATUS: &str = "{prefix}: {msg}";
/// A layer's line while bytes move: the bar, the bytes and the rate.
const MOVING: &str = "{prefix}: {msg:18} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}";
/// A layer's last line: its size.
const DONE: &str = "{prefix}: {msg:18} {total_bytes}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Shows one layer's message on its bar.
fn draw(bar: &ProgressBar, msg: &PullMessage) {
    bar.set_message(msg.status.clone());
    let detail = msg.progress_detail.as_ref();
    match (detail.and_then(|d| d.current), detail.and_then(|d| d.total)) {
        (Some(current), Some(total)) if total > 0 => {
            bar.set_style(style(MOVING));
            bar.set_length(total);
            bar.set_position(current);
        }
        _ => match msg.status.as_str() {
            "Pull complete" if bar.length().unwrap_or(0) > 0 => {
                bar.set_style(style(DONE));
                bar.finish();
            }
            "Pull complete" | "Already exists" => {
                bar.set_style(style(STATUS));
                bar.finish();
            }
            _ => bar.set_style(style(STATUS)),
        },
    }
}

impl View {
    fn show(&mut self, msg: &PullMessage) {
        let Some(id) = msg.id.as_deref() else {
            self.println(&msg.status);
            return;
        };
        match self {
            View::Lines { stderr } => {
                if msg.status != "Downloading" && msg.status != "Extracting" {
                    emit(*stderr, &format!("{id}: {}", msg.status));
                }
            }
            View::Bars { multi, bars, .. } => {
                if msg.status.starts_with("Pulling from") {
                    let _ = multi.println(format!("{id}: {}", msg.status));
                    return;
                }
                let bar = bars.entry(id.to_string()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(style(STATUS));
                    bar.set_prefix(id.to_string());
                    bar
                });
                draw(bar, msg);
            }
        }
    }

    /// A line without a layer (`Digest:`, `Status:`): below the bars, which stay as they
    /// were last drawn.
    fn println(&mut self, text: &str) {
        if let View::Bars { bars, stderr, .. } = self {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            *self = View::Lines { stderr: *stderr };
        }
        if let View::Lines { stderr } = self {
            emit(*stderr, text);
        }
    }
}

/// Runs `moor pull`.
pub fn execute(client: &Client, args: &PullArgs) -> anyhow::Result<i32> {
    pull(client, &args.name, args.platform.as_deref(), false)?;
    Ok(0)
}

/// Pulls `name` with the stored credentials of its registry, drawing the progress (on
/// stderr when `to_stderr`: `run` and `create` pull this way).
pub fn pull(
    client: &Client,
    name: &str,
    platform: Option<&str>,
    to_stderr: bool,
) -> anyhow::Result<()> {
    let mut path = format!("/images/create?fromImage={}", encode(name));
    if let Some(p) = platform {
        path.push_str(&format!("&platform={}", encode(p)));
    }
    let auth = super::login::registry_auth_for(name)?;
    follow(client, &path, auth, to_stderr, &format!("pull {name}"))
}

/// Sends `POST path` with `auth` and draws the progress stream it answers (pull's and
/// push's); an error line ends it as an error prefixed with `what`.
pub fn follow(
    client: &Client,
    path: &str,
    auth: Option<String>,
    to_stderr: bool,
    what: &str,
) -> anyhow::Result<()> {
    let mut stream = client.post_stream_auth(path, auth)?;
    let terminal = match to_stderr {
        true => std::io::stderr().is_terminal(),
        false => std::io::stdout().is_terminal(),
    };
    let mut view = match terminal {
        true => View::Bars {
            multi: MultiProgress::new(),
            bars: HashMap::new(),
            stderr: to_stderr,
        },
        false => View::Lines { stderr: to_stderr },
    };
    let mut pending = Vec::new();
    while let Some(chunk) = stream.next_chunk()? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                continue;
            }
            let msg: PullMessage = serde_json::from_str(text.trim())
                .with_context(|| format!("decode the progress line {text:?}"))?;
            if let Some(e) = msg
                .error_detail
                .as_ref()
                .map(|d| d.message.clone())
                .or(msg.error.clone())
            {
                anyhow::bail!("{what}: {e}");
            }
            view.show(&msg);
        }
    }
    Ok(())
}
