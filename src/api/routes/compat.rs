//! Docker endpoints that only read or sweep: `GET /containers/{id}/top` (ps of the
//! container's processes) and `POST /containers/prune` (with the bytes it freed).

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use moor_state::State;

use crate::api::error::ApiError;
use crate::api::routes::Query;
use crate::api::routes::{matches_filters, parse_filters, resolve, time_param, IdPath};
use crate::api::server::ApiState;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::{InspectContainer, ListContainers, RemoveContainer};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/prune", web::post().to(prune))
        .route("/containers/{id}/top", web::get().to(top));
}

/// Splits ps output into titles and the rows whose PID column is one of `pids`.
pub fn ps_table(output: &str, pids: &[i32]) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines.next()?.split_whitespace().map(String::from).collect();
    let pid_col = titles.iter().position(|t| t == "PID")?;
    let rows = lines
        .filter_map(|line| {
            // The last column (the command) may contain spaces.
            let mut cols: Vec<String> = line
                .splitn(titles.len(), char::is_whitespace)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            if cols.len() < titles.len() {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if parts.len() < titles.len() {
                    return None;
                }
                let (head, tail) = parts.split_at(titles.len() - 1);
                cols = head.iter().map(|s| s.to_string()).collect();
                cols.push(tail.join(" "));
            }
            let pid: i32 = cols.get(pid_col)?.parse().ok()?;
            pids.contains(&pid).then_some(cols)
        })
        .collect();
    Some((titles, rows))
}

async fn top(
    state: web::Data<ApiState>,
    path: web::Path<IdPath>,
    q: Query,
) -> Result<HttpResponse, ApiError> {
    let (id, addr) = resolve(&state, &path.id).await?;
    let rec = addr
        .send(InspectContainer)
        .await
        .map_err(ContainerError::from)?;
    let run = match &rec.state {
        State::Running(run) | State::Stopping(run) => run.clone(),
        _ => return Err(ApiError::NotRunning { id }),
    };
    let args = q.get("ps_args").cloned().unwrap_or_else(|| "-ef".into());
    let out = tokio::process::Command::new("ps")
        .args(args.split_whitespace())
        .output()
        .await
        .map_err(|source| ApiError::Ps { source })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let pids = crate::identity::session_pids(run.process.pid);
    let (titles, processes) = ps_table(&text, &pids).ok_or(ApiError::PsOutput { args })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"Titles": titles, "Processes": processes})))
}

/// Bytes of the regular files under `dir`, symlinks not followed (0 when it is missing).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total: u64 = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

async fn prune(state: web::Data<ApiState>, q: Query) -> Result<HttpResponse, ApiError> {
    let mut filters: BTreeMap<String, Vec<String>> = parse_filters(q.get("filters"))?;
    let until = match filters.remove("until").as_deref() {
        Some([t, ..]) => Some(time_param("until", t)?),
        _ => None,
    };
    let records = state
        .supervisor
        .send(ListContainers)
        .await
        .map_err(ContainerError::from)??;
    let mut deleted = Vec::new();
    let mut reclaimed: u64 = 0;
    for rec in records.iter() {
        let stopped = matches!(rec.state, State::Created | State::Exited { .. });
        if !stopped || !matches_filters(rec, &filters) || until.is_some_and(|u| rec.created_at >= u)
        {
            continue;
        }
        let Ok((id, addr)) = resolve(&state, &rec.id).await else {
            continue;
        };
        // Measured before the removal deletes it: the log, the spec and the overlay's upper dir.
        let dir = state.shared.layout.container_dir(&id);
        let size = web::block(move || dir_size(&dir)).await.unwrap_or(0);
        if let Ok(Ok(())) = addr.send(RemoveContainer { force: false }).await {
            deleted.push(id);
            reclaimed = reclaimed.saturating_add(size);
        }
    }
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_filtered_by_pid() {
        let out = "UID PID PPID C STIME TTY TIME CMD\n\
                   root 1 0 0 10:00 ? 00:00:01 /sbin/init splash\n\
                   root 42 1 0 10:00 ? 00:00:00 sleep 100\n";
        let (titles, rows) = ps_table(out, &[42]).unwrap();
        assert_eq!(titles.len(), 8);
        assert_eq!(
            rows,
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sleep 100"
            ]]
        );
        assert!(ps_table("no pid column\n", &[1]).is_none());
    }

    #[test]
    fn dir_size_sums_files_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), [0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("g"), [0u8; 24]).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("link")).unwrap();
        assert_eq!(dir_size(dir.path()), 1024);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }

    #[test]
    fn own_session_is_found() {
        let me = std::process::id() as i32;
        assert_eq!(crate::identity::session_pids(me)[0..1].len(), 1);
    }
}
