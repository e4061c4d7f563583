//! `/volumes/...`: create, list, inspect, remove and prune volumes of the `local` driver.
//! Every step goes through the Supervisor, which owns volumes and containers alike.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use moor_state::volume::VolumeRecord;

use crate::api::convert::go_time;
use crate::api::error::ApiError;
use crate::api::routes::{flag, parse_filters, Query};
use crate::api::server::ApiState;
use crate::api::volume_types::{Volume, VolumeCreateRequest, VolumeList, VolumePruneReport};
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{
    CreateVolume, InspectVolume, ListVolumes, PruneVolumes, RemoveVolume,
};
use crate::daemon::supervisor::volume_dir;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/volumes/create", web::post().to(create))
        .route("/volumes/prune", web::post().to(prune))
        .route("/volumes", web::get().to(list))
        .route("/volumes/{name}", web::get().to(inspect))
        .route("/volumes/{name}", web::delete().to(remove));
}

type Data = web::Data<ApiState>;

/// The `{name}` segment.
#[derive(serde::Deserialize)]
struct NamePath {
    /// The volume's name.
    name: String,
}

/// A record as Docker shows a volume.
fn volume(state: &ApiState, rec: VolumeRecord) -> Volume {
    let dir = volume_dir(&state.shared.layout.root, &rec.name).join("_data");
    Volume {
        driver: "local".into(),
        mountpoint: dir.display().to_string(),
        created_at: go_time(Some(rec.created_at)),
        labels: rec.labels,
        scope: "local".into(),
        options: BTreeMap::new(),
        name: rec.name,
    }
}

async fn create(state: Data, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req: VolumeCreateRequest = if body.is_empty() {
        VolumeCreateRequest::default()
    } else {
        serde_json::from_slice(&body)?
    };
    if !matches!(req.driver.as_str(), "" | "local") {
        return Err(ContainerError::BadRequest(format!(
            "Driver={} is not supported by moor (it supports local)",
            req.driver
        ))
        .into());
    }
    if let Some(key) = req.driver_opts.keys().next() {
        return Err(ContainerError::BadRequest(format!(
            "DriverOpts.{key} is not supported by moor yet"
        ))
        .into());
    }
    let name = (!req.name.is_empty()).then_some(req.name);
    let rec = state
        .supervisor
        .send(CreateVolume {
            name,
            labels: req.labels,
        })
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Created().json(volume(&state, rec)))
}

/// The volumes the `dangling`, `name` and `label` filters keep (dangling: used by none).
async fn list(state: Data, q: Query) -> Result<HttpResponse, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    for key in filters.keys() {
        if !matches!(key.as_str(), "name" | "label") {
            return Err(ApiError::Query {
                name: "filters",
                value: key.clone(),
            });
        }
    }
    let records = state
        .supervisor
        .send(ListVolumes)
        .await
        .map_err(ContainerError::from)??;
    let keep = |v: &VolumeRecord| {
        filters.iter().all(|(key, vals)| {
            vals.iter().any(|want| match key.as_str() {
                "name" => v.name.contains(want.as_str()),
                _ => match want.split_once('=') {
                    Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
                    None => v.labels.contains_key(want.as_str()),
                },
            })
        })
    };
    let volumes = records
        .into_iter()
        .filter(|v| keep(v))
        .map(|v| volume(&state, v))
        .collect();
    Ok(HttpResponse::Ok().json(VolumeList {
        volumes,
        warnings: Vec::new(),
    }))
}

async fn inspect(state: Data, path: web::Path<NamePath>) -> Result<HttpResponse, ApiError> {
    let rec = state
        .supervisor
        .send(InspectVolume(path.into_inner().name))
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Ok().json(volume(&state, rec)))
}

async fn remove(
    state: Data,
    path: web::Path<NamePath>,
    q: Query,
) -> Result<HttpResponse, ApiError> {
    let force = flag(&q, "force", false)?;
    state
        .supervisor
        .send(RemoveVolume {
            name: path.into_inner().name,
            force,
        })
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::NoContent().finish())
}

/// Docker (API 1.42+) prunes anonymous volumes only, named ones too with `all=true`.
async fn prune(state: Data, q: Query) -> Result<HttpResponse, ApiError> {
    let filters = parse_filters(q.get("filters"))?;
    let mut all = false;
    for (key, vals) in &filters {
        match (key.as_str(), vals.as_slice()) {
            ("all", [v]) if matches!(v.as_str(), "true" | "1") => all = true,
            ("all", [v]) if matches!(v.as_str(), "false" | "0") => {}
            _ => {
                return Err(ApiError::Query {
                    name: "filters",
                    value: key.clone(),
                })
            }
        }
    }
    let (volumes_deleted, space_reclaimed) = state
        .supervisor
        .send(PruneVolumes { all })
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Ok().json(VolumePruneReport {
        volumes_deleted,
        space_reclaimed,
    }))
}
