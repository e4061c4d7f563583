//! `GET /moor/admin/inspect`: `moor admin inspect`'s reports when a daemon holds the store
//! (sled admits one process), computed by the same code as the direct path; and
//! `POST /moor/admin/containers/{id}/adopt|kill-orphan`, done by the container's actor; and
//! `POST /moor/admin/upgrade`, the in-place upgrade.

use actix_web::{web, HttpResponse};

use std::path::PathBuf;

use serde::Deserialize;

use crate::admin::inspect;
use crate::api::error::ApiError;
use crate::api::routes::{resolve, IdPath};
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{AdoptOrphan, KillOrphan};
use crate::daemon::upgrade;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/moor/admin/inspect", web::get().to(reports))
        .route("/moor/admin/upgrade", web::post().to(upgrade))
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

/// `POST /moor/admin/upgrade`'s body (empty: this daemon's own binary path).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct UpgradeRequest {
    /// The new binary.
    binary: Option<PathBuf>,
}

/// Checks the new binary, answers, then has the daemon hand over to it (see
/// `daemon::upgrade`). A binary that fails the check is a 400 saying why; the daemon serves on.
async fn upgrade(state: web::Data<ApiState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let asked: UpgradeRequest = match body.is_empty() {
        true => UpgradeRequest::default(),
        false => serde_json::from_slice(&body)?,
    };
    let shared = state.shared.clone();
    let binary = asked
        .binary
        .unwrap_or_else(|| shared.invocation.binary.clone());
    let binary = std::path::absolute(&binary).unwrap_or(binary);
    let (checked, invocation) = (binary.clone(), shared.invocation.clone());
    let report = web::block(move || upgrade::check(&checked, &invocation))
        .await
        .map_err(|_| ApiError::Panicked {
            message: "the upgrade check's thread ended".into(),
        })??;
    tracing::info!(binary = %binary.display(), version = %report.version, "upgrade checked");
    shared.upgrade.fire(binary.clone());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "Version": report.version,
        "Binary": binary,
    })))
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
