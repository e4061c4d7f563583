//! The container's root filesystem: an overlay mount whose lower dir is the image and whose
//! upper and work dirs are the container's own. Mounted by the daemon before the start,
//! unmounted after the exit and at removal; never left behind (tests check /proc/mounts).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use thiserror::Error;

/// Why the overlay could not be mounted or unmounted.
#[derive(Debug, Error)]
pub enum OverlayError {
    /// A directory could not be created.
    #[error("create {path}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// mount(2) failed.
    #[error("mount overlay on {target} ({options})")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The overlay options given.
        options: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// umount2(2) failed.
    #[error("unmount {target}")]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
}

/// The directories of one container's overlay.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// The image's read-only dirs, top first: its rootfs for an imported tarball, one per
    /// layer for a pulled image (overlayfs stacks them as overlay2 does).
    pub lowers: Vec<PathBuf>,
    /// The container's changes.
    pub upper: PathBuf,
    /// overlayfs's scratch directory (same filesystem as `upper`).
    pub work: PathBuf,
    /// Where the merged view is mounted (the bundle's rootfs).
    pub target: PathBuf,
}

/// Whether `path` is a mount point, by /proc/self/mountinfo (field 5).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape(p) == want)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

impl Overlay {
    /// Mounts the overlay unless it already is (a restart of a stopped container).
    pub fn mount(&self) -> Result<(), OverlayError> {
        for dir in [&self.upper, &self.work, &self.target] {
            std::fs::create_dir_all(dir).map_err(|source| OverlayError::Dir {
                path: dir.clone(),
                source,
            })?;
        }
        if is_mounted(&self.target) {
            return Ok(());
        }
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .map(|l| l.display().to_string())
            .collect();
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            self.upper.display(),
            self.work.display()
        );
        mount(
            Some("overlay"),
            &self.target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(|source| OverlayError::Mount {
            target: self.target.clone(),
            options,
            source,
        })
    }
}

/// Unmounts `target` if it is mounted (lazily, so a straggler cannot keep it busy).
pub fn unmount(target: &Path) -> Result<(), OverlayError> {
    while is_mounted(target) {
        umount2(target, MntFlags::MNT_DETACH).map_err(|source| OverlayError::Unmount {
            target: target.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_from_mountinfo() {
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/proc/self")));
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
