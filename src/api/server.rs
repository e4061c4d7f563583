//! The HTTP server on the unix socket. An actix-server listener hands every new connection
//! to [`route`]: it peeks at the first request head without consuming it; a Docker hijack
//! (`POST /containers/{id}/attach`, `POST /exec/{id}/start`) is served raw by
//! [`crate::api::hijack`] and [`crate::api::routes::exec`], everything else goes to the one
//! actix-web `App` (every route under `/v{version}` and unversioned) through actix-http's
//! HTTP/1 service, one request per connection (so every request head is checked as it is
//! peeked at: [`crate::api::head`]). Why actix-web alone cannot serve the hijack:
//! DESIGN.md, "Docker attach on actix-web".

use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_http::{HttpService, KeepAlive, Protocol};
use actix_rt::net::UnixStream;
use actix_service::{fn_factory, fn_service, map_config, Service, ServiceFactory};
use actix_web::dev::{AppConfig, Server};
use actix_web::{web, App};
use futures_util::FutureExt;

use crate::api::list_cache::ListCache;
use crate::api::one_request::OneRequest;
use crate::api::routes;
use crate::api::{guard, hijack};
use crate::daemon::supervisor::Supervisor;
use crate::daemon::Shared;

/// The largest request body read into memory, on every route (JSON, exec start, attach);
/// a larger one is answered 413 `{"message"}`. Only an image import is streamed to disk
/// without this limit.
pub const MAX_BODY: usize = 1 << 20;

/// What every handler gets.
pub struct ApiState {
    /// The supervisor (ids, names, container actors).
    pub supervisor: Addr<Supervisor>,
    /// Store, layout and settings.
    pub shared: Arc<Shared>,
    /// The list answer's parts, kept while the store is unchanged.
    pub list_cache: ListCache,
}

/// Serves the API on an already bound listener; the caller stops it through the handle.
pub fn serve(
    listener: std::os::unix::net::UnixListener,
    supervisor: Addr<Supervisor>,
    shared: Arc<Shared>,
) -> std::io::Result<Server> {
    let state = web::Data::new(ApiState {
        supervisor,
        shared,
        list_cache: ListCache::default(),
    });
    Ok(actix_server::Server::build()
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1)
        .listen_uds("moor-api", listener, move || connections(state.clone()))?
        .run())
}

/// The actix-web application: the whole API but the raw hijack.
fn app(
    state: web::Data<ApiState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let app = App::new()
        .wrap(actix_web::middleware::from_fn(
            super::durable::flushed_first,
        ))
        .wrap(actix_web::middleware::from_fn(guard::guard))
        .app_data(state)
        .app_data(web::JsonConfig::default().limit(MAX_BODY))
        .app_data(web::PayloadConfig::new(MAX_BODY));
    #[cfg(debug_assertions)]
    let app = match guard::debug_panic_route() {
        true => app.route("/moor/debug/panic", web::get().to(guard::debug_panic)),
        false => app,
    };
    app.service(web::scope("/v{version:[0-9]+(\\.[0-9]+)?}").configure(routes::configure))
        .configure(routes::configure)
}

/// One worker's connection service: the HTTP/1 service is built once per worker.
fn connections(
    state: web::Data<ApiState>,
) -> impl ServiceFactory<UnixStream, Config = (), Response = (), Error = (), InitError = ()> {
    fn_factory(move || {
        let state = state.clone();
        // Every answer closes its connection: a second request on a kept-alive connection
        // would be parsed by actix-http alone, whose refusals of a malformed head are a
        // plain-text 400, not Docker's JSON. A unix-socket connect costs ~30 µs; clients
        // (the docker CLI, docker-py) reconnect on `Connection: close` as HTTP/1.1 says.
        let http = HttpService::build()
            .keep_alive(KeepAlive::Disabled)
            .client_request_timeout(Duration::from_secs(30))
            .finish(map_config(app(state.clone()), |_| AppConfig::default()));
        async move {
            let h1 = Rc::new(http.new_service(()).await.map_err(|e| {
                tracing::error!(error = ?e, "cannot build the HTTP service");
            })?);
            Ok::<_, ()>(fn_service(move |io: UnixStream| {
                let h1 = h1.clone();
                let state = state.clone();
                async move {
                    route(io, h1, state).await;
                    Ok::<_, ()>(())
                }
            }))
        }
    })
}

/// Serves one connection: a hijack raw, anything else through actix-http. A panic past the
/// hijacks' own guards (after the 101) ends this connection only.
async fn route<S>(io: UnixStream, h1: Rc<S>, state: web::Data<ApiState>)
where
    S: Service<(
        OneRequest<UnixStream>,
        Protocol,
        Option<std::net::SocketAddr>,
    )>,
    S::Error: std::fmt::Debug,
{
    let served = AssertUnwindSafe(serve_connection(io, h1, state)).catch_unwind();
    if let Err(payload) = served.await {
        let panic = guard::panic_message(payload.as_ref());
        tracing::error!(%panic, "a connection's handler panicked; the connection is closed");
    }
}

async fn serve_connection<S>(io: UnixStream, h1: Rc<S>, state: web::Data<ApiState>)
where
    S: Service<(
        OneRequest<UnixStream>,
        Protocol,
        Option<std::net::SocketAddr>,
    )>,
    S::Error: std::fmt::Debug,
{
    match hijack::peek(&io).await {
        Ok(hijack::Peeked::Attach(head)) => hijack::attach(io, head, state).await,
        Ok(hijack::Peeked::ExecStart(head)) => routes::exec::serve_start(io, head, state).await,
        Ok(hijack::Peeked::Refused(e)) => hijack::refuse(io, &e).await,
        Ok(hijack::Peeked::Other(framing)) => {
            let io = OneRequest::new(io, framing);
            if let Err(e) = h1.call((io, Protocol::Http1, None)).await {
                tracing::debug!(error = ?e, "connection ended with an error");
            }
        }
        Ok(hijack::Peeked::Closed) => {}
        Err(e) => tracing::debug!(error = %e, "cannot read a request head"),
    }
}
