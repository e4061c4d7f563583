//! The daemon settings a container was started under, as far as they matter to managing it
//! (README "Changing daemon options"), and the drift between those and the daemon's current
//! ones. Pure data: the daemon fills both sides, inspect and `ps` show the difference.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The daemon settings recorded with a container at create and refreshed at each start.
/// A running container is managed under these, whatever the daemon's options say now: its
/// runtime calls go to this binary, its shim files are read in this run directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DaemonSettings {
    /// The runtime's name (`runc`, `process`).
    pub runtime: String,
    /// The OCI runtime binary its runtime calls go to (None: the runtime calls no binary,
    /// as the process runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_path: Option<String>,
    /// The daemon's run directory (`exec-root`): where its shim files and runc's state are.
    pub run_dir: String,
    /// The daemon's state root (`data-root`): its spec file and log.
    pub data_root: String,
    /// The daemon's default log options (`log-opts`) under which its log was opened.
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    /// The cgroup parent its cgroup is under (runc; empty for the process runtime).
    #[serde(default)]
    pub cgroup_parent: String,
    /// The default bridge it was attached to (None: not on the default bridge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<BridgeSettings>,
}

/// The default bridge network a container was attached under.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BridgeSettings {
    /// The Linux bridge (daemon.json `bridge`).
    pub bridge: String,
    /// The bridge's address with the subnet's prefix (daemon.json `bip`).
    pub bip: String,
}

/// One setting whose recorded value differs from the daemon's current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Drift {
    /// The daemon.json key (`runtimes.runc.path`, `exec-root`, `log-opts`...).
    pub setting: String,
    /// The value the container runs under.
    pub recorded: String,
    /// The value new containers get.
    pub current: String,
}

impl DaemonSettings {
    /// Every setting whose value differs between `self` (recorded) and `current`, in a fixed
    /// order; empty when the container runs under the daemon's current settings.
    pub fn drift(&self, current: &DaemonSettings) -> Vec<Drift> {
        // Compared by reference, allocating only for a difference: a list of N containers
        // asks this N times per request.
        let mut out = Vec::new();
        let mut check = |setting: &str, recorded: &str, now: &str| {
            if recorded != now {
                out.push(Drift {
                    setting: setting.into(),
                    recorded: recorded.into(),
                    current: now.into(),
                });
            }
        };
        check("runtime", &self.runtime, &current.runtime);
        check(
            "runtimes.runc.path",
            self.runtime_path.as_deref().unwrap_or_default(),
            current.runtime_path.as_deref().unwrap_or_default(),
        );
        check("exec-root", &self.run_dir, &current.run_dir);
        check("data-root", &self.data_root, &current.data_root);
        if self.log_opts != current.log_opts {
            check("log-opts", &opts(&self.log_opts), &opts(&current.log_opts));
        }
        check("cgroup-parent", &self.cgroup_parent, &current.cgroup_parent);
        let (recorded, now) = (bridge_parts(&self.network), bridge_parts(&current.network));
        check("bridge", recorded.0, now.0);
        check("bip", recorded.1, now.1);
        out
    }
}

/// A default bridge's name and address (empty: none).
fn bridge_parts(network: &Option<BridgeSettings>) -> (&str, &str) {
    network
        .as_ref()
        .map_or(("", ""), |b| (b.bridge.as_str(), b.bip.as_str()))
}

/// Log options as `key=value` pairs, comma-separated, in key order (empty: none).
fn opts(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DaemonSettings {
        DaemonSettings {
            runtime: "runc".into(),
            runtime_path: Some("/a/runc".into()),
            run_dir: "/run/a".into(),
            data_root: "/var/lib/moor".into(),
            log_opts: [("max-size".to_string(), "1m".to_string())].into(),
            cgroup_parent: "/moor".into(),
            network: Some(BridgeSettings {
                bridge: "moor0".into(),
                bip: "172.30.0.1/16".into(),
            }),
        }
    }

    #[test]
    fn equal_settings_have_no_drift() {
        assert!(settings().drift(&settings()).is_empty());
    }

    #[test]
    fn each_differing_setting_is_listed_with_both_values() {
        let mut now = settings();
        now.runtime_path = Some("/b/runc".into());
        now.run_dir = "/run/b".into();
        now.log_opts.insert("max-file".into(), "3".into());
        now.network = None;
        let drift = settings().drift(&now);
        let names: Vec<_> = drift.iter().map(|d| d.setting.as_str()).collect();
        assert_eq!(
            names,
            [
                "runtimes.runc.path",
                "exec-root",
                "log-opts",
                "bridge",
                "bip"
            ]
        );
        assert_eq!(drift[0].recorded, "/a/runc");
        assert_eq!(drift[0].current, "/b/runc");
        assert_eq!(drift[2].recorded, "max-size=1m");
        assert_eq!(drift[2].current, "max-file=3,max-size=1m");
        assert_eq!(drift[3].current, "");
        let json = serde_json::to_value(&drift[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Setting": "exec-root", "Recorded": "/run/a", "Current": "/run/b"})
        );
    }
}
