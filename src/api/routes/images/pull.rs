//! `POST /images/create?fromImage=NAME&tag=TAG[&platform=OS/ARCH]` (`docker pull`): pulls
//! from the registry the name gives (see [`crate::image::registry`]) and answers with
//! Docker's JSON progress stream. An error before any progress (an unknown image: 404) is an
//! HTTP error as in Docker; one after it is the stream's last message (`errorDetail`). The
//! pull runs in a task of its own, cancelled when its client goes away (the answer dropped),
//! as Docker cancels a transfer nobody watches any more (moby `distribution/xfer`): the
//! download in progress is dropped with its hidden file, a layer being unpacked is finished
//! or dropped whole, and nothing is recorded unless the commit had started.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::stream;
use moor_state::image::{parse_reference, ImageRecord, IMAGE_RECORD_VERSION};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::{ask, Data};
use crate::api::error::ApiError;
use crate::api::image_types::{ErrorDetail, ProgressDetail, PullMessage};
use crate::api::routes::Query;
use crate::config::registry::{InsecureRegistries, Mirror};
use crate::daemon::error::ContainerError;
use crate::daemon::events::DockerEvent;
use crate::daemon::image::ImageOwnerError;
use crate::daemon::messages::{CommitImage, FindImage, ImageFiles};
use crate::image::endpoint::HUB_ENDPOINT_ENV;
use crate::image::layers::digest_hex;
use crate::image::registry::{self, Platform, Progress, PullOptions, PullTarget};
use crate::image::ImageDirs;

fn line(msg: &PullMessage) -> Bytes {
    let mut text = serde_json::to_string(msg).unwrap_or_default();
    text.push_str("\r\n");
    Bytes::from(text)
}

fn progress_line(p: Progress) -> Bytes {
    line(&PullMessage {
        status: p.status,
        progress_detail: Some(match p.detail {
            Some((current, total)) => ProgressDetail {
                current: Some(current),
                total: Some(total),
            },
            None => ProgressDetail::default(),
        }),
        id: p.id,
        ..PullMessage::default()
    })
}

fn status_line(status: String) -> Bytes {
    line(&PullMessage {
        status,
        ..PullMessage::default()
    })
}

/// What `fromImage` and `tag` name (Docker: a `tag` that parses as a digest pulls by it).
pub fn target(q: &Query) -> Result<PullTarget, ApiError> {
    let from = q.get("fromImage").cloned().unwrap_or_default();
    let (name, mut digest) = match from.split_once('@') {
        Some((n, d)) => (n.to_string(), Some(d.to_string())),
        None => (from.clone(), None),
    };
    let last = name.rsplit('/').next().unwrap_or(&name);
    let (repo, mut tag) = match last.rsplit_once(':') {
        Some((_, t)) => (
            name[..name.len() - t.len() - 1].to_string(),
            Some(t.to_string()),
        ),
        None => (name.clone(), None),
    };
    if let Some(t) = q.get("tag").filter(|t| !t.is_empty()) {
        match t.starts_with("sha256:") {
            true => digest = Some(t.clone()),
            false => tag = Some(t.clone()),
        }
    }
    if let Some(d) = &digest {
        if digest_hex(d).is_none() {
            return Err(ApiError::Query {
                name: "tag",
                value: d.clone(),
            });
        }
        tag = None;
    }
    let named = parse_reference(&format!("{repo}:{}", tag.as_deref().unwrap_or("latest")))?;
    let repo = named.rsplit_once(':').map_or(named.as_str(), |(r, _)| r);
    if digest.is_none() && tag.is_none() {
        tag = Some("latest".into());
    }
    Ok(PullTarget {
        repo: repo.to_string(),
        tag,
        digest,
    })
}

/// How many times a pull whose layer a removal collected before its commit starts again.
const ATTEMPTS: usize = 3;

/// The pull itself, then its record: returns the last status lines.
async fn run(
    state: Data,
    target: PullTarget,
    opts: PullOptions,
    tx: tokio::sync::mpsc::UnboundedSender<Progress>,
) -> Result<Vec<String>, ApiError> {
    let dirs = ImageDirs::new(&state.shared.layout.root);
    let shown = target.reference();
    let before = ask(&state, FindImage(shown.clone())).await?.map(|r| r.id);
    let mut attempt = 0;
    let (rec, pulled) = loop {
        attempt += 1;
        let pulled = registry::pull(&dirs, &target, &opts, &tx).await?;
        let name = target.tag.as_ref().map(|t| format!("{}:{t}", target.repo));
        let fresh = ImageRecord {
            version: IMAGE_RECORD_VERSION,
            id: pulled.id.clone(),
            repo_tags: Vec::new(),
            created_at: pulled.created.unwrap_or_else(Utc::now),
            size: pulled.size,
            config: pulled.config.clone(),
            layers: pulled.layers.clone(),
            repo_digests: vec![format!("{}@{}", target.repo, pulled.digest)],
            manifest_type: Some(pulled.manifest_type.clone()),
        };
        // The download and unpack are done; the record (and the image's directory, should a
        // removal have taken it meanwhile) goes through the images' owner.
        let commit = CommitImage {
            record: fresh,
            name,
            files: ImageFiles::Layers,
        };
        match state.supervisor.send(commit).await {
            Ok(Err(ImageOwnerError::LayerGone(layer))) if attempt < ATTEMPTS => {
                tracing::info!(reference = %shown, layer = %layer, "layer collected during the pull: again");
            }
            answer => {
                let committed = answer
                    .map_err(ContainerError::from)?
                    .map_err(ContainerError::from)?;
                break (committed.record, pulled);
            }
        }
    };
    let event = DockerEvent::image("pull", &rec.id, &shown, &rec.config.labels);
    state.shared.events.publish(event);
    tracing::info!(image = %rec.id, reference = %shown, digest = %pulled.digest, "image pulled");
    let status = match before.as_deref() == Some(rec.id.as_str()) {
        true => format!("Status: Image is up to date for {shown}"),
        false => format!("Status: Downloaded newer image for {shown}"),
    };
    Ok(vec![format!("Digest: {}", pulled.digest), status])
}

/// The handler (called by `POST /images/create` when `fromImage` is given).
pub async fn pull(state: Data, q: &Query, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let target = target(q)?;
    let platform = Platform::parse(q.get("platform").map_or("", String::as_str))?;
    let config = state.shared.config.get();
    let insecure = InsecureRegistries::parse(&config.insecure_registries).map_err(|_| {
        ApiError::Unsupported {
            option: "a malformed insecure-registries",
        }
    })?;
    let mirrors =
        Mirror::parse_all(&config.registry_mirrors).map_err(|_| ApiError::Unsupported {
            option: "a malformed registry-mirrors",
        })?;
    let opts = PullOptions {
        insecure,
        auth: crate::api::registry_auth::header(req)?,
        platform,
        limit: config.image_unpack_limit(),
        mirrors,
        hub: std::env::var(HUB_ENDPOINT_ENV).ok(),
    };
    let (tx, rx) = unbounded_channel();
    let task = actix_web::rt::spawn(run(state.clone(), target, opts, tx));
    respond(rx, task, "pull").await
}

/// The answer of a pull or push running as `task` and sending its progress on `rx`: an
/// error before any progress is the HTTP answer (404 for an unknown image); otherwise
/// Docker's JSON progress stream, ending with the task's status lines or its error.
pub(super) async fn respond(
    mut rx: UnboundedReceiver<Progress>,
    task: actix_web::rt::task::JoinHandle<Result<Vec<String>, ApiError>>,
    what: &'static str,
) -> Result<HttpResponse, ApiError> {
    // Dropped with the answer (or with this future, before it): the task is cancelled.
    let cancel = Cancel(task.abort_handle());
    let Some(first) = rx.recv().await else {
        let lines = task.await.map_err(|_| ApiError::Unsupported {
            option: "a pull or push interrupted by shutdown",
        })??;
        let body: Vec<u8> = lines
            .into_iter()
            .flat_map(|l| status_line(l).to_vec())
            .collect();
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(body));
    };
    let body = stream::unfold(
        (Some(first), rx, Some(task), cancel),
        move |(pending, mut rx, task, cancel): (
            Option<Progress>,
            UnboundedReceiver<Progress>,
            _,
            Cancel,
        )| async move {
            if let Some(p) = pending {
                return Some((
                    Ok::<_, actix_web::Error>(progress_line(p)),
                    (None, rx, task, cancel),
                ));
            }
            if let Some(p) = rx.recv().await {
                return Some((Ok(progress_line(p)), (None, rx, task, cancel)));
            }
            let task: actix_web::rt::task::JoinHandle<_> = task?;
            let out = match task.await {
                Ok(Ok(lines)) => lines
                    .into_iter()
                    .flat_map(|l| status_line(l).to_vec())
                    .collect(),
                Ok(Err(e)) => error_line(&e),
                Err(_) => error_line(&format!("{what} interrupted by shutdown")),
            };
            Some((Ok(Bytes::from(out)), (None, rx, None, cancel)))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}

/// Aborts a pull's or push's task when dropped: its client went away (a finished task is
/// not affected).
struct Cancel(tokio::task::AbortHandle);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn error_line(e: &dyn std::fmt::Display) -> Vec<u8> {
    let message = e.to_string();
    line(&PullMessage {
        error_detail: Some(ErrorDetail {
            message: message.clone(),
        }),
        error: Some(message),
        ..PullMessage::default()
    })
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Query {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        actix_web::web::Query(map)
    }

    #[test]
    fn names_tags_and_digests() {
        let t = target(&q(&[("fromImage", "127.0.0.1:5000/app"), ("tag", "v1")])).unwrap();
        assert_eq!(t.reference(), "127.0.0.1:5000/app:v1");
        let t = target(&q(&[("fromImage", "127.0.0.1:5000/app:v2")])).unwrap();
        assert_eq!(t.tag.as_deref(), Some("v2"));
        let d = format!("sha256:{}", "a".repeat(64));
        let t = target(&q(&[("fromImage", "reg:5000/app"), ("tag", &d)])).unwrap();
        assert_eq!(t.reference(), format!("reg:5000/app@{d}"));
        assert_eq!(t.tag, None);
        let t = target(&q(&[("fromImage", "docker.io/library/busybox")])).unwrap();
        assert_eq!(t.reference(), "busybox:latest");
        assert!(target(&q(&[("fromImage", "app@sha256:12")])).is_err());
        assert!(target(&q(&[("fromImage", "Bad/Name")])).is_err());
    }
}
