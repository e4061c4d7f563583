//! The create fields that tune a runc container's cgroup and process (Docker's CpuShares,
//! CpuPeriod/CpuQuota, Cpuset*, MemoryReservation, MemorySwap, OomKillDisable; GroupAdd,
//! SecurityOpt, Ulimits, Sysctls, ShmSize, ExtraHosts, Dns*, Init): each value checked
//! here (a value moor cannot apply is a 400 naming the field), then kept in the spec's
//! [`Resources`] and [`ProcessOptions`]. The process runtime applies none of them: any of
//! them set there is a 400 naming the field and the runtime.

use std::net::IpAddr;

use moor_state::resources::{extra_host, ProcessOptions, Resources, Ulimit, HOST_GATEWAY};
use moor_state::ContainerSpec;

use crate::api::error::ApiError;
use crate::api::fields::FieldError;
use crate::api::types::HostConfig;
use crate::runtime::interface::Profile;

/// The `--ulimit` names Docker takes (its `RLIMIT_` table).
pub const ULIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    FieldError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
    .into()
}

/// A cpuset list (`0-3,5`): the numbers it names, or why it is not one.
pub fn cpuset(text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let bad = || format!("invalid value {text:?}: a list such as 0-2,4");
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi) = (
            lo.trim().parse::<u32>().map_err(|_| bad())?,
            hi.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if lo > hi || hi - lo > 4096 {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// A cpuset value checked against what the host has online (`/sys/devices/system/...`):
/// Docker refuses CPUs or nodes the host does not have at create.
fn check_cpuset(field: &str, value: &str, online: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Ok(());
    }
    let asked = cpuset(value).map_err(|e| invalid(field, e))?;
    let have = std::fs::read_to_string(online).ok();
    let have = have.and_then(|t| cpuset(t.trim()).ok());
    if let Some(missing) = have.and_then(|h| asked.into_iter().find(|n| !h.contains(n))) {
        return Err(invalid(
            field,
            format!("{missing} is not available on this host ({online})"),
        ));
    }
    Ok(())
}

/// The cgroup settings of `host`, checked against the memory and CPU limits given with them.
pub fn resources(host: &HostConfig) -> Result<Resources, ApiError> {
    let non_negative = [
        ("HostConfig.CpuShares", host.cpu_shares),
        ("HostConfig.CpuPeriod", host.cpu_period),
        ("HostConfig.MemoryReservation", host.memory_reservation),
    ];
    if let Some((field, v)) = non_negative.into_iter().find(|(_, v)| *v < 0) {
        return Err(invalid(field, format!("{v} is negative")));
    }
    if host.cpu_period != 0 && !(1000..=1_000_000).contains(&host.cpu_period) {
        return Err(invalid(
            "HostConfig.CpuPeriod",
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if host.cpu_quota != 0 && host.cpu_quota != -1 && host.cpu_quota < 1000 {
        return Err(invalid(
            "HostConfig.CpuQuota",
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if host.nano_cpus != 0 && (host.cpu_period != 0 || host.cpu_quota != 0) {
        let field = match host.cpu_quota {
            0 => "HostConfig.CpuPeriod",
            _ => "HostConfig.CpuQuota",
        };
        return Err(invalid(
            field,
            "conflicting options: NanoCpus and CpuPeriod/CpuQuota cannot both be set",
        ));
    }
    check_cpuset(
        "HostConfig.CpusetCpus",
        &host.cpuset_cpus,
        "/sys/devices/system/cpu/online",
    )?;
    check_cpuset(
        "HostConfig.CpusetMems",
        &host.cpuset_mems,
        "/sys/devices/system/node/online",
    )?;
    check_memory(host.memory, host.memory_swap, host.memory_reservation)?;
    Ok(Resources {
        cpu_shares: host.cpu_shares,
        cpu_period: host.cpu_period,
        cpu_quota: host.cpu_quota,
        cpuset_cpus: host.cpuset_cpus.clone(),
        cpuset_mems: host.cpuset_mems.clone(),
        memory_reservation: host.memory_reservation,
        memory_swap: host.memory_swap,
        oom_kill_disable: host.oom_kill_disable.unwrap_or(false),
    })
}

/// Memory, MemorySwap and MemoryReservation together, as Docker checks them.
pub fn check_memory(memory: i64, swap: i64, reservation: i64) -> Result<(), ApiError> {
    if swap != 0 && swap != -1 {
        if memory == 0 {
            return Err(invalid(
                "HostConfig.MemorySwap",
                "you should always set the Memory limit when using MemorySwap",
            ));
        }
        if swap < memory {
            return Err(invalid(
                "HostConfig.MemorySwap",
                "Minimum memoryswap limit should be larger than memory limit",
            ));
        }
    }
    if swap < -1 {
        return Err(invalid(
            "HostConfig.MemorySwap",
            format!("{swap} is negative"),
        ));
    }
    if memory > 0 && reservation > memory {
        return Err(invalid(
            "HostConfig.MemoryReservation",
            "Minimum memory limit can not be less than memory reservation limit",
        ));
    }
    Ok(())
}

/// `no-new-privileges`, `no-new-privileges:true|false` (`=` too, as Docker takes it).
fn no_new_privileges(list: &[String]) -> Result<bool, ApiError> {
    let mut on = false;
    for opt in list {
        let (key, value) = opt
            .split_once([':', '='])
            .map_or((opt.as_str(), None), |(k, v)| (k, Some(v)));
        on = match (key, value) {
            ("no-new-privileges", None | Some("true")) => true,
            ("no-new-privileges", Some("false")) => false,
            _ => {
                return Err(FieldError::Value {
                    field: "HostConfig.SecurityOpt".into(),
                    value: opt.clone(),
                    supported: "no-new-privileges[:true|false]",
                }
                .into())
            }
        };
    }
    Ok(on)
}

/// `{"Name": "nofile", "Soft": 1024, "Hard": 2048}` entries.
fn ulimits(list: &[serde_json::Value]) -> Result<Vec<Ulimit>, ApiError> {
    let field = "HostConfig.Ulimits";
    let mut out: Vec<Ulimit> = Vec::new();
    for entry in list {
        let u: Ulimit = serde_json::from_value(lowercase_keys(entry))
            .map_err(|e| invalid(field, format!("{entry}: {e}")))?;
        if !ULIMITS.contains(&u.name.as_str()) {
            return Err(invalid(field, format!("invalid ulimit type: {}", u.name)));
        }
        if u.soft < -1 || u.hard < -1 || (u.hard != -1 && (u.soft == -1 || u.soft > u.hard)) {
            return Err(invalid(
                field,
                format!("ulimit {}: soft limit must be less than hard limit", u.name),
            ));
        }
        if out.iter().any(|o| o.name == u.name) {
            return Err(invalid(field, format!("{} is given twice", u.name)));
        }
        out.push(u);
    }
    Ok(out)
}

/// Docker's `Name`/`Soft`/`Hard` keys read as the record's lowercase ones.
fn lowercase_keys(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.clone(),
    }
}

/// Whether sysctl `key` is namespaced (set in the container's own namespaces, as Docker
/// and runc allow): IPC ones without `IpcMode host`, `net.*` with a network namespace of its
/// own.
fn sysctl_allowed(key: &str, host: &HostConfig, network: &str) -> Result<(), &'static str> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return match host.ipc_mode.as_str() {
            "host" => Err("an IPC sysctl needs the container's own IPC namespace"),
            _ => Ok(()),
        };
    }
    if key.starts_with("net.") {
        return match network {
            "host" => Err("a net.* sysctl needs the container's own network namespace"),
            _ => Ok(()),
        };
    }
    Err("not a namespaced sysctl (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)")
}

/// The process options of `host` for a container whose network mode is `network`.
pub fn process_options(host: &HostConfig, network: &str) -> Result<ProcessOptions, ApiError> {
    let security_opt = host.security_opt.clone().unwrap_or_default();
    let no_new_privileges = no_new_privileges(&security_opt)?;
    let sysctls = host.sysctls.clone().unwrap_or_default();
    for key in sysctls.keys() {
        sysctl_allowed(key, host, network)
            .map_err(|why| invalid("HostConfig.Sysctls", format!("{key}: {why}")))?;
    }
    if host.shm_size < 0 {
        return Err(invalid("HostConfig.ShmSize", "a size can not be negative"));
    }
    if host.shm_size > 0 && host.ipc_mode == "host" {
        return Err(invalid(
            "HostConfig.ShmSize",
            "with IpcMode host the container uses the host's /dev/shm, whose size is the host's",
        ));
    }
    let extra_hosts = host.extra_hosts.clone().unwrap_or_default();
    for line in &extra_hosts {
        let (_, ip) = extra_host(line).map_err(|e| invalid("HostConfig.ExtraHosts", e))?;
        if ip == HOST_GATEWAY && matches!(network, "none" | "host") {
            return Err(invalid(
                "HostConfig.ExtraHosts",
                format!("{line:?}: host-gateway needs a bridge network (this one is {network})"),
            ));
        }
    }
    for server in &host.dns {
        server
            .parse::<IpAddr>()
            .map_err(|_| invalid("HostConfig.Dns", format!("{server:?} is not an IP address")))?;
    }
    let words = [
        ("HostConfig.DnsSearch", &host.dns_search),
        ("HostConfig.DnsOptions", &host.dns_options),
    ];
    for (field, list) in words {
        if let Some(w) = list
            .iter()
            .find(|w| w.is_empty() || w.contains(char::is_whitespace))
        {
            return Err(invalid(field, format!("{w:?} is not one word")));
        }
    }
    Ok(ProcessOptions {
        group_add: host.group_add.clone().unwrap_or_default(),
        security_opt,
        no_new_privileges,
        ulimits: ulimits(&host.ulimits)?,
        sysctls,
        shm_size: host.shm_size,
        extra_hosts,
        dns: host.dns.clone(),
        dns_search: host.dns_search.clone(),
        dns_options: host.dns_options.clone(),
        init: host.init.unwrap_or(false),
    })
}

/// The process runtime applies none of these: the first one set is refused by name.
pub fn check_runtime(r: &Resources, p: &ProcessOptions, runtime: Profile) -> Result<(), ApiError> {
    if runtime.confined {
        return Ok(());
    }
    let set = [
        ("HostConfig.CpuShares", r.cpu_shares != 0),
        ("HostConfig.CpuPeriod", r.cpu_period != 0),
        ("HostConfig.CpuQuota", r.cpu_quota != 0),
        ("HostConfig.CpusetCpus", !r.cpuset_cpus.is_empty()),
        ("HostConfig.CpusetMems", !r.cpuset_mems.is_empty()),
        ("HostConfig.MemoryReservation", r.memory_reservation != 0),
        ("HostConfig.MemorySwap", r.memory_swap != 0),
        ("HostConfig.OomKillDisable", r.oom_kill_disable),
        ("HostConfig.GroupAdd", !p.group_add.is_empty()),
        ("HostConfig.SecurityOpt", !p.security_opt.is_empty()),
        ("HostConfig.Ulimits", !p.ulimits.is_empty()),
        ("HostConfig.Sysctls", !p.sysctls.is_empty()),
        ("HostConfig.ExtraHosts", !p.extra_hosts.is_empty()),
        ("HostConfig.Dns", !p.dns.is_empty()),
        ("HostConfig.DnsSearch", !p.dns_search.is_empty()),
        ("HostConfig.DnsOptions", !p.dns_options.is_empty()),
        ("HostConfig.Init", p.init),
    ];
    match set.into_iter().find(|(_, on)| *on) {
        Some((field, _)) => Err(FieldError::Invalid {
            field: field.into(),
            reason: format!("not supported with the {} runtime", runtime.name),
        }
        .into()),
        None => Ok(()),
    }
}

/// Inspect's HostConfig keys of these fields, under Docker's names, as applied: the ones
/// not set show Docker's zero values (`/dev/shm` shows its size on a confined runtime).
pub fn show(spec: &ContainerSpec, runtime: Profile, hc: &mut HostConfig) {
    let (r, p) = (&spec.resources, &spec.process);
    hc.cpu_shares = r.cpu_shares;
    hc.cpu_period = r.cpu_period;
    hc.cpu_quota = r.cpu_quota;
    hc.cpuset_cpus = r.cpuset_cpus.clone();
    hc.cpuset_mems = r.cpuset_mems.clone();
    hc.memory_reservation = r.memory_reservation;
    // No swap unless asked: the limit plus swap is the limit itself.
    hc.memory_swap = moor_state::resources::memory_and_swap(spec.memory, r.memory_swap);
    hc.oom_kill_disable = Some(r.oom_kill_disable);
    hc.shm_size = match (runtime.confined, p.shm_size) {
        (false, _) => 0,
        (true, 0) => crate::api::spec::SHM_SIZE,
        (true, n) => n,
    };
    let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    hc.group_add = some(&p.group_add);
    hc.security_opt = some(&p.security_opt);
    hc.extra_hosts = some(&p.extra_hosts);
    hc.dns = p.dns.clone();
    hc.dns_search = p.dns_search.clone();
    hc.dns_options = p.dns_options.clone();
    hc.ulimits = p
        .ulimits
        .iter()
        .map(|u| serde_json::json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard}))
        .collect();
    hc.sysctls = (!p.sysctls.is_empty()).then(|| p.sysctls.clone());
    hc.init = p.init.then_some(true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cpusets_parse_as_the_kernel_writes_them() {
        assert_eq!(cpuset("0-2,4").unwrap(), vec![0, 1, 2, 4]);
        assert_eq!(cpuset("1").unwrap(), vec![1]);
        assert!(cpuset("2-1").is_err() && cpuset("a").is_err() && cpuset("").is_err());
    }

    #[test]
    fn values_moor_cannot_apply_name_their_field() {
        let err = |host: HostConfig| resources(&host).unwrap_err().to_string();
        let e = err(HostConfig {
            memory_swap: 1 << 20,
            ..HostConfig::default()
        });
        assert!(e.starts_with("HostConfig.MemorySwap: "), "{e}");
        let e = err(HostConfig {
            nano_cpus: 1,
            cpu_quota: 5000,
            ..HostConfig::default()
        });
        assert!(e.starts_with("HostConfig.CpuQuota: conflicting"), "{e}");
        let e = err(HostConfig {
            cpuset_cpus: "0-999".into(),
            ..HostConfig::default()
        });
        assert!(
            e.contains("HostConfig.CpusetCpus: ") && e.contains("not available"),
            "{e}"
        );
        let e = err(HostConfig {
            memory: 1 << 20,
            memory_reservation: 2 << 20,
            ..HostConfig::default()
        });
        assert!(e.starts_with("HostConfig.MemoryReservation: "), "{e}");
    }

    #[test]
    fn process_options_are_checked() {
        let opts = |host: HostConfig, net: &str| process_options(&host, net);
        let e = opts(
            HostConfig {
                security_opt: Some(vec!["seccomp=unconfined".into()]),
                ..HostConfig::default()
            },
            "default",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "HostConfig.SecurityOpt=seccomp=unconfined is not supported by moor yet \
             (it supports no-new-privileges[:true|false])"
        );
        for (opt, on) in [
            ("no-new-privileges", true),
            ("no-new-privileges:true", true),
            ("no-new-privileges=false", false),
        ] {
            let host = HostConfig {
                security_opt: Some(vec![opt.into()]),
                ..HostConfig::default()
            };
            assert_eq!(
                opts(host, "default").unwrap().no_new_privileges,
                on,
                "{opt}"
            );
        }
        let sysctl = |key: &str, net: &str| {
            let host = HostConfig {
                sysctls: Some([(key.to_string(), "1".to_string())].into()),
                ..HostConfig::default()
            };
            opts(host, net).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(sysctl("net.ipv4.ip_forward", "default").is_ok());
        assert!(sysctl("kernel.shmmax", "default").is_ok());
        assert!(sysctl("fs.mqueue.msg_max", "none").is_ok());
        let e = sysctl("net.ipv4.ip_forward", "host").unwrap_err();
        assert!(
            e.starts_with("HostConfig.Sysctls: net.ipv4.ip_forward"),
            "{e}"
        );
        assert!(sysctl("kernel.pid_max", "default").is_err());
        let shm = HostConfig {
            shm_size: 1 << 20,
            ipc_mode: "host".into(),
            ..HostConfig::default()
        };
        let e = opts(shm, "default").unwrap_err().to_string();
        assert!(
            e.starts_with("HostConfig.ShmSize: with IpcMode host"),
            "{e}"
        );
        let limits = |v: serde_json::Value| {
            let host = HostConfig {
                ulimits: vec![v],
                ..HostConfig::default()
            };
            opts(host, "default")
        };
        let ok = limits(json!({"Name": "nofile", "Soft": 100, "Hard": 200})).unwrap();
        assert_eq!(ok.ulimits[0].soft, 100);
        assert!(limits(json!({"Name": "nofile", "Soft": 300, "Hard": 200})).is_err());
        assert!(limits(json!({"Name": "bogus", "Soft": 1, "Hard": 2})).is_err());
        assert_eq!(
            extra_host("db:192.0.2.1").unwrap(),
            ("db".into(), "192.0.2.1".into())
        );
        assert!(
            extra_host("db:2001:db8::1").is_ok(),
            "IPv6 after the first colon"
        );
        assert!(extra_host("db:not-an-ip").is_err());
        let gw = HostConfig {
            extra_hosts: Some(vec!["gw:host-gateway".into()]),
            ..HostConfig::default()
        };
        assert!(opts(gw.clone(), "default").is_ok());
        assert!(opts(gw, "none").is_err());
    }
}
