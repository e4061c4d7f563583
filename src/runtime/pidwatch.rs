//! Waiting for a process to end through its pidfd, on the actix (tokio) reactor.

use std::io;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::identity::PidFd;

/// Resolves when the process behind `fd` has exited (its pidfd turns readable).
pub async fn exited(fd: PidFd) -> io::Result<()> {
    // SAFETY: `PidFd` owns its descriptor (an `OwnedFd`) and never closes or swaps it
    // while it lives; the `AsyncFd` takes ownership of the `PidFd`, so the descriptor
    // stays open and is the same one for the whole lifetime of the registration.
    let afd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))?;
    let _guard = afd.readable().await?;
    Ok(())
}
