//! The HTTP server on the unix socket. An actix-server listener hands every new connection
//! to [`route`]: it peeks at the first request head without consuming it
//! ([`crate::api::peek`]); a Docker hijack (`POST /containers/{id}/attach`,
//! `POST /exec/{id}/start`) is served raw by [`crate::api::hijack`] and
//! [`crate::api::routes::exec`], everything else goes to the one actix-web `App` (every route
//! under `/v{version}` and unversioned) through actix-http's HTTP/1 service, with keep-alive:
//! [`Requests`] peeks at and checks each later head on the connection the same way, so a
//! hijack or a refused head after other requests is served here too. Why actix-web alone
//! cannot serve the hijack: DESIGN.md, "Docker attach on actix-web".

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
use crate::api::peek::{self, Peeked};
use crate::api::requests::{self, Connection, Requests};
use crate::api::routes;
use crate::api::{guard, hijack};
use crate::daemon::supervisor::Supervisor;
use crate::daemon::Shared;

/// The largest request body read into memory, on every route (JSON, exec start, attach);
/// a larger one is answered 413 `{"message"}`. Only an image import is streamed to disk
/// without this limit.
pub const MAX_BODY: usize = 1 << 20;

/// How long a connection may wait idle for its next request (a new one, for its first).
/// Docker's daemon sets no idle limit (Go's `http.Server` with only `ReadHeaderTimeout`); its
/// clients close idle connections first (moby's client after 30 s, Go's default transport
/// after 90 s; docker-py keeps them). moor closes after all of them, so that a client never
/// sends on a connection moor is closing, and an idle connection is not kept for ever.
pub const KEEP_ALIVE: Duration = Duration::from_secs(120);
/// Debug builds take the keep-alive in milliseconds from this variable (the idle tests).
const DEBUG_KEEP_ALIVE_ENV: &str = "MOOR_DEBUG_KEEP_ALIVE_MS";

/// [`KEEP_ALIVE`], or in a debug build the one the tests set.
fn keep_alive() -> Duration {
    let debug = cfg!(debug_assertions)
        .then(|| {
            std::env::var(DEBUG_KEEP_ALIVE_ENV)
                .ok()?
                .parse::<u64>()
                .ok()
        })
        .flatten();
    debug.map_or(KEEP_ALIVE, Duration::from_millis)
}

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
        .wrap(actix_web::middleware::from_fn(
            requests::close_before_refusal,
        ))
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
    let idle = keep_alive();
    fn_factory(move || {
        let state = state.clone();
        // Keep-alive: actix-http reads each connection through `Requests`, which hands it
        // only heads checked where they were peeked at (its own refusals are plain text).
        let http = HttpService::build()
            .keep_alive(KeepAlive::Timeout(idle))
            .client_request_timeout(Duration::from_secs(30))
            .on_connect_ext(|io: &Requests, ext| {
                ext.insert(io.connection().clone());
            })
            .finish(map_config(app(state.clone()), |_| AppConfig::default()));
        async move {
            let h1 = Rc::new(http.new_service(()).await.map_err(|e| {
                tracing::error!(error = ?e, "cannot build the HTTP service");
            })?);
            Ok::<_, ()>(fn_service(move |io: UnixStream| {
                let h1 = h1.clone();
                let state = state.clone();
                async move {
                    route(io, h1, state, idle).await;
                    Ok::<_, ()>(())
                }
            }))
        }
    })
}

/// Serves one connection: a hijack raw, anything else through actix-http. A panic past the
/// hijacks' own guards (after the 101) ends this connection only.
async fn route<S>(io: UnixStream, h1: Rc<S>, state: web::Data<ApiState>, idle: Duration)
where
    S: Service<(Requests, Protocol, Option<std::net::SocketAddr>)>,
    S::Error: std::fmt::Debug,
{
    let served = AssertUnwindSafe(serve_connection(io, h1, state, idle)).catch_unwind();
    if let Err(payload) = served.await {
        let panic = guard::panic_message(payload.as_ref());
        tracing::error!(%panic, "a connection's handler panicked; the connection is closed");
    }
}

/// Serves a connection: its first head (waited for at most `idle`), then, if it is for
/// actix-http, the requests actix-http serves and what is left for a raw answer after them.
async fn serve_connection<S>(io: UnixStream, h1: Rc<S>, state: web::Data<ApiState>, idle: Duration)
where
    S: Service<(Requests, Protocol, Option<std::net::SocketAddr>)>,
    S::Error: std::fmt::Debug,
{
    let peeked = match tokio::time::timeout(idle, peek::peek(&io)).await {
        Ok(Ok(peeked)) => peeked,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "cannot read a request head");
            return;
        }
        Err(_) => {
            tracing::debug!("no request head before the keep-alive timeout");
            return;
        }
    };
    let (io, peeked) = match peeked {
        Peeked::Other(framing) => {
            let conn = Rc::new(Connection::default());
            let requests = Requests::new(io, framing, conn.clone());
            if let Err(e) = h1.call((requests, Protocol::Http1, None)).await {
                tracing::debug!(error = ?e, "connection ended with an error");
            }
            match conn.take_next() {
                Some(next) => next,
                None => return,
            }
        }
        raw => (io, raw),
    };
    match peeked {
        Peeked::Attach(head) => hijack::attach(io, head, state).await,
        Peeked::ExecStart(head) => routes::exec::serve_start(io, head, state).await,
        Peeked::Refused(e) => hijack::refuse(io, &e).await,
        Peeked::Closed | Peeked::Other(_) => hijack::linger(io).await,
    }
}
