//! `moor run`: create, start, then (unless `-d`) follow the output and exit with the
//! container's code. Until attach lands, the output comes from the logs endpoint.

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
    let removal = match args.opts.rm {
        true => Some(client.post_pending(&container_path(&id, "/wait?condition=removed"))?),
        false => None,
    };
    let output = super::logs::open_output(client, &id)?;
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
