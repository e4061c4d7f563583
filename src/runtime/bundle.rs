//! The OCI bundle's config.json, built with the oci-spec crate from a container's spec:
//! Docker's defaults (namespaces pid, mount, ipc, uts, network; /proc, /dev, /dev/pts,
//! /dev/shm, /dev/mqueue, /sys read-only; masked and read-only paths; the default capability
//! set; a deny-all device cgroup that runc extends with its default devices) plus the
//! user's options and limits.

mod caps;
mod privileged;
pub mod tuning;
mod user_mounts;

use std::path::Path;

use moor_state::ContainerSpec;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder,
    LinuxDeviceCgroupBuilder, LinuxNamespace, LinuxNamespaceType, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};
use oci_spec::OciSpecError;
use thiserror::Error;

pub use caps::parse as parse_capability;

use super::DEFAULT_PATH;
use crate::image::user::ExecUser;

/// Why a bundle could not be built.
#[derive(Debug, Error)]
pub enum BundleError {
    /// oci-spec refused a value.
    #[error("build the OCI spec")]
    Oci(#[from] OciSpecError),
    /// A `--ulimit` name the OCI spec has no type for.
    #[error("ulimit {0} is not a resource limit the OCI spec knows")]
    Ulimit(String),
    /// `--init` was asked and the host has no init binary to mount.
    #[error("--init needs an init binary on the host: none of {} exists (install tini)", tuning::INIT_CANDIDATES.join(", "))]
    NoInit,
    /// config.json could not be written.
    #[error("write {path}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: OciSpecError,
    },
}

/// Docker's default capability set.
const DOCKER_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The environment: the user's, Docker's PATH when none is set, HOSTNAME.
fn environment(spec: &ContainerSpec, hostname: &str) -> Vec<String> {
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(1, format!("HOSTNAME={hostname}"));
    }
    // Docker's: a terminal container gets TERM=xterm unless it sets TERM.
    if spec.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    env
}

/// Docker's default set tweaked by CapAdd/CapDrop (every capability when privileged), with
/// no inheritable or ambient ones, as Docker since CVE-2022-24769: oci-spec's default would
/// fill both with AUDIT_WRITE, KILL and NET_BIND_SERVICE.
fn capabilities(spec: &ContainerSpec) -> Result<LinuxCapabilities, BundleError> {
    let caps: oci_spec::runtime::Capabilities =
        caps::effective(DOCKER_CAPS, &spec.cap_add, &spec.cap_drop, spec.privileged)
            .into_iter()
            .collect();
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()?)
}

/// The default mounts, with a writable /sys when privileged and the host's /dev/shm with
/// the host's IPC namespace (Docker bind-mounts it), then the user's mounts.
fn mounts(oci: &Spec, spec: &ContainerSpec) -> Result<Vec<Mount>, BundleError> {
    user_mounts::merge(default_mounts(oci, spec)?, &spec.mounts)
}

/// Docker's default mounts for this spec.
fn default_mounts(oci: &Spec, spec: &ContainerSpec) -> Result<Vec<Mount>, BundleError> {
    let mut mounts = oci.mounts().clone().unwrap_or_default();
    if spec.privileged {
        mounts = privileged::writable_sysfs(mounts);
    }
    if spec.ipc_mode != "host" {
        return Ok(mounts);
    }
    let shm = Path::new("/dev/shm");
    let opts = ["rbind", "nosuid", "noexec", "nodev"]
        .map(String::from)
        .to_vec();
    let bind = MountBuilder::default()
        .destination(shm)
        .typ("bind")
        .source(shm)
        .options(opts)
        .build()?;
    Ok(mounts
        .into_iter()
        .map(|m| {
            if m.destination() == shm {
                bind.clone()
            } else {
                m
            }
        })
        .collect())
}

/// The cgroup limits: the device cgroup (deny all unless privileged; runc adds its default
/// devices), memory, CPU, pids.
fn resources(spec: &ContainerSpec) -> Result<LinuxResources, BundleError> {
    let mut resources =
        LinuxResourcesBuilder::default().devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(spec.privileged)
            .access("rwm")
            .build()?]);
    // Swap limited to the memory limit unless MemorySwap says otherwise: an over-limit
    // container is killed, not swapped.
    if let Some(memory) = tuning::memory(spec)? {
        resources = resources.memory(memory);
    }
    if let Some(cpu) = tuning::cpu(spec)? {
        resources = resources.cpu(cpu);
    }
    if let Some(limit) = spec.pids_limit.filter(|l| *l > 0) {
        resources = resources.pids(LinuxPidsBuilder::default().limit(limit).build()?);
    }
    Ok(resources.build()?)
}

/// Docker's namespaces but the cgroup one, less those shared with the host (`host` modes).
fn namespaces(defaults: &oci_spec::runtime::Linux, spec: &ContainerSpec) -> Vec<LinuxNamespace> {
    let mut all = defaults.namespaces().clone().unwrap_or_default();
    all.retain(|ns| match ns.typ() {
        LinuxNamespaceType::Network => spec.network_mode != "host",
        LinuxNamespaceType::Pid => spec.pid_mode != "host",
        LinuxNamespaceType::Uts => spec.uts_mode != "host",
        LinuxNamespaceType::Ipc => spec.ipc_mode != "host",
        LinuxNamespaceType::Cgroup => false,
        _ => true,
    });
    all
}

/// Builds config.json's content for container `id`; `cgroups_path` is where runc puts it,
/// `user` the ids `-u` resolved to in the image.
pub fn build(
    id: &str,
    spec: &ContainerSpec,
    cgroups_path: &str,
    user: &ExecUser,
) -> Result<Spec, BundleError> {
    let uts_host = spec.uts_mode == "host";
    let hostname = if uts_host {
        nix::unistd::gethostname().map_or_else(|_| String::new(), |h| h.to_string_lossy().into())
    } else if spec.hostname.is_empty() {
        id[..id.len().min(12)].to_string()
    } else {
        spec.hostname.clone()
    };
    let process = ProcessBuilder::default()
        .capabilities(capabilities(spec)?)
        .args(spec.argv())
        .env(environment(spec, &hostname))
        .cwd(if spec.working_dir.is_empty() {
            "/".to_string()
        } else {
            spec.working_dir.clone()
        })
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()?,
        )
        .no_new_privileges(false)
        .terminal(spec.tty)
        .build()?;
    let defaults = oci_spec::runtime::Linux::default();
    let confined = |paths: &Option<Vec<String>>| match spec.privileged {
        true => Vec::new(),
        false => paths.clone().unwrap_or_default(),
    };
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(&defaults, spec))
        .masked_paths(confined(defaults.masked_paths()))
        .readonly_paths(confined(defaults.readonly_paths()))
        .resources(resources(spec)?)
        .cgroups_path(cgroups_path);
    if spec.privileged {
        linux = linux.devices(privileged::host_devices(Path::new("/dev"))?);
    }
    let linux = linux.build()?;
    let mut oci = Spec::default();
    oci.set_mounts(Some(mounts(&oci, spec)?));
    oci.set_hostname((!uts_host).then_some(hostname))
        .set_process(Some(process))
        .set_root(Some(
            RootBuilder::default()
                .path("rootfs")
                .readonly(spec.read_only)
                .build()?,
        ))
        .set_linux(Some(linux));
    Ok(oci)
}

/// A bridge container's bundle: its network namespace is the file moor made (`netns`), and
/// moor's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` are bind-mounted read-write
/// (Docker's), unless the user mounts something there.
pub fn join_network(
    oci: &mut Spec,
    netns: &Path,
    files: &[(std::path::PathBuf, String)],
) -> Result<(), BundleError> {
    if let Some(linux) = oci.linux_mut() {
        let mut namespaces = linux.namespaces().clone().unwrap_or_default();
        for ns in namespaces
            .iter_mut()
            .filter(|ns| ns.typ() == LinuxNamespaceType::Network)
        {
            ns.set_path(Some(netns.to_path_buf()));
        }
        linux.set_namespaces(Some(namespaces));
    }
    bind_files(oci, files)
}

/// moor's own `/etc/hosts`, `/etc/resolv.conf`... (`files`: each with its place in the
/// container) bind-mounted read-write, unless the user mounts something there.
pub fn bind_files(
    oci: &mut Spec,
    files: &[(std::path::PathBuf, String)],
) -> Result<(), BundleError> {
    let mut mounts = oci.mounts().clone().unwrap_or_default();
    for (source, dest) in files {
        if mounts.iter().any(|m| m.destination() == Path::new(dest)) {
            continue;
        }
        mounts.push(
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(source)
                .options(["rbind", "rprivate"].map(String::from).to_vec())
                .build()?,
        );
    }
    oci.set_mounts(Some(mounts));
    Ok(())
}

/// Writes `config.json` into `bundle`.
pub fn write(bundle: &Path, oci: &Spec) -> Result<(), BundleError> {
    let path = bundle.join("config.json");
    oci.save(&path)
        .map_err(|source| BundleError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_limits() {
        let spec = ContainerSpec {
            cmd: vec!["sh".into()],
            memory: 16 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(10),
            ..ContainerSpec::default()
        };
        let id = "0123456789abcdef".repeat(4);
        let user = ExecUser {
            uid: 1000,
            gid: 100,
            additional_gids: vec![10],
        };
        let oci = build(&id, &spec, "/moor/x", &user).expect("build");
        let json = serde_json::to_value(&oci).expect("json");
        assert_eq!(json["hostname"], "0123456789ab");
        assert_eq!(json["process"]["user"]["uid"], 1000);
        assert_eq!(json["process"]["user"]["additionalGids"][0], 10);
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 16 << 20);
        assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 10);
        let env = json["process"]["env"].as_array().expect("env");
        assert!(env.iter().any(|e| e == &format!("PATH={DEFAULT_PATH}")));
        let ns = json["linux"]["namespaces"].to_string();
        assert!(ns.contains("network") && ns.contains("pid"), "{ns}");
        let caps = json["process"]["capabilities"]["bounding"].to_string();
        assert!(caps.contains("CAP_CHOWN") && !caps.contains("CAP_SYS_ADMIN"));
        let host = ContainerSpec {
            network_mode: "host".into(),
            ..spec
        };
        let ns = serde_json::to_value(build(&id, &host, "/m", &user).expect("build"))
            .expect("json")["linux"]["namespaces"]
            .to_string();
        assert!(!ns.contains("network"), "{ns}");
    }

    #[test]
    fn host_modes_and_capability_tweaks() {
        let spec = ContainerSpec {
            cmd: vec!["sh".into()],
            pid_mode: "host".into(),
            uts_mode: "host".into(),
            ipc_mode: "host".into(),
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["CHOWN".into()],
            ..ContainerSpec::default()
        };
        let user = ExecUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
        };
        let json =
            serde_json::to_value(build(&"ab".repeat(32), &spec, "/m", &user).unwrap()).unwrap();
        let ns = json["linux"]["namespaces"].to_string();
        assert!(
            !ns.contains("pid") && !ns.contains("uts") && !ns.contains("ipc"),
            "{ns}"
        );
        assert!(
            json.get("hostname").is_none_or(|h| h.is_null()),
            "no hostname without a UTS namespace"
        );
        let shm = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm");
        assert_eq!(shm.unwrap()["source"], "/dev/shm");
        let caps = &json["process"]["capabilities"];
        let bounding = caps["bounding"].to_string();
        assert!(
            bounding.contains("CAP_NET_ADMIN") && !bounding.contains("CAP_CHOWN"),
            "{bounding}"
        );
        for set in ["inheritable", "ambient"] {
            assert_eq!(caps[set], serde_json::json!([]), "{set}");
        }
    }
}
