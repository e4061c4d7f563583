//! `GET /moor/admin/inspect`: `moor admin inspect`'s reports when a daemon holds the store
//! (sled admits one process), computed by the same code as the direct path.

use actix_web::{web, HttpResponse};

use crate::admin::inspect;
use crate::api::server::ApiState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/moor/admin/inspect", web::get().to(reports));
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
