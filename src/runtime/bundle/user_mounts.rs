//! The user's mounts (binds, volumes, tmpfs) as OCI mounts, after Docker's defaults: a user
//! mount on a default's path replaces it (moby's setMounts), and parents are mounted before
//! their children (sorted by depth, as moby's sortMounts).

use std::path::Path;

use moor_state::record::{MountKind, MountSpec};
use oci_spec::runtime::{Mount, MountBuilder};

use super::BundleError;

/// The OCI mount of one user mount.
fn oci_mount(m: &MountSpec) -> Result<Mount, BundleError> {
    let mut options: Vec<String> = Vec::new();
    let (typ, source) = match m.kind {
        MountKind::Bind | MountKind::Volume => {
            options.push("rbind".into());
            options.push(match m.propagation.as_str() {
                "" => "rprivate".into(),
                p => p.to_string(),
            });
            ("bind", m.source.as_str())
        }
        MountKind::Tmpfs => {
            options.extend(
                m.options
                    .iter()
                    .filter(|o| *o != "ro" && *o != "rw")
                    .cloned(),
            );
            if m.tmpfs_size > 0 {
                options.push(format!("size={}", m.tmpfs_size));
            }
            if m.tmpfs_mode != 0 {
                options.push(format!("mode={:o}", m.tmpfs_mode));
            }
            ("tmpfs", "tmpfs")
        }
    };
    options.push(if m.read_only { "ro" } else { "rw" }.into());
    Ok(MountBuilder::default()
        .destination(&m.destination)
        .typ(typ)
        .source(source)
        .options(options)
        .build()?)
}

/// `defaults` with the user's mounts: the defaults on a user mount's path dropped, the
/// user's appended parents first.
pub fn merge(defaults: Vec<Mount>, user: &[MountSpec]) -> Result<Vec<Mount>, BundleError> {
    let mut user: Vec<&MountSpec> = user.iter().collect();
    user.sort_by_key(|m| Path::new(&m.destination).components().count());
    let mut out: Vec<Mount> = defaults
        .into_iter()
        .filter(|d| {
            !user
                .iter()
                .any(|m| d.destination() == Path::new(&m.destination))
        })
        .collect();
    for m in user {
        out.push(oci_mount(m)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use moor_state::record::MountOrigin;

    #[test]
    fn user_mounts_follow_the_defaults_parents_first() {
        let bind = MountSpec {
            kind: MountKind::Bind,
            origin: MountOrigin::Binds,
            source: "/srv/a".into(),
            destination: "/data/sub".into(),
            read_only: true,
            propagation: "rshared".into(),
            ..MountSpec::default()
        };
        let tmpfs = MountSpec {
            kind: MountKind::Tmpfs,
            destination: "/data".into(),
            tmpfs_size: 1 << 20,
            tmpfs_mode: 0o1777,
            options: vec!["noexec".into(), "nosuid".into()],
            ..MountSpec::default()
        };
        let shm = MountSpec {
            destination: "/dev/shm".into(),
            ..tmpfs.clone()
        };
        let defaults = oci_spec::runtime::Spec::default().mounts().clone().unwrap();
        let n = defaults.len();
        let out = merge(defaults, &[bind, tmpfs, shm]).unwrap();
        assert_eq!(out.len(), n + 2, "the user's /dev/shm replaces the default");
        let json = serde_json::to_value(&out[n - 1..]).unwrap();
        assert_eq!(json[0]["destination"], "/data");
        assert_eq!(
            json[0]["options"],
            serde_json::json!(["noexec", "nosuid", "size=1048576", "mode=1777", "rw"])
        );
        assert_eq!(json[1]["destination"], "/data/sub");
        assert_eq!(json[1]["type"], "bind");
        assert_eq!(
            json[1]["options"],
            serde_json::json!(["rbind", "rshared", "ro"])
        );
    }
}
