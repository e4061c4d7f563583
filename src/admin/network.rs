//! `moor admin network`: moor's network objects on this host (the bridges, the default one and
//! those of user networks, the host sides of
//! its veth pairs, the namespace files under the run directory), each with the container it
//! belongs to; `--clean` removes the leftovers: objects of no container that runs (a crash
//! between a container's end and its teardown, a removed record).

use std::path::PathBuf;

use moor_state::{ContainerRecord, State};
use serde::Serialize;

use crate::host::layout::Layout;
use crate::network::{self, NetworkError};

/// One network object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkObject {
    /// `bridge`, `veth` or `netns`.
    pub kind: &'static str,
    /// The device name or the file.
    pub name: String,
    /// The container it belongs to (12 hex), `-` for the bridge, empty for a leftover;
    /// `?` when the records could not be read (a daemon holds the store).
    pub container: String,
    /// `up`/`down` (and `on <bridge>` for a veth attached to it), `mounted`/`not mounted`.
    pub state: String,
}

impl NetworkObject {
    /// A veth or namespace file of no running container.
    pub fn is_leftover(&self) -> bool {
        self.kind != "bridge" && self.container.is_empty()
    }
}

fn runs(rec: &ContainerRecord) -> bool {
    matches!(
        rec.state,
        State::Running(_) | State::Paused(_) | State::Stopping(_) | State::Starting
    )
}

/// The owner column of an object named `name`: the running container it belongs to.
fn owner(records: Option<&[ContainerRecord]>, name: &str) -> String {
    let Some(records) = records else {
        return "?".into();
    };
    records
        .iter()
        .filter(|r| runs(r) && !moor_state::network::endpoints(r).is_empty())
        .find(|r| network::belongs_to(name, &r.id))
        .map(|r| r.id[..12].to_string())
        .unwrap_or_default()
}

/// The bridge daemon.json names (`moor0` also when it is `"none"`: one made before stays).
pub fn bridge_name(config: &crate::config::DaemonConfig) -> Result<String, String> {
    Ok(config
        .bridge_settings()?
        .map_or_else(|| network::DEFAULT_BRIDGE.to_string(), |s| s.name))
}

/// moor's network objects; `records` (None: unknown) names their containers.
pub fn objects(
    layout: &Layout,
    bridge: &str,
    records: Option<&[ContainerRecord]>,
) -> Result<Vec<NetworkObject>, NetworkError> {
    let found = network::objects(&layout.run_dir, bridge)?;
    let updown = |up: bool| if up { "up" } else { "down" };
    let mut out = Vec::new();
    let bridges: Vec<_> = found.bridge.iter().chain(&found.user_bridges).collect();
    for b in &bridges {
        out.push(NetworkObject {
            kind: "bridge",
            name: b.name.clone(),
            container: "-".into(),
            state: updown(b.up).into(),
        });
    }
    for v in &found.veths {
        let on = match bridges.iter().find(|b| Some(b.index) == v.controller) {
            Some(b) => format!(", on {}", b.name),
            None => String::new(),
        };
        out.push(NetworkObject {
            kind: "veth",
            name: v.name.clone(),
            container: owner(records, &v.name),
            state: format!("{}{on}", updown(v.up)),
        });
    }
    for path in &found.netns_files {
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        out.push(NetworkObject {
            kind: "netns",
            name: path.display().to_string(),
            container: owner(records, &file.unwrap_or_default()),
            state: match network::netns::is_mounted(path) {
                true => "mounted".into(),
                false => "not mounted".into(),
            },
        });
    }
    Ok(out)
}

/// Removes the leftovers among `objects`; returns what was removed.
pub fn clean(objects: &[NetworkObject]) -> Result<Vec<NetworkObject>, NetworkError> {
    let mut removed = Vec::new();
    for o in objects.iter().filter(|o| o.is_leftover()) {
        match o.kind {
            "veth" => {
                network::delete_veth(&o.name)?;
            }
            _ => network::netns::remove(&PathBuf::from(&o.name))?,
        }
        removed.push(o.clone());
    }
    Ok(removed)
}

/// The objects as aligned columns.
pub fn table(objects: &[NetworkObject]) -> String {
    let width = objects
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<7} {:<width$} {:<13} STATE\n",
        "KIND", "NAME", "CONTAINER"
    );
    for o in objects {
        let container = match o.container.as_str() {
            "" => "(leftover)",
            c => c,
        };
        out.push_str(&format!(
            "{:<7} {:<width$} {:<13} {}\n",
            o.kind, o.name, container, o.state
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_veths_and_files_of_no_running_container() {
        let o = |kind, container: &str| NetworkObject {
            kind,
            name: "x".into(),
            container: container.into(),
            state: String::new(),
        };
        assert!(o("veth", "").is_leftover());
        assert!(o("netns", "").is_leftover());
        assert!(!o("veth", "0123456789ab").is_leftover());
        assert!(!o("veth", "?").is_leftover());
        assert!(!o("bridge", "-").is_leftover());
        assert!(table(&[o("veth", "")]).contains("(leftover)"));
    }
}
