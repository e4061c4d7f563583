//! `POST /images/{name}/push?tag=TAG` (`docker push`): packs the image's layers again and
//! pushes them, its config and an OCI manifest to the registry the name gives (see
//! [`crate::image::push`]), with the credentials of `X-Registry-Auth`; the answer is Docker's
//! JSON progress stream (`The push refers to repository [...]`, per layer `Preparing`,
//! `Pushing`, `Pushed` or `Layer already exists`, then `TAG: digest: sha256:... size: N`).
//! The pushed manifest's digest becomes a RepoDigest of the image (`REPO@sha256:...`), as in
//! Docker.

use actix_web::{web, HttpRequest, HttpResponse};
use moor_state::image::normalize_name;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::{resolve, Data, NamePath};
use crate::api::error::ApiError;
use crate::api::routes::Query;
use crate::config::registry::InsecureRegistries;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::AddRepoDigest;
use crate::image::push::{self, PushOptions, PushSource};
use crate::image::registry::Progress;
use crate::image::ImageDirs;

/// The handler.
pub(super) async fn push(
    state: Data,
    path: web::Path<NamePath>,
    q: Query,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(tag) = q.get("tag").filter(|t| !t.is_empty()).cloned() else {
        return Err(ApiError::Unsupported {
            option: "a push of all tags (no tag)",
        });
    };
    let target = format!("{}:{tag}", path.name);
    let img = resolve(&state, &target).await?;
    let config = state.shared.config.get();
    let insecure = InsecureRegistries::parse(&config.insecure_registries).map_err(|_| {
        ApiError::Unsupported {
            option: "a malformed insecure-registries",
        }
    })?;
    let opts = PushOptions {
        insecure,
        auth: crate::api::registry_auth::header(&req)?,
    };
    let mut trees = ImageDirs::new(&state.shared.layout.root).lowers(&img.id);
    trees.reverse();
    let source = PushSource {
        trees,
        config: img.config,
        created: img.created_at,
    };
    let (tx, rx) = unbounded_channel();
    let task = actix_web::rt::spawn(run(state.clone(), img.id, target, source, opts, tx));
    super::pull::respond(rx, task, "push").await
}

/// The push, then its digest recorded as the image's RepoDigest for the repository.
async fn run(
    state: Data,
    id: String,
    target: String,
    source: PushSource,
    opts: PushOptions,
    tx: UnboundedSender<Progress>,
) -> Result<Vec<String>, ApiError> {
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let (digest, size) = push::push(&dirs, &target, &source, &opts, &tx).await?;
    tracing::info!(reference = %target, digest = %digest, "image pushed");
    let named = normalize_name(&target);
    let (repo, tag) = named.rsplit_once(':').unwrap_or((named.as_str(), "latest"));
    let record = AddRepoDigest {
        id,
        digest: format!("{repo}@{digest}"),
    };
    state
        .supervisor
        .send(record)
        .await
        .map_err(ContainerError::from)?
        .map_err(ContainerError::from)?;
    Ok(vec![format!("{tag}: digest: {digest} size: {size}")])
}
