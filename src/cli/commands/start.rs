//! `moor start [-a]`: `POST /containers/{id}/start` for each name.

use anyhow::bail;

use super::{container_path, each_name};
use crate::cli::args::StartArgs;
use crate::cli::client::Client;

/// Starts each container; with `-a`, follows the one container's output and exits with its code.
pub fn execute(client: &Client, args: &StartArgs) -> anyhow::Result<i32> {
    if !args.attach {
        return Ok(each_name(&args.names, |name| {
            client.post_empty(&container_path(name, "/start"))?;
            Ok(())
        }));
    }
    let [name] = args.names.as_slice() else {
        bail!("you cannot start and attach multiple containers at once");
    };
    client.post_empty(&container_path(name, "/start"))?;
    super::logs::copy_output(super::logs::open_output(client, name)?)?;
    super::wait::wait_exit(client, name)
}
