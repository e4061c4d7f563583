//! `POST /containers/{id}/update` (`docker update`): checked against the container's spec
//! ([`crate::api::update`]), then recorded and applied by its actor.

use actix_web::{web, HttpResponse};

use crate::api::error::ApiError;
use crate::api::routes::{resolve, IdPath};
use crate::api::server::ApiState;
use crate::api::types::UpdateResponse;
use crate::api::update;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{InspectContainer, UpdateContainer};

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/update", web::post().to(update));
}

async fn update(
    state: web::Data<ApiState>,
    path: web::Path<IdPath>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req = update::parse(&body)?;
    let (_, addr) = resolve(&state, &path.id).await?;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    let up = update::to_update(&req, &rec.spec)?;
    addr.send(UpdateContainer(up))
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Ok().json(UpdateResponse::default()))
}
