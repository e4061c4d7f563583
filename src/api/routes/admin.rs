//! `GET /moor/admin/inspect`: `moor admin inspect`'s reports when a daemon holds the store
//! (sled admits one process), computed by the same code as the direct path; and
//! `POST /moor/admin/containers/{id}/adopt|kill-orphan`, done by the container's actor.

use actix_web::{web, HttpResponse};

use crate::admin::inspect;
use crate::api::error::ApiError;
use crate::api::routes::{resolve, IdPath};
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{AdoptOrphan, KillOrphan};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/moor/admin/inspect", web::get().to(reports))
        .route("/moor/admin/containers/{id}/adopt", web::post().to(adopt))
        .route(
            "/moor/admin/containers/{id}/kill-orphan",
            web::post().to(kill_orphan),
        );
}

async fn adopt(
    state: web::Data<ApiState>,
    path: web::Path<IdPath>,
) -> Result<HttpResponse, ApiError> {
    let (_, addr) = resolve(&state, &path.id).await?;
    addr.send(AdoptOrphan)
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::NoContent().finish())
}

async fn kill_orphan(
    state: web::Data<ApiState>,
    path: web::Path<IdPath>,
) -> Result<HttpResponse, ApiError> {
    let (_, addr) = resolve(&state, &path.id).await?;
    addr.send(KillOrphan)
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::NoContent().finish())
}

async fn reports(state: web::Data<ApiState>) -> HttpResponse {
    let shared = state.shared.clone();
    let found = web::block(move || inspect::reports(&shared.store, &shared.layout, &[])).await;
    match found {
        Ok(reports) => HttpResponse::Ok().json(reports),
        Err(e) => {
            HttpResponse::InternalServerError().json(serde_json::json!({"message": e.to_string()}))
        }
    }
}
