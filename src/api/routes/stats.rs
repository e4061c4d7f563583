//! `GET /containers/{id}/stats` as Docker answers it: with `stream=true` (the default) one
//! object a second until the container stops; with `stream=false` one object whose
//! `precpu_stats` is a reading taken a second earlier (so a CPU percentage can be computed,
//! as `docker stats --no-stream` does), or at once with no earlier reading when `one-shot`
//! is set. A container that does not run answers Docker's empty object (its name and id).

use std::time::Duration;

use actix::Addr;
use actix_web::{web, HttpResponse};
use chrono::Utc;

use crate::api::error::ApiError;
use crate::api::routes::{flag, resolve, IdPath, Query};
use crate::api::server::ApiState;
use crate::api::stats_types::{Reading, StatsResponse};
use crate::daemon::container::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{InspectContainer, SampleStats};

/// Docker's collection interval.
const INTERVAL: Duration = Duration::from_secs(1);

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/stats", web::get().to(stats));
}

/// A reading of the container now; None when it does not run.
async fn read(addr: &Addr<ContainerActor>) -> Result<Option<Reading>, ApiError> {
    let sample = addr.send(SampleStats).await.map_err(ContainerError::from)?;
    Ok(sample.transpose()?.map(|s| (Utc::now(), s)))
}

fn object(id: &str, name: &str, now: Option<&Reading>, before: Option<&Reading>) -> web::Bytes {
    let answer = StatsResponse::new(id, name, now, before);
    let mut bytes = serde_json::to_vec(&answer).expect("a stats answer serializes");
    bytes.push(b'\n');
    web::Bytes::from(bytes)
}

/// Where a stats stream is.
struct Streamed {
    /// The reading taken before the answer began, not yet sent.
    first: Option<Option<Reading>>,
    /// The last reading sent.
    before: Option<Reading>,
    /// The container's actor.
    addr: Addr<ContainerActor>,
    /// The empty object went out: nothing follows.
    ended: bool,
}

async fn stats(
    state: web::Data<ApiState>,
    path: web::Path<IdPath>,
    q: Query,
) -> Result<HttpResponse, ApiError> {
    let stream = flag(&q, "stream", true)?;
    let one_shot = flag(&q, "one-shot", false)?;
    if stream && one_shot {
        return Err(ApiError::OneShotStream);
    }
    let (id, addr) = resolve(&state, &path.id).await?;
    let name = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?
        .name;
    let first = read(&addr).await?;
    if !stream {
        let answer = match (first, one_shot) {
            (Some(first), false) => {
                tokio::time::sleep(INTERVAL).await;
                let second = read(&addr).await?;
                object(&id, &name, second.as_ref(), second.as_ref().map(|_| &first))
            }
            (first, _) => object(&id, &name, first.as_ref(), None),
        };
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(answer));
    }
    // One object a second, each with the previous reading as its precpu; the stream ends
    // after the empty object of a container that does not run (or no longer does).
    let start = Streamed {
        first: Some(first),
        before: None,
        addr,
        ended: false,
    };
    let body = futures_util::stream::unfold(start, move |mut st| {
        let (id, name) = (id.clone(), name.clone());
        async move {
            if st.ended {
                return None;
            }
            let now = match st.first.take() {
                Some(first) => first,
                None => {
                    tokio::time::sleep(INTERVAL).await;
                    read(&st.addr).await.ok()?
                }
            };
            let bytes = object(&id, &name, now.as_ref(), st.before.as_ref());
            st.ended = now.is_none();
            st.before = now;
            Some((Ok::<_, actix_web::Error>(bytes), st))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}
