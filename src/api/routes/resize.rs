//! `POST /containers/{id}/resize?h=&w=`: the size of a Tty container's terminal. The shim
//! holds the pty master; the size goes to it as a `resize H W` line on the control FIFO in
//! the container's run directory, so a resize works whether or not the daemon was
//! restarted since the start, and the kernel keeps the size with the terminal.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use actix_web::{web, HttpResponse};

use super::{resolve, terminal_size, IdPath, Query};
use crate::api::error::ApiError;
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::InspectContainer;
use crate::shim::protocol::CONTROL_FIFO;
use moor_state::State;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/resize", web::post().to(resize));
}

async fn resize(
    state: web::Data<ApiState>,
    path: web::Path<IdPath>,
    q: Query,
) -> Result<HttpResponse, ApiError> {
    let (h, w) = terminal_size(&q)?;
    let (id, addr) = resolve(&state, &path.id).await?;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    if !matches!(rec.state, State::Running(_) | State::Paused(_)) {
        return Err(ApiError::NotRunning { id });
    }
    if !rec.spec.tty {
        return Err(ApiError::NoTty { id });
    }
    let fifo = state.shared.run_container_dir(&rec).join(CONTROL_FIFO);
    // Non-blocking: ENXIO when no shim reads it (the container has just ended); one line
    // under PIPE_BUF is written whole or not at all.
    let sent = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .and_then(|mut f| f.write_all(format!("resize {h} {w}\n").as_bytes()));
    match sent {
        Ok(()) => Ok(HttpResponse::Ok().finish()),
        Err(e) => {
            tracing::warn!(container_id = %id, error = %e, "resize");
            Err(ApiError::NotRunning { id })
        }
    }
}
