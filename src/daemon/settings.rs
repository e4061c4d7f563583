//! The daemon settings each container records (README "Changing daemon options"): filled
//! at create, refreshed at each start, filled at the first start-up of a daemon that finds
//! a record without them; and the drift between those and the daemon's current settings,
//! shown by inspect and `ps`.

use std::path::PathBuf;

use moor_state::network::{NetworkRecord, DEFAULT_NETWORK};
use moor_state::settings::{BridgeSettings, DaemonSettings, Drift};
use moor_state::{ContainerRecord, ContainerSpec};

use crate::daemon::Shared;
use crate::host::layout::Layout;
use crate::runtime::interface::{profile, Runtimes};

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
    pub fn current_settings(&self, spec: &ContainerSpec) -> DaemonSettings {
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
        rec.settings
            .clone()
            .unwrap_or_else(|| self.current_settings(&rec.spec))
    }

    /// Every setting `rec` runs under that differs from what a container started now
    /// would get (empty: no drift). A container off the default bridge compares no bridge.
    pub fn drift(&self, rec: &ContainerRecord) -> Vec<Drift> {
        self.drift_check().drift(rec)
    }

    /// A drift check for many records (a list): the current settings are made once per
    /// runtime kind, not once per record.
    pub fn drift_check(&self) -> DriftCheck<'_> {
        DriftCheck {
            shared: self,
            current: Vec::new(),
            bridge: self.network.as_ref().map(bridge_of),
        }
    }
}

/// [`Shared::drift`] for many records.
pub struct DriftCheck<'a> {
    /// The daemon.
    shared: &'a Shared,
    /// The current settings of each runtime kind met so far (no network).
    current: Vec<(moor_state::record::RuntimeKind, DaemonSettings)>,
    /// The default bridge now.
    bridge: Option<BridgeSettings>,
}

impl DriftCheck<'_> {
    /// The drift of `rec` ([`Shared::drift`]).
    pub fn drift(&mut self, rec: &ContainerRecord) -> Vec<Drift> {
        let Some(recorded) = &rec.settings else {
            return Vec::new();
        };
        let kind = rec.spec.runtime;
        let at = match self.current.iter().position(|(k, _)| *k == kind) {
            Some(at) => at,
            None => {
                let spec = ContainerSpec {
                    runtime: kind,
                    ..ContainerSpec::default()
                };
                self.current
                    .push((kind, self.shared.current_settings(&spec)));
                self.current.len() - 1
            }
        };
        let mut current = self.current[at].1.clone();
        current.network = recorded.network.as_ref().and(self.bridge.clone());
        recorded.drift(&current)
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
