//! The HTTP server on the unix socket: actix-web, every route under `/v{version}` and unversioned.

use std::sync::Arc;

use actix::Addr;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::api::routes;
use crate::daemon::supervisor::Supervisor;
use crate::daemon::Shared;

/// What every handler gets.
pub struct ApiState {
    /// The supervisor (ids, names, container actors).
    pub supervisor: Addr<Supervisor>,
    /// Store, layout and settings.
    pub shared: Arc<Shared>,
}

/// Serves the API on an already bound listener; the caller stops it through the handle.
pub fn serve(
    listener: std::os::unix::net::UnixListener,
    supervisor: Addr<Supervisor>,
    shared: Arc<Shared>,
) -> std::io::Result<Server> {
    let state = web::Data::new(ApiState { supervisor, shared });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::JsonConfig::default().limit(1 << 20))
            .service(web::scope("/v{version:[0-9]+(\\.[0-9]+)?}").configure(routes::configure))
            .configure(routes::configure)
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(1)
    .listen_uds(listener)?
    .run())
}
