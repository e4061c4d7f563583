//! Route table: one module per resource, and the helpers they share (query parameters,
//! the `{id}` path, resolving a container, filters, times): route files import only these,
//! never each other.

pub mod admin;
pub mod archive;
pub mod auth;
pub mod compat;
pub mod containers;
pub mod disk_usage;
pub mod events;
pub mod exec;
pub mod image_io;
pub mod images;
pub mod logs;
pub mod networks;
pub mod resize;
pub mod stats;
pub mod system;
pub mod update;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use actix::Addr;
use actix_web::web;
use chrono::{DateTime, Utc};

use crate::api::error::ApiError;
use crate::api::server::ApiState;
use crate::daemon::container::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::ResolveContainer;

/// Registers every route (called for the versioned scope and for the root).
pub fn configure(cfg: &mut web::ServiceConfig) {
    system::configure(cfg);
    // Before containers: `/containers/prune` must not be taken for `/containers/{id}`.
    compat::configure(cfg);
    containers::configure(cfg);
    update::configure(cfg);
    images::configure(cfg);
    image_io::configure(cfg);
    disk_usage::configure(cfg);
    logs::configure(cfg);
    resize::configure(cfg);
    events::configure(cfg);
    exec::configure(cfg);
    admin::configure(cfg);
    auth::configure(cfg);
    volumes::configure(cfg);
    stats::configure(cfg);
    networks::configure(cfg);
    archive::configure(cfg);
}

/// Query parameters as Docker sends them.
pub type Query = web::Query<HashMap<String, String>>;

/// A boolean query parameter: 1/0/true/false/True/False; absent = `default`.
pub fn flag(q: &Query, name: &'static str, default: bool) -> Result<bool, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("1" | "true" | "True" | "TRUE") => Ok(true),
        Some("0" | "false" | "False" | "FALSE") => Ok(false),
        Some(other) => Err(ApiError::Query {
            name,
            value: other.into(),
        }),
    }
}

/// A numeric query parameter.
pub fn number<T: std::str::FromStr>(q: &Query, name: &'static str) -> Result<Option<T>, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ApiError::Query {
            name,
            value: v.into(),
        }),
    }
}

/// A resize's `h` and `w` (Docker's names): each a number of rows or columns that fits a
/// terminal.
pub fn terminal_size(q: &Query) -> Result<(u16, u16), ApiError> {
    let h = number::<u16>(q, "h")?.unwrap_or(0);
    let w = number::<u16>(q, "w")?.unwrap_or(0);
    Ok((h, w))
}

type Data = web::Data<ApiState>;

/// The `{id}` segment (the versioned scope adds `{version}` before it).
#[derive(serde::Deserialize)]
pub struct IdPath {
    /// Container id, name or id prefix.
    pub id: String,
}

/// The container `key` names (id, name or unique prefix) and its actor.
pub async fn resolve(state: &Data, key: &str) -> Result<(String, Addr<ContainerActor>), ApiError> {
    Ok(state
        .supervisor
        .send(ResolveContainer(key.to_string()))
        .await
        .map_err(ContainerError::from)??)
}

/// Sends an image message to the images' owner (the Supervisor) and waits for its answer.
pub async fn ask<M, T>(state: &Data, msg: M) -> Result<T, ApiError>
where
    M: actix::Message<Result = Result<T, crate::daemon::image::ImageOwnerError>> + Send + 'static,
    T: Send + 'static,
    crate::daemon::supervisor::Supervisor: actix::Handler<M>,
{
    let answer = state.supervisor.send(msg).await;
    Ok(answer
        .map_err(ContainerError::from)?
        .map_err(ContainerError::from)?)
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
    // Docker's rule: values of one key are alternatives, but every `label` must hold.
    f.iter().all(|(key, vals)| {
        let mut values = vals.iter();
        let one = |v: &String| match key.as_str() {
            "id" => rec.id.starts_with(v.as_str()),
            "name" => rec.name.contains(v.trim_start_matches('/')),
            "status" => rec.state.docker_status() == v,
            "ancestor" => rec.spec.image == *v,
            "health" => rec.health.as_ref().map_or("none", |h| h.status.word()) == v,
            "exited" => {
                matches!(rec.state, moor_state::State::Exited { .. })
                    && crate::daemon::container::exit_code(&rec.state).to_string() == *v
            }
            "label" => match v.split_once('=') {
                Some((k, val)) => rec.spec.labels.get(k).is_some_and(|x| x == val),
                None => rec.spec.labels.contains_key(v.as_str()),
            },
            _ => false,
        };
        match key.as_str() {
            "label" => values.all(one),
            _ => values.any(one),
        }
    })
}

/// Docker's `since`/`until` (RFC 3339, a unix timestamp or a duration back from now); a 400
/// naming the parameter when it is none of them or past the calendar.
pub fn time_param(name: &'static str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    crate::logs::when::parse(value, SystemTime::now())
        .map_err(|source| ApiError::Time { name, source })
}
