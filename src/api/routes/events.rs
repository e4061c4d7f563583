//! `GET /events`: Docker's event records as a stream of JSON lines, from the daemon's bus.
//! `since` replays the kept history; `until` ends the stream (at once when it is past);
//! `filters` on `type`, `event`, `container` (id, id prefix or name) and `label`.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::api::error::ApiError;
use crate::api::routes::Query;
use crate::api::routes::{parse_filters, time_param};
use crate::api::server::ApiState;
use crate::daemon::events::DockerEvent;

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(events));
}

/// Whether an event passes Docker's filters.
pub fn matches(e: &DockerEvent, f: &BTreeMap<String, Vec<String>>) -> bool {
    f.iter().all(|(key, vals)| {
        vals.iter().any(|v| match key.as_str() {
            "type" => v == e.kind,
            // moby matches `exec_create`/`exec_start` without their `: <cmd>` tail too.
            "event" => *v == e.action || e.action.split_once(": ").is_some_and(|(a, _)| a == v),
            "container" => {
                e.kind == "container"
                    && (e.actor.id.starts_with(v.as_str())
                        || e.actor.attributes.get("name").is_some_and(|n| n == v))
            }
            "image" => match e.kind {
                "image" => {
                    let id = e.actor.id.strip_prefix("sha256:").unwrap_or(&e.actor.id);
                    let hex = v.strip_prefix("sha256:").unwrap_or(v);
                    (hex.len() >= 12 && id.starts_with(hex))
                        || e.actor.attributes.get("name").is_some_and(|n| n == v)
                }
                _ => e.from == *v,
            },
            _ => false,
        })
    })
}

fn when(q: &Query, name: &'static str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => time_param(name, v).map(Some),
    }
}

fn line(e: &DockerEvent) -> web::Bytes {
    let mut bytes = serde_json::to_vec(e).expect("an event serializes");
    bytes.push(b'\n');
    web::Bytes::from(bytes)
}

async fn events(state: web::Data<ApiState>, q: Query) -> Result<HttpResponse, ApiError> {
    let since = when(&q, "since")?;
    let until = when(&q, "until")?;
    let filters = parse_filters(q.get("filters"))?;
    let (past, mut live) = state.shared.events.subscribe();
    let (tx, rx) = mpsc::channel::<web::Bytes>(64);
    let keep = move |e: &DockerEvent| {
        !since.is_some_and(|s| e.at() < s)
            && !until.is_some_and(|u| e.at() > u)
            && matches(e, &filters)
    };
    actix_rt::spawn(async move {
        if since.is_some() {
            for e in past.iter().filter(|e| keep(e)) {
                if tx.send(line(e)).await.is_err() {
                    return;
                }
            }
        }
        loop {
            let left = match until {
                Some(u) => match (u - Utc::now()).to_std() {
                    Ok(d) => d,
                    Err(_) => return,
                },
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                got = live.recv() => match got {
                    Ok(e) if keep(&e) => {
                        if tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                _ = tokio::time::sleep(left) => if until.is_some() { return },
                _ = tx.closed() => return,
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, actix_web::Error>(b), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_type_event_and_container() {
        let e = DockerEvent::container("die", "abcdef", "web", "host", &[]);
        let f = |k: &str, v: &str| BTreeMap::from([(k.to_string(), vec![v.to_string()])]);
        assert!(matches(&e, &f("event", "die")));
        assert!(!matches(&e, &f("event", "start")));
        assert!(matches(&e, &f("container", "web")));
        assert!(matches(&e, &f("container", "abc")));
        assert!(matches(&e, &f("type", "container")));
        assert!(!matches(&e, &f("type", "image")));
    }
}
