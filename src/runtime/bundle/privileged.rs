//! What `--privileged` adds to a runc container besides every capability, as Docker does:
//! the host's devices (walked as runc's `devices.HostDevices` walks /dev) and a writable
//! /sys and /sys/fs/cgroup. The bundle also drops the masked and read-only paths and lets
//! the device cgroup allow everything.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceBuilder, LinuxDeviceType, Mount};
use oci_spec::OciSpecError;

/// Directories of /dev that are not devices of the host (runc skips the same).
const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// Every character and block device under `dir` (symlinks not followed, `console` skipped).
pub fn host_devices(dir: &Path) -> Result<Vec<LinuxDevice>, OciSpecError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Ok(meta) = path.symlink_metadata() else {
                continue;
            };
            let kind = meta.file_type();
            if kind.is_dir() {
                if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                    stack.push(path);
                }
                continue;
            }
            let typ = if kind.is_char_device() {
                LinuxDeviceType::C
            } else if kind.is_block_device() {
                LinuxDeviceType::B
            } else {
                continue;
            };
            if name == "console" {
                continue;
            }
            let rdev = meta.rdev();
            out.push(
                LinuxDeviceBuilder::default()
                    .path(path)
                    .typ(typ)
                    .major(i64::from(nix::sys::stat::major(rdev) as u32))
                    .minor(i64::from(nix::sys::stat::minor(rdev) as u32))
                    .file_mode(meta.mode() & 0o7777)
                    .uid(meta.uid())
                    .gid(meta.gid())
                    .build()?,
            );
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

/// The mounts with /sys and /sys/fs/cgroup read-write.
pub fn writable_sysfs(mounts: Vec<Mount>) -> Vec<Mount> {
    mounts
        .into_iter()
        .map(|mut m| {
            if m.destination() == Path::new("/sys")
                || m.destination() == Path::new("/sys/fs/cgroup")
            {
                let opts = m.options().clone().unwrap_or_default();
                let opts = opts
                    .into_iter()
                    .map(|o| if o == "ro" { "rw".into() } else { o });
                m.set_options(Some(opts.collect()));
            }
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_null_is_a_host_device_and_pts_is_skipped() {
        let devices = host_devices(Path::new("/dev")).expect("walk /dev");
        let null = devices.iter().find(|d| d.path() == Path::new("/dev/null"));
        let null = null.expect("/dev/null");
        assert_eq!((null.major(), null.minor()), (1, 3));
        assert!(devices.iter().all(|d| !d.path().starts_with("/dev/pts")));
        let sys = writable_sysfs(oci_spec::runtime::Spec::default().mounts().clone().unwrap());
        let sys = sys
            .iter()
            .find(|m| m.destination() == Path::new("/sys"))
            .unwrap();
        assert!(!sys.options().clone().unwrap().contains(&"ro".to_string()));
    }
}
