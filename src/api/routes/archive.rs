//! A container's files: `HEAD|GET|PUT /containers/{id}/archive` (`docker cp` both ways,
//! with Docker's `X-Docker-Container-Path-Stat` header), `GET /containers/{id}/export` and
//! `GET /containers/{id}/changes` (`docker diff`).
//!
//! The container's actor hands out its root for the operation (a lease; a stopped
//! container's is mounted until the lease is dropped); the files are read and written on
//! the blocking pool, a tar streamed out as it is written. An upload is kept whole in a
//! file under the images' `tmp/` (swept at start) and checked from end to end before any
//! byte of it is written into the container.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use actix::Addr;
use actix_web::{web, HttpResponse};
use base64::Engine;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::api::error::ApiError;
use crate::api::routes::{flag, resolve, IdPath, Query};
use crate::api::server::ApiState;
use crate::archive::extract::{self, ExtractOptions};
use crate::archive::pack::{self, ChannelWriter};
use crate::archive::scope::{self, Resolved};
use crate::archive::{ArchiveError, PathStat, RootView};
use crate::daemon::container::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{ContainerChanges, OpenRoot, RootLease};

/// How long a tar being sent waits for a client that reads nothing before it gives up (a
/// stopped container's actor waits for the copy to end).
const CLIENT_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// Docker's header carrying a path's stat.
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/archive", web::head().to(head))
        .route("/containers/{id}/archive", web::get().to(get))
        .route("/containers/{id}/archive", web::put().to(put))
        .route("/containers/{id}/export", web::get().to(export))
        .route("/containers/{id}/changes", web::get().to(changes));
}

type Data = web::Data<ApiState>;
type Id = web::Path<IdPath>;

/// Refuses a query parameter the endpoint does not implement (never accepted and ignored).
fn only(q: &Query, known: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(name) => Err(ArchiveError::UnknownParameter { name: name.clone() }.into()),
        None => Ok(()),
    }
}

/// The `path` parameter (required).
fn path_param(q: &Query) -> Result<String, ApiError> {
    match q.get("path").filter(|p| !p.is_empty()) {
        Some(p) => Ok(p.clone()),
        None => Err(ApiError::Query {
            name: "path",
            value: String::new(),
        }),
    }
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    step: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(|e| ArchiveError::Root {
            reason: format!("the copy's task failed: {e}"),
        })?
}

/// The container's root for one operation.
async fn lease(addr: &Addr<ContainerActor>, view: RootView) -> Result<RootLease, ApiError> {
    Ok(addr
        .send(OpenRoot(view))
        .await
        .map_err(ContainerError::from)??)
}

/// A missing path (or one through a file) is Docker's 404; other failures keep their cause.
fn stat_error(asked: &str, container: &str, host: &Path) -> impl FnOnce(io::Error) -> ApiError {
    let (asked, container, host) = (asked.to_string(), container.to_string(), host.to_owned());
    move |e| {
        let missing =
            e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR);
        match missing {
            true => ArchiveError::NotFound {
                path: asked,
                container,
            },
            false => ArchiveError::io("stat", host)(e),
        }
        .into()
    }
}

/// Resolves and stats the path asked for in the leased root.
async fn stat_in(
    lease: RootLease,
    asked: String,
    container: String,
) -> Result<(RootLease, Resolved, PathStat), ApiError> {
    blocking(move || {
        let root = lease.path.clone();
        let r =
            scope::resolve_path(&root, &asked).map_err(stat_error(&asked, &container, &root))?;
        let st = pack::stat(&root, &r).map_err(stat_error(&asked, &container, &r.host))?;
        Ok((lease, r, st))
    })
    .await
}

/// The stat as Docker's header value: base64 of its JSON.
fn stat_header(st: &PathStat) -> String {
    let json = serde_json::to_vec(st).expect("a path stat serializes");
    base64::engine::general_purpose::STANDARD.encode(json)
}

async fn head(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    only(&q, &["path"])?;
    let asked = path_param(&q)?;
    let (_, addr) = resolve(&state, &path.id).await?;
    let root = lease(&addr, RootView::Process).await?;
    let (root, _, st) = stat_in(root, asked, path.id.clone()).await?;
    drop(root);
    Ok(HttpResponse::Ok()
        .insert_header((STAT_HEADER, stat_header(&st)))
        .finish())
}

async fn get(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    only(&q, &["path"])?;
    let asked = path_param(&q)?;
    let (_, addr) = resolve(&state, &path.id).await?;
    let root = lease(&addr, RootView::Process).await?;
    let (root, r, st) = stat_in(root, asked, path.id.clone()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((STAT_HEADER, stat_header(&st)))
        .content_type("application/x-tar")
        .streaming(tar_stream(root, r)))
}

async fn export(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    only(&q, &[])?;
    let (_, addr) = resolve(&state, &path.id).await?;
    let root = lease(&addr, RootView::Own).await?;
    let whole = Resolved {
        host: root.path.clone(),
        abs: "/".into(),
        name: String::new(),
    };
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .streaming(tar_stream(root, whole)))
}

/// The tar of `r`, written on the blocking pool while it streams; the lease is dropped (a
/// stopped container's root unmounted) once the tar is written or the client went away.
fn tar_stream(
    root: RootLease,
    r: Resolved,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter::new(tx, CLIENT_STALL);
        let written = pack::write_tar(&r, &mut out).and_then(|()| out.flush());
        drop(root);
        if let Err(e) = written {
            tracing::warn!(path = %r.abs, error = %e, "the archive of a container path broke off");
            out.fail(e);
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|chunk| {
        chunk
            .map(web::Bytes::from)
            .map_err(actix_web::error::ErrorInternalServerError)
    })
}

/// An upload's file, removed on every way out.
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Keeps the request body whole in a file of its own.
async fn receive(state: &Data, mut body: web::Payload) -> Result<Upload, ApiError> {
    let dir = crate::image::ImageDirs::new(&state.shared.layout.root).tmp();
    let upload = Upload(dir.join(format!("cp-upload-{:016x}", rand::random::<u64>())));
    let io = |what| ArchiveError::io(what, upload.0.clone());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ArchiveError::io("create", dir.clone()))?;
    let mut file = tokio::fs::File::create(&upload.0)
        .await
        .map_err(io("create"))?;
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| ApiError::Query {
            name: "body",
            value: format!("upload broken after {bytes} bytes"),
        })?;
        bytes += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io("write"))?;
    }
    file.flush().await.map_err(io("write"))?;
    Ok(upload)
}

async fn put(
    state: Data,
    path: Id,
    q: Query,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    only(&q, &["path", "noOverwriteDirNonDir", "copyUIDGID"])?;
    let asked = path_param(&q)?;
    let no_overwrite = flag(&q, "noOverwriteDirNonDir", false)?;
    let copy_owner = flag(&q, "copyUIDGID", false)?;
    let (_, addr) = resolve(&state, &path.id).await?;
    let upload = receive(&state, body).await?;
    // Checked whole first: a corrupt archive writes nothing into the container.
    let (upload, _) = blocking(move || {
        let entries = extract::check(&upload.0)?;
        Ok((upload, entries))
    })
    .await?;
    let root = lease(&addr, RootView::Process).await?;
    let container = path.id.clone();
    blocking(move || {
        let base = root.path.clone();
        let r =
            scope::resolve_path(&base, &asked).map_err(stat_error(&asked, &container, &base))?;
        let meta =
            std::fs::symlink_metadata(&r.host).map_err(stat_error(&asked, &container, &r.host))?;
        if !meta.is_dir() {
            return Err(ArchiveError::NotADirectory { path: asked }.into());
        }
        let dest = scope::resolve(&base, Path::new(&r.abs))
            .map_err(stat_error(&asked, &container, &r.host))?;
        let owner = match copy_owner && !root.user.is_empty() {
            true => {
                let user = crate::image::user::resolve(&base, &root.user)?;
                Some((user.uid, user.gid))
            }
            false => None,
        };
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir: no_overwrite,
            owner,
        };
        extract::extract(&base, &dest, &upload.0, &opts)?;
        drop(root);
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().finish())
}

async fn changes(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    only(&q, &[])?;
    let (_, addr) = resolve(&state, &path.id).await?;
    let list = addr
        .send(ContainerChanges)
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Ok().json(list))
}
