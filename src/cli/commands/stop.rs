//! `moor stop [-t SECS]`: `POST /containers/{id}/stop?t=SECS` for each name.

use super::{container_path, each_name};
use crate::cli::args::StopArgs;
use crate::cli::client::Client;

/// Stops each container; the exit code is 1 if any failed.
pub fn execute(client: &Client, args: &StopArgs) -> i32 {
    let query = timeout_query(args.timeout);
    each_name(&args.names, |name| {
        client.post_empty(&container_path(name, &format!("/stop{query}")))?;
        Ok(())
    })
}

/// `?t=SECS` when a timeout was given, else nothing (the container's own StopTimeout counts).
pub(crate) fn timeout_query(timeout: Option<i64>) -> String {
    timeout.map(|t| format!("?t={t}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_only_when_given() {
        assert_eq!(timeout_query(None), "");
        assert_eq!(timeout_query(Some(3)), "?t=3");
    }
}
