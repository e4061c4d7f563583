//! The runc runtime, daemon side: find the binary, prepare a container's bundle (overlay
//! rootfs + config.json) before its shim starts, and clean up after it (`runc delete`,
//! unmount, bundle removal) off the path the user waits on.
//!
//! Every runc command line is built by [`args`] (pure, std-only: the shim builds its
//! `runc run` there too) and run by [`client`] (async child processes, typed results).
//!
//! Layout: bundle `<run>/containers/<id>/bundle/{config.json,rootfs}`; runc's own state
//! `<run>/runc` (`runc --root`); upper and work dirs `<root>/containers/<id>/overlay/`;
//! cgroups `/moor/<id>` (cgroupfs).

pub mod archive;
pub mod args;
pub mod client;
pub mod runtime;
pub mod state_file;

use std::io;
use std::path::{Path, PathBuf};

use moor_state::reconcile::RuntimeState;
use moor_state::record::MountKind;
use moor_state::ContainerSpec;
use thiserror::Error;

use super::bundle::{self, BundleError};
use super::overlay::{self, Overlay, OverlayError};
use crate::config::DaemonConfig;
use crate::host::layout::Layout;
use crate::image::ImageDirs;
use crate::shim::protocol::{self, RuntimeSpec, ShimSpec};

pub use args::{RuncArgs, RuncCommand, UpdateOpts};
pub use client::{ContainerState, Runc, RuncError};

/// Why a runc container could not be prepared or cleaned up.
#[derive(Debug, Error)]
pub enum SetupError {
    /// The container's image is not (or no longer) unpacked.
    #[error("image {id} is not present under {dir}")]
    ImageMissing {
        /// The image id.
        id: String,
        /// The images directory.
        dir: PathBuf,
    },
    /// The overlay rootfs failed.
    #[error("root filesystem")]
    Overlay(#[from] OverlayError),
    /// `-u` names a user or group the image does not have.
    #[error(transparent)]
    User(#[from] crate::image::user::UserError),
    /// config.json failed.
    #[error("OCI bundle")]
    Bundle(#[from] BundleError),
    /// The container's network could not be set up.
    #[error("network")]
    Network(#[from] crate::network::NetworkError),
    /// Its published ports could not be set up.
    #[error("published ports")]
    Nat(#[from] crate::network::nat::NatError),
    /// A bundle directory could not be created or removed.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The runc binary daemon.json names (`runtimes` → `runc`), else the first `runc` on PATH.
pub fn find_binary(config: &DaemonConfig) -> Option<PathBuf> {
    if let Some(entry) = config.runtimes.get("runc") {
        return Some(entry.path.clone());
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| super::DEFAULT_PATH.into());
    path.split(':')
        .map(|dir| Path::new(dir).join("runc"))
        .find(|p| p.is_file())
}

/// The global options of moor's runc: the binary found by [`find_binary`], `--root` (moor's
/// own, under the run directory) and daemon.json's `runtimeArgs` for `runc`.
pub fn args_from_config(config: &DaemonConfig, binary: PathBuf, root: PathBuf) -> RuncArgs {
    let extra = config
        .runtimes
        .get("runc")
        .map(|e| e.runtime_args.clone())
        .unwrap_or_default();
    RuncArgs::new(binary, root).runtime_args(extra)
}

/// The cgroup parent of every runc container (cgroupfs driver).
pub const CGROUP_PARENT: &str = "/moor";

/// The cgroup path runc is given (cgroupfs driver, under [`CGROUP_PARENT`]).
pub fn cgroups_path(id: &str) -> String {
    format!("{CGROUP_PARENT}/{id}")
}

/// Where the cgroup file systems are mounted.
const CGROUPFS: &str = "/sys/fs/cgroup";

/// Removes the container's cgroups that are left empty: those of every cgroup v1 hierarchy
/// under `root` and the unified one. `runc delete` removes them, unless runc's state of the
/// container is gone (deleted by hand, or a tmpfs run directory lost): then nothing else
/// would. A cgroup with a process in it is never removed (the kernel refuses: EBUSY), so an
/// orphan's stays.
pub fn remove_empty_cgroups(root: &Path, id: &str) {
    let rel = cgroups_path(id);
    let rel = rel.trim_start_matches('/');
    let hierarchies = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .chain([root.to_path_buf()]);
    for dir in hierarchies.map(|h| h.join(rel)) {
        match std::fs::remove_dir(&dir) {
            Err(e)
                if e.kind() != io::ErrorKind::NotFound
                    && e.raw_os_error() != Some(libc::ENOTDIR) =>
            {
                tracing::debug!(container_id = %&id[..12.min(id.len())], path = %dir.display(), error = %e, "cgroup left")
            }
            _ => {}
        }
    }
}

/// The container's memory cgroup directory: cgroup v1's memory controller if mounted,
/// else the unified hierarchy.
pub fn memory_cgroup(id: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let base = if v1.is_dir() {
        v1
    } else {
        Path::new("/sys/fs/cgroup")
    };
    base.join("moor").join(id)
}

/// The bundle directory of a container.
pub fn bundle_dir(layout: &Layout, id: &str) -> PathBuf {
    layout.run_container_dir(id).join("bundle")
}

fn overlay_of(layout: &Layout, images: &ImageDirs, id: &str, image_id: &str) -> Overlay {
    let dir = layout.container_dir(id).join("overlay");
    Overlay {
        lowers: images.lowers(image_id),
        upper: dir.join("upper"),
        work: dir.join("work"),
        target: bundle_dir(layout, id).join("rootfs"),
    }
}

impl Runc {
    /// Mounts the rootfs, writes config.json and returns the shim's spec.
    pub fn prepare(
        &self,
        layout: &Layout,
        id: &str,
        spec: &ContainerSpec,
        log: (PathBuf, Option<u64>, u32),
        net: Option<&crate::network::Attached>,
    ) -> Result<ShimSpec, SetupError> {
        let images = ImageDirs::new(&layout.root);
        if !images.exists(&spec.image_id) {
            return Err(SetupError::ImageMissing {
                id: spec.image_id.clone(),
                dir: images.dir.clone(),
            });
        }
        create_bind_sources(spec)?;
        let user = crate::image::user::resolve_layers(&images.lowers(&spec.image_id), &spec.user)?;
        let lowers = images.lowers(&spec.image_id);
        let groups = crate::image::user::group_ids(&lowers, &spec.process.group_add)?;
        let mut oci = bundle::build(id, spec, &cgroups_path(id), &user)?;
        let init = bundle::tuning::init_binary();
        bundle::tuning::apply(&mut oci, spec, &groups, init.as_deref())?;
        match net {
            Some(net) => bundle::join_network(&mut oci, &net.netns, &net.files)?,
            None => {
                let dir = layout.container_dir(id);
                let files = crate::network::files::write_own(&dir, spec)?;
                bundle::bind_files(&mut oci, &files)?;
            }
        }
        overlay_of(layout, &images, id, &spec.image_id).mount()?;
        let bundle = bundle_dir(layout, id);
        if let Err(e) = populate_volumes(&bundle.join("rootfs"), spec) {
            let _ = overlay::unmount(&bundle.join("rootfs"));
            return Err(e);
        }
        if let Err(e) = bundle::write(&bundle, &oci) {
            let _ = overlay::unmount(&bundle.join("rootfs"));
            return Err(e.into());
        }
        let root = self.root();
        std::fs::create_dir_all(root).map_err(|source| SetupError::Io {
            what: "create",
            path: root.to_path_buf(),
            source,
        })?;
        let (log_path, log_max_size, log_max_file) = log;
        Ok(ShimSpec {
            protocol: protocol::PROTOCOL,
            id: id.into(),
            runtime: RuntimeSpec::Runc {
                runc: self.args.binary.clone(),
                root: root.to_path_buf(),
                runtime_args: self.args.runtime_args.clone(),
                bundle,
                memory_cgroup: Some(memory_cgroup(id)),
            },
            log_path,
            log_max_size,
            log_max_file,
            open_stdin: spec.open_stdin,
            tty: spec.tty,
            console_size: spec.console_size,
        })
    }
}

/// The missing host paths of `-v` binds, created as directories as Docker does (a
/// `--mount` bind's source was checked at create instead).
fn create_bind_sources(spec: &ContainerSpec) -> Result<(), SetupError> {
    for m in spec.mounts.iter().filter(|m| m.create_source) {
        let path = Path::new(&m.source);
        if path.symlink_metadata().is_err() {
            std::fs::create_dir_all(path).map_err(|source| SetupError::Io {
                what: "create the bind source",
                path: path.to_path_buf(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Docker's copy-up: an empty volume mounted where the image has files gets a copy of them
/// (owners, modes and links kept, by `cp -a`), unless the mount says `nocopy`.
fn populate_volumes(rootfs: &Path, spec: &ContainerSpec) -> Result<(), SetupError> {
    let volumes = spec.mounts.iter().filter(|m| m.kind == MountKind::Volume);
    for m in volumes.filter(|m| !m.no_copy) {
        let from = rootfs.join(m.destination.trim_start_matches('/'));
        let to = Path::new(&m.source);
        let empty = |p: &Path| std::fs::read_dir(p).map_or(true, |mut d| d.next().is_none());
        if !from.is_dir() || empty(&from) || !empty(to) {
            continue;
        }
        let io = |source| SetupError::Io {
            what: "copy the image's content into the volume",
            path: to.to_path_buf(),
            source,
        };
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(from.join("."))
            .arg(to)
            .output()
            .map_err(io)?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(io(io::Error::other(text)));
        }
    }
    Ok(())
}

/// `runc state` of the container whose run directory is `dir`, when its shim.json says it
/// runs on runc (with that spec's binary and root); None for the process runtime or when
/// there is no shim.json to tell.
pub fn observed_state(dir: &Path, id: &str) -> Option<RuntimeState> {
    let bytes = std::fs::read(dir.join(protocol::SPEC_FILE)).ok()?;
    let spec: ShimSpec = serde_json::from_slice(&bytes).ok()?;
    match spec.runtime {
        RuntimeSpec::Runc {
            runc,
            root,
            runtime_args,
            ..
        } => Runc::new(RuncArgs::new(runc, root).runtime_args(runtime_args)).observe_blocking(id),
        RuntimeSpec::Process { .. } => None,
    }
}

/// After a runc container ended: `runc delete --force` (its cgroup and state) and the
/// rootfs unmounted. Idempotent, and a no-op for a process container; failures are logged
/// (the removal retries them). Blocking: an actor runs it on the blocking pool
/// ([`release_in_background`]).
pub fn release(runc: Option<&Runc>, layout: &Layout, id: &str) {
    let short = &id[..12.min(id.len())];
    if let Some(r) = runc {
        if let Err(e) = r.delete_force_blocking(id) {
            tracing::warn!(container_id = %short, error = %e, "runc delete failed");
        }
    }
    remove_empty_cgroups(Path::new(CGROUPFS), id);
    if let Err(e) = overlay::unmount(&bundle_dir(layout, id).join("rootfs")) {
        tracing::warn!(container_id = %short, error = %e, "unmount failed");
    }
    // A bridge container (its namespace file is there): its published ports go first.
    if crate::network::netns::path(&layout.run_dir, id).exists() {
        if let Err(e) = crate::network::nat::unpublish_owned(id) {
            tracing::warn!(container_id = %short, error = %e, "published ports not withdrawn");
        }
    }
    if let Err(e) = crate::network::detach(&layout.run_dir, id) {
        tracing::warn!(container_id = %short, error = %e, "network teardown failed");
    }
}

/// [`release`] on the blocking pool: what an actor awaits (in order with its other
/// operations) without holding up the thread every actor shares.
pub async fn release_in_background(runc: Option<Runc>, layout: Layout, id: String) {
    let done = tokio::task::spawn_blocking(move || release(runc.as_ref(), &layout, &id)).await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "the runtime clean-up task failed");
    }
}

/// At removal: [`release`], then the bundle (the upper dir goes with the container's
/// directory). An overlay that stays mounted is an error: nothing under a mount point is
/// deleted.
pub fn remove(runc: Option<&Runc>, layout: &Layout, id: &str) -> Result<(), SetupError> {
    release(runc, layout, id);
    let bundle = bundle_dir(layout, id);
    overlay::unmount(&bundle.join("rootfs"))?;
    match std::fs::remove_dir_all(&bundle) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(SetupError::Io {
            what: "remove",
            path: bundle,
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_containers_empty_cgroups_are_removed() {
        let root = tempfile::tempdir().expect("tempdir");
        let id = "c".repeat(64);
        let at = |h: &str| root.path().join(h).join("moor").join(&id);
        let (empty, busy, other) = (at("pids"), at("memory"), root.path().join("cpu/moor/other"));
        for dir in [&empty, &busy, &other, &at("")] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        // A cgroup with a process in it cannot be removed; a directory that is not empty
        // stands for it here.
        std::fs::write(busy.join("tasks"), "1").expect("write");
        std::fs::write(root.path().join("a-file"), "").expect("write");
        remove_empty_cgroups(root.path(), &id);
        assert!(!empty.exists() && !at("").exists(), "the empty ones go");
        assert!(busy.exists(), "one in use stays");
        assert!(other.exists(), "another container's stays");
    }

    #[test]
    fn paths_are_under_moor() {
        assert_eq!(cgroups_path("abc"), "/moor/abc");
        assert!(memory_cgroup("abc").ends_with("moor/abc"));
        let mut config: DaemonConfig = serde_json::from_str("{}").expect("config");
        config.runtimes.insert(
            "runc".into(),
            crate::config::RuntimeEntry {
                path: "/opt/runc".into(),
                runtime_args: Vec::new(),
            },
        );
        assert_eq!(find_binary(&config), Some(PathBuf::from("/opt/runc")));
        let args = args_from_config(&config, "/opt/runc".into(), "/run/r".into());
        assert!(args.runtime_args.is_empty());
        config.runtimes.get_mut("runc").expect("entry").runtime_args = vec!["--debug".into()];
        let args = args_from_config(&config, "/opt/runc".into(), "/run/r".into());
        assert_eq!(
            args.state("x").argv().join(" "),
            "--root /run/r --debug state x"
        );
    }
}
