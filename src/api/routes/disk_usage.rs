//! `GET /images/{name}/history` (`docker history`) and `GET /system/df` (`docker system
//! df`): figures computed from what is on disk (layer sizes, the containers' upper dirs, the
//! volumes' data), on the blocking pool. See [`crate::image::history`] and
//! [`crate::image::usage`].

use actix_web::{web, HttpResponse};
use chrono::Utc;
use moor_state::image::ImageRecord;
use moor_state::volume::VolumeRecord;
use moor_state::ContainerRecord;
use serde_json::{json, Value};

use crate::api::convert;
use crate::api::error::ApiError;
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{FindImage, ListContainers, ListImages, ListVolumes};
use crate::daemon::supervisor::volumes::volume_dir;
use crate::host::layout::Layout;
use crate::image::archive::stored_config;
use crate::image::layers::dirs_layers;
use crate::image::{history, usage, ImageDirs};

type Data = web::Data<ApiState>;
/// Every query parameter in order.
type AllQuery = web::Query<Vec<(String, String)>>;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/system/df", web::get().to(df))
        .route("/images/{name:.+}/history", web::get().to(image_history));
}

/// `Name` path segment.
#[derive(serde::Deserialize)]
struct NamePath {
    /// Image name or id.
    name: String,
}

fn cancelled() -> ApiError {
    ApiError::Unsupported {
        option: "a disk usage request interrupted by shutdown",
    }
}

async fn image_history(
    state: Data,
    path: web::Path<NamePath>,
    all: AllQuery,
) -> Result<HttpResponse, ApiError> {
    if let Some((k, _)) = all.iter().find(|(k, v)| k != "platform" || !v.is_empty()) {
        return Err(crate::image::archive::ArchiveError::Parameter(k.clone()).into());
    }
    let found = state.supervisor.send(FindImage(path.name.clone())).await;
    let rec = found
        .map_err(ContainerError::from)?
        .map_err(ContainerError::from)?
        .ok_or_else(|| ApiError::NoSuchImage(path.name.clone()))?;
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let items = web::block(move || {
        let config = stored_config(&dirs, &rec.id);
        let layers = dirs_layers(&dirs.dir.join(&rec.id));
        history::history(&rec, config.as_deref(), &layers, |l| dirs.layer_size(l))
    })
    .await
    .map_err(|_| cancelled())?;
    Ok(HttpResponse::Ok().json(items))
}

/// `GET /system/df[?type=...]`: every kind, or those `type` names (moor has no build
/// cache: `BuildCache` is empty).
async fn df(state: Data, all: AllQuery) -> Result<HttpResponse, ApiError> {
    let known = ["container", "image", "volume", "build-cache"];
    if let Some((k, v)) = all
        .iter()
        .find(|(k, v)| k != "type" || !known.contains(&v.as_str()))
    {
        let what = if k == "type" {
            format!("type={v}")
        } else {
            k.clone()
        };
        return Err(crate::image::archive::ArchiveError::Parameter(what).into());
    }
    let types: Vec<String> = all.iter().map(|(_, v)| v.clone()).collect();
    let images = state.supervisor.send(ListImages).await;
    let images = images
        .map_err(ContainerError::from)?
        .map_err(ContainerError::from)?;
    let containers = state.supervisor.send(ListContainers).await;
    let containers = containers.map_err(ContainerError::from)??;
    let volumes = state.supervisor.send(ListVolumes).await;
    let volumes = volumes.map_err(ContainerError::from)??;
    let layout = state.shared.layout.clone();
    let body = web::block(move || {
        let mut body = usage_of(&layout, &images, &containers, &volumes);
        let kinds = [
            ("image", "Images"),
            ("container", "Containers"),
            ("volume", "Volumes"),
            ("build-cache", "BuildCache"),
        ];
        for (kind, key) in kinds {
            if !types.is_empty() && !types.iter().any(|t| t == kind) {
                body[key] = Value::Null;
            }
        }
        body
    })
    .await
    .map_err(|_| cancelled())?;
    Ok(HttpResponse::Ok().json(body))
}

/// Docker's `/system/df` answer, from the disk.
fn usage_of(
    layout: &Layout,
    images: &[ImageRecord],
    containers: &[ContainerRecord],
    volumes: &[VolumeRecord],
) -> Value {
    let dirs = ImageDirs::new(&layout.root);
    let (layers_size, usage) = usage::images(&dirs, images);
    let image_list: Vec<_> = images
        .iter()
        .zip(&usage)
        .map(|(i, u)| {
            let users = containers
                .iter()
                .filter(|c| c.spec.image_id == i.id)
                .count();
            json!({
                "Id": format!("sha256:{}", i.id), "ParentId": "",
                "RepoTags": i.repo_tags, "RepoDigests": i.repo_digests,
                "Created": i.created_at.timestamp(), "Size": u.size,
                "SharedSize": u.shared, "VirtualSize": u.size,
                "Labels": i.config.labels, "Containers": users,
            })
        })
        .collect();
    let now = Utc::now();
    let image_size = |id: &str| usage.iter().find(|u| u.id == id).map_or(0, |u| u.size);
    let container_list: Vec<_> = containers
        .iter()
        .map(|c| {
            let mut s = convert::summary(c, now);
            let rw = usage::dir_size(&layout.container_dir(&c.id).join("overlay/upper"));
            let rw = i64::try_from(rw).unwrap_or(i64::MAX);
            let base = i64::try_from(image_size(&c.spec.image_id)).unwrap_or(i64::MAX);
            (s.size_rw, s.size_root_fs) = (Some(rw), Some(rw.saturating_add(base)));
            s
        })
        .collect();
    let volume_list: Vec<_> = volumes
        .iter()
        .map(|v| {
            let dir = volume_dir(&layout.root, &v.name);
            let uses = |c: &&ContainerRecord| c.spec.mounts.iter().any(|m| m.name == v.name);
            let refs = containers.iter().filter(uses).count();
            json!({
                "Name": v.name, "Driver": "local",
                "Mountpoint": dir.join("_data").display().to_string(),
                "CreatedAt": v.created_at.to_rfc3339(), "Labels": v.labels,
                "Scope": "local", "Options": {},
                "UsageData": {"Size": usage::dir_size(&dir.join("_data")), "RefCount": refs},
            })
        })
        .collect();
    json!({
        "LayersSize": layers_size, "Images": image_list, "Containers": container_list,
        "Volumes": volume_list, "BuildCache": [],
    })
}
