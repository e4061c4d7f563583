//! `moor create`: `POST /containers/create?name=N`, prints the new id.

use crate::api::types::{CreateRequest, CreateResponse};
use crate::cli::args::{ContainerOpts, CreateArgs};
use crate::cli::client::{encode, Client};

/// Creates the container and prints its id.
pub fn execute(client: &Client, args: &CreateArgs) -> anyhow::Result<i32> {
    let id = create(client, &args.opts)?;
    println!("{id}");
    Ok(0)
}

/// Creates a container from `opts`; warnings go to stderr. Returns its id.
pub fn create(client: &Client, opts: &ContainerOpts) -> anyhow::Result<String> {
    let request: CreateRequest = opts.to_request()?;
    let path = match &opts.name {
        Some(name) => format!("/containers/create?name={}", encode(name)),
        None => "/containers/create".to_string(),
    };
    let response: CreateResponse = client.post(&path, &request)?;
    for warning in &response.warnings {
        eprintln!("WARNING: {warning}");
    }
    Ok(response.id)
}
