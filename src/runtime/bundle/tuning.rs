//! The spec's resources and process options in the OCI bundle: the cgroup's CPU and memory
//! settings, rlimits, `noNewPrivileges`, sysctls, supplementary groups, the size of
//! `/dev/shm`, and Docker's `--init` (tini bind-mounted read-only at `/sbin/docker-init` and
//! run as pid 1 in front of the container's command, as Docker runs its `docker-init`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use moor_state::resources::memory_and_swap;
use moor_state::ContainerSpec;
use oci_spec::runtime::{
    LinuxCpu, LinuxCpuBuilder, LinuxMemory, LinuxMemoryBuilder, MountBuilder, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType, Spec,
};

use super::BundleError;

/// Where the init is mounted in the container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The init binaries moor looks for, in order: Docker's own `docker-init` (a tini build),
/// then Debian's static tini (`apt-get install tini`). A static binary is needed: the image
/// may have no libc.
pub const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
    "/usr/bin/tini-static",
];

/// The init binary `--init` mounts, if this host has one.
pub fn init_binary() -> Option<PathBuf> {
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The CFS period moor sets with `--cpus` (Docker's: 100 ms).
pub const CPU_PERIOD: u64 = 100_000;

/// The cgroup's CPU settings: `--cpus` as a quota over Docker's period, or CpuQuota and
/// CpuPeriod as given; CpuShares; Cpuset*. None when nothing is set.
pub fn cpu(spec: &ContainerSpec) -> Result<Option<LinuxCpu>, BundleError> {
    let r = &spec.resources;
    let mut cpu = LinuxCpuBuilder::default();
    let mut any = false;
    if spec.nano_cpus > 0 {
        let quota = spec.nano_cpus.saturating_mul(CPU_PERIOD as i64) / 1_000_000_000;
        cpu = cpu.period(CPU_PERIOD).quota(quota.max(1000));
        any = true;
    }
    if r.cpu_quota != 0 {
        cpu = cpu.quota(r.cpu_quota);
        any = true;
    }
    if r.cpu_period > 0 {
        cpu = cpu.period(r.cpu_period as u64);
        any = true;
    }
    if r.cpu_shares > 0 {
        cpu = cpu.shares(r.cpu_shares as u64);
        any = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(r.cpuset_cpus.clone());
        any = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu = cpu.mems(r.cpuset_mems.clone());
        any = true;
    }
    Ok(if any { Some(cpu.build()?) } else { None })
}

/// The cgroup's memory settings: the limit with its swap, the reservation (soft limit), the
/// OOM killer switch. None when nothing is set.
pub fn memory(spec: &ContainerSpec) -> Result<Option<LinuxMemory>, BundleError> {
    let r = &spec.resources;
    let mut mem = LinuxMemoryBuilder::default();
    let mut any = false;
    if spec.memory > 0 {
        mem = mem
            .limit(spec.memory)
            .swap(memory_and_swap(spec.memory, r.memory_swap));
        any = true;
    }
    if r.memory_reservation > 0 {
        mem = mem.reservation(r.memory_reservation);
        any = true;
    }
    if r.oom_kill_disable {
        mem = mem.disable_oom_killer(true);
        any = true;
    }
    Ok(if any { Some(mem.build()?) } else { None })
}

/// A `--ulimit` name as the OCI spec's type (`nofile` → `RLIMIT_NOFILE`).
fn rlimit_type(name: &str) -> Result<PosixRlimitType, BundleError> {
    let text = format!("RLIMIT_{}", name.to_ascii_uppercase());
    serde_json::from_value(text.clone().into()).map_err(|_| BundleError::Ulimit(text))
}

/// -1 (unlimited) as the kernel's RLIM_INFINITY.
fn rlimit_value(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn rlimits(spec: &ContainerSpec) -> Result<Vec<PosixRlimit>, BundleError> {
    spec.process
        .ulimits
        .iter()
        .map(|u| {
            Ok(PosixRlimitBuilder::default()
                .typ(rlimit_type(&u.name)?)
                .soft(rlimit_value(u.soft))
                .hard(rlimit_value(u.hard))
                .build()?)
        })
        .collect()
}

/// Applies the process options to a built spec: rlimits, `noNewPrivileges`, supplementary
/// groups (`group_gids`, GroupAdd resolved in the image), sysctls, `/dev/shm`'s size and the
/// init (`init`: the host binary to mount, required when the spec asks for one).
pub fn apply(
    oci: &mut Spec,
    spec: &ContainerSpec,
    group_gids: &[u32],
    init: Option<&Path>,
) -> Result<(), BundleError> {
    let opts = &spec.process;
    if let Some(process) = oci.process_mut() {
        let limits = rlimits(spec)?;
        process.set_rlimits((!limits.is_empty()).then_some(limits));
        process.set_no_new_privileges(Some(opts.no_new_privileges));
        let user = process.user_mut();
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(
            group_gids
                .iter()
                .filter(|g| !gids.contains(g))
                .collect::<Vec<_>>(),
        );
        user.set_additional_gids((!gids.is_empty()).then_some(gids));
        if opts.init {
            let mut args = vec![INIT_PATH.to_string(), "--".to_string()];
            args.extend(process.args().clone().unwrap_or_default());
            process.set_args(Some(args));
        }
    }
    if let Some(linux) = oci.linux_mut() {
        if !opts.sysctls.is_empty() {
            let map: HashMap<String, String> = opts.sysctls.clone().into_iter().collect();
            linux.set_sysctl(Some(map));
        }
    }
    let mut mounts = oci.mounts().clone().unwrap_or_default();
    if opts.shm_size > 0 {
        for m in mounts.iter_mut() {
            let shm =
                m.destination() == Path::new("/dev/shm") && m.typ().as_deref() == Some("tmpfs");
            if !shm {
                continue;
            }
            let mut options = m.options().clone().unwrap_or_default();
            options.retain(|o| !o.starts_with("size="));
            options.push(format!("size={}", opts.shm_size));
            m.set_options(Some(options));
        }
    }
    if opts.init {
        let source = init.ok_or(BundleError::NoInit)?;
        mounts.push(
            MountBuilder::default()
                .destination(INIT_PATH)
                .typ("bind")
                .source(source)
                .options(["bind", "ro", "nosuid", "nodev"].map(String::from).to_vec())
                .build()?,
        );
    }
    oci.set_mounts(Some(mounts));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use moor_state::resources::{ProcessOptions, Resources, Ulimit};

    #[test]
    fn resources_and_options_reach_the_oci_spec() {
        let spec = ContainerSpec {
            cmd: vec!["sh".into()],
            memory: 64 << 20,
            resources: Resources {
                cpu_shares: 512,
                cpu_quota: 50_000,
                cpu_period: 200_000,
                cpuset_cpus: "0".into(),
                memory_reservation: 32 << 20,
                memory_swap: -1,
                oom_kill_disable: true,
                ..Resources::default()
            },
            process: ProcessOptions {
                ulimits: vec![Ulimit {
                    name: "nofile".into(),
                    soft: 123,
                    hard: 456,
                }],
                no_new_privileges: true,
                sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
                shm_size: 1 << 20,
                init: true,
                ..ProcessOptions::default()
            },
            ..ContainerSpec::default()
        };
        let user = crate::image::user::ExecUser::default();
        let mut oci = super::super::build(&"ab".repeat(32), &spec, "/m", &user).unwrap();
        apply(
            &mut oci,
            &spec,
            &[10, 20],
            Some(Path::new("/usr/bin/tini-static")),
        )
        .unwrap();
        let json = serde_json::to_value(&oci).unwrap();
        let res = &json["linux"]["resources"];
        assert_eq!(res["cpu"]["shares"], 512);
        assert_eq!(res["cpu"]["quota"], 50_000);
        assert_eq!(res["cpu"]["period"], 200_000);
        assert_eq!(res["cpu"]["cpus"], "0");
        assert_eq!(res["memory"]["reservation"], 32 << 20);
        assert_eq!(res["memory"]["swap"], -1);
        assert_eq!(res["memory"]["disableOOMKiller"], true);
        let p = &json["process"];
        assert_eq!(
            p["rlimits"],
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}])
        );
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["user"]["additionalGids"], serde_json::json!([10, 20]));
        assert_eq!(p["args"], serde_json::json!([INIT_PATH, "--", "sh"]));
        assert_eq!(json["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        let mounts = json["mounts"].as_array().unwrap();
        let shm = mounts
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert!(
            shm["options"].to_string().contains("\"size=1048576\""),
            "{shm}"
        );
        let init = mounts
            .iter()
            .find(|m| m["destination"] == INIT_PATH)
            .unwrap();
        assert_eq!(init["source"], "/usr/bin/tini-static");
        assert!(
            apply(&mut oci, &spec, &[], None).is_err(),
            "no init binary: refused"
        );
    }
}
