//! `moor rename OLD NEW`: `POST /containers/{old}/rename?name=NEW`.

use super::container_path;
use crate::cli::args::RenameArgs;
use crate::cli::client::{encode, Client};

/// Renames the container.
pub fn execute(client: &Client, args: &RenameArgs) -> anyhow::Result<i32> {
    let rest = format!("/rename?name={}", encode(&args.new));
    client.post_empty(&container_path(&args.old, &rest))?;
    Ok(0)
}
