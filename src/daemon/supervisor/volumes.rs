//! The Supervisor's volumes: it owns them as it owns names, so creating one, the in-use
//! check of a removal and a container's create or removal never interleave. A record's write
//! commits on the Supervisor's thread and is flushed by the store's flush thread
//! (`daemon::durable`): an answer, and a removed volume's data removal, wait for that flush
//! without holding the thread.

use std::path::{Path, PathBuf};

use actix::prelude::*;
use chrono::Utc;
use moor_state::record::MountKind;
use moor_state::volume::{self, VolumeRecord, ANONYMOUS_LABEL, VOLUME_RECORD_VERSION};
use moor_state::ContainerSpec;
use tracing::{info, warn};

use super::{new_id, once_durable, Supervisor};
use crate::daemon::error::ContainerError;
use crate::daemon::messages::*;

/// A volume's directory, `<root>/volumes/<name>` (its data in `_data`, as Docker's).
pub fn volume_dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name)
}

/// At daemon start, the volumes tree against the volume directories. A store that opened
/// normally holds every volume: a directory without a record is what an interrupted create
/// (an empty directory) or removal (the record gone, the data not yet) left, and is removed.
/// A store rebuilt from spec files has lost its volumes tree: each directory gets its record
/// back (anonymous when its name is a 64-hex id, as moor names them), so no data is lost.
pub fn on_open(store: &moor_state::store::Store, root: &Path, rebuilt: bool) {
    let Ok(entries) = std::fs::read_dir(root.join("volumes")) else {
        return;
    };
    let volumes = match store.volumes() {
        Ok(v) => v,
        Err(e) => return warn!(error = %e, "cannot open the volumes tree"),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !valid_name(&name) || !matches!(volumes.get(&name), Ok(None)) {
            continue;
        }
        if rebuilt {
            let anonymous = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            let mut labels = std::collections::BTreeMap::new();
            if anonymous {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
            }
            let rec = VolumeRecord {
                version: VOLUME_RECORD_VERSION,
                name: name.clone(),
                created_at: Utc::now(),
                labels,
                anonymous,
            };
            match volumes.put(&rec) {
                Ok(()) => warn!(volume = %name, "volume record restored from its directory"),
                Err(e) => warn!(volume = %name, error = %e, "volume record not restored"),
            }
        } else {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    warn!(volume = %name, "removed a volume directory without a record (an interrupted create or removal)")
                }
                Err(e) => {
                    warn!(volume = %name, error = %e, "volume directory without a record not removed")
                }
            }
        }
    }
}

/// Docker's volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Supervisor {
    /// The volume `name` (None: a new anonymous one), created with its data directory when
    /// missing; with the counter of its record's write when it is new.
    fn volume(
        &self,
        name: Option<String>,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<(VolumeRecord, Option<u64>), ContainerError> {
        let store = self.shared.store.volumes()?;
        let anonymous = name.is_none();
        let name = name.unwrap_or_else(new_id);
        if !valid_name(&name) {
            return Err(ContainerError::BadRequest(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        if let Some(existing) = store.get(&name)? {
            return Ok((existing, None));
        }
        let data = volume_dir(&self.shared.layout.root, &name).join("_data");
        std::fs::create_dir_all(&data).map_err(|source| ContainerError::Io {
            what: "create",
            path: data.clone(),
            source,
        })?;
        crate::daemon::fault::point("volume-dir-created");
        let mut labels = labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let rec = VolumeRecord {
            version: VOLUME_RECORD_VERSION,
            name,
            created_at: Utc::now(),
            labels,
            anonymous,
        };
        let seq = store.put_unflushed(&rec)?;
        info!(volume = %rec.name, "volume created");
        Ok((rec, Some(seq)))
    }

    /// Gives every volume mount of `spec` its volume (created when missing) and host path.
    pub(super) fn attach_volumes(&self, spec: &mut ContainerSpec) -> Result<(), ContainerError> {
        let root = self.shared.layout.root.clone();
        for m in spec
            .mounts
            .iter_mut()
            .filter(|m| m.kind == MountKind::Volume)
        {
            let name = (!m.name.is_empty()).then(|| m.name.clone());
            // Durable with the container's record, whose write comes after.
            let (rec, _) = self.volume(name, Default::default())?;
            m.source = volume_dir(&root, &rec.name)
                .join("_data")
                .display()
                .to_string();
            m.name = rec.name;
        }
        Ok(())
    }

    /// Removes the volume `name`'s record, then, once that is durable, its directory off
    /// this thread. Refused while a container uses it. Returns the bytes its data held and
    /// the counter of the record's removal.
    fn remove_volume(&mut self, name: &str) -> Result<(u64, u64), ContainerError> {
        let store = self.shared.store.volumes()?;
        if store.get(name)?.is_none() {
            return Err(ContainerError::NoSuchVolume(name.into()));
        }
        let records = self.list()?;
        let ids: Vec<String> = volume::users(&records, name).map(String::from).collect();
        if !ids.is_empty() {
            return Err(ContainerError::VolumeInUse {
                name: name.into(),
                ids,
            });
        }
        let seq = store.remove_unflushed(name)?;
        let dir = volume_dir(&self.shared.layout.root, name);
        let size = dir_size(&dir);
        let volume = name.to_string();
        let flushed = self.shared.durable.flushed(seq);
        actix::spawn(async move {
            if let Err(e) = flushed.await {
                return warn!(volume = %volume, error = %e, "volume data kept: its removal is not durable");
            }
            crate::daemon::fault::point("volume-record-removed");
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
            if let Ok(Err(e)) = removed {
                warn!(volume = %volume, error = %e, "volume data not removed");
            }
        });
        info!(volume = %name, "volume removed");
        Ok((size, seq))
    }
}

/// The bytes of the files under `dir` (what a prune reports as reclaimed).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => total += entry.metadata().map_or(0, |m| m.len()),
                Err(_) => {}
            }
        }
    }
    total
}

impl Handler<CreateVolume> for Supervisor {
    type Result = ResponseFuture<Result<VolumeRecord, ContainerError>>;

    fn handle(&mut self, msg: CreateVolume, _: &mut Context<Self>) -> Self::Result {
        let made = self.volume(msg.name, msg.labels);
        once_durable(&self.shared, made)
    }
}

impl Handler<ListVolumes> for Supervisor {
    type Result = Result<Vec<VolumeRecord>, ContainerError>;

    fn handle(&mut self, _: ListVolumes, _: &mut Context<Self>) -> Self::Result {
        Ok(self.shared.store.volumes()?.list()?)
    }
}

impl Handler<InspectVolume> for Supervisor {
    type Result = Result<VolumeRecord, ContainerError>;

    fn handle(&mut self, msg: InspectVolume, _: &mut Context<Self>) -> Self::Result {
        let found = self.shared.store.volumes()?.get(&msg.0)?;
        found.ok_or(ContainerError::NoSuchVolume(msg.0))
    }
}

impl Handler<RemoveVolume> for Supervisor {
    type Result = ResponseFuture<Result<(), ContainerError>>;

    fn handle(&mut self, msg: RemoveVolume, _: &mut Context<Self>) -> Self::Result {
        let removed = match self.remove_volume(&msg.name) {
            // Docker's force: a missing volume is no error.
            Err(ContainerError::NoSuchVolume(_)) if msg.force => Ok(((), None)),
            other => other.map(|(_, seq)| ((), Some(seq))),
        };
        once_durable(&self.shared, removed)
    }
}

/// The volumes a prune removed and the bytes their data held.
type Pruned = (Vec<String>, u64);

impl Handler<PruneVolumes> for Supervisor {
    type Result = ResponseFuture<Result<Pruned, ContainerError>>;

    fn handle(&mut self, msg: PruneVolumes, _: &mut Context<Self>) -> Self::Result {
        let pruned = self.prune_volumes(msg);
        once_durable(&self.shared, pruned)
    }
}

impl Supervisor {
    /// A prune up to its last committed write.
    fn prune_volumes(
        &mut self,
        msg: PruneVolumes,
    ) -> Result<(Pruned, Option<u64>), ContainerError> {
        let records = self.list()?;
        let candidates: Vec<String> = self
            .shared
            .store
            .volumes()?
            .list()?
            .into_iter()
            .filter(|v| msg.all || v.anonymous)
            .filter(|v| volume::users(&records, &v.name).next().is_none())
            .map(|v| v.name)
            .collect();
        let (mut removed, mut space, mut last) = (Vec::new(), 0, None);
        for name in candidates {
            let (size, seq) = self.remove_volume(&name)?;
            (space, last) = (space + size, Some(seq));
            removed.push(name);
        }
        Ok(((removed, space), last))
    }
}

impl Handler<RemoveAnonymousVolumes> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RemoveAnonymousVolumes, _: &mut Context<Self>) {
        self.remove_anonymous(msg.0);
    }
}

impl Supervisor {
    /// Removes those of `names` that are anonymous volumes no container uses (`rm -v`,
    /// `--rm`); a failure is logged and the volume kept.
    pub(super) fn remove_anonymous(&mut self, names: Vec<String>) {
        let Ok(store) = self.shared.store.volumes() else {
            return;
        };
        for name in names {
            let anonymous = store.get(&name).ok().flatten().is_some_and(|v| v.anonymous);
            if anonymous {
                if let Err(e) = self.remove_volume(&name) {
                    warn!(volume = %name, error = %e, "anonymous volume kept");
                }
            }
        }
    }
}
