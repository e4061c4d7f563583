//! A runc container's root for `docker cp` and `docker export`: a running container's as
//! its processes see it (`/proc/<init>/root`, after the init's identity was checked, so a
//! reused pid never hands out another process's files) or its own overlay (the bundle's
//! rootfs, mounted while it runs); a stopped container's overlay is mounted on the bundle's
//! rootfs for the operation and unmounted after it (its actor holds its other operations
//! meanwhile, so a start never finds it half-used).

use moor_state::ProcessIdentity;

use super::{bundle_dir, overlay_of};
use crate::archive::{ArchiveError, OpenedRoot, RootView};
use crate::host::layout::Layout;
use crate::identity::PidFd;
use crate::image::ImageDirs;
use crate::runtime::overlay;

/// Makes the container's root reachable (blocking).
pub fn open_root(
    layout: &Layout,
    id: &str,
    image_id: &str,
    running: Option<ProcessIdentity>,
    view: RootView,
) -> Result<OpenedRoot, ArchiveError> {
    let rootfs = bundle_dir(layout, id).join("rootfs");
    let root_error = |reason: String| ArchiveError::Root { reason };
    match (running, view) {
        (Some(init), RootView::Process) => {
            // The pidfd stays open while the path is made: the pid cannot be reused meanwhile.
            let pidfd = PidFd::open_verified(&crate::runtime::from_identity(&init))
                .map_err(|e| root_error(crate::runtime::chain(&e)))?;
            let path = std::path::PathBuf::from(format!("/proc/{}/root", init.pid));
            drop(pidfd);
            Ok(OpenedRoot {
                path,
                mounted: false,
            })
        }
        (Some(_), RootView::Own) if overlay::is_mounted(&rootfs) => Ok(OpenedRoot {
            path: rootfs,
            mounted: false,
        }),
        (Some(_), RootView::Own) => Err(root_error(format!(
            "its root filesystem {} is not mounted",
            rootfs.display()
        ))),
        (None, _) => {
            let images = ImageDirs::new(&layout.root);
            if !images.exists(image_id) {
                return Err(root_error(format!("its image {image_id} is not present")));
            }
            let was_mounted = overlay::is_mounted(&rootfs);
            overlay_of(layout, &images, id, image_id)
                .mount()
                .map_err(|e| root_error(crate::runtime::chain(&e)))?;
            Ok(OpenedRoot {
                path: rootfs,
                mounted: !was_mounted,
            })
        }
    }
}

/// Unmounts what [`open_root`] mounted (blocking); a failure is logged, and the next
/// release or removal of the container retries it.
pub fn close_root(id: &str, root: OpenedRoot) {
    if !root.mounted {
        return;
    }
    if let Err(e) = overlay::unmount(&root.path) {
        let short = &id[..12.min(id.len())];
        tracing::warn!(container_id = %short, error = %crate::runtime::chain(&e), "unmount after a copy failed");
    }
}
