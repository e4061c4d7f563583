//! `moor daemon`: runs the daemon in the foreground.

use anyhow::Context;

use crate::cli::args::DaemonArgs;

/// Runs the daemon until it is told to stop.
pub fn execute(args: &DaemonArgs) -> anyhow::Result<i32> {
    crate::daemon::run(args.to_options()).context("run the daemon")?;
    Ok(0)
}
