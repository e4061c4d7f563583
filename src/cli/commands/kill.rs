//! `moor kill [-s SIG]`: `POST /containers/{id}/kill?signal=SIG` for each name.

use super::{container_path, each_name};
use crate::cli::args::KillArgs;
use crate::cli::client::{encode, Client};

/// Signals each container; the exit code is 1 if any failed.
pub fn execute(client: &Client, args: &KillArgs) -> i32 {
    let query = match &args.signal {
        Some(signal) => format!("?signal={}", encode(signal)),
        None => String::new(),
    };
    each_name(&args.names, |name| {
        client.post_empty(&container_path(name, &format!("/kill{query}")))?;
        Ok(())
    })
}
