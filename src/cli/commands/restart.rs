//! `moor restart [-t SECS]`: `POST /containers/{id}/restart?t=SECS` for each name.

use super::stop::timeout_query;
use super::{container_path, each_name};
use crate::cli::args::StopArgs;
use crate::cli::client::Client;

/// Restarts each container; the exit code is 1 if any failed.
pub fn execute(client: &Client, args: &StopArgs) -> i32 {
    let query = timeout_query(args.timeout);
    each_name(&args.names, |name| {
        client.post_empty(&container_path(name, &format!("/restart{query}")))?;
        Ok(())
    })
}
