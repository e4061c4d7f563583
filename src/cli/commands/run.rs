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
    client.post_empty(&start_path)?;
    match super::logs::follow_output(client, &id) {
        // A short-lived --rm container may be gone before its logs are asked for.
        Err(error) if args.opts.rm && is_not_found(&error) => {}
        other => other?,
    }
    let answer: WaitResponse = match removal {
        Some(pending) => client.finish(pending)?,
        None => client.post_answer(&container_path(&id, "/wait"))?,
    };
    super::wait::exit_code(answer)
}

/// Whether the daemon answered 404.
fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<crate::cli::client::ClientError>())
        .any(|cause| cause.status() == Some(404))
}
