//! `POST /images/{name}/push?tag=TAG` (`docker push`): packs the image's layers again and
//! pushes them, its config and an OCI manifest to the registry the name gives (see
//! [`crate::image::push`]), with the credentials of `X-Registry-Auth`; the answer is Docker's
//! JSON progress stream (`The push refers to repository [...]`, per layer `Preparing`,
//! `Pushing`, `Pushed` or `Layer already exists`, then `TAG: digest: sha256:... size: N`).

use actix_web::{web, HttpRequest, HttpResponse};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::{resolve, Data, NamePath};
use crate::api::error::ApiError;
use crate::api::routes::Query;
use crate::config::registry::InsecureRegistries;
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
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let mut trees = dirs.lowers(&img.id);
    trees.reverse();
    let source = PushSource {
        trees,
        config: img.config,
        created: img.created_at,
    };
    let (tx, rx) = unbounded_channel();
    let task = actix_web::rt::spawn(run(dirs, target, source, opts, tx, tag));
    super::pull::respond(rx, task, "push").await
}

async fn run(
    dirs: ImageDirs,
    target: String,
    source: PushSource,
    opts: PushOptions,
    tx: UnboundedSender<Progress>,
    tag: String,
) -> Result<Vec<String>, ApiError> {
    let (digest, size) = push::push(&dirs, &target, &source, &opts, &tx).await?;
    tracing::info!(reference = %target, digest = %digest, "image pushed");
    Ok(vec![format!("{tag}: digest: {digest} size: {size}")])
}
