//! `moor rm [-f]`: `DELETE /containers/{id}?force=1` for each name.

use super::{container_path, each_name};
use crate::cli::args::RmArgs;
use crate::cli::client::Client;

/// Removes each container; the exit code is 1 if any failed.
pub fn execute(client: &Client, args: &RmArgs) -> i32 {
    let query = if args.force { "?force=1" } else { "" };
    each_name(&args.names, |name| {
        client.delete(&container_path(name, query))?;
        Ok(())
    })
}
