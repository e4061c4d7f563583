//! `moor pause` / `moor unpause`: `POST /containers/{id}/pause` (or `/unpause`) for each name.

use super::{container_path, each_name};
use crate::cli::args::NamesArgs;
use crate::cli::client::Client;

/// Freezes each container; the exit code is 1 if any failed.
pub fn pause(client: &Client, args: &NamesArgs) -> i32 {
    each_name(&args.names, |name| {
        client.post_empty(&container_path(name, "/pause"))?;
        Ok(())
    })
}

/// Thaws each container; the exit code is 1 if any failed.
pub fn unpause(client: &Client, args: &NamesArgs) -> i32 {
    each_name(&args.names, |name| {
        client.post_empty(&container_path(name, "/unpause"))?;
        Ok(())
    })
}
