//! `moor admin inspect`: for each container what the store records, what the host shows
//! (identity checks of the shim and the process, exit file, log size) and what the
//! reconciler would do with it on the next start. It is a dry run of the reconciler: the same
//! `runtime::observe::observe` and `moor_state::reconcile::classify`, nothing written.

use std::collections::HashSet;

use moor_state::reconcile::{classify, Class, Liveness, Observation, RuntimeState};
use moor_state::store::Store;
use moor_state::ContainerRecord;
use serde::{Deserialize, Serialize};

use crate::host::layout::Layout;
use crate::runtime;
use crate::runtime::observe::observe;

/// One container as `admin inspect` shows it (also the JSON of `GET /moor/admin/inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerReport {
    /// Full id.
    pub id: String,
    /// Name, or empty for a run directory no record claims.
    pub name: String,
    /// The recorded state (`running`, `exited`...), or `no-record`.
    pub state: String,
    /// The container process's recorded pid.
    pub pid: Option<i32>,
    /// Its identity check: alive, gone, reused.
    pub process: Option<Liveness>,
    /// The shim's recorded pid.
    pub shim_pid: Option<i32>,
    /// Its identity check.
    pub shim: Option<Liveness>,
    /// The exit code in the shim's exit file, when there is one.
    pub exit_file_code: Option<i32>,
    /// What `runc state` says (runc containers only).
    #[serde(default)]
    pub runtime_state: Option<RuntimeState>,
    /// The json-file log's size in bytes, when it exists.
    pub log_size: Option<u64>,
    /// What the next start does: resume, exited-while-down, lost, orphan, unchanged...
    pub next_start: String,
    /// Why, in a few words.
    pub reason: String,
}

impl ContainerReport {
    /// Whether the admin should look at it (`moor admin orphans`).
    pub fn is_orphan(&self) -> bool {
        self.next_start == "orphan" || self.state == "orphaned"
    }
}

/// Why the class was chosen, for the REASON column.
pub fn reason(class: &Class) -> String {
    match class {
        Class::Resume(_) => "shim and process alive, identities match".into(),
        Class::ExitedWhileDown(e) => format!("exit file: code {}", e.exit.code()),
        Class::Lost { reason } | Class::Orphan { reason, .. } => reason.clone(),
        Class::FinishRemoval => "a removal was under way".into(),
        Class::Unchanged => "nothing to do".into(),
    }
}

/// The report of one record: observed and classified exactly as the reconciler would.
pub fn report(layout: &Layout, rec: &ContainerRecord) -> ContainerReport {
    let obs = crate::runtime::observe::observe_recorded(layout, rec);
    let class = classify(&rec.state, &obs);
    let mut r = base(layout, &rec.id, &obs);
    r.name.clone_from(&rec.name);
    r.state = rec.state.name().to_string();
    if let Some(run) = rec.state.run() {
        r.pid = Some(run.process.pid);
        r.process = Some(runtime::liveness(&run.process));
        r.shim_pid = Some(run.shim.pid);
        r.shim = Some(runtime::liveness(&run.shim));
    }
    r.next_start = class.name().to_string();
    r.reason = reason(&class);
    r
}

/// The facts of a run directory, before a record is looked at.
fn base(layout: &Layout, id: &str, obs: &Observation) -> ContainerReport {
    let started = obs.started.as_ref();
    ContainerReport {
        id: id.to_string(),
        name: String::new(),
        state: "no-record".into(),
        pid: started.map(|o| o.run.process.pid),
        process: started.map(|o| o.process),
        shim_pid: started.map(|o| o.run.shim.pid),
        shim: started.map(|o| o.shim),
        exit_file_code: obs.exit.map(|e| e.exit.code()),
        runtime_state: obs.runtime_state,
        log_size: std::fs::metadata(layout.log_path(id)).ok().map(|m| m.len()),
        next_start: String::new(),
        reason: String::new(),
    }
}

/// Run directories no record claims whose shim or process still runs: orphans the
/// reconciler only reports (it never kills them).
pub fn unclaimed(layout: &Layout, claimed: &HashSet<String>) -> Vec<ContainerReport> {
    let Ok(entries) = std::fs::read_dir(layout.run_containers()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        if claimed.contains(&id) {
            continue;
        }
        let obs = observe(layout, &id);
        let alive = obs
            .started
            .as_ref()
            .is_some_and(|o| o.shim.is_alive() || o.process.is_alive());
        if alive {
            let mut r = base(layout, &id, &obs);
            r.next_start = "orphan".into();
            r.reason = "a live shim or process has no record".into();
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Reports for every record (then every unclaimed live run directory), or for the
/// containers named by `keys` (id, id prefix or name) only.
pub fn reports(store: &Store, layout: &Layout, keys: &[String]) -> Vec<ContainerReport> {
    let records = store.list().unwrap_or_default();
    let claimed: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
    let mut out: Vec<ContainerReport> = records.iter().map(|r| report(layout, r)).collect();
    out.extend(unclaimed(layout, &claimed));
    if !keys.is_empty() {
        out.retain(|r| keys.iter().any(|k| matches(r, k)));
    }
    out
}

/// Whether `key` (id prefix or name) names this report.
pub fn matches(r: &ContainerReport, key: &str) -> bool {
    let key = key.strip_prefix('/').unwrap_or(key);
    !key.is_empty() && (r.name == key || r.id.starts_with(key))
}

fn liveness_word(l: Option<Liveness>) -> &'static str {
    match l {
        Some(Liveness::Alive) => "alive",
        Some(Liveness::Gone) => "gone",
        Some(Liveness::Reused) => "reused",
        None => "-",
    }
}

fn pid_cell(pid: Option<i32>, l: Option<Liveness>) -> String {
    pid.map_or("-".into(), |p| format!("{p} ({})", liveness_word(l)))
}

/// The reports as an aligned table.
pub fn table(reports: &[ContainerReport]) -> String {
    let head = [
        "CONTAINER ID",
        "NAME",
        "STATE",
        "PID",
        "SHIM",
        "EXIT FILE",
        "RUNC",
        "LOG",
        "NEXT START",
        "REASON",
    ];
    let rows: Vec<[String; 10]> = reports
        .iter()
        .map(|r| {
            [
                r.id.chars().take(12).collect(),
                r.name.clone(),
                r.state.clone(),
                pid_cell(r.pid, r.process),
                pid_cell(r.shim_pid, r.shim),
                r.exit_file_code.map_or("-".into(), |c| c.to_string()),
                r.runtime_state.map_or("-", RuntimeState::name).into(),
                r.log_size.map_or("-".into(), |s| format!("{s}B")),
                r.next_start.clone(),
                r.reason.clone(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}   ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_shows_checks() {
        let r = ContainerReport {
            id: "a".repeat(64),
            name: "web".into(),
            state: "running".into(),
            pid: Some(42),
            process: Some(Liveness::Alive),
            shim_pid: Some(41),
            shim: Some(Liveness::Gone),
            exit_file_code: None,
            runtime_state: Some(RuntimeState::Running),
            log_size: Some(10),
            next_start: "orphan".into(),
            reason: "shim gone".into(),
        };
        let t = table(std::slice::from_ref(&r));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("CONTAINER ID   NAME"), "{t}");
        assert!(
            lines[1].contains("42 (alive)") && lines[1].contains("41 (gone)"),
            "{t}"
        );
        assert!(r.is_orphan());
        assert!(matches(&r, "web") && matches(&r, "aaa") && !matches(&r, ""));
    }
}
