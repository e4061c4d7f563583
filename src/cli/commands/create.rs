//! `moor create`: `POST /containers/create?name=N`, prints the new id. The image is pulled
//! first as the docker CLI does: with `--pull missing` (the default) when the daemon answers
//! 404 `No such image`, with `--pull always` every time, never with `--pull never`.

use clap::ValueEnum;

use crate::api::types::{CreateRequest, CreateResponse};
use crate::cli::args::{ContainerOpts, CreateArgs};
use crate::cli::client::{encode, Client, ClientError};

/// Docker's `--pull` for `run` and `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull when the image is not here.
    Missing,
    /// Pull before every create.
    Always,
    /// Never pull: a missing image is an error.
    Never,
}

/// Creates the container and prints its id.
pub fn execute(client: &Client, args: &CreateArgs) -> anyhow::Result<i32> {
    let id = create(client, &args.opts)?;
    println!("{id}");
    Ok(0)
}

/// Whether an error is the daemon's 404 for a missing image.
fn is_missing_image(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { status: 404, message } if message.starts_with("No such image"))
}

/// Creates a container from `opts`, pulling its image first as `--pull` says; warnings go
/// to stderr. Returns its id.
pub fn create(client: &Client, opts: &ContainerOpts) -> anyhow::Result<String> {
    let request: CreateRequest = opts.to_request()?;
    let path = match &opts.name {
        Some(name) => format!("/containers/create?name={}", encode(name)),
        None => "/containers/create".to_string(),
    };
    if opts.pull == PullPolicy::Always {
        super::pull::pull(client, &opts.image, None, true)?;
    }
    let response: CreateResponse = match client.post(&path, &request) {
        Err(e) if opts.pull == PullPolicy::Missing && is_missing_image(&e) => {
            eprintln!("Unable to find image '{}' locally", opts.image);
            super::pull::pull(client, &opts.image, None, true)?;
            client.post(&path, &request)?
        }
        other => other?,
    };
    for warning in &response.warnings {
        eprintln!("WARNING: {warning}");
    }
    Ok(response.id)
}
