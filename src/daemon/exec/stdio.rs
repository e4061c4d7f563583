//! The standard streams of an exec's process: pipes (stdout and stderr apart, runc's own
//! errors read from its stderr), or with Tty one terminal for all three.

use std::process::Stdio;

use tokio::io::AsyncWrite;
use tokio::process::{Child, Command};

use super::terminal::{self, Terminal};
use super::{ExecConfig, Output, Stream};
use crate::daemon::Shared;

/// The process's input as the client's bytes are copied to it.
pub type Input = Box<dyn AsyncWrite + Send + Unpin>;

/// Sets `cmd`'s streams up: a terminal (returned) with Tty, else pipes for what is asked.
pub(super) fn prepare(
    cmd: &mut Command,
    config: &ExecConfig,
    attached: bool,
    through_runtime: bool,
) -> std::io::Result<Option<Terminal>> {
    if config.tty {
        return terminal::open(cmd, config.console_size).map(Some);
    }
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(pipe(attached && config.attach_stdin))
        .stdout(pipe(attached && config.attach_stdout))
        // runc's own stderr says why an exec failed to start: read even when not forwarded.
        .stderr(pipe((attached && config.attach_stderr) || through_runtime));
    Ok(None)
}

/// The spawned process's input (when forwarded) and outputs; a terminal's master is
/// registered for resizes and the daemon's copy of its slave closed.
pub(super) fn split(
    (shared, id): (&Shared, &str),
    child: &mut Child,
    term: Option<Terminal>,
    config: &ExecConfig,
    (attached, through_runtime): (bool, bool),
) -> (Option<Input>, [Option<(Output, Stream)>; 2]) {
    if let Some(term) = term {
        drop(term.slave);
        shared.execs.terminal(id, term.master);
        let input = (attached && config.attach_stdin).then(|| Box::new(term.input) as Input);
        let output = Box::new(term.output) as Output;
        return (input, [Some((output, Stream::Tty)), None]);
    }
    let stdin = child.stdin.take().map(|s| Box::new(s) as Input);
    let out = child
        .stdout
        .take()
        .map(|r| (Box::new(r) as Output, Stream::Stdout));
    let err_stream = match (through_runtime, config.attach_stderr) {
        (true, forward) => Stream::RuncStderr { forward },
        (false, _) => Stream::Stderr,
    };
    let err = child
        .stderr
        .take()
        .map(|r| (Box::new(r) as Output, err_stream));
    (stdin, [out, err])
}
