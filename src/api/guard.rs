//! The API's last line: no request ends the daemon, and every refusal is Docker's JSON.
//!
//! - A panic in a request handler is caught ([`guard`] for the actix-web `App`,
//!   [`unwinding`] for the raw hijack path) and answered 500 `{"message": ...}`; the daemon
//!   is built with `panic = "unwind"` for that (Cargo.toml), the shim keeps aborting (its
//!   panic hook, `src/bin/moor-shim.rs`).
//! - An error answer actix builds itself (an extractor's 400, the 404 of an unknown route,
//!   405, a 413 from the body limit) is plain text or empty: [`guard`] rewrites it as
//!   `{"message": ...}`, keeping its status.
//!
//! In debug builds, `MOOR_DEBUG_PANIC_ROUTE=1` in the daemon's environment adds
//! `GET /moor/debug/panic`, a handler that panics: the integration tests prove the 500 with
//! it (README, "Hardening: hostile clients").

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use futures_util::FutureExt;

use crate::api::error::ApiError;
use crate::api::types::ErrorBody;

/// The environment variable that adds the panicking route to a debug build.
pub const DEBUG_PANIC_ENV: &str = "MOOR_DEBUG_PANIC_ROUTE";

/// What a panic payload says (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The error a caught panic becomes; logged here, once.
fn panicked(payload: &(dyn Any + Send), what: &str) -> ApiError {
    let message = panic_message(payload);
    tracing::error!(panic = %message, request = %what, "a request handler panicked");
    ApiError::Panicked { message }
}

/// Runs `fut`, turning a panic into [`ApiError::Panicked`] (the hijack path's guard).
pub async fn unwinding<T>(
    what: &str,
    fut: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => Err(panicked(payload.as_ref(), what)),
    }
}

/// The `App` middleware: a handler's panic is a 500, every error answer is JSON. A panic or
/// an inner error is returned as the middleware's error, which actix-http renders with
/// [`ResponseError::error_response`] (the request cannot be kept for a response of ours: the
/// router needs it unshared).
pub async fn guard(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let what = format!("{} {}", req.method(), req.path());
    // Routing and the handler's first poll may panic before a future exists.
    let called = std::panic::catch_unwind(AssertUnwindSafe(|| next.call(req)));
    let result = match called {
        Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
        Err(payload) => Err(payload),
    };
    match result {
        Ok(Ok(res)) => Ok(as_json(res)),
        Ok(Err(e)) => Err(Refusal::from_error(&e).into()),
        Err(payload) => Err(panicked(payload.as_ref(), &what).into()),
    }
}

/// An actix error as Docker's JSON answer, same status.
#[derive(Debug)]
struct Refusal {
    /// The status of the error's own answer.
    status: StatusCode,
    /// Its text.
    message: String,
}

impl Refusal {
    fn from_error(e: &actix_web::Error) -> Refusal {
        Refusal {
            status: e.as_response_error().status_code(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(json_body(self.message.clone()))
    }
}

/// An error answer that is not JSON yet, rewritten as `{"message": ...}` (same status).
fn as_json(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let message = match res.response().error() {
        Some(e) => e.to_string(),
        None => default_message(status),
    };
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), error = %message, "request failed");
    }
    res.map_body(|head, _| {
        head.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        head.headers_mut().remove(header::CONTENT_LENGTH);
        json_body(message)
    })
}

/// Docker's text for an answer actix gives without an error value (an unknown route).
fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "page not found".into(),
        other => other
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase(),
    }
}

/// `{"message": message}`.
pub fn json_body(message: String) -> BoxBody {
    let text = serde_json::to_string(&ErrorBody { message }).expect("an error body serializes");
    text.boxed()
}

/// The handler behind `GET /moor/debug/panic` (debug builds, [`DEBUG_PANIC_ENV`] set).
#[cfg(debug_assertions)]
pub async fn debug_panic() -> HttpResponse {
    panic!("the debug panic route was called");
}

/// Whether the debug panic route is on (always off in release builds).
pub fn debug_panic_route() -> bool {
    cfg!(debug_assertions) && std::env::var_os(DEBUG_PANIC_ENV).is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, web, App};

    async fn boom() -> HttpResponse {
        panic!("boom {}", 42);
    }

    #[actix_web::test]
    async fn a_panic_is_a_500_and_the_service_answers_after() {
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(guard))
                .app_data(web::PayloadConfig::new(16))
                .route("/boom", web::get().to(boom))
                .route(
                    "/ok",
                    web::get().to(|| async { HttpResponse::Ok().body("OK") }),
                )
                .route(
                    "/body",
                    web::post().to(|b: web::Bytes| async move { b.len().to_string() }),
                ),
        )
        .await;
        let req = test::TestRequest::get().uri("/boom").to_request();
        // The middleware's error is what actix-http renders as the answer.
        let res = test::try_call_service(&app, req)
            .await
            .expect_err("a panic is an error");
        let res = res.error_response();
        assert_eq!(res.status(), 500);
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("boom 42"),
            "{body}"
        );
        let res = test::call_service(&app, test::TestRequest::get().uri("/ok").to_request()).await;
        assert_eq!(res.status(), 200);
        for (req, status) in [
            (test::TestRequest::get().uri("/nowhere"), 404),
            (test::TestRequest::delete().uri("/ok"), 404),
            (
                test::TestRequest::post()
                    .uri("/body")
                    .set_payload(vec![b'x'; 17]),
                413,
            ),
        ] {
            let res = test::call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), status);
            let body: serde_json::Value = test::read_body_json(res).await;
            assert!(body["message"].is_string(), "{status}: {body}");
        }
    }

    #[actix_web::test]
    async fn the_hijack_guard_catches_a_panic() {
        let r: Result<(), ApiError> = unwinding("test", async { panic!("in prepare") }).await;
        match r {
            Err(e @ ApiError::Panicked { .. }) => {
                assert_eq!(e.status_code(), 500);
                assert!(e.to_string().contains("in prepare"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
}
