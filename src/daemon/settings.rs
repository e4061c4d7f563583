//! The daemon settings each container records (README "Changing daemon options"): filled
//! at create, refreshed at each start, filled at the first start-up of a daemon that finds
//! a record without them; and the drift between those and the daemon's current settings,
//! shown by inspect and `ps`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use moor_state::network::{NetworkRecord, DEFAULT_NETWORK};
use moor_state::settings::{BridgeSettings, DaemonSettings, Drift};
use moor_state::{ContainerRecord, ContainerSpec};

use crate::daemon::Shared;
use crate::host::layout::Layout;
use crate::runtime::interface::{kind_slot, profile, Runtimes, KINDS};

fn text(path: &std::path::Path) -> String {
    path.display().to_string()
}

fn bridge_of(network: &NetworkRecord) -> BridgeSettings {
    BridgeSettings {
        bridge: network.bridge.clone(),
        bip: format!("{}/{}", network.gateway, network.subnet.prefix_len),
    }
}

impl Shared {
    /// The settings a container of `spec` started now runs under: the daemon's current
    /// runtime binary, run directory, state root, default log options and cgroup parent,
    /// and the default bridge it is attached to (from its endpoint).
    pub fn current_settings(&self, spec: &ContainerSpec) -> Arc<DaemonSettings> {
        self.settings_pool.share(Arc::new(self.settings_now(spec)))
    }

    /// [`Shared::current_settings`], a copy of its own.
    fn settings_now(&self, spec: &ContainerSpec) -> DaemonSettings {
        let kind = spec.runtime;
        let network = spec
            .endpoint
            .as_ref()
            .filter(|ep| ep.network == DEFAULT_NETWORK)
            .map(|ep| BridgeSettings {
                bridge: ep.bridge.clone(),
                bip: format!("{}/{}", ep.gateway, ep.prefix_len),
            });
        DaemonSettings {
            runtime: profile(kind).name.into(),
            runtime_path: self.runtimes.recorded_path(kind).as_deref().map(text),
            run_dir: text(&self.layout.run_dir),
            data_root: text(&self.layout.root),
            log_opts: self.config.get().log_opts.clone(),
            cgroup_parent: Runtimes::cgroup_parent(kind),
            network,
        }
    }

    /// The settings recorded for `rec`, or the current ones for a record without them.
    pub fn recorded_settings(&self, rec: &ContainerRecord) -> DaemonSettings {
        match &rec.settings {
            Some(recorded) => DaemonSettings::clone(recorded),
            None => self.settings_now(&rec.spec),
        }
    }

    /// Every setting `rec` runs under that differs from what a container started now
    /// would get (empty: no drift). A container off the default bridge compares no bridge.
    pub fn drift(&self, rec: &ContainerRecord) -> Vec<Drift> {
        self.drift_base().drift(rec)
    }

    /// What the drift of every record is measured against now (made once for a list).
    pub fn drift_base(&self) -> DriftBase {
        let bridge = self.network.as_ref().map(bridge_of);
        let current = KINDS.map(|kind| {
            let spec = ContainerSpec {
                runtime: kind,
                ..ContainerSpec::default()
            };
            let off_bridge = self.settings_now(&spec);
            let on_bridge = DaemonSettings {
                network: bridge.clone(),
                ..off_bridge.clone()
            };
            (off_bridge, on_bridge)
        });
        DriftBase { current }
    }
}

/// At most this many distinct settings are kept by [`SettingsPool`]: one per runtime kind, on
/// the default bridge or not, for each daemon.json in force since the start is a handful.
const POOL_MAX: usize = 64;

/// The distinct daemon settings the records hold, one allocation each: every container of
/// a runtime kind started under the same daemon.json records equal settings (~350 bytes
/// with their paths), and a restart decodes 10,000 copies of the same few.
#[derive(Debug, Default)]
pub struct SettingsPool(Mutex<Vec<Arc<DaemonSettings>>>);

impl SettingsPool {
    /// The pool's copy of `settings` when it has an equal one, else `settings` (kept for the
    /// next while the pool has room).
    pub fn share(&self, settings: Arc<DaemonSettings>) -> Arc<DaemonSettings> {
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = pool.iter().find(|held| **held == settings) {
            return Arc::clone(held);
        }
        if pool.len() < POOL_MAX {
            pool.push(Arc::clone(&settings));
        }
        settings
    }

    /// `rec` with the pool's copy of its settings ([`SettingsPool::share`]).
    pub fn share_in(&self, rec: &mut ContainerRecord) {
        if let Some(settings) = rec.settings.take() {
            rec.settings = Some(self.share(settings));
        }
    }
}

/// The daemon's current settings for each runtime kind, off and on the default bridge:
/// what [`Shared::drift`] compares a record with. Equal bases give every record the same
/// drift, so a list answer keeps the drift it rendered while the base is unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftBase {
    /// Per runtime kind (at its [`kind_slot`]): the settings off the default bridge, and on it.
    current: [(DaemonSettings, DaemonSettings); 2],
}

impl DriftBase {
    /// A base with the same settings for every runtime kind, on the bridge or not (tests).
    #[cfg(test)]
    pub fn uniform(settings: DaemonSettings) -> DriftBase {
        let both = (settings.clone(), settings);
        DriftBase {
            current: [both.clone(), both],
        }
    }

    /// The drift of `rec` ([`Shared::drift`]).
    pub fn drift(&self, rec: &ContainerRecord) -> Vec<Drift> {
        let Some(recorded) = &rec.settings else {
            return Vec::new();
        };
        let (off, on) = &self.current[kind_slot(rec.spec.runtime)];
        match recorded.network {
            Some(_) => recorded.drift(on),
            None => recorded.drift(off),
        }
    }
}

impl Shared {
    /// The daemon's paths as `rec` was started under them ([`Layout::as_recorded`]).
    pub fn layout_of(&self, rec: &ContainerRecord) -> Layout {
        self.layout.as_recorded(rec)
    }

    /// The directory of `rec`'s shim files, under its recorded run directory.
    pub fn run_container_dir(&self, rec: &ContainerRecord) -> PathBuf {
        self.layout_of(rec).run_container_dir(&rec.id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use moor_state::network::{Endpoint, NetworkRecord, Subnet};

    use super::*;
    use crate::runtime::fake::FakeRuntime;

    fn bridge(gateway: [u8; 4], prefix_len: u8) -> NetworkRecord {
        let gateway = gateway.into();
        NetworkRecord {
            version: 1,
            name: DEFAULT_NETWORK.into(),
            id: "n".repeat(64),
            bridge: "moor0".into(),
            subnet: Subnet::new(gateway, prefix_len).expect("subnet"),
            gateway,
            labels: Default::default(),
            created: None,
            internal: false,
            ip_range: None,
        }
    }

    #[test]
    fn a_container_drifts_from_the_run_dir_and_bridge_it_was_started_under() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut shared = Shared::for_tests(dir.path(), Arc::new(FakeRuntime::default()));
        shared.network = Some(bridge([172, 30, 0, 1], 16));
        let spec = ContainerSpec {
            endpoint: Some(Endpoint {
                network: DEFAULT_NETWORK.into(),
                network_id: "n".repeat(64),
                bridge: "moor0".into(),
                ip: [172, 30, 0, 2].into(),
                prefix_len: 16,
                gateway: [172, 30, 0, 1].into(),
                internal: false,
            }),
            ..ContainerSpec::default()
        };
        let mut rec = ContainerRecord::new("a".repeat(64), "c".into(), spec, chrono::Utc::now());
        assert!(
            shared.drift(&rec).is_empty(),
            "no settings recorded: no drift"
        );
        rec.settings = Some(shared.current_settings(&rec.spec));
        assert!(shared.drift(&rec).is_empty(), "started now: no drift");
        let old_run = shared.layout.run_dir.clone();
        shared.layout.run_dir = dir.path().join("run-b");
        shared.network = Some(bridge([10, 88, 0, 1], 24));
        let drift = shared.drift(&rec);
        let listed: Vec<_> = drift
            .iter()
            .map(|d| (d.setting.as_str(), d.recorded.as_str(), d.current.as_str()))
            .collect();
        let (old, new) = (text(&old_run), text(&shared.layout.run_dir));
        assert_eq!(
            listed,
            [
                ("exec-root", old.as_str(), new.as_str()),
                ("bip", "172.30.0.1/16", "10.88.0.1/24"),
            ]
        );
        // Managed under its recorded run directory.
        assert_eq!(shared.layout_of(&rec).run_dir, old_run);
        assert!(shared.run_container_dir(&rec).starts_with(&old_run));
    }
}
