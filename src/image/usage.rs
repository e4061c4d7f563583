//! Disk usage of images (`docker system df`): what each image and layer takes on disk. A
//! layer shared by several images counts once in the total and is each one's SharedSize; an
//! imported image's rootfs is its own.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use moor_state::image::ImageRecord;

use super::layers::dirs_layers;
use super::ImageDirs;

/// Bytes of the files under `dir` (regular files and symlinks; a file with several hard
/// links once), symlinks not followed; 0 when it is missing.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total: u64 = 0;
    let mut seen = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino())) {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

/// One image's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUsage {
    /// Its id.
    pub id: String,
    /// Bytes of all its layers (or its rootfs).
    pub size: u64,
    /// Bytes of its layers other images list too.
    pub shared: u64,
}

/// The images' usage, and the bytes of all of them together (each layer once).
pub fn images(dirs: &ImageDirs, recs: &[ImageRecord]) -> (u64, Vec<ImageUsage>) {
    let layers: Vec<Vec<String>> = recs
        .iter()
        .map(|r| dirs_layers(&dirs.dir.join(&r.id)))
        .collect();
    let mut users: BTreeMap<&str, usize> = BTreeMap::new();
    for list in &layers {
        for l in list.iter().collect::<BTreeSet<_>>() {
            *users.entry(l).or_default() += 1;
        }
    }
    let sizes: BTreeMap<&str, u64> = users.keys().map(|l| (*l, dirs.layer_size(l))).collect();
    let mut total: u64 = sizes.values().sum();
    let mut out = Vec::new();
    for (rec, list) in recs.iter().zip(&layers) {
        if list.is_empty() {
            total = total.saturating_add(rec.size);
            out.push(ImageUsage {
                id: rec.id.clone(),
                size: rec.size,
                shared: 0,
            });
            continue;
        }
        let unique: BTreeSet<&String> = list.iter().collect();
        let size = unique.iter().map(|l| sizes[l.as_str()]).sum();
        let shared = unique
            .iter()
            .filter(|l| users[l.as_str()] > 1)
            .map(|l| sizes[l.as_str()])
            .sum();
        out.push(ImageUsage {
            id: rec.id.clone(),
            size,
            shared,
        });
    }
    (total, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hard_linked_file_counts_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("d")).expect("mkdir");
        std::fs::write(dir.path().join("d/a"), [0u8; 100]).expect("a");
        std::fs::hard_link(dir.path().join("d/a"), dir.path().join("b")).expect("link");
        std::fs::write(dir.path().join("c"), [0u8; 7]).expect("c");
        assert_eq!(dir_size(dir.path()), 107);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }
}
