//! `/images/...`: import (`POST /images/create?fromSrc=-`), pull (`?fromImage=`, in
//! [`pull`]), list, inspect, remove; Docker's
//! shapes, so `docker import` / `docker images` work against moor too.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use moor_state::image::{
    normalize_name, parse_reference, ImageConfig as StoredConfig, ImageRecord, ReferenceError,
    IMAGE_RECORD_VERSION,
};
use serde::Deserialize;

use crate::api::convert::go_time;
use crate::api::error::ApiError;
use crate::api::image_types::{DeleteItem, ImageConfig, ImageInspect, ImageSummary, ImportStatus};
use crate::api::routes::ask;
use crate::api::routes::Query;
use crate::api::server::ApiState;
use crate::daemon::events::DockerEvent;
use crate::daemon::image::ImageRemoved;
use crate::daemon::messages::{
    CommitImage, FindImage, ImageFiles, ListImages, RemoveImage, TagImage,
};
use crate::image::stream::Pieces;
use crate::image::{changes, image_id, ImageDirs, Unpacked};

pub mod prune;
pub mod pull;
pub mod push;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/images/create", web::post().to(create))
        .route("/images/prune", web::post().to(prune::prune))
        .route("/images/json", web::get().to(list))
        .route("/images/{name:.+}/json", web::get().to(inspect))
        .route("/images/{name:.+}/tag", web::post().to(tag))
        .route("/images/{name:.+}/push", web::post().to(push::push))
        .route("/images/{name:.+}", web::delete().to(remove));
}

type Data = web::Data<ApiState>;

impl From<StoredConfig> for ImageConfig {
    fn from(c: StoredConfig) -> Self {
        ImageConfig {
            user: c.user,
            env: (!c.env.is_empty()).then_some(c.env),
            cmd: c.cmd,
            working_dir: c.working_dir,
            entrypoint: c.entrypoint,
            labels: (!c.labels.is_empty()).then_some(c.labels),
            stop_signal: c.stop_signal,
            healthcheck: c.healthcheck,
        }
    }
}

async fn resolve(state: &Data, name: &str) -> Result<ImageRecord, ApiError> {
    ask(state, FindImage(name.to_string()))
        .await?
        .ok_or_else(|| ApiError::NoSuchImage(name.to_string()))
}

/// The name an import gets from `repo` and `tag` (the CLI may put the tag in `repo`).
/// `repo` and `tag` of a query as one checked, normalized name; None without `repo`.
fn reference(q: &Query) -> Result<Option<String>, ReferenceError> {
    let Some(repo) = q.get("repo").filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let name = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{repo}:{tag}"),
        None => repo.clone(),
    };
    parse_reference(&name).map(Some)
}

/// Every query parameter in order, repeats kept (`changes` comes once per line).
type AllQuery = web::Query<Vec<(String, String)>>;

/// Unpacks an import's upload as it arrives, on the blocking pool (`image::stream`); the
/// work directory is removed on every way out, a broken upload or a dropped request
/// included. Returns it with the upload's sha256 and size.
async fn unpack_upload(
    body: &mut web::Payload,
    dirs: ImageDirs,
    limit: u64,
) -> Result<(Unpacked, String, u64), ApiError> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let unpacking = web::block(move || dirs.unpack_stream(Pieces::new(rx), limit));
    let mut bytes = 0u64;
    let mut broken = None;
    while let Some(chunk) = body.next().await {
        let Ok(piece) = chunk else {
            broken = Some(ApiError::Query {
                name: "body",
                value: format!("upload broken after {bytes} bytes"),
            });
            let gone = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "upload broken");
            let _ = tx.send(Err(gone)).await;
            break;
        };
        bytes += piece.len() as u64;
        // The unpack refused the archive and stopped reading: its error is the answer.
        if tx.send(Ok(piece)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let unpacked = unpacking.await.map_err(|_| ApiError::Unsupported {
        option: "an import interrupted by shutdown",
    })?;
    match broken {
        Some(broken) => Err(broken),
        None => unpacked
            .map(|(unpacked, sha)| (unpacked, sha, bytes))
            .map_err(Into::into),
    }
}

async fn create(
    state: Data,
    q: Query,
    all: AllQuery,
    req: HttpRequest,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if q.get("fromImage").is_some_and(|f| !f.is_empty()) {
        return pull::pull(state, &q, &req).await;
    }
    if q.get("fromSrc").map(String::as_str) != Some("-") {
        return Err(ApiError::Query {
            name: "fromSrc",
            value: q.get("fromSrc").cloned().unwrap_or_default(),
        });
    }
    let lines: Vec<String> = all
        .into_inner()
        .into_iter()
        .filter(|(k, _)| k == "changes")
        .map(|(_, v)| v)
        .collect();
    // Checked before the upload: a refused name or change costs no unpack.
    let name = reference(&q)?;
    let config = changes::apply(&StoredConfig::default(), &lines)?;
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let limit = state.shared.config.get().image_unpack_limit();
    let (unpacked, sha, bytes) = unpack_upload(&mut body, dirs, limit).await?;
    let id = image_id(&sha, &config);
    let fresh = ImageRecord {
        version: IMAGE_RECORD_VERSION,
        id: id.clone(),
        repo_tags: Vec::new(),
        created_at: Utc::now(),
        size: unpacked.size,
        config,
        layers: Vec::new(),
        repo_digests: Vec::new(),
        manifest_type: None,
    };
    let commit = CommitImage {
        record: fresh,
        name: name.clone(),
        files: ImageFiles::Unpacked(unpacked),
    };
    let committed = ask(&state, commit).await?;
    let leftover = committed.leftover;
    // Removed before the answer (a whole tree when the image was there already).
    web::block(move || drop(leftover)).await.ok();
    let rec = committed.record;
    let labels = &rec.config.labels;
    let events = &state.shared.events;
    if let Some(name) = name {
        events.publish(DockerEvent::image(
            "tag",
            &id,
            &normalize_name(&name),
            labels,
        ));
    }
    events.publish(DockerEvent::image(
        "import",
        &id,
        &format!("sha256:{id}"),
        labels,
    ));
    tracing::info!(image = %rec.id, names = ?rec.repo_tags, bytes, "image imported");
    let line = serde_json::to_string(&ImportStatus {
        status: format!("sha256:{id}"),
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(line + "\n"))
}

async fn list(state: Data) -> Result<HttpResponse, ApiError> {
    let out: Vec<ImageSummary> = ask(&state, ListImages)
        .await?
        .into_iter()
        .map(|i| ImageSummary {
            id: format!("sha256:{}", i.id),
            repo_tags: i.repo_tags,
            repo_digests: i.repo_digests,
            created: i.created_at.timestamp(),
            size: i.size,
            shared_size: -1,
            containers: -1,
            ..ImageSummary::default()
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `Name` path segment.
#[derive(Deserialize)]
struct NamePath {
    /// Image name or id.
    name: String,
}

async fn inspect(state: Data, path: web::Path<NamePath>) -> Result<HttpResponse, ApiError> {
    let img = resolve(&state, &path.name).await?;
    let dirs = ImageDirs::new(&state.shared.layout.root);
    Ok(HttpResponse::Ok().json(ImageInspect {
        id: format!("sha256:{}", img.id),
        repo_tags: img.repo_tags,
        repo_digests: img.repo_digests,
        created: go_time(Some(img.created_at)),
        size: img.size,
        os: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        config: img.config.into(),
        moor_rootfs: dirs
            .lowers(&img.id)
            .iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
    }))
}

/// `POST /images/{name}/tag?repo=&tag=` (`docker tag`): one more name for an image; the
/// image that had it loses it, as in Docker.
async fn tag(state: Data, path: web::Path<NamePath>, q: Query) -> Result<HttpResponse, ApiError> {
    let Some(name) = reference(&q)? else {
        return Err(ApiError::Query {
            name: "repo",
            value: String::new(),
        });
    };
    let tag = TagImage {
        image: path.name.clone(),
        name: name.clone(),
    };
    let img = ask(&state, tag).await?;
    let event = DockerEvent::image("tag", &img.id, &name, &img.config.labels);
    state.shared.events.publish(event);
    Ok(HttpResponse::Created().finish())
}

async fn remove(state: Data, path: web::Path<NamePath>) -> Result<HttpResponse, ApiError> {
    let events = &state.shared.events;
    let img = match ask(&state, RemoveImage(path.name.clone())).await? {
        ImageRemoved::Untagged { name, record } => {
            let untag = DockerEvent::image("untag", &record.id, &name, &record.config.labels);
            events.publish(untag);
            let out = vec![DeleteItem {
                untagged: Some(name),
                deleted: None,
            }];
            return Ok(HttpResponse::Ok().json(out));
        }
        ImageRemoved::Deleted {
            record,
            files,
            layers,
        } => {
            let gone: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
            // The trees are removed before the answer, off the actors' thread.
            web::block(move || drop((files, layers))).await.ok();
            (record, gone)
        }
    };
    let (img, gone) = img;
    let labels = &img.config.labels;
    for tag in &img.repo_tags {
        events.publish(DockerEvent::image("untag", &img.id, tag, labels));
    }
    let sha = format!("sha256:{}", img.id);
    events.publish(DockerEvent::image("delete", &img.id, &sha, labels));
    let mut out: Vec<DeleteItem> = img
        .repo_tags
        .into_iter()
        .map(|t| DeleteItem {
            untagged: Some(t),
            deleted: None,
        })
        .collect();
    out.push(DeleteItem {
        untagged: None,
        deleted: Some(sha),
    });
    // Layers no other image lists went too (Docker lists its removed layers likewise).
    out.extend(gone.into_iter().map(|diff_id| DeleteItem {
        untagged: None,
        deleted: Some(diff_id),
    }));
    Ok(HttpResponse::Ok().json(out))
}
