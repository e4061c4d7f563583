//! Images in and out as files: `POST /commit` (`docker commit`), `GET /images/{name}/get`
//! and `GET /images/get?names=` (`docker save`), `POST /images/load` (`docker load`). The
//! slow parts (packing, unpacking, hashing) run on the blocking pool; the records go through
//! the images' owner (the Supervisor), as imports and pulls do. See [`crate::image::archive`],
//! [`crate::image::commit`] and [`crate::image::load`].

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use chrono::Utc;
use futures_util::StreamExt;
use moor_state::image::{parse_reference, ImageConfig, ImageRecord, IMAGE_RECORD_VERSION};
use moor_state::State;
use serde_json::json;

use super::{flag, resolve, Query};
use crate::api::error::ApiError;
use crate::api::routes::ask;
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::events::DockerEvent;
use crate::daemon::messages::{
    CommitImage, FindImage, ImageFiles, InspectContainer, PauseContainer, TagImage,
    UnpauseContainer,
};
use crate::image::archive::{self, ArchiveError};
use crate::image::commit::{self, CommitInput};
use crate::image::{changes, load, HashingFile, ImageDirs, TmpDir};

type Data = web::Data<ApiState>;
/// Every query parameter in order, repeats kept.
type AllQuery = web::Query<Vec<(String, String)>>;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/commit", web::post().to(commit))
        .route("/images/get", web::get().to(save_many))
        .route("/images/load", web::post().to(load))
        .route("/images/{name:.+}/get", web::get().to(save_one));
}

/// Refuses a query parameter not in `known`.
fn only(all: &AllQuery, known: &[&str]) -> Result<(), ApiError> {
    match all.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(ArchiveError::Parameter(k.clone()).into()),
        None => Ok(()),
    }
}

fn cancelled() -> ApiError {
    ApiError::Unsupported {
        option: "an image operation interrupted by shutdown",
    }
}

/// The container's own defaults, as Docker's commit takes them.
fn defaults(spec: &moor_state::ContainerSpec, base: &ImageConfig) -> ImageConfig {
    let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    ImageConfig {
        env: spec.env.clone(),
        cmd: some(&spec.cmd).or(base.cmd.clone()),
        entrypoint: some(&spec.entrypoint).or(base.entrypoint.clone()),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        labels: spec.labels.clone(),
        stop_signal: spec.stop_signal.clone(),
        exposed_ports: spec.exposed_ports.clone(),
        volumes: base.volumes.clone(),
        healthcheck: base.healthcheck.clone(),
    }
}

/// What a commit request asks for: the container, the new name, the `changes` lines.
struct CommitQuery {
    /// The container (id, name or prefix).
    key: String,
    /// `repo[:tag]`, checked.
    name: Option<String>,
    /// Dockerfile lines.
    lines: Vec<String>,
}

fn commit_query(q: &Query, all: &AllQuery, body: &[u8]) -> Result<CommitQuery, ApiError> {
    let known = [
        "container",
        "repo",
        "tag",
        "comment",
        "author",
        "pause",
        "changes",
    ];
    only(all, &known)?;
    let trimmed = String::from_utf8_lossy(body).trim().to_string();
    if !matches!(trimmed.as_str(), "" | "null" | "{}") {
        return Err(ApiError::Unsupported {
            option: "a commit's container config body (use changes)",
        });
    }
    let name = match q.get("repo").filter(|r| !r.is_empty()) {
        Some(repo) => {
            let tag = q.get("tag").filter(|t| !t.is_empty());
            let full = tag.map_or(repo.clone(), |t| format!("{repo}:{t}"));
            Some(parse_reference(&full)?)
        }
        None => None,
    };
    let lines = all
        .iter()
        .filter(|(k, _)| k == "changes")
        .map(|(_, v)| v.clone())
        .collect();
    Ok(CommitQuery {
        key: q.get("container").cloned().unwrap_or_default(),
        name,
        lines,
    })
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
async fn commit(
    state: Data,
    q: Query,
    all: AllQuery,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let asked = commit_query(&q, &all, &body)?;
    let (id, actor) = resolve(&state, &asked.key).await?;
    let rec = actor
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    let upper = state.shared.layout.container_dir(&id).join("overlay/upper");
    if !upper.is_dir() {
        return Err(ApiError::Unsupported {
            option: "commit of a container without an overlay (the process runtime)",
        });
    }
    let base = ask(&state, FindImage(rec.spec.image_id.clone()))
        .await?
        .ok_or_else(|| ApiError::NoSuchImage(rec.spec.image.clone()))?;
    let config = changes::apply(&defaults(&rec.spec, &base.config), &asked.lines)?;
    let pause = flag(&q, "pause", true)? && matches!(rec.state, State::Running(_));
    let mut command = rec.spec.entrypoint.clone();
    command.extend(rec.spec.cmd.iter().cloned());
    let input = CommitInput {
        upper,
        base,
        defaults: config.clone(),
        container: id.clone(),
        created_by: command.join(" "),
        comment: q.get("comment").cloned().unwrap_or_default(),
        author: q.get("author").cloned().unwrap_or_default(),
        limit: state.shared.config.get().image_unpack_limit(),
    };
    if pause {
        let paused = actor.send(PauseContainer).await;
        paused.map_err(ContainerError::from)??;
    }
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let made = web::block(move || commit::commit(&dirs, &input)).await;
    if pause {
        // Thawed whatever the commit did.
        let thawed = actor.send(UnpauseContainer).await;
        thawed.map_err(ContainerError::from)??;
    }
    let made = made.map_err(|_| cancelled())??;
    let new_id = made.id.clone();
    record_commit(&state, made, config, asked.name).await?;
    let sha = format!("sha256:{new_id}");
    let extra = [("imageID", sha.clone())];
    let event = DockerEvent::container("commit", &id, &rec.name, &rec.spec.image, &extra);
    state.shared.events.publish(event);
    tracing::info!(container_id = %id, image = %new_id, "container committed");
    Ok(HttpResponse::Created().json(json!({ "Id": sha })))
}

/// Records a committed image (its files are in place) with the images' owner.
async fn record_commit(
    state: &Data,
    made: commit::CommitOutput,
    config: ImageConfig,
    name: Option<String>,
) -> Result<(), ApiError> {
    let record = ImageRecord {
        version: IMAGE_RECORD_VERSION,
        id: made.id,
        repo_tags: Vec::new(),
        created_at: Utc::now(),
        size: made.size,
        config,
        layers: made.layers,
        repo_digests: Vec::new(),
        manifest_type: None,
    };
    let files = ImageFiles::Layers;
    ask(
        state,
        CommitImage {
            record,
            name,
            files,
        },
    )
    .await?;
    Ok(())
}

/// `Name` path segment.
#[derive(serde::Deserialize)]
struct NamePath {
    /// Image name or id.
    name: String,
}

async fn save_one(
    state: Data,
    path: web::Path<NamePath>,
    all: AllQuery,
) -> Result<HttpResponse, ApiError> {
    only(&all, &["platform"])?;
    no_platform(&all)?;
    save(state, vec![path.name.clone()]).await
}

async fn save_many(state: Data, all: AllQuery) -> Result<HttpResponse, ApiError> {
    only(&all, &["names", "platform"])?;
    no_platform(&all)?;
    let names = all
        .iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v.clone())
        .collect();
    save(state, names).await
}

/// `platform` is refused when given (moor keeps one platform per image).
fn no_platform(all: &AllQuery) -> Result<(), ApiError> {
    match all.iter().any(|(k, v)| k == "platform" && !v.is_empty()) {
        true => Err(ArchiveError::Parameter("platform".into()).into()),
        false => Ok(()),
    }
}

/// The images `names` mean, each with the names it is saved under (the name asked by, when
/// it is one of the image's; none when asked by id), one entry per image.
async fn wanted(
    state: &Data,
    names: Vec<String>,
) -> Result<Vec<(ImageRecord, Vec<String>)>, ApiError> {
    let mut out: Vec<(ImageRecord, Vec<String>)> = Vec::new();
    for name in names {
        let rec = ask(state, FindImage(name.clone()))
            .await?
            .ok_or_else(|| ApiError::NoSuchImage(name.clone()))?;
        let tag = parse_reference(&name)
            .ok()
            .filter(|n| rec.repo_tags.contains(n));
        let at = match out.iter().position(|(r, _)| r.id == rec.id) {
            Some(i) => i,
            None => {
                out.push((rec, Vec::new()));
                out.len() - 1
            }
        };
        if let Some(tag) = tag.filter(|t| !out[at].1.contains(t)) {
            out[at].1.push(tag);
        }
    }
    Ok(out)
}

async fn save(state: Data, names: Vec<String>) -> Result<HttpResponse, ApiError> {
    if names.is_empty() {
        return Err(ArchiveError::Content("no image names given".into()).into());
    }
    let recs = wanted(&state, names).await?;
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let file = web::block(move || archive::save(&dirs, &recs))
        .await
        .map_err(|_| cancelled())??;
    let reader = tokio::fs::File::open(&file.0)
        .await
        .map_err(|source| ArchiveError::Io {
            what: "open",
            path: file.0.clone(),
            source,
        })?;
    // The file goes with the stream: removed when it ends or the client leaves.
    let chunks = futures_util::stream::unfold((reader, file), |(mut reader, file)| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 16];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), (reader, file)))
            }
            Err(e) => Some((Err(e), (reader, file))),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .streaming(chunks))
}

/// Stores the request body under `tmp/` (removed when dropped).
async fn upload(dirs: &ImageDirs, mut body: web::Payload) -> Result<TmpDir, ApiError> {
    let up = TmpDir(
        dirs.tmp()
            .join(format!("load-{:016x}.tar", rand::random::<u64>())),
    );
    let mut file = HashingFile::create(&up.0)?;
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| ApiError::Query {
            name: "body",
            value: format!("upload broken after {bytes} bytes"),
        })?;
        bytes += chunk.len() as u64;
        file.write(&chunk)?;
    }
    file.finish();
    Ok(up)
}

/// `POST /images/load?quiet=`: every image of the archive, or none (nothing is installed
/// before the whole archive is checked).
async fn load(
    state: Data,
    q: Query,
    all: AllQuery,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    only(&all, &["quiet", "platform"])?;
    no_platform(&all)?;
    // Nothing to keep quiet: moor sends no progress bars, only the `Loaded image` lines.
    flag(&q, "quiet", false)?;
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let up = upload(&dirs, body).await?;
    let limit = state.shared.config.get().image_unpack_limit();
    let work_dirs = dirs.clone();
    let loaded = web::block(move || -> Result<_, ArchiveError> {
        let loaded = load::load(&work_dirs, &up.0)?;
        drop(up);
        load::install(&work_dirs, &loaded, limit)?;
        Ok(loaded)
    })
    .await
    .map_err(|_| cancelled())??;
    let mut out = String::new();
    for img in &loaded.images {
        out.push_str(&record_loaded(&state, &dirs, img).await?);
    }
    // The work directory is removed off the actors' thread.
    web::block(move || drop(loaded)).await.ok();
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(out))
}

/// Records a loaded image (its files are in place) with its names; its answer lines.
async fn record_loaded(
    state: &Data,
    dirs: &ImageDirs,
    img: &load::LoadedImage,
) -> Result<String, ApiError> {
    let created = img
        .parsed
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map_or_else(Utc::now, |c| c.with_timezone(&Utc));
    let layers: Vec<String> = img.layers.iter().map(|(_, d)| d.clone()).collect();
    let size = layers.iter().map(|l| dirs.layer_size(l)).sum();
    let record = ImageRecord {
        version: IMAGE_RECORD_VERSION,
        id: img.id.clone(),
        repo_tags: Vec::new(),
        created_at: created,
        size,
        config: img.parsed.defaults(),
        layers,
        repo_digests: Vec::new(),
        manifest_type: None,
    };
    let mut tags = img.repo_tags.iter();
    let name = tags.next().cloned();
    let files = ImageFiles::Layers;
    let committed = ask(
        state,
        CommitImage {
            record,
            name,
            files,
        },
    )
    .await?;
    for tag in tags {
        let msg = TagImage {
            image: img.id.clone(),
            name: tag.clone(),
        };
        ask(state, msg).await?;
    }
    let labels = &committed.record.config.labels;
    let events = &state.shared.events;
    let mut out = String::new();
    for tag in &img.repo_tags {
        let name = parse_reference(tag).unwrap_or_else(|_| tag.clone());
        events.publish(DockerEvent::image("load", &img.id, &name, labels));
        out.push_str(&line(&format!("Loaded image: {name}\n")));
    }
    if img.repo_tags.is_empty() {
        let sha = format!("sha256:{}", img.id);
        events.publish(DockerEvent::image("load", &img.id, &sha, labels));
        out.push_str(&line(&format!("Loaded image ID: {sha}\n")));
    }
    tracing::info!(image = %img.id, names = ?img.repo_tags, "image loaded");
    Ok(out)
}

fn line(text: &str) -> String {
    let mut l = json!({ "stream": text }).to_string();
    l.push('\n');
    l
}
