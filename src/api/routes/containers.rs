//! `/containers/...`: create, list, inspect, start, stop, restart, kill, pause, unpause, wait,
//! rename, delete.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use moor_state::TransitionError;

use crate::api::convert;
use crate::api::error::ApiError;
use crate::api::routes::{flag, matches_filters, number, parse_filters, resolve, IdPath, Query};
use crate::api::server::ApiState;
pub use crate::api::spec::{to_spec, HOST_IMAGE};
use crate::api::types::{CreateResponse, WaitError, WaitResponse};
use crate::daemon::error::ContainerError;
use crate::daemon::messages::*;
use crate::host::signal::parse_signal;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/create", web::post().to(create))
        .route("/containers/json", web::get().to(list))
        .route("/containers/{id}/json", web::get().to(inspect))
        .route("/containers/{id}/start", web::post().to(start))
        .route("/containers/{id}/stop", web::post().to(stop))
        .route("/containers/{id}/restart", web::post().to(restart))
        .route("/containers/{id}/kill", web::post().to(kill))
        .route("/containers/{id}/pause", web::post().to(pause))
        .route("/containers/{id}/unpause", web::post().to(unpause))
        .route("/containers/{id}/wait", web::post().to(wait))
        .route("/containers/{id}/rename", web::post().to(rename))
        .route("/containers/{id}", web::delete().to(remove));
}

type Data = web::Data<ApiState>;
type Id = web::Path<IdPath>;

async fn create(state: Data, q: Query, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req = crate::api::spec::parse(&body)?;
    let shared = &state.shared;
    // The image's config gives the spec's defaults; the Supervisor checks again, in the
    // step that makes the record, that the image is still there (a racing `rmi`).
    let image = match req.image.is_empty() {
        true => None,
        false => state
            .supervisor
            .send(FindImage(req.image.clone()))
            .await
            .map_err(ContainerError::from)?
            .map_err(ContainerError::from)?,
    };
    let (mut spec, warnings) = to_spec(req, shared.runtimes.default_kind, |_| Ok(image))?;
    for entry in spec.volumes_from.clone() {
        let (source, read_only) = crate::api::mounts::parse_volumes_from(&entry)?;
        let (_, addr) = resolve(&state, source).await?;
        let rec = addr
            .send(InspectContainer)
            .await
            .map_err(ContainerError::from)?;
        crate::api::mounts::add_volumes_from(&mut spec, &rec.spec, read_only);
    }
    shared.check_log_opts(&spec)?;
    shared.runtimes.for_spec(&spec).check_create(&spec)?;
    let name = q.get("name").filter(|n| !n.is_empty()).cloned();
    let id = state
        .supervisor
        .send(CreateContainer { name, spec })
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Created().json(CreateResponse { id, warnings }))
}

async fn list(state: Data, q: Query) -> Result<HttpResponse, ApiError> {
    let all = flag(&q, "all", false)?;
    let size = flag(&q, "size", false)?;
    let limit: Option<i64> = number(&q, "limit")?;
    let limit = limit
        .filter(|n| *n > 0)
        .and_then(|n| usize::try_from(n).ok());
    let filters = parse_filters(q.get("filters"))?;
    // Docker's health words, `none` for a container without a healthcheck.
    let mut health = filters.get("health").into_iter().flatten();
    if let Some(bad) =
        health.find(|v| !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none"))
    {
        return Err(ApiError::Query {
            name: "filters",
            value: format!("health={bad}"),
        });
    }
    let records = state
        .supervisor
        .send(ListContainers)
        .await
        .map_err(ContainerError::from)??;
    let keep = |r: &moor_state::ContainerRecord| {
        // Docker lists paused containers with the running ones.
        (all || matches!(r.state.docker_status(), "running" | "paused")
            || filters.contains_key("status"))
            && matches_filters(r, &filters)
    };
    let now = Utc::now();
    let base = state.shared.drift_base();
    let drift = |r: &moor_state::ContainerRecord| -> Vec<String> {
        base.drift(r).into_iter().map(|d| d.setting).collect()
    };
    // The common answer from parts kept while the store is unchanged (api::list_cache).
    if let Some(listing) = (!size)
        .then(|| state.list_cache.listing(records.clone()))
        .flatten()
    {
        return Ok(HttpResponse::Ok()
            .content_type(actix_web::http::header::ContentType::json())
            .body(listing.render(now, keep, limit, &base)));
    }
    let mut records: Vec<_> = records.iter().collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let out: Vec<_> = records
        .into_iter()
        .filter(|r| keep(r))
        .take(limit.unwrap_or(usize::MAX))
        .map(|r| (convert::summary(r, now), drift(r)))
        .map(|(mut s, drift)| {
            s.drift = drift;
            if size {
                (s.size_rw, s.size_root_fs) = (Some(0), Some(0));
            }
            s
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

async fn inspect(state: Data, path: Id) -> Result<HttpResponse, ApiError> {
    let (_, addr) = resolve(&state, &path.id).await?;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    let (layout, drift) = (state.shared.layout_of(&rec), state.shared.drift(&rec));
    Ok(HttpResponse::Ok().json(convert::inspect(&rec, &layout, drift)))
}

/// Maps "already in that state" to Docker's 304.
fn not_modified(e: ContainerError) -> ApiError {
    match e {
        ContainerError::Transition(
            TransitionError::AlreadyRunning | TransitionError::NotRunning,
        ) => ApiError::NotModified,
        other => other.into(),
    }
}

async fn start(state: Data, path: Id) -> Result<HttpResponse, ApiError> {
    let (_, addr) = resolve(&state, &path.id).await?;
    addr.send(StartContainer)
        .await
        .map_err(ContainerError::from)?
        .map_err(not_modified)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn stop(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    let (_, addr) = resolve(&state, &path.id).await?;
    let timeout_secs = number(&q, "t")?;
    addr.send(StopContainer {
        timeout_secs,
        by: StopBy::User,
    })
    .await
    .map_err(ContainerError::from)?
    .map_err(not_modified)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn restart(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    let (_, addr) = resolve(&state, &path.id).await?;
    let timeout_secs = number(&q, "t")?;
    match addr
        .send(StopContainer {
            timeout_secs,
            by: StopBy::User,
        })
        .await
        .map_err(ContainerError::from)?
    {
        Ok(()) | Err(ContainerError::Transition(TransitionError::NotRunning)) => {}
        Err(e) => return Err(e.into()),
    }
    addr.send(StartContainer)
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::NoContent().finish())
}

/// How long a kill with SIGKILL waits for the container's exit to be recorded (Docker: 10 s).
const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn kill(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    let (id, addr) = resolve(&state, &path.id).await?;
    let signal = match q.get("signal").filter(|s| !s.is_empty()) {
        None => libc::SIGKILL,
        Some(s) => parse_signal(s).ok_or_else(|| ApiError::InvalidSignal(s.clone()))?,
    };
    match addr
        .send(KillContainer { signal })
        .await
        .map_err(ContainerError::from)?
    {
        Ok(()) if signal == libc::SIGKILL => {
            // Docker's kill with SIGKILL answers once the container is no longer running
            // (bounded): a `rm` right after it does not find it running.
            let exited = addr
                .send(WaitContainer(WaitCondition::NotRunning))
                .await
                .map_err(ContainerError::from)?;
            if tokio::time::timeout(KILL_WAIT, exited).await.is_err() {
                tracing::warn!(%id, "the container was still running {KILL_WAIT:?} after SIGKILL");
            }
            Ok(HttpResponse::NoContent().finish())
        }
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(ContainerError::Transition(TransitionError::NotRunning)) => {
            Err(ApiError::NotRunning { id })
        }
        Err(e) => Err(e.into()),
    }
}

/// Docker's 409 texts for pause and unpause refusals.
fn pause_error(id: String, e: ContainerError) -> ApiError {
    match e {
        ContainerError::Transition(TransitionError::NotRunning) => ApiError::NotRunning { id },
        ContainerError::Transition(TransitionError::AlreadyPaused) => {
            ApiError::AlreadyPaused { id }
        }
        ContainerError::Transition(TransitionError::NotPaused) => ApiError::NotPaused { id },
        other => other.into(),
    }
}

async fn pause(state: Data, path: Id) -> Result<HttpResponse, ApiError> {
    let (id, addr) = resolve(&state, &path.id).await?;
    let res = addr
        .send(PauseContainer)
        .await
        .map_err(ContainerError::from)?;
    res.map_err(|e| pause_error(id, e))?;
    Ok(HttpResponse::NoContent().finish())
}

async fn unpause(state: Data, path: Id) -> Result<HttpResponse, ApiError> {
    let (id, addr) = resolve(&state, &path.id).await?;
    let res = addr
        .send(UnpauseContainer)
        .await
        .map_err(ContainerError::from)?;
    res.map_err(|e| pause_error(id, e))?;
    Ok(HttpResponse::NoContent().finish())
}

async fn wait(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    let (_, addr) = resolve(&state, &path.id).await?;
    let condition = match q.get("condition").map(String::as_str) {
        None | Some("") | Some("not-running") => WaitCondition::NotRunning,
        Some("next-exit") => WaitCondition::NextExit,
        Some("removed") => WaitCondition::Removed,
        Some(other) => {
            return Err(ApiError::Query {
                name: "condition",
                value: other.into(),
            })
        }
    };
    let rx = addr
        .send(WaitContainer(condition))
        .await
        .map_err(ContainerError::from)?;
    // Headers go out at once: the docker CLI sends wait before start and blocks on them.
    let body = futures_util::stream::once(async move {
        let answer = match rx.await {
            Ok(Ok(code)) => WaitResponse {
                status_code: code,
                error: None,
            },
            Ok(Err(message)) => WaitResponse {
                status_code: 255,
                error: Some(WaitError { message }),
            },
            Err(_) => WaitResponse {
                status_code: 255,
                error: Some(WaitError {
                    message: "the daemon stopped while waiting".into(),
                }),
            },
        };
        let mut bytes = serde_json::to_vec(&answer).expect("a wait answer serializes");
        bytes.push(b'\n');
        Ok::<_, actix_web::Error>(web::Bytes::from(bytes))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}

async fn rename(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    let new_name = q.get("name").cloned().unwrap_or_default();
    state
        .supervisor
        .send(RenameContainer {
            target: path.id.clone(),
            new_name,
        })
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::NoContent().finish())
}

async fn remove(state: Data, path: Id, q: Query) -> Result<HttpResponse, ApiError> {
    let (_, addr) = resolve(&state, &path.id).await?;
    let force = flag(&q, "force", false)?;
    // `v`: the container's anonymous volumes go with it (named ones stay, as in Docker).
    let volumes = flag(&q, "v", false)?;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    match addr
        .send(RemoveContainer { force })
        .await
        .map_err(ContainerError::from)?
    {
        Ok(()) => {
            if volumes {
                let names = rec.spec.mounts.iter().map(|m| m.name.clone());
                let names = names.filter(|n| !n.is_empty()).collect();
                state
                    .supervisor
                    .send(RemoveAnonymousVolumes(names))
                    .await
                    .map_err(ContainerError::from)?;
            }
            Ok(HttpResponse::NoContent().finish())
        }
        Err(ContainerError::Transition(TransitionError::RunningCannotRemove)) => {
            if let moor_state::State::Paused(_) = rec.state {
                return Err(ApiError::RemovePaused { name: rec.name });
            }
            Err(ApiError::RemoveRunning { name: rec.name })
        }
        Err(ContainerError::Transition(TransitionError::RestartingCannotRemove)) => {
            Err(ApiError::RemoveRestarting { name: rec.name })
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_accept_both_shapes() {
        let a = parse_filters(Some(&r#"{"name":["web"]}"#.to_string())).unwrap();
        let b = parse_filters(Some(&r#"{"name":{"web":true}}"#.to_string())).unwrap();
        assert_eq!(a, b);
        assert!(parse_filters(Some(&"[1]".to_string())).is_err());
    }
}
