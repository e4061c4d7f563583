//! The sled store: names, renames, removal, unreadable records, corrupt stores moved
//! aside, schema versions, and a write-then-reopen property.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::{id, moved_aside, record, snapshot};
use moor_state::schema::{META_TREE, SCHEMA_KEY, SCHEMA_VERSION};
use moor_state::store::{Store, StoreError, OPENED_BY_SLED};
use moor_state::State;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

#[test]
fn name_in_use_names_the_holder() {
    let (_dir, store) = temp_store();
    store.create(&record(1, "web")).unwrap();
    let err = store.create(&record(2, "web")).unwrap_err();
    match err {
        StoreError::NameInUse { name, id: holder } => {
            assert_eq!(name, "web");
            assert_eq!(holder, id(1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.get(&id(2)).unwrap(), None, "nothing half-written");
}

#[test]
fn id_in_use_is_refused() {
    let (_dir, store) = temp_store();
    store.create(&record(1, "a")).unwrap();
    let err = store.create(&record(1, "b")).unwrap_err();
    assert!(
        matches!(err, StoreError::IdInUse { ref id } if *id == common::id(1)),
        "{err:?}"
    );
    assert_eq!(
        store.id_by_name("b").unwrap(),
        None,
        "the name was not taken"
    );
}

#[test]
fn rename_moves_the_name_and_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = Store::open(&path).unwrap();
        store.create(&record(1, "old")).unwrap();
        store.create(&record(2, "other")).unwrap();
        store.rename(&id(1), "new").unwrap();
        let err = store.rename(&id(1), "other").unwrap_err();
        assert!(matches!(err, StoreError::NameInUse { ref id, .. } if *id == common::id(2)));
        let err = store.rename(&id(9), "x").unwrap_err();
        assert!(matches!(err, StoreError::NoSuchContainer { .. }), "{err:?}");
        // Renaming to its own name is a no-op, not a conflict.
        store.rename(&id(1), "new").unwrap();
    }
    let store = common::reopen(&path);
    assert_eq!(store.id_by_name("new").unwrap(), Some(id(1)));
    assert_eq!(store.id_by_name("old").unwrap(), None);
    assert_eq!(store.get(&id(1)).unwrap().unwrap().name, "new");
    store.create(&record(3, "old")).unwrap();
}

#[test]
fn remove_frees_the_name() {
    let (_dir, store) = temp_store();
    store.create(&record(1, "web")).unwrap();
    store.remove(&id(1)).unwrap();
    assert_eq!(store.get(&id(1)).unwrap(), None);
    assert_eq!(store.id_by_name("web").unwrap(), None);
    store.create(&record(2, "web")).unwrap();
    assert_eq!(store.id_by_name("web").unwrap(), Some(id(2)));
    let err = store.remove(&id(1)).unwrap_err();
    assert!(matches!(err, StoreError::NoSuchContainer { .. }), "{err:?}");
}

#[test]
fn every_committed_write_changes_the_generation_and_a_refused_one_does_not() {
    let (_dir, store) = temp_store();
    let mut seen = vec![store.generation()];
    let mut changed = |store: &Store, what: &str| {
        let g = store.generation();
        assert!(!seen.contains(&g), "{what} left the generation at {g}");
        seen.push(g);
    };
    let mut rec = record(1, "web");
    store.create(&rec).unwrap();
    changed(&store, "create");
    rec.state = State::Starting;
    store.put(&rec).unwrap();
    changed(&store, "put");
    store.rename(&id(1), "api").unwrap();
    changed(&store, "rename");
    store.remove(&id(1)).unwrap();
    changed(&store, "remove");
    let before = store.generation();
    store.create(&record(2, "a")).unwrap();
    let after = store.generation();
    assert!(store.create(&record(3, "a")).is_err(), "name in use");
    assert!(store.put(&record(9, "ghost")).is_err(), "no such container");
    assert_eq!(store.generation(), after, "a refused write changes nothing");
    assert_ne!(before, after);
}

#[test]
fn put_overwrites_but_never_renames() {
    let (_dir, store) = temp_store();
    let mut rec = record(1, "web");
    store.create(&rec).unwrap();
    rec.state = State::Starting;
    store.put(&rec).unwrap();
    assert_eq!(store.get(&id(1)).unwrap().unwrap().state, State::Starting);
    rec.name = "sneaky".into();
    let err = store.put(&rec).unwrap_err();
    assert!(matches!(err, StoreError::NameMismatch { .. }), "{err:?}");
    let err = store.put(&record(5, "ghost")).unwrap_err();
    assert!(matches!(err, StoreError::NoSuchContainer { .. }), "{err:?}");
}

#[test]
fn list_is_sorted_and_skips_unreadable_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = Store::open(&path).unwrap();
        store.create(&record(3, "c")).unwrap();
        store.create(&record(1, "a")).unwrap();
        store.create(&record(2, "b")).unwrap();
    }
    common::wait_unlocked(&path);
    {
        let db = sled::open(&path).unwrap();
        let containers = db.open_tree("containers").unwrap();
        containers.insert(id(7), &b"{not json"[..]).unwrap();
        let mut newer = serde_json::to_value(record(8, "h")).unwrap();
        newer["version"] = 2.into();
        containers
            .insert(id(8), serde_json::to_vec(&newer).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let store = common::reopen(&path);
    let ids: Vec<String> = store.list().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![id(1), id(2), id(3)]);
    let (good, bad) = store.list_with_errors().unwrap();
    assert_eq!(good.len(), 3);
    assert_eq!(bad.len(), 2);
    assert!(
        matches!(&bad[0], (i, StoreError::Decode { .. }) if *i == id(7)),
        "{bad:?}"
    );
    assert!(
        matches!(&bad[1], (i, StoreError::RecordTooNew { found: 2, supported: 1, .. }) if *i == id(8)),
        "{bad:?}"
    );
    assert!(matches!(
        store.get(&id(8)),
        Err(StoreError::RecordTooNew { .. })
    ));
    // An unreadable record can still be removed.
    store.remove(&id(7)).unwrap();
    assert_eq!(store.list_with_errors().unwrap().1.len(), 1);
}

/// A list after writes decodes only the records whose bytes changed: an unchanged record is
/// the last list's (shown here by a marker the store does not hold), a changed, new or
/// removed one is as the store has it, and a record marked changed is decoded again.
#[test]
fn a_list_reuses_the_records_whose_bytes_did_not_change() {
    let (_dir, store) = temp_store();
    for (n, name) in [(1, "a"), (2, "b"), (3, "c")] {
        store.create(&record(n, name)).unwrap();
    }
    let ((mut records, mut stored), bad) = store.list_stored().unwrap();
    assert!(bad.is_empty());
    // Markers only a reused record can carry: the store holds restart_count 0 for each.
    for rec in records.iter_mut() {
        rec.restart_count = 99;
    }
    stored[2].changed();
    let mut changed = record(2, "b");
    changed.manually_stopped = true;
    store.put(&changed).unwrap();
    store.remove(&id(1)).unwrap();
    store.create(&record(4, "d")).unwrap();
    let (again, bytes) = store.list_reusing(&records, &stored).unwrap();
    let seen: Vec<(String, u32, bool)> = again
        .iter()
        .map(|r| (r.id.clone(), r.restart_count, r.manually_stopped))
        .collect();
    assert_eq!(
        seen,
        [(id(2), 0, true), (id(3), 0, false), (id(4), 0, false)]
    );
    assert_eq!(bytes.len(), again.len());
    // What that list read is reused by the next one: nothing was written since.
    let mut marked = again.clone();
    marked[1].restart_count = 7;
    let (third, _) = store.list_reusing(&marked, &bytes).unwrap();
    assert_eq!(
        third[1].restart_count, 7,
        "the unchanged record was not decoded again"
    );
    assert_eq!(store.list().unwrap(), again);
}

/// Fills a store with a few records, each created then updated.
fn fill(path: &Path) {
    let store = Store::open(path).unwrap();
    for n in 0..20 {
        let mut rec = record(n, &format!("c{n}"));
        store.create(&rec).unwrap();
        rec.state = State::Starting;
        store.put(&rec).unwrap();
    }
}

/// Overwrites `len` bytes in the middle of `file`.
fn garble(file: &Path, byte: u8, len: u64) {
    let size = std::fs::metadata(file).unwrap().len();
    assert!(size > 8, "{file:?} is {size} bytes");
    let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(size / 2)).unwrap();
    let len = len.min(size - size / 2) as usize;
    f.write_all(&vec![byte; len]).unwrap();
    f.sync_all().unwrap();
}

/// A fresh store at `<tmp>/store`, filled, then damaged by `damage`.
fn damaged(damage: &dyn Fn(&Path)) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    fill(&path);
    common::wait_unlocked(&path);
    damage(&path);
    (dir, path)
}

/// A damaged store: `open` refuses it as corrupt; `open_or_move_aside` keeps its files
/// as they were found under a new name and returns a fresh, working store.
fn assert_moved_aside(damage: &dyn Fn(&Path)) {
    let (_dir, path) = damaged(damage);
    let err = Store::open(&path).unwrap_err();
    assert!(err.is_corruption(), "{err:?}");

    let (_dir, path) = damaged(damage);
    let before = snapshot(&path);
    let (store, moved) = Store::open_or_move_aside(&path).unwrap();
    let moved = moved.expect("store moved aside");
    assert_eq!(moved_aside(&path), vec![moved.clone()]);
    let name = moved.file_name().unwrap().to_string_lossy().into_owned();
    let stamp = name.rsplit(".corrupt-").next().unwrap();
    assert_eq!(stamp.len(), "20261127T160000Z".len(), "{name}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
        "{name}"
    );
    assert_eq!(
        snapshot(&moved),
        before,
        "the files are kept as they were found"
    );
    assert!(moved.join(OPENED_BY_SLED).join("db").is_file());
    assert!(store.list().unwrap().is_empty());
    store.create(&record(1, "again")).unwrap();
    drop(store);
    let store = common::reopen(&path);
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(moved_aside(&path).len(), 1);
}

#[test]
fn garbled_db_file_is_moved_aside() {
    assert_moved_aside(&|path| garble(&path.join("db"), 0xAB, 64));
}

#[test]
fn garbled_conf_file_is_moved_aside() {
    assert_moved_aside(&|path| garble(&path.join("conf"), 0xFF, 4));
    assert_moved_aside(&|path| garble(&path.join("conf"), b'x', 4));
}

#[test]
fn schema_too_new_is_refused_and_not_moved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    fill(&path);
    common::wait_unlocked(&path);
    let newer = SCHEMA_VERSION + 1;
    {
        let db = sled::open(&path).unwrap();
        let meta = db.open_tree(META_TREE).unwrap();
        meta.insert(SCHEMA_KEY, &newer.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    common::wait_unlocked(&path);
    for result in [
        Store::open(&path).map(drop),
        Store::open_or_move_aside(&path).map(drop),
    ] {
        match result.unwrap_err() {
            StoreError::SchemaTooNew { found, supported } => {
                assert_eq!((found, supported), (newer, SCHEMA_VERSION));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(moved_aside(&path).is_empty());
    let db = sled::open(&path).unwrap();
    let stamp = db.open_tree(META_TREE).unwrap().get(SCHEMA_KEY).unwrap();
    assert_eq!(
        stamp.as_deref(),
        Some(&newer.to_be_bytes()[..]),
        "never rewritten"
    );
    assert_eq!(db.open_tree("containers").unwrap().len(), 20);
}

#[test]
fn a_store_in_use_is_not_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let first = Store::open(&path).unwrap();
    first.create(&record(1, "a")).unwrap();
    let err = Store::open_or_move_aside(&path).unwrap_err();
    assert!(!err.is_corruption(), "{err:?}");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(moved_aside(&path).is_empty());
    assert_eq!(first.list().unwrap().len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../proptest-regressions/store.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// A store written then reopened returns exactly what was written.
    #[test]
    fn reopened_store_returns_what_was_written(records in common::arb_records(8)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let store = Store::open(&path).unwrap();
            for rec in &records {
                store.create(rec).unwrap();
            }
        }
        let store = common::reopen(&path);
        let mut want = records.clone();
        want.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let (got, errors) = store.list_with_errors().unwrap();
        prop_assert!(errors.is_empty(), "{:?}", errors);
        prop_assert_eq!(got, want);
        for rec in &records {
            prop_assert_eq!(store.id_by_name(&rec.name).unwrap(), Some(rec.id.clone()));
            prop_assert_eq!(store.get(&rec.id).unwrap(), Some(rec.clone()));
        }
    }
}

#[test]
fn writes_beside_the_containers_are_counted_and_one_flush_makes_them_durable() {
    use moor_state::image::{ImageRecord, IMAGE_RECORD_VERSION};
    use moor_state::network::{NetworkRecord, Subnet, NETWORK_RECORD_VERSION};
    use moor_state::volume::{VolumeRecord, VOLUME_RECORD_VERSION};

    let (dir, store) = temp_store();
    let flusher = store.flusher();
    store.create(&record(1, "box")).unwrap();
    let mut seqs = vec![flusher.committed()];
    let image = ImageRecord {
        version: IMAGE_RECORD_VERSION,
        id: "a".repeat(64),
        repo_tags: Vec::new(),
        created_at: chrono::Utc::now(),
        size: 1,
        config: Default::default(),
        layers: Vec::new(),
        repo_digests: Vec::new(),
        manifest_type: None,
    };
    let images = store.images().unwrap();
    let (tagged, seq) = images.add_unflushed(&image, Some("one:1")).unwrap();
    assert_eq!(tagged.repo_tags, vec!["one:1".to_string()]);
    seqs.push(seq);
    seqs.push(images.untag_unflushed(&image.id, "one:1").unwrap().1);
    let volume = VolumeRecord {
        version: VOLUME_RECORD_VERSION,
        name: "data".into(),
        created_at: chrono::Utc::now(),
        labels: Default::default(),
        anonymous: false,
    };
    seqs.push(store.volumes().unwrap().put_unflushed(&volume).unwrap());
    let subnet = Subnet::parse("10.77.0.0/24").unwrap();
    let network = NetworkRecord {
        version: NETWORK_RECORD_VERSION,
        name: "net".into(),
        id: "b".repeat(64),
        bridge: "moor-test".into(),
        subnet,
        gateway: "10.77.0.1".parse().unwrap(),
        labels: Default::default(),
        created: None,
        internal: false,
        ip_range: None,
    };
    seqs.push(store.networks().unwrap().put_unflushed(&network).unwrap());
    seqs.push(store.rename_unflushed(&id(1), "renamed").unwrap());
    // Each write counts itself, one above the last, and is what a flush must reach.
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(flusher.committed(), *seqs.last().unwrap());
    assert_eq!(flusher.flush().unwrap(), *seqs.last().unwrap());
    drop((images, flusher, store));
    // The witness beside the store agrees with sled (or the open would refuse it). sled
    // lets go of its lock from a background thread after the drop: `reopen` waits for it.
    let store = common::reopen(&dir.path().join("store"));
    let stored = store.images().unwrap().get(&image.id).unwrap().unwrap();
    assert!(stored.repo_tags.is_empty());
    assert_eq!(store.volumes().unwrap().get("data").unwrap(), Some(volume));
    assert_eq!(store.networks().unwrap().get("net").unwrap(), Some(network));
    assert_eq!(store.id_by_name("renamed").unwrap(), Some(id(1)));
}
