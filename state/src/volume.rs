//! Volumes of the `local` driver: records in the `volumes` tree (name -> JSON of
//! [`VolumeRecord`]), sharing the store's database and its write counter (`store::counted`). Their data
//! lives under `<root>/volumes/<name>/_data`, as Docker's; whether one is in use is read
//! from the container records (their mounts), by the Supervisor that serialises both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::Tree;
use thiserror::Error;

use crate::record::{ContainerRecord, MountKind, Timestamp};

/// Name of the tree.
pub const VOLUMES_TREE: &str = "volumes";

/// Version of [`VolumeRecord`]'s shape.
pub const VOLUME_RECORD_VERSION: u32 = 1;

/// The label Docker puts on an anonymous volume.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// Shape version ([`VOLUME_RECORD_VERSION`]).
    pub version: u32,
    /// Its name (64 hex for an anonymous volume).
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Labels given at create.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for one container's `-v /DST` (removed by `rm -v`, pruned by default).
    #[serde(default)]
    pub anonymous: bool,
}

/// What can go wrong with the volumes tree.
#[derive(Debug, Error)]
pub enum VolumeStoreError {
    /// sled failed to read.
    #[error("reading the volume store failed")]
    Read(#[source] sled::Error),
    /// sled failed to write or flush.
    #[error("writing the volume store failed")]
    Write(#[source] sled::Error),
    /// A stored record is not valid JSON for [`VolumeRecord`].
    #[error("the record of volume {name} cannot be decoded")]
    Decode {
        /// The key.
        name: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
}

/// The `volumes` tree.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    /// The store's write counter and flusher.
    pub(crate) counted: crate::store::Counted,
    /// name -> JSON of [`VolumeRecord`].
    pub(crate) tree: Tree,
}

fn decode(name: &[u8], bytes: &[u8]) -> Result<VolumeRecord, VolumeStoreError> {
    serde_json::from_slice(bytes).map_err(|source| VolumeStoreError::Decode {
        name: String::from_utf8_lossy(name).into_owned(),
        source,
    })
}

impl VolumeStore {
    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<VolumeRecord>, VolumeStoreError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item.map_err(VolumeStoreError::Read)?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// The volume with this name.
    pub fn get(&self, name: &str) -> Result<Option<VolumeRecord>, VolumeStoreError> {
        let raw = self.tree.get(name).map_err(VolumeStoreError::Read)?;
        raw.map(|v| decode(name.as_bytes(), &v)).transpose()
    }

    /// Writes a record, then flushes.
    pub fn put(&self, rec: &VolumeRecord) -> Result<(), VolumeStoreError> {
        self.put_unflushed(rec)?;
        self.counted.flush().map_err(VolumeStoreError::Write)
    }

    /// [`VolumeStore::put`] without the flush: returns the write's counter (see
    /// `store::counted`).
    pub fn put_unflushed(&self, rec: &VolumeRecord) -> Result<u64, VolumeStoreError> {
        // Strings, a map and a timestamp always serialize.
        let bytes = serde_json::to_vec(rec).unwrap_or_default();
        self.counted
            .write_plain(&self.tree, |t| {
                t.insert(rec.name.as_bytes(), bytes.as_slice()).map(drop)
            })
            .map_err(VolumeStoreError::Write)
    }

    /// Removes a record (none: nothing to do), then flushes.
    pub fn remove(&self, name: &str) -> Result<(), VolumeStoreError> {
        self.remove_unflushed(name)?;
        self.counted.flush().map_err(VolumeStoreError::Write)
    }

    /// [`VolumeStore::remove`] without the flush: returns the write's counter.
    pub fn remove_unflushed(&self, name: &str) -> Result<u64, VolumeStoreError> {
        self.counted
            .write_plain(&self.tree, |t| t.remove(name.as_bytes()).map(drop))
            .map_err(VolumeStoreError::Write)
    }
}

/// The containers (ids) among `records` that mount the volume `name`.
pub fn users<'a>(records: &'a [ContainerRecord], name: &'a str) -> impl Iterator<Item = &'a str> {
    records
        .iter()
        .filter(move |r| {
            r.spec
                .mounts
                .iter()
                .any(|m| m.kind == MountKind::Volume && m.name == name)
        })
        .map(|r| r.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::MountSpec;
    use crate::store::Store;

    #[test]
    fn volumes_round_trip_and_users_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let vols = store.volumes().unwrap();
        let rec = VolumeRecord {
            version: VOLUME_RECORD_VERSION,
            name: "data".into(),
            created_at: chrono::Utc::now(),
            labels: BTreeMap::new(),
            anonymous: false,
        };
        vols.put(&rec).unwrap();
        assert_eq!(vols.get("data").unwrap(), Some(rec.clone()));
        assert_eq!(vols.list().unwrap(), vec![rec]);
        let mut c = ContainerRecord::new(
            "a".repeat(64),
            "c".into(),
            Default::default(),
            chrono::Utc::now(),
        );
        std::sync::Arc::make_mut(&mut c.spec)
            .mounts
            .push(MountSpec {
                kind: MountKind::Volume,
                name: "data".into(),
                ..MountSpec::default()
            });
        let all = [c];
        assert_eq!(users(&all, "data").count(), 1);
        assert_eq!(users(&all, "other").count(), 0);
        vols.remove("data").unwrap();
        assert_eq!(vols.get("data").unwrap(), None);
    }
}
