//! "Every transition is flushed to disk before the daemon acknowledges it": the actors
//! commit their writes at once and the store's flush thread makes them durable
//! (`daemon::durable`), so the API answers a request that may have written (any method but
//! GET and HEAD) only once every write committed by then is flushed. One flush serves every
//! request waiting for it; a request that wrote nothing waits for nothing when nothing is
//! pending.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;

use crate::api::error::ApiError;
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;

/// The `App` middleware (inside [`crate::api::guard::guard`], which makes its refusal JSON).
pub async fn flushed_first(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
    let state = req.app_data::<web::Data<ApiState>>().cloned();
    let res = next.call(req).await?;
    if let (true, Some(state)) = (writes, state) {
        if let Err(e) = state.shared.durable.barrier().await {
            return Err(ApiError::from(ContainerError::from(e)).into());
        }
    }
    Ok(res)
}
