//! `POST /images/{name}/push?tag=TAG` (`docker push`): packs the image's layers again and
//! pushes them, its config and a manifest to the registry the name gives (see
//! [`crate::image::push`]), with the credentials of `X-Registry-Auth`; the answer is Docker's
//! JSON progress stream (`The push refers to repository [...]`, per layer `Preparing`,
//! `Pushing`, `Pushed` or `Layer already exists`, then `TAG: digest: sha256:... size: N`).
//! Without `tag` (`docker push --all-tags REPO`) every tag of the repository is pushed, in
//! name order, each ending with its digest line, as Docker does. The pushed manifest's
//! digest becomes a RepoDigest of the image (`REPO@sha256:...`), as in Docker.

use actix_web::{web, HttpRequest, HttpResponse};
use moor_state::image::{normalize_name, ImageRecord};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::{ask, resolve, Data, NamePath};
use crate::api::error::ApiError;
use crate::api::routes::Query;
use crate::config::registry::InsecureRegistries;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{AddRepoDigest, ListImages};
use crate::image::push::{self, MediaTypes, PushError, PushOptions, PushSource};
use crate::image::registry::Progress;
use crate::image::ImageDirs;

/// The handler.
pub(super) async fn push(
    state: Data,
    path: web::Path<NamePath>,
    q: Query,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tags = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => vec![format!("{}:{tag}", path.name)],
        None => all_tags(&state, &path.name).await?,
    };
    let mut images = Vec::new();
    for target in tags {
        let img = resolve(&state, &target).await?;
        images.push((target, img));
    }
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
    let (tx, rx) = unbounded_channel();
    let repo = path.name.clone();
    let task = actix_web::rt::spawn(run(state.clone(), repo, images, opts, tx));
    super::pull::respond(rx, task, "push").await
}

/// Every `REPO:TAG` name of the repository `repo`, in name order; a 404 when there is none.
async fn all_tags(state: &Data, repo: &str) -> Result<Vec<String>, ApiError> {
    let named = normalize_name(repo);
    let repo = named.rsplit_once(':').map_or(named.as_str(), |(r, _)| r);
    let mut tags: Vec<String> = ask(state, ListImages)
        .await?
        .into_iter()
        .flat_map(|r| r.repo_tags)
        .filter(|t| t.rsplit_once(':').is_some_and(|(r, _)| r == repo))
        .collect();
    tags.sort();
    match tags.is_empty() {
        true => Err(PushError::NoTags {
            repo: repo.to_string(),
        }
        .into()),
        false => Ok(tags),
    }
}

/// What to push of `img`: its trees bottom first, its config, its media type family.
fn source_of(state: &Data, img: &ImageRecord) -> PushSource {
    let mut trees = ImageDirs::new(&state.shared.layout.root).lowers(&img.id);
    trees.reverse();
    PushSource {
        trees,
        config: img.config.clone(),
        created: img.created_at,
        types: MediaTypes::of_source(img.manifest_type.as_deref()),
    }
}

/// Each push in turn, each digest recorded as a RepoDigest of its image for the repository.
async fn run(
    state: Data,
    repo: String,
    images: Vec<(String, ImageRecord)>,
    opts: PushOptions,
    tx: UnboundedSender<Progress>,
) -> Result<Vec<String>, ApiError> {
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let _ = tx.send(Progress {
        id: None,
        status: format!("The push refers to repository [{repo}]"),
        detail: None,
    });
    let mut lines = Vec::new();
    let count = images.len();
    for (n, (target, img)) in images.into_iter().enumerate() {
        let source = source_of(&state, &img);
        let (digest, size) = push::push(&dirs, &target, &source, &opts, &tx).await?;
        tracing::info!(reference = %target, digest = %digest, "image pushed");
        let named = normalize_name(&target);
        let (repo, tag) = named.rsplit_once(':').unwrap_or((named.as_str(), "latest"));
        let record = AddRepoDigest {
            id: img.id,
            digest: format!("{repo}@{digest}"),
        };
        state
            .supervisor
            .send(record)
            .await
            .map_err(ContainerError::from)?
            .map_err(ContainerError::from)?;
        let line = format!("{tag}: digest: {digest} size: {size}");
        // The last one ends the answer; the others go out as they are done.
        match n + 1 == count {
            true => lines.push(line),
            false => {
                let _ = tx.send(Progress {
                    id: None,
                    status: line,
                    detail: None,
                });
            }
        }
    }
    Ok(lines)
}
