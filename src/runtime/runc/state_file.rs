//! runc's own state file, read the way `runc state` reads it, without a runc process per
//! container (~11 ms each; the reconciler asks for every container at daemon start).
//!
//! `runc state ID` (runc 1.0–1.1, `libcontainer/factory_linux.go` `Load`,
//! `container_linux.go` `refreshState` and `runType`) loads `<root>/<id>/state.json` and
//! decides, in this order:
//! 1. **paused** when the container's freezer says frozen: cgroup v1 `freezer.state`
//!    `FROZEN` with `freezer.self_freezing` `1` (or no such file) under the state's
//!    `cgroup_paths.freezer` (none: not paused); cgroup v2 `cgroup.freeze` `1` under
//!    `cgroup_paths[""]` once `cgroup.events` says `frozen 1`;
//! 2. **stopped** when `/proc/<init_process_pid>/stat` cannot be read, or its start time
//!    is not `init_process_start`, or the process is a zombie or dead;
//! 3. **created** when `<root>/<id>/exec.fifo` exists (the init waits on it for `start`);
//! 4. **running** otherwise.
//!
//! [`status`] reproduces that decision where it is certain and answers `None` where runc
//! would do something else (wait for a freeze in progress, fail, use systemd or a cgroup
//! path it derives from its config, a state file of another format): the caller then asks
//! `runc state` itself. This is only the runtime's view, one input of the reconciler's
//! classification: process identities are still checked (pid, start time and boot id).

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path};
use std::sync::OnceLock;

use moor_state::reconcile::RuntimeState;
use serde::Deserialize;

/// runc's state file in its container directory.
pub const STATE_FILE: &str = "state.json";
/// The fifo whose presence means "created, not started".
const EXEC_FIFO: &str = "exec.fifo";

/// The fields of `state.json` the decision needs.
#[derive(Debug, Deserialize)]
struct StateFile {
    /// The init's host pid.
    init_process_pid: i64,
    /// Its start time (clock ticks since boot, /proc/PID/stat field 22).
    init_process_start: u64,
    /// The container's cgroup per controller (v1), or `""` → the unified one (v2).
    #[serde(default)]
    cgroup_paths: HashMap<String, String>,
    /// The libcontainer config.
    config: Config,
}

#[derive(Debug, Deserialize)]
struct Config {
    /// Its cgroup settings.
    #[serde(default)]
    cgroups: Option<Cgroups>,
}

#[derive(Debug, Deserialize)]
struct Cgroups {
    /// Whether systemd manages the cgroup (Go writes the field name as is).
    #[serde(default, rename = "Systemd", alias = "systemd")]
    systemd: bool,
}

/// The status `runc state` would report for `id` under runc's `root`, read from its state
/// file; `None` when only runc itself can tell (see the module documentation). A container
/// directory that does not exist is [`RuntimeState::Missing`].
pub fn status(root: &Path, id: &str) -> Option<RuntimeState> {
    status_on(root, id, cgroup2_unified())
}

/// The cgroup paths runc recorded for `id` (a path per v1 controller, or `""` for the v2
/// unified one); `None` when its state file cannot be read.
pub fn cgroup_paths(root: &Path, id: &str) -> Option<HashMap<String, String>> {
    let bytes = std::fs::read(root.join(id).join(STATE_FILE)).ok()?;
    let state: StateFile = serde_json::from_slice(&bytes).ok()?;
    Some(state.cgroup_paths)
}

/// [`status`] on a host whose cgroups are `unified` (v2) or not.
fn status_on(root: &Path, id: &str, unified: bool) -> Option<RuntimeState> {
    let dir = root.join(id);
    let bytes = match std::fs::read(dir.join(STATE_FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !dir.exists() => {
            return Some(RuntimeState::Missing)
        }
        Err(_) => return None,
    };
    let state: StateFile = serde_json::from_slice(&bytes).ok()?;
    if state.config.cgroups.as_ref().is_some_and(|c| c.systemd) {
        return None;
    }
    if frozen(&state.cgroup_paths, unified)? {
        return Some(RuntimeState::Paused);
    }
    Some(run_type(&dir, &state))
}

/// `runType`: stopped unless the recorded init runs (same pid and start time, neither a
/// zombie nor dead); created while the exec fifo exists; else running.
fn run_type(dir: &Path, state: &StateFile) -> RuntimeState {
    let Ok(pid) = i32::try_from(state.init_process_pid) else {
        return RuntimeState::Stopped;
    };
    match crate::identity::stat(pid) {
        Ok(Some(s))
            if s.start_time == state.init_process_start && !matches!(s.state, 'Z' | 'X') => {}
        _ => return RuntimeState::Stopped,
    }
    match std::fs::metadata(dir.join(EXEC_FIFO)) {
        Ok(_) => RuntimeState::Created,
        Err(_) => RuntimeState::Running,
    }
}

/// Whether runc's `/sys/fs/cgroup` is the unified hierarchy (cgroup v2), as runc decides
/// it (`statfs` type `CGROUP2_SUPER_MAGIC`); read once.
fn cgroup2_unified() -> bool {
    static UNIFIED: OnceLock<bool> = OnceLock::new();
    *UNIFIED.get_or_init(|| {
        nix::sys::statfs::statfs("/sys/fs/cgroup")
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
    })
}

/// The freezer's word (`isPaused`): `Some(frozen)`, or `None` where runc would wait or fail.
fn frozen(paths: &HashMap<String, String>, unified: bool) -> Option<bool> {
    if unified {
        frozen_v2(paths)
    } else {
        frozen_v1(paths.get("freezer").map(String::as_str).unwrap_or(""))
    }
}

/// A cgroup file, `Ok(None)` when it does not exist (or the kernel has no such file:
/// ENODEV), which runc reads as "no freezer": not paused.
fn read_cgroup_file(dir: &Path, file: &str) -> Result<Option<String>, ()> {
    match std::fs::read_to_string(dir.join(file)) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV) => {
            Ok(None)
        }
        Err(_) => Err(()),
    }
}

/// cgroup v1 (`fs.FreezerGroup.GetState`).
fn frozen_v1(path: &str) -> Option<bool> {
    if path.is_empty() {
        return Some(false);
    }
    let dir = Path::new(path);
    let Some(state) = read_cgroup_file(dir, "freezer.state").ok()? else {
        return Some(false);
    };
    match state.trim() {
        "THAWED" => Some(false),
        // Frozen directly, or through an ancestor (then runc calls it thawed).
        "FROZEN" => match read_cgroup_file(dir, "freezer.self_freezing").ok()? {
            None => Some(true),
            Some(s) if s == "1\n" => Some(true),
            Some(s) if s == "0\n" => Some(false),
            Some(_) => None,
        },
        // FREEZING: runc retries until it settles; unknown words make it fail.
        _ => None,
    }
}

/// cgroup v2 (`fs2.getFreezer`): only `cgroup_paths[""]`, absolute and clean.
fn frozen_v2(paths: &HashMap<String, String>) -> Option<bool> {
    if paths.len() > 1 {
        return None;
    }
    let path = Path::new(paths.get("").filter(|p| !p.is_empty())?);
    let clean = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !path.to_string_lossy().ends_with('/');
    if !clean {
        return None;
    }
    let Some(freeze) = read_cgroup_file(path, "cgroup.freeze").ok()? else {
        return Some(false);
    };
    match freeze.as_bytes().get(..2)? {
        b"0\n" => Some(false),
        // runc waits for `frozen 1` in cgroup.events; while it is 0, let runc wait.
        b"1\n" => read_cgroup_file(path, "cgroup.events")
            .ok()??
            .lines()
            .any(|l| l == "frozen 1")
            .then_some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(entries: &[(&str, &str)]) -> HashMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn v1_freezer_words_are_read_as_runc_reads_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let p = d.to_string_lossy().to_string();
        assert_eq!(frozen_v1(""), Some(false), "no freezer cgroup: not paused");
        assert_eq!(frozen_v1(&p), Some(false), "no freezer.state: not paused");
        std::fs::write(d.join("freezer.state"), "THAWED\n").expect("write");
        assert_eq!(frozen_v1(&p), Some(false));
        std::fs::write(d.join("freezer.state"), "FROZEN\n").expect("write");
        assert_eq!(frozen_v1(&p), Some(true), "no self_freezing: frozen");
        std::fs::write(d.join("freezer.self_freezing"), "0\n").expect("write");
        assert_eq!(frozen_v1(&p), Some(false), "frozen through a parent");
        std::fs::write(d.join("freezer.self_freezing"), "1\n").expect("write");
        assert_eq!(frozen_v1(&p), Some(true));
        std::fs::write(d.join("freezer.state"), "FREEZING\n").expect("write");
        assert_eq!(frozen_v1(&p), None, "runc waits: left to it");
    }

    #[test]
    fn v2_freezer_needs_one_clean_path_and_a_settled_freeze() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let p = d.to_string_lossy().to_string();
        assert_eq!(frozen_v2(&paths(&[])), None, "path derived from the config");
        assert_eq!(frozen_v2(&paths(&[("", &p), ("cpu", &p)])), None);
        assert_eq!(frozen_v2(&paths(&[("", "rel/x")])), None);
        assert_eq!(frozen_v2(&paths(&[("", &format!("{p}/../x"))])), None);
        assert_eq!(frozen_v2(&paths(&[("", &p)])), Some(false), "no file");
        std::fs::write(d.join("cgroup.freeze"), "0\n").expect("write");
        assert_eq!(frozen_v2(&paths(&[("", &p)])), Some(false));
        std::fs::write(d.join("cgroup.freeze"), "1\n").expect("write");
        std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").expect("write");
        assert_eq!(frozen_v2(&paths(&[("", &p)])), None, "freezing: runc waits");
        std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").expect("write");
        assert_eq!(frozen_v2(&paths(&[("", &p)])), Some(true));
    }

    /// A state file naming this test process as the init.
    fn state_dir(root: &Path, id: &str, start: u64, extra: &str) {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let pid = std::process::id();
        let json = format!(
            r#"{{"id":"{id}","init_process_pid":{pid},"init_process_start":{start},"created":"2026-01-01T00:00:00Z","config":{{"cgroups":{{"path":"/x"{extra}}}}},"cgroup_paths":{{}}}}"#
        );
        std::fs::write(dir.join(STATE_FILE), json).expect("write state.json");
    }

    #[test]
    fn the_init_decides_between_stopped_created_and_running() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        let me = crate::identity::identify(std::process::id() as i32).expect("identify");
        assert_eq!(status(root, "none"), Some(RuntimeState::Missing));
        std::fs::create_dir_all(root.join("nofile")).expect("mkdir");
        assert_eq!(status(root, "nofile"), None, "no state file: runc fails");
        std::fs::write(root.join("nofile").join(STATE_FILE), "{").expect("write");
        assert_eq!(status(root, "nofile"), None, "unreadable: left to runc");
        state_dir(root, "run", me.start_time, "");
        assert_eq!(status_on(root, "run", false), Some(RuntimeState::Running));
        assert_eq!(status_on(root, "run", true), None, "v2 without a path");
        std::fs::write(root.join("run").join(EXEC_FIFO), "").expect("fifo");
        assert_eq!(status_on(root, "run", false), Some(RuntimeState::Created));
        state_dir(root, "reused", me.start_time + 1, "");
        assert_eq!(
            status_on(root, "reused", false),
            Some(RuntimeState::Stopped)
        );
        state_dir(root, "sd", me.start_time, r#","Systemd":true"#);
        assert_eq!(status_on(root, "sd", false), None, "systemd: left to runc");
    }
}

#[cfg(test)]
#[path = "state_file_runc_tests.rs"]
mod runc_tests;
