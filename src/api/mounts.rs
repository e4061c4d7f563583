//! A create request's mounts to the spec's [`MountSpec`]s: `HostConfig.Binds` (`-v`),
//! `HostConfig.Mounts` (`--mount`), `HostConfig.Tmpfs` (`--tmpfs`) and `Config.Volumes`
//! (`-v /DST`), checked as moby's Linux parser checks them (`volume/mounts/linux_parser.go`).
//! A volume's host path is filled in by the Supervisor, which owns the volumes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use moor_state::record::{MountKind, MountOrigin, MountSpec};
use thiserror::Error;

use crate::api::types::{CreateRequest, HostConfig};
use crate::api::volume_types::Mount;

/// The bind propagation Docker uses unless one is asked.
pub const DEFAULT_PROPAGATION: &str = "rprivate";

/// The propagation modes a bind takes.
const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// The tmpfs flags moor passes to the mount (others are refused by name).
const TMPFS_FLAGS: &[&str] = &[
    "rw", "ro", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime",
];

/// The warning a bind with `z` or `Z` gets (moor does not relabel: no SELinux).
pub const RELABEL_WARNING: &str =
    "HostConfig.Binds: the z and Z options (SELinux relabelling) are ignored by moor";

/// A mount moor cannot take.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MountError {
    /// A Binds entry that does not parse (moby's text).
    #[error("invalid volume specification: '{spec}': {reason}")]
    InvalidSpec {
        /// The entry.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A `--mount` entry that does not parse (moby's text).
    #[error("invalid mount config for type \"{kind}\": {reason}")]
    InvalidMount {
        /// Its Type.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// Two mounts on one path.
    #[error("Duplicate mount point: {0}")]
    Duplicate(String),
    /// The process runtime has no mount namespace to mount into.
    #[error("{field} is not supported by the process runtime (use runc)")]
    ProcessRuntime {
        /// The field that asked for a mount.
        field: &'static str,
    },
    /// A `--tmpfs` option moor does not pass on.
    #[error("HostConfig.Tmpfs option {option:?} of {path} is not supported by moor (it supports size, mode, nr_inodes, uid, gid and {flags})", flags = TMPFS_FLAGS.join(", "))]
    TmpfsOption {
        /// The path.
        path: String,
        /// The option.
        option: String,
    },
}

fn invalid(spec: &str, reason: impl Into<String>) -> MountError {
    MountError::InvalidSpec {
        spec: spec.into(),
        reason: reason.into(),
    }
}

/// Docker's volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A destination in the container: absolute, not `/`; cleaned of a trailing `/`.
fn destination(spec: &str, dst: &str) -> Result<String, MountError> {
    if !dst.starts_with('/') {
        return Err(invalid(
            spec,
            format!("invalid mount config: mount path must be absolute: {dst}"),
        ));
    }
    let clean = dst.trim_end_matches('/');
    if clean.is_empty() {
        return Err(invalid(
            spec,
            "invalid mount config: destination can't be '/'",
        ));
    }
    Ok(clean.to_string())
}

/// The mode of a Binds entry: at most one of rw/ro, one propagation, z/Z, nocopy.
/// Gives (read_only, propagation, relabel asked, nocopy).
fn bind_mode(spec: &str, mode: &str) -> Result<(bool, String, bool, bool), MountError> {
    let (mut rw, mut propagation, mut relabel, mut nocopy) = (None, None, false, false);
    for opt in mode.split(',') {
        match opt {
            "rw" | "ro" if rw.is_none() => rw = Some(opt == "ro"),
            "z" | "Z" if !relabel => relabel = true,
            "nocopy" if !nocopy => nocopy = true,
            p if PROPAGATIONS.contains(&p) && propagation.is_none() => {
                propagation = Some(p.to_string())
            }
            _ => return Err(invalid(spec, format!("invalid mode: {mode}"))),
        }
    }
    let propagation = propagation.unwrap_or_else(|| DEFAULT_PROPAGATION.into());
    Ok((rw.unwrap_or(false), propagation, relabel, nocopy))
}

/// One `-v` entry: `SRC:DST[:MODE]` (SRC a host path or a volume name) or `DST` (an
/// anonymous volume). A warning when `z`/`Z` is asked.
pub fn parse_bind(spec: &str) -> Result<(MountSpec, Option<&'static str>), MountError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts[..] {
        [dst] => ("", dst, ""),
        [src, dst] => (src, dst, ""),
        [src, dst, mode] => (src, dst, mode),
        _ => return Err(invalid(spec, "too many colons")),
    };
    let destination = destination(spec, dst)?;
    let (read_only, propagation, relabel, no_copy) = match mode {
        "" => (false, DEFAULT_PROPAGATION.to_string(), false, false),
        m => bind_mode(spec, m)?,
    };
    let kind = if src.starts_with('/') {
        MountKind::Bind
    } else if src.is_empty() || valid_volume_name(src) {
        MountKind::Volume
    } else {
        return Err(invalid(
            spec,
            format!("\"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
        ));
    };
    let bind = kind == MountKind::Bind;
    let mount = MountSpec {
        kind,
        origin: MountOrigin::Binds,
        source: if bind {
            clean_host_path(src)
        } else {
            String::new()
        },
        destination,
        read_only,
        mode: mode.into(),
        propagation: if bind { propagation } else { String::new() },
        name: if bind { String::new() } else { src.into() },
        create_source: bind,
        no_copy,
        ..MountSpec::default()
    };
    Ok((mount, relabel.then_some(RELABEL_WARNING)))
}

/// A host path without a trailing `/` (but `/` itself).
fn clean_host_path(p: &str) -> String {
    match p.trim_end_matches('/') {
        "" => "/".into(),
        clean => clean.into(),
    }
}

fn mount_error(kind: &str, reason: impl Into<String>) -> MountError {
    MountError::InvalidMount {
        kind: kind.into(),
        reason: reason.into(),
    }
}

/// One `--mount` entry. A bind source must exist (moby refuses a missing one at create).
pub fn parse_mount(m: &Mount) -> Result<MountSpec, MountError> {
    let kind = m.kind.as_str();
    let target = match m.target.as_str() {
        "" => return Err(mount_error(kind, "field Target must not be empty")),
        t => destination(t, t).map_err(|_| mount_error(kind, format!("invalid target: {t}")))?,
    };
    let wrong = |opts: &str| mount_error(kind, format!("field {opts} must not be specified"));
    let mut spec = MountSpec {
        origin: MountOrigin::Mounts,
        destination: target,
        read_only: m.read_only,
        ..MountSpec::default()
    };
    match kind {
        "bind" => {
            if m.volume_options.is_some() {
                return Err(wrong("VolumeOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(wrong("TmpfsOptions"));
            }
            if !m.source.starts_with('/') {
                return Err(mount_error(kind, "invalid mount path: must be absolute"));
            }
            if !Path::new(&m.source).exists() {
                return Err(mount_error(
                    kind,
                    format!("bind source path does not exist: {}", m.source),
                ));
            }
            let propagation = m.bind_options.as_ref().map(|b| b.propagation.as_str());
            spec.propagation = match propagation.unwrap_or_default() {
                "" => DEFAULT_PROPAGATION.into(),
                p if PROPAGATIONS.contains(&p) => p.into(),
                p => return Err(mount_error(kind, format!("invalid propagation mode: {p}"))),
            };
            spec.kind = MountKind::Bind;
            spec.source = clean_host_path(&m.source);
        }
        "volume" => {
            if m.bind_options.is_some() {
                return Err(wrong("BindOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(wrong("TmpfsOptions"));
            }
            if !m.source.is_empty() && !valid_volume_name(&m.source) {
                return Err(mount_error(
                    kind,
                    format!("invalid volume name: {}", m.source),
                ));
            }
            spec.kind = MountKind::Volume;
            spec.name = m.source.clone();
            spec.no_copy = m.volume_options.as_ref().is_some_and(|v| v.no_copy);
        }
        "tmpfs" => {
            if m.bind_options.is_some() {
                return Err(wrong("BindOptions"));
            }
            if m.volume_options.is_some() {
                return Err(wrong("VolumeOptions"));
            }
            if !m.source.is_empty() {
                return Err(wrong("Source"));
            }
            let opts = m.tmpfs_options.clone().unwrap_or_default();
            spec.kind = MountKind::Tmpfs;
            spec.tmpfs_size = u64::try_from(opts.size_bytes)
                .map_err(|_| mount_error(kind, "invalid size: negative"))?;
            spec.tmpfs_mode = opts.mode & 0o7777;
            spec.options = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
        }
        other => {
            return Err(mount_error(
                other,
                "mount type unknown (moor supports bind, volume and tmpfs)",
            ))
        }
    }
    Ok(spec)
}

/// A size as Docker's units.RAMInBytes reads it: `64m`, `1g`, `512k`, `100` (1024-based).
fn ram_in_bytes(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let t = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 10),
        'm' => (&t[..t.len() - 1], 20),
        'g' => (&t[..t.len() - 1], 30),
        't' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// One `--tmpfs PATH[:OPTIONS]` entry (Docker's defaults noexec, nosuid, nodev first; a
/// later flag wins, as moby's MergeTmpfsOptions does).
pub fn parse_tmpfs(path: &str, options: &str) -> Result<MountSpec, MountError> {
    let destination = destination(path, path)?;
    let bad = |option: &str| MountError::TmpfsOption {
        path: path.into(),
        option: option.into(),
    };
    let mut spec = MountSpec {
        kind: MountKind::Tmpfs,
        origin: MountOrigin::Tmpfs,
        destination,
        mode: options.into(),
        options: vec!["noexec".into(), "nosuid".into(), "nodev".into()],
        ..MountSpec::default()
    };
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", v)) => spec.tmpfs_size = ram_in_bytes(v).ok_or_else(|| bad(opt))?,
            Some(("mode", v)) => {
                spec.tmpfs_mode = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(opt))?
            }
            Some(("nr_inodes" | "uid" | "gid", v)) if v.parse::<u64>().is_ok() => {
                spec.options.push(opt.into())
            }
            None if TMPFS_FLAGS.contains(&opt) => {
                // A flag replaces its opposite (`exec` undoes the default `noexec`).
                let opposite = opt
                    .strip_prefix("no")
                    .map_or(format!("no{opt}"), String::from);
                spec.options.retain(|o| *o != opposite && o != opt);
                spec.options.push(opt.into());
                spec.read_only |= opt == "ro";
            }
            _ => return Err(bad(opt)),
        }
    }
    spec.read_only = spec.options.iter().any(|o| o == "ro");
    Ok(spec)
}

/// A `VolumesFrom` entry: the container and the mode (`ro`: read-only, `rw`: writable,
/// none: each mount as the source has it).
pub fn parse_volumes_from(entry: &str) -> Result<(&str, Option<bool>), MountError> {
    let (name, read_only) = match entry.split_once(':') {
        None => (entry, None),
        Some((name, "ro")) => (name, Some(true)),
        Some((name, "rw")) => (name, Some(false)),
        Some((_, mode)) => {
            return Err(invalid(
                entry,
                format!("invalid mode: {mode} (moor takes ro or rw)"),
            ))
        }
    };
    if name.is_empty() {
        return Err(invalid(entry, "no container named"));
    }
    Ok((name, read_only))
}

/// Adds the binds and volumes of `source` (its tmpfs mounts are its own) to `spec`, on the
/// paths `spec` does not mount itself, with `read_only` when given (`VolumesFrom`).
pub fn add_volumes_from(
    spec: &mut moor_state::ContainerSpec,
    source: &moor_state::ContainerSpec,
    read_only: Option<bool>,
) {
    for m in source.mounts.iter().filter(|m| m.kind != MountKind::Tmpfs) {
        if spec.mounts.iter().any(|o| o.destination == m.destination) {
            continue;
        }
        let mut m = m.clone();
        m.origin = MountOrigin::VolumesFrom;
        // Its data is there already: never copied up from this container's image.
        m.no_copy = true;
        if let Some(ro) = read_only {
            m.read_only = ro;
        }
        spec.mounts.push(m);
    }
}

/// Every mount of a create request, in the order moor mounts them (Binds, Mounts, Tmpfs,
/// then anonymous volumes of `Config.Volumes` on paths nothing else mounts), and the
/// create's warnings. `runc` false (the process runtime) refuses every mount.
pub fn mounts_of(
    req: &CreateRequest,
    host: &HostConfig,
    runc: bool,
) -> Result<(Vec<MountSpec>, Vec<String>), MountError> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for bind in host.binds.iter().flatten() {
        let (m, warning) = parse_bind(bind)?;
        if let Some(w) = warning.filter(|w| !warnings.iter().any(|x| x == w)) {
            warnings.push(w.to_string());
        }
        out.push(m);
    }
    for m in host.mounts.iter().flatten() {
        out.push(parse_mount(m)?);
    }
    for (path, options) in host.tmpfs.iter().flatten() {
        out.push(parse_tmpfs(path, options)?);
    }
    let mut seen = BTreeSet::new();
    for m in &out {
        if !seen.insert(m.destination.clone()) {
            return Err(MountError::Duplicate(m.destination.clone()));
        }
    }
    for path in req.volumes.iter().flat_map(BTreeMap::keys) {
        let (mut m, _) = parse_bind(path)?;
        if !m.name.is_empty() || m.kind != MountKind::Volume {
            return Err(invalid(path, "Config.Volumes takes container paths only"));
        }
        m.origin = MountOrigin::Volumes;
        if seen.insert(m.destination.clone()) {
            out.push(m);
        }
    }
    if !runc {
        let field = match out.first().map(|m| m.origin) {
            None => return Ok((out, warnings)),
            Some(MountOrigin::Binds) => "HostConfig.Binds",
            Some(MountOrigin::Mounts) => "HostConfig.Mounts",
            Some(MountOrigin::Tmpfs) => "HostConfig.Tmpfs",
            Some(MountOrigin::Volumes) => "Volumes",
            Some(MountOrigin::VolumesFrom) => "HostConfig.VolumesFrom",
        };
        return Err(MountError::ProcessRuntime { field });
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_as_moby_does() {
        let (m, w) = parse_bind("/host/dir/:/data:ro").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.destination.as_str()),
            (MountKind::Bind, "/host/dir", "/data")
        );
        assert!(m.read_only && m.create_source && w.is_none());
        assert_eq!(
            (m.mode.as_str(), m.propagation.as_str()),
            ("ro", "rprivate")
        );
        let (m, w) = parse_bind("/a:/b:rw,Z,rshared").unwrap();
        assert_eq!((m.read_only, m.propagation.as_str()), (false, "rshared"));
        assert_eq!(w, Some(RELABEL_WARNING));
        let (m, _) = parse_bind("data:/var/data:nocopy").unwrap();
        assert_eq!(
            (m.kind, m.name.as_str(), m.no_copy),
            (MountKind::Volume, "data", true)
        );
        let (m, _) = parse_bind("/anon").unwrap();
        assert_eq!((m.kind, m.name.as_str()), (MountKind::Volume, ""));
        for bad in [
            "/a:/b:rw,ro",
            "/a:b",
            "/a:/",
            "/a:/b:c:d",
            "/a:/b:xx",
            "a b:/c",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_bind("/a:/b:xx").unwrap_err().to_string(),
            "invalid volume specification: '/a:/b:xx': invalid mode: xx"
        );
    }

    #[test]
    fn a_missing_mount_source_is_refused_as_docker_does() {
        let m = Mount {
            kind: "bind".into(),
            source: "/no/such/moor/path".into(),
            target: "/x".into(),
            ..Mount::default()
        };
        assert_eq!(
            parse_mount(&m).unwrap_err().to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /no/such/moor/path"
        );
        let ok = Mount {
            source: "/tmp".into(),
            read_only: true,
            ..m.clone()
        };
        let spec = parse_mount(&ok).unwrap();
        assert_eq!(
            (spec.propagation.as_str(), spec.read_only),
            ("rprivate", true)
        );
        let npipe = Mount {
            kind: "npipe".into(),
            ..m
        };
        assert!(parse_mount(&npipe)
            .unwrap_err()
            .to_string()
            .contains("npipe"));
    }

    #[test]
    fn tmpfs_options() {
        let m = parse_tmpfs("/run/x", "size=64m,mode=1700,exec").unwrap();
        assert_eq!((m.tmpfs_size, m.tmpfs_mode), (64 << 20, 0o1700));
        assert_eq!(m.options, vec!["nosuid", "nodev", "exec"]);
        assert!(parse_tmpfs("/x", "size=lots").is_err());
        assert!(parse_tmpfs("/x", "huge=within_size")
            .unwrap_err()
            .to_string()
            .contains("\"huge=within_size\""));
        assert_eq!(ram_in_bytes("1g"), Some(1 << 30));
        assert_eq!(ram_in_bytes("99999999999999t"), None);
    }

    #[test]
    fn duplicates_and_the_process_runtime() {
        let host = HostConfig {
            binds: Some(vec!["/a:/x".into()]),
            tmpfs: Some([("/x".to_string(), String::new())].into()),
            ..HostConfig::default()
        };
        let req = CreateRequest::default();
        assert_eq!(
            mounts_of(&req, &host, true).unwrap_err(),
            MountError::Duplicate("/x".into())
        );
        let host = HostConfig {
            binds: Some(vec!["/a:/x".into()]),
            ..HostConfig::default()
        };
        assert_eq!(
            mounts_of(&req, &host, false).unwrap_err().to_string(),
            "HostConfig.Binds is not supported by the process runtime (use runc)"
        );
        assert_eq!(mounts_of(&req, &host, true).unwrap().0.len(), 1);
    }
}
