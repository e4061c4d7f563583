//! `moor wait`: `POST /containers/{id}/wait` for each name, printing the exit codes.

use anyhow::bail;

use super::container_path;
use crate::api::types::WaitResponse;
use crate::cli::args::NamesArgs;
use crate::cli::client::Client;
use crate::cli::error_line;

/// Waits for each container in turn and prints its code; like `docker wait`, the exit
/// code is 0, or 1 if any wait failed.
pub fn execute(client: &Client, args: &NamesArgs) -> i32 {
    let mut failed = false;
    for name in &args.names {
        match wait_exit(client, name) {
            Ok(code) => println!("{code}"),
            Err(error) => {
                eprintln!("{}", error_line(&error));
                failed = true;
            }
        }
    }
    i32::from(failed)
}

/// Waits until the container is not running; its exit code.
pub fn wait_exit(client: &Client, name: &str) -> anyhow::Result<i32> {
    let answer: WaitResponse = client.post_answer(&container_path(name, "/wait"))?;
    exit_code(answer)
}

/// The exit code of a wait answer, or its error.
pub fn exit_code(answer: WaitResponse) -> anyhow::Result<i32> {
    if let Some(error) = answer.error.filter(|error| !error.message.is_empty()) {
        bail!("waiting for the container failed: {}", error.message);
    }
    Ok(i32::try_from(answer.status_code).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::WaitError;

    #[test]
    fn exit_code_or_error() {
        let ok = WaitResponse {
            status_code: 3,
            error: None,
        };
        assert_eq!(exit_code(ok).unwrap(), 3);
        let empty = WaitResponse {
            status_code: 0,
            error: Some(WaitError::default()),
        };
        assert_eq!(exit_code(empty).unwrap(), 0);
        let failed = WaitResponse {
            status_code: 0,
            error: Some(WaitError {
                message: "gone".to_string(),
            }),
        };
        assert!(exit_code(failed).is_err());
    }
}
