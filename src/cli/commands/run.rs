//! `moor run`: create, start, then (unless `-d`) follow the output and exit with the
//! container's code. With `-i` or `-t` the session is an attach opened before the start
//! (stdin, a raw terminal, detach keys); otherwise the output comes from the logs endpoint.

use super::container_path;
use crate::api::types::WaitResponse;
use crate::cli::args::RunArgs;
use crate::cli::client::Client;

/// Runs the container; the exit code is the container's (0 with `-d`).
pub fn execute(client: &Client, args: &RunArgs) -> anyhow::Result<i32> {
    let id = super::create::create(client, &args.opts)?;
    let start_path = container_path(&id, "/start");
    if args.detach {
        client.post_empty(&start_path)?;
        println!("{id}");
        return Ok(0);
    }
    // With --rm the daemon removes the container itself: register the wait before starting,
    // as docker does, so that neither the exit nor the removal can be missed.
    let removed_path = container_path(&id, "/wait?condition=removed");
    if args.opts.interactive || args.opts.tty {
        let removal = match args.opts.rm {
            true => Some(client.post_pending(&removed_path)?),
            false => None,
        };
        return run_attached(client, args, &id, removal);
    }
    // The output stream opens while the wait is on its way: both before the start.
    let (removal, output) = match args.opts.rm {
        true => {
            let (removal, output) =
                client.post_pending_while(&removed_path, || super::logs::open_output(client, &id));
            (Some(removal?), output?)
        }
        false => (None, super::logs::open_output(client, &id)?),
    };
    if let Err(e) = client.post_empty(&start_path) {
        let e = anyhow::Error::from(e);
        let code = start_failure_code(&format!("{e:#}"));
        eprintln!("{}", crate::cli::error_line(&e));
        return Ok(code);
    }
    super::logs::copy_output(output)?;
    let answer: WaitResponse = match removal {
        Some(pending) => client.finish(pending)?,
        None => client.post_answer(&container_path(&id, "/wait"))?,
    };
    super::wait::exit_code(answer)
}

/// The attached run: attach, start, serve the session; the exit code is the container's,
/// or 0 once detached from a container that runs on.
fn run_attached(
    client: &Client,
    args: &RunArgs,
    id: &str,
    removal: Option<crate::cli::client::Pending>,
) -> anyhow::Result<i32> {
    let session = super::attach::Session {
        id,
        tty: args.opts.tty,
        stdin: args.opts.interactive,
        detach_keys: args.detach_keys.as_deref(),
    };
    let stream = session.open(client)?;
    if let Err(e) = client.post_empty(&container_path(id, "/start")) {
        let e = anyhow::Error::from(e);
        eprintln!("{}", crate::cli::error_line(&e));
        return Ok(start_failure_code(&format!("{e:#}")));
    }
    session.serve(client, stream, true)?;
    match removal {
        Some(pending) => {
            let info: Result<crate::api::types::ContainerInspect, _> =
                client.get(&container_path(id, "/json"));
            if info.is_ok_and(|i| i.state.running) {
                return Ok(0);
            }
            super::wait::exit_code(client.finish(pending)?)
        }
        None => super::attach::after(client, id),
    }
}

/// The docker CLI's exit code for a container that could not start (its
/// `runStartContainerErr`): 127 command not found, 126 not executable, 125 otherwise.
fn start_failure_code(error: &str) -> i32 {
    if error.contains("executable file not found") || error.contains("no such file or directory") {
        127
    } else if error.contains("permission denied") {
        126
    } else {
        125
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_exit_like_docker() {
        let e = "exec: \"x\": executable file not found in $PATH";
        assert_eq!(start_failure_code(e), 127);
        assert_eq!(start_failure_code("exec: \"/etc\": permission denied"), 126);
        assert_eq!(start_failure_code("no such image"), 125);
    }
}
