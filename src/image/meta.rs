//! Each image's own copy of its record: `<root>/images/<id>/image.json` (names, created,
//! size, config), written atomically whenever the store's record changes. The store is the index,
//! not the only copy: when it is moved aside and rebuilt, the images tree comes back from
//! these files (an image directory without one comes back untagged).

use std::path::Path;

use chrono::{DateTime, Utc};
use moor_state::image::{ImageRecord, ImageStore, IMAGE_RECORD_VERSION};
use moor_state::store::Store;
use tracing::{error, warn};

use super::layers::dirs_layers;
use super::ImageDirs;
use crate::host::atomic::{self, ExitFileError};

/// The metadata file in an image's directory.
pub const META_FILE: &str = "image.json";

impl ImageDirs {
    /// Writes the metadata file of every image in `records` whose file differs.
    pub fn save_records(&self, records: &[ImageRecord]) -> Result<(), ExitFileError> {
        for rec in records {
            let dir = self.dir.join(&rec.id);
            if !dir.is_dir() || read(&dir.join(META_FILE)).as_ref() == Some(rec) {
                continue;
            }
            atomic::write_json(&dir, META_FILE, rec)?;
        }
        Ok(())
    }

    /// The images unpacked under the directory, oldest first: from their metadata files, or
    /// untagged (created = the directory's mtime) when the file is missing or unreadable.
    pub fn load_records(&self) -> Vec<ImageRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !is_image_id(&id) || !self.exists(&id) {
                continue;
            }
            let rec = match read(&entry.path().join(META_FILE)) {
                Some(rec) if rec.id == id => rec,
                _ => {
                    warn!(image = %id, "image metadata missing: restored without a name");
                    untagged(&id, &entry.path())
                }
            };
            out.push(rec);
        }
        out.sort_by_key(|r| r.created_at);
        out
    }
}

fn read(path: &Path) -> Option<ImageRecord> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn is_image_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn untagged(id: &str, dir: &Path) -> ImageRecord {
    let created_at = std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now());
    ImageRecord {
        version: IMAGE_RECORD_VERSION,
        id: id.to_string(),
        repo_tags: Vec::new(),
        created_at,
        size: 0,
        config: Default::default(),
        layers: dirs_layers(dir),
        repo_digests: Vec::new(),
        manifest_type: None,
    }
}

/// Fills an empty images tree from the image directories under `<root>/images/`; a name
/// claimed by two files goes to the newer image. Returns how many images were restored.
pub fn rebuild(images: &ImageStore, root: &Path) -> usize {
    let mut restored = 0;
    for rec in ImageDirs::new(root).load_records() {
        let bare = ImageRecord {
            repo_tags: Vec::new(),
            ..rec.clone()
        };
        let names = std::iter::once(None).chain(rec.repo_tags.iter().map(|n| Some(n.as_str())));
        let mut ok = true;
        for name in names {
            if let Err(e) = images.add(&bare, name) {
                error!(image = %rec.id, error = %e, "cannot restore image record");
                ok = false;
                break;
            }
        }
        restored += usize::from(ok);
    }
    restored
}

/// At daemon start: what interrupted imports left in `images/tmp/` is removed
/// ([`ImageDirs::sweep_tmp`]); a rebuilt store gets its images tree back from the files
/// ([`rebuild`]); an intact one writes any file missing (images imported before the files
/// existed) and removes the image directories no record lists.
pub fn on_open(store: &Store, root: &Path, rebuilt: bool) {
    let swept = ImageDirs::new(root).sweep_tmp();
    if swept > 0 {
        warn!(
            removed = swept,
            "removed what interrupted image imports left in images/tmp"
        );
    }
    let images = match store.images() {
        Ok(images) => images,
        Err(e) => {
            error!(error = %e, "cannot open the images tree");
            return;
        }
    };
    if rebuilt {
        let n = rebuild(&images, root);
        warn!(restored = n, "images restored from their directories");
        return;
    }
    let saved = images.list().map_err(|e| e.to_string()).and_then(|list| {
        ImageDirs::new(root)
            .save_records(&list)
            .map_err(|e| e.to_string())
    });
    if let Err(e) = saved {
        warn!(error = %e, "cannot write image metadata files");
    }
    collect_unlisted(&images, root);
}

/// Removes every image directory no record lists: what a crash between a commit's rename and
/// its record left (an import's `rootfs/`, a pull's `layers.json`; the pull's layers stay,
/// for the next pull or `image prune`). On an intact store only: there the records are the
/// truth, while a rebuilt store is filled from these directories.
fn collect_unlisted(images: &ImageStore, root: &Path) {
    let known: std::collections::BTreeSet<String> = match images.list() {
        Ok(list) => list.into_iter().map(|r| r.id).collect(),
        Err(e) => {
            error!(error = %e, "cannot list images: unlisted image directories kept");
            return;
        }
    };
    let dirs = ImageDirs::new(root);
    let Ok(entries) = std::fs::read_dir(&dirs.dir) else {
        return;
    };
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        if !is_image_id(&id) || known.contains(&id) {
            continue;
        }
        match dirs.take_aside(&id) {
            Ok(aside) => {
                warn!(image = %id, "image directory without a record (an interrupted commit): removed");
                drop(aside);
            }
            Err(e) => warn!(image = %id, error = %e, "cannot remove an unlisted image directory"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: char, names: &[&str], secs: i64) -> ImageRecord {
        ImageRecord {
            version: IMAGE_RECORD_VERSION,
            id: id.to_string().repeat(64),
            repo_tags: names.iter().map(|n| n.to_string()).collect(),
            created_at: DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("time"),
            size: 42,
            config: Default::default(),
            layers: Vec::new(),
            repo_digests: Vec::new(),
            manifest_type: None,
        }
    }

    #[test]
    fn records_round_trip_through_the_image_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = ImageDirs::new(dir.path());
        let (a, b, c) = (
            rec('a', &["bb:latest"], 1),
            rec('b', &["x:1", "bb:latest"], 2),
            rec('c', &[], 3),
        );
        // b was imported with changes: its config must come back with it.
        let mut b = b;
        b.config = crate::image::changes::apply(
            &Default::default(),
            &[r#"CMD ["/bin/sh","-c","echo $A"]"#.into(), "ENV A=1".into()],
        )
        .expect("changes");
        for r in [&a, &b, &c] {
            std::fs::create_dir_all(dirs.rootfs(&r.id)).expect("rootfs");
        }
        dirs.save_records(&[a.clone(), b.clone()]).expect("save");
        std::fs::create_dir_all(dirs.tmp().join("junk")).expect("tmp");
        let loaded = dirs.load_records();
        assert_eq!(loaded.len(), 3);
        assert_eq!(&loaded[..2], &[a.clone(), b.clone()]);
        assert_eq!(loaded[2].id, c.id);
        assert!(loaded[2].repo_tags.is_empty());

        let store = Store::open(&dir.path().join("db")).expect("store");
        let images = store.images().expect("images");
        assert_eq!(rebuild(&images, dir.path()), 3);
        let got = |id: &str| images.get(id).expect("get").expect("present");
        // Both files claim bb:latest: the newer image keeps it.
        assert!(got(&a.id).repo_tags.is_empty());
        assert_eq!(got(&b.id).repo_tags, vec!["x:1", "bb:latest"]);
        assert_eq!(got(&b.id).size, 42);
        assert_eq!(got(&b.id).config, b.config);
        assert_eq!(got(&b.id).config.env, vec!["A=1"]);
        assert!(got(&a.id).config.is_empty());
    }

    #[test]
    fn an_intact_store_removes_the_image_dirs_it_does_not_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = ImageDirs::new(dir.path());
        let (kept, unlisted) = (rec('a', &["a:1"], 1), rec('b', &[], 2));
        for r in [&kept, &unlisted] {
            std::fs::create_dir_all(dirs.rootfs(&r.id)).expect("rootfs");
        }
        let store = Store::open(&dir.path().join("db")).expect("store");
        store
            .images()
            .expect("images")
            .add(&kept, Some("a:1"))
            .expect("add");
        on_open(&store, dir.path(), false);
        assert!(dirs.exists(&kept.id));
        assert!(!dir.path().join("images").join(&unlisted.id).exists());
        assert_eq!(
            std::fs::read_dir(dirs.tmp())
                .map(|r| r.count())
                .unwrap_or(0),
            0
        );
        // A rebuilt store is filled from the directories instead: nothing removed.
        std::fs::create_dir_all(dirs.rootfs(&unlisted.id)).expect("rootfs");
        let fresh = Store::open(&dir.path().join("db2")).expect("store");
        on_open(&fresh, dir.path(), true);
        assert!(dirs.exists(&unlisted.id));
    }
}
