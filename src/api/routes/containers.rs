//! `/containers/...`: create, list, inspect, start, stop, restart, kill, pause, unpause, wait,
//! rename, delete.

use std::collections::BTreeMap;

use actix::Addr;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use moor_state::image::ImageRecord;
use moor_state::record::{RestartPolicy as Policy, RuntimeKind};
use moor_state::{ContainerSpec, TransitionError};

use crate::api::convert;
use crate::api::error::ApiError;
use crate::api::routes::{flag, number, Query};
use crate::api::server::ApiState;
use crate::api::types::{CreateRequest, CreateResponse, WaitError, WaitResponse};
use crate::daemon::container::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::*;
use crate::daemon::signal::parse_signal;

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
/// The `{id}` segment (the versioned scope adds `{version}` before it).
#[derive(serde::Deserialize)]
pub struct IdPath {
    /// Container id, name or id prefix.
    pub id: String,
}

type Id = web::Path<IdPath>;

/// The image name the process runtime runs: the host's own filesystem.
pub const HOST_IMAGE: &str = "host";

pub async fn resolve(state: &Data, key: &str) -> Result<(String, Addr<ContainerActor>), ApiError> {
    Ok(state
        .supervisor
        .send(ResolveContainer(key.to_string()))
        .await
        .map_err(ContainerError::from)??)
}

fn restart_policy(p: Option<&crate::api::types::RestartPolicy>) -> Result<Policy, ApiError> {
    let Some(p) = p else { return Ok(Policy::No) };
    match p.name.as_str() {
        "" | "no" => Ok(Policy::No),
        "always" => Ok(Policy::Always),
        "unless-stopped" => Ok(Policy::UnlessStopped),
        "on-failure" => Ok(Policy::OnFailure {
            max_retries: p.maximum_retry_count,
        }),
        other => Err(ApiError::Query {
            name: "RestartPolicy.Name",
            value: other.into(),
        }),
    }
}

/// The runtime a create request gets: `host` without a runtime asked is the process runtime.
fn runtime_of(req: &CreateRequest, default: RuntimeKind) -> Result<RuntimeKind, ApiError> {
    let asked = req.host_config.as_ref().and_then(|h| h.runtime.as_deref());
    match asked {
        None | Some("") if req.image == HOST_IMAGE => Ok(RuntimeKind::Process),
        None | Some("") => Ok(default),
        Some("process") => Ok(RuntimeKind::Process),
        Some("runc") => Ok(RuntimeKind::Runc),
        Some(_) => Err(ApiError::Unsupported {
            option: "HostConfig.Runtime",
        }),
    }
}

/// Turns a Docker create request into a container spec, or says what is wrong with it.
/// `find_image` maps an image name or id to an imported image, whose config gives the
/// defaults ([`crate::api::image_defaults::merge`]).
pub fn to_spec(
    mut req: CreateRequest,
    default_runtime: RuntimeKind,
    find_image: impl FnOnce(&str) -> Result<Option<ImageRecord>, ApiError>,
) -> Result<ContainerSpec, ApiError> {
    if req.image.is_empty() {
        return Err(ApiError::Query {
            name: "Image",
            value: String::new(),
        });
    }
    let runtime = runtime_of(&req, default_runtime)?;
    let image_id = match runtime {
        RuntimeKind::Process if req.image == HOST_IMAGE => String::new(),
        RuntimeKind::Process => return Err(ApiError::NoSuchImage(req.image)),
        RuntimeKind::Runc => {
            let img =
                find_image(&req.image)?.ok_or_else(|| ApiError::NoSuchImage(req.image.clone()))?;
            crate::api::image_defaults::merge(&mut req, &img.config);
            img.id
        }
    };
    if req.tty {
        return Err(ApiError::Tty);
    }
    let cmd = req.cmd.unwrap_or_default();
    let entrypoint = req.entrypoint.unwrap_or_default();
    if cmd.is_empty() && entrypoint.is_empty() {
        return Err(ApiError::NoCommand);
    }
    let host = req.host_config.unwrap_or_default();
    if let Some(sig) = req.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        parse_signal(sig).ok_or_else(|| ApiError::InvalidSignal(sig.into()))?;
    }
    let mut log_opts = BTreeMap::new();
    if let Some(lc) = host.log_config.as_ref() {
        if !matches!(lc.kind.as_str(), "" | "json-file") {
            return Err(ApiError::Unsupported {
                option: "a log driver other than json-file",
            });
        }
        log_opts = lc.config.clone();
    }
    let network_mode = match host.network_mode.as_deref() {
        None | Some("" | "default" | "none") => "none",
        Some("host") => "host",
        Some(_) => {
            return Err(ApiError::Unsupported {
                option: "a network mode other than none and host",
            })
        }
    };
    let limited = host.memory != 0 || host.nano_cpus != 0 || host.pids_limit.unwrap_or(0) > 0;
    if runtime == RuntimeKind::Process && (limited || host.readonly_rootfs) {
        return Err(ApiError::Unsupported {
            option: "resource limits and --read-only with the process runtime",
        });
    }
    if host.memory < 0 || host.nano_cpus < 0 {
        return Err(ApiError::Unsupported {
            option: "a negative memory or CPU limit",
        });
    }
    Ok(ContainerSpec {
        image: req.image,
        cmd,
        entrypoint,
        env: req.env.unwrap_or_default(),
        working_dir: req.working_dir.unwrap_or_default(),
        user: req.user.unwrap_or_default(),
        labels: req.labels.unwrap_or_default(),
        hostname: req.hostname.unwrap_or_default(),
        stop_signal: req.stop_signal.unwrap_or_default(),
        stop_timeout: req.stop_timeout,
        auto_remove: host.auto_remove,
        restart_policy: restart_policy(host.restart_policy.as_ref())?,
        runtime,
        log_opts,
        open_stdin: req.open_stdin,
        image_id,
        memory: host.memory,
        nano_cpus: host.nano_cpus,
        pids_limit: host.pids_limit.filter(|l| *l > 0),
        read_only: host.readonly_rootfs,
        network_mode: if runtime == RuntimeKind::Runc {
            network_mode.into()
        } else {
            String::new()
        },
    })
}

async fn create(state: Data, q: Query, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req: CreateRequest = serde_json::from_slice(&body)?;
    let shared = &state.shared;
    let spec = to_spec(req, shared.default_runtime, |name| {
        let images = shared.store.images().map_err(ContainerError::from)?;
        Ok(images.resolve(name)?)
    })?;
    shared.check_log_opts(&spec)?;
    if spec.runtime == RuntimeKind::Runc && !spec.user.is_empty() {
        // Docker finds out at start; a create that cannot start is refused at once.
        let rootfs = crate::image::ImageDirs::new(&shared.layout.root).rootfs(&spec.image_id);
        crate::image::user::resolve(&rootfs, &spec.user)?;
    }
    let name = q.get("name").filter(|n| !n.is_empty()).cloned();
    let id = state
        .supervisor
        .send(CreateContainer { name, spec })
        .await
        .map_err(ContainerError::from)??;
    Ok(HttpResponse::Created().json(CreateResponse {
        id,
        warnings: Vec::new(),
    }))
}

/// Docker's list filters, in either JSON shape: `{"name":["x"]}` or `{"name":{"x":true}}`.
pub fn parse_filters(raw: Option<&String>) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: serde_json::Value = serde_json::from_str(raw)?;
    let bad = || ApiError::Query {
        name: "filters",
        value: raw.clone(),
    };
    let obj = v.as_object().ok_or_else(bad)?;
    let mut out = BTreeMap::new();
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(String::from).ok_or_else(bad))
                .collect::<Result<_, _>>()?,
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            _ => return Err(bad()),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

pub fn matches_filters(
    rec: &moor_state::ContainerRecord,
    f: &BTreeMap<String, Vec<String>>,
) -> bool {
    f.iter().all(|(key, vals)| {
        vals.iter().any(|v| match key.as_str() {
            "id" => rec.id.starts_with(v.as_str()),
            "name" => rec.name.contains(v.trim_start_matches('/')),
            "status" => rec.state.docker_status() == v,
            "ancestor" => rec.spec.image == *v,
            "exited" => {
                matches!(rec.state, moor_state::State::Exited { .. })
                    && crate::daemon::container::exit_code(&rec.state).to_string() == *v
            }
            "label" => match v.split_once('=') {
                Some((k, val)) => rec.spec.labels.get(k).is_some_and(|x| x == val),
                None => rec.spec.labels.contains_key(v.as_str()),
            },
            _ => false,
        })
    })
}

async fn list(state: Data, q: Query) -> Result<HttpResponse, ApiError> {
    let all = flag(&q, "all", false)?;
    let size = flag(&q, "size", false)?;
    let limit: Option<i64> = number(&q, "limit")?;
    let limit = limit
        .filter(|n| *n > 0)
        .and_then(|n| usize::try_from(n).ok());
    let filters = parse_filters(q.get("filters"))?;
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
    // The common answer from parts kept while the store is unchanged (api::list_cache).
    if let Some(listing) = (!size)
        .then(|| state.list_cache.listing(records.clone()))
        .flatten()
    {
        return Ok(HttpResponse::Ok()
            .content_type(actix_web::http::header::ContentType::json())
            .body(listing.render(now, keep, limit)));
    }
    let mut records: Vec<_> = records.iter().collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let out: Vec<_> = records
        .into_iter()
        .filter(|r| keep(r))
        .take(limit.unwrap_or(usize::MAX))
        .map(|r| convert::summary(r, now))
        .map(|mut s| {
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
    Ok(HttpResponse::Ok().json(convert::inspect(&rec, &state.shared.layout)))
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
    // moor has no volumes: `v` is validated and has nothing to remove.
    flag(&q, "v", false)?;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    match addr
        .send(RemoveContainer { force })
        .await
        .map_err(ContainerError::from)?
    {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(ContainerError::Transition(TransitionError::RunningCannotRemove)) => {
            if let moor_state::State::Paused(_) = rec.state {
                return Err(ApiError::RemovePaused { name: rec.name });
            }
            Err(ApiError::RemoveRunning { name: rec.name })
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cmd: &[&str]) -> CreateRequest {
        CreateRequest {
            image: HOST_IMAGE.into(),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn create_needs_a_command() {
        let spec = |r| to_spec(r, RuntimeKind::Runc, |_| Ok(None));
        assert!(matches!(spec(req(&[])), Err(ApiError::NoCommand)));
        assert_eq!(spec(req(&["true"])).unwrap().cmd, vec!["true"]);
    }

    fn image(config: moor_state::image::ImageConfig) -> ImageRecord {
        ImageRecord {
            version: moor_state::image::IMAGE_RECORD_VERSION,
            id: "ab".repeat(32),
            repo_tags: Vec::new(),
            created_at: Utc::now(),
            size: 0,
            config,
        }
    }

    #[test]
    fn the_image_config_gives_the_defaults() {
        let changes = ["ENV A=1".to_string(), "CMD echo $A".to_string()];
        let config = crate::image::changes::apply(&Default::default(), &changes).unwrap();
        let mut r = req(&[]);
        r.image = "bb".into();
        let with = |c: &moor_state::image::ImageConfig| {
            let c = c.clone();
            move |_: &str| Ok(Some(image(c)))
        };
        let spec = to_spec(r.clone(), RuntimeKind::Runc, with(&config)).expect("image cmd");
        assert_eq!(spec.argv(), vec!["/bin/sh", "-c", "echo $A"]);
        assert_eq!(spec.env, vec!["A=1"]);
        let e = to_spec(r, RuntimeKind::Runc, with(&Default::default())).unwrap_err();
        assert!(matches!(e, ApiError::NoCommand));
    }

    #[test]
    fn unknown_image_is_named() {
        let mut r = req(&["true"]);
        r.image = "busybox".into();
        let e = to_spec(r.clone(), RuntimeKind::Runc, |_| Ok(None)).unwrap_err();
        assert_eq!(e.to_string(), "No such image: busybox");
        let found = |_: &str| Ok(Some(image(Default::default())));
        let spec = to_spec(r.clone(), RuntimeKind::Runc, found).expect("imported");
        assert_eq!(
            (spec.runtime, spec.network_mode.as_str()),
            (RuntimeKind::Runc, "none")
        );
        let e = to_spec(r, RuntimeKind::Process, found).unwrap_err();
        assert_eq!(e.to_string(), "No such image: busybox");
    }

    #[test]
    fn filters_accept_both_shapes() {
        let a = parse_filters(Some(&r#"{"name":["web"]}"#.to_string())).unwrap();
        let b = parse_filters(Some(&r#"{"name":{"web":true}}"#.to_string())).unwrap();
        assert_eq!(a, b);
        assert!(parse_filters(Some(&"[1]".to_string())).is_err());
    }
}
