//! The store's schema version and its forward migrations.
//!
//! The version lives in the `meta` tree under `schema_version`, as a big-endian `u32`.
//! At open, [`migrate`] stamps a new store, runs every step from the stored version up to
//! [`SCHEMA_VERSION`] in order (stamping after each, so a crash resumes at the right step),
//! and refuses a store written by a newer build without touching it.
//!
//! The version is also kept as decimal text in [`VERSION_FILE`] inside the store directory,
//! written (atomically) before the migration steps run, so it names the version a store is
//! at or on its way to. A newer store is refused on that file *before* sled opens it: sled
//! rewrites its snapshot file at every open, so only a check that never opens sled leaves a
//! newer store byte-identical. sled's stamp stays authoritative (a store without the file,
//! written by 0.1.0, is checked on the stamp).

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::store::StoreError;

/// The schema version this build writes. Older stores are migrated forward at open.
pub const SCHEMA_VERSION: u32 = 2;

/// Name of the tree holding store-wide metadata.
pub const META_TREE: &str = "meta";

/// Key of the schema version in [`META_TREE`].
pub const SCHEMA_KEY: &[u8] = b"schema_version";

/// One forward migration: rewrites the store from the previous version to the next.
/// Must be safe to run again after a crash part-way through.
pub type Step = fn(&sled::Db) -> Result<(), StoreError>;

/// `STEPS[n]` migrates version `n` to version `n + 1`. Version 0 is a store without a
/// stamp (new, or written before the version existed); version 1 only adds the stamp;
/// version 2 (0.2.0) may hold records a version-1 build cannot read (the `restarting` state,
/// the network and port fields, the `networks` tree). To add version 3: append its step here
/// and bump [`SCHEMA_VERSION`].
pub const STEPS: &[Step] = &[to_v1, to_v2];

const _: () = assert!(STEPS.len() == SCHEMA_VERSION as usize);

/// Version 0 to 1: nothing to rewrite; the stamp written by [`migrate_with`] is the change.
fn to_v1(_db: &sled::Db) -> Result<(), StoreError> {
    Ok(())
}

/// Version 1 to 2: every version-1 record reads as it is (the new fields default); the stamp
/// is the change, so that a version-1 build (0.1.0) refuses the store instead of failing on
/// a record it cannot read, or dropping the fields it does not know when it rewrites one.
fn to_v2(_db: &sled::Db) -> Result<(), StoreError> {
    Ok(())
}

/// The version stamped in `db`, or 0 when there is none.
pub fn stored_version(db: &sled::Db) -> Result<u32, StoreError> {
    let meta = db
        .open_tree(META_TREE)
        .map_err(|source| StoreError::Read { source })?;
    let raw = meta
        .get(SCHEMA_KEY)
        .map_err(|source| StoreError::Read { source })?;
    match raw {
        None => Ok(0),
        Some(bytes) => {
            let arr: [u8; 4] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::SchemaUnreadable { len: bytes.len() })?;
            Ok(u32::from_be_bytes(arr))
        }
    }
}

fn stamp(db: &sled::Db, version: u32) -> Result<(), StoreError> {
    let meta = db
        .open_tree(META_TREE)
        .map_err(|source| StoreError::Write { source })?;
    meta.insert(SCHEMA_KEY, &version.to_be_bytes())
        .map_err(|source| StoreError::Write { source })?;
    db.flush().map_err(|source| StoreError::Write { source })?;
    Ok(())
}

/// The file in the store directory repeating the schema version (see the module header).
pub const VERSION_FILE: &str = "moor-schema-version";

/// The version in [`VERSION_FILE`] of the store at `dir`; `None` when the file is missing or
/// unreadable (sled's stamp decides then).
pub fn version_on_disk(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join(VERSION_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// [`StoreError::SchemaTooNew`] when [`VERSION_FILE`] names a version above `supported`.
/// Reads one file: never opens sled.
pub fn refuse_newer_on_disk(dir: &Path, supported: u32) -> Result<(), StoreError> {
    match version_on_disk(dir) {
        Some(found) if found > supported => Err(StoreError::SchemaTooNew { found, supported }),
        _ => Ok(()),
    }
}

/// Writes `version` to [`VERSION_FILE`] in `dir` (temp file, fsync, rename) unless it
/// holds it already.
pub fn write_version_file(dir: &Path, version: u32) -> Result<(), StoreError> {
    if version_on_disk(dir) == Some(version) {
        return Ok(());
    }
    let path = dir.join(VERSION_FILE);
    let tmp = dir.join(format!("{VERSION_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{version}")?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|source| StoreError::VersionFile {
        path: path.clone(),
        source,
    })
}

/// Brings `db` to [`SCHEMA_VERSION`] with [`STEPS`]; refuses a newer store untouched.
pub fn migrate(db: &sled::Db) -> Result<(), StoreError> {
    migrate_with(db, STEPS)
}

/// The stored version, or [`StoreError::SchemaTooNew`] if it is above `supported`.
/// Only reads: a newer store is never rewritten.
pub fn refuse_newer(db: &sled::Db, supported: u32) -> Result<u32, StoreError> {
    let found = stored_version(db)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    Ok(found)
}

/// Brings `db` to version `steps.len()`, running `steps[found..]` in order.
pub fn migrate_with(db: &sled::Db, steps: &[Step]) -> Result<(), StoreError> {
    let supported = u32::try_from(steps.len()).unwrap_or(u32::MAX);
    let found = refuse_newer(db, supported)?;
    for (from, step) in (found..).zip(&steps[found as usize..]) {
        step(db).map_err(|source| StoreError::Migration {
            from,
            to: from + 1,
            source: Box::new(source),
        })?;
        stamp(db, from + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        (dir, db)
    }

    /// Records in a tree which steps ran, in order.
    fn log_step(db: &sled::Db, n: u8) -> Result<(), StoreError> {
        let log = db.open_tree("log").unwrap();
        let k = log.len() as u64;
        log.insert(k.to_be_bytes(), &[n]).unwrap();
        Ok(())
    }

    fn step1(db: &sled::Db) -> Result<(), StoreError> {
        log_step(db, 1)
    }
    fn step2(db: &sled::Db) -> Result<(), StoreError> {
        log_step(db, 2)
    }
    fn step3(db: &sled::Db) -> Result<(), StoreError> {
        log_step(db, 3)
    }
    fn failing(_db: &sled::Db) -> Result<(), StoreError> {
        Err(StoreError::SchemaUnreadable { len: 99 })
    }

    fn ran(db: &sled::Db) -> Vec<u8> {
        let log = db.open_tree("log").unwrap();
        log.iter().map(|kv| kv.unwrap().1[0]).collect()
    }

    #[test]
    fn new_store_is_stamped_with_current_version() {
        let (_dir, db) = temp_db();
        migrate(&db).unwrap();
        assert_eq!(stored_version(&db).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn older_store_runs_remaining_steps_in_order() {
        let (_dir, db) = temp_db();
        stamp(&db, 1).unwrap();
        migrate_with(&db, &[step1, step2, step3]).unwrap();
        assert_eq!(ran(&db), vec![2, 3]);
        assert_eq!(stored_version(&db).unwrap(), 3);
        // Already current: nothing runs again.
        migrate_with(&db, &[step1, step2, step3]).unwrap();
        assert_eq!(ran(&db), vec![2, 3]);
    }

    #[test]
    fn failed_step_keeps_the_last_good_version() {
        let (_dir, db) = temp_db();
        let err = migrate_with(&db, &[step1, failing, step3]).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { from: 1, to: 2, .. }),
            "{err:?}"
        );
        assert_eq!(stored_version(&db).unwrap(), 1);
        assert_eq!(ran(&db), vec![1]);
    }

    #[test]
    fn newer_store_is_refused_and_left_as_is() {
        let (_dir, db) = temp_db();
        stamp(&db, SCHEMA_VERSION + 1).unwrap();
        let err = migrate(&db).unwrap_err();
        match err {
            StoreError::SchemaTooNew { found, supported } => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(stored_version(&db).unwrap(), SCHEMA_VERSION + 1);
    }

    #[test]
    fn the_version_file_refuses_a_newer_store_and_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(version_on_disk(dir.path()), None);
        refuse_newer_on_disk(dir.path(), SCHEMA_VERSION).unwrap();
        write_version_file(dir.path(), SCHEMA_VERSION).unwrap();
        assert_eq!(version_on_disk(dir.path()), Some(SCHEMA_VERSION));
        refuse_newer_on_disk(dir.path(), SCHEMA_VERSION).unwrap();
        write_version_file(dir.path(), SCHEMA_VERSION + 1).unwrap();
        let err = refuse_newer_on_disk(dir.path(), SCHEMA_VERSION).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, supported }
                if (found, supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)),
            "{err:?}"
        );
        fs::write(dir.path().join(VERSION_FILE), b"two\n").unwrap();
        assert_eq!(version_on_disk(dir.path()), None);
    }

    #[test]
    fn garbled_stamp_is_unreadable() {
        let (_dir, db) = temp_db();
        let meta = db.open_tree(META_TREE).unwrap();
        meta.insert(SCHEMA_KEY, b"one").unwrap();
        let err = migrate(&db).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaUnreadable { len: 3 }),
            "{err:?}"
        );
        assert!(err.is_corruption());
    }
}
