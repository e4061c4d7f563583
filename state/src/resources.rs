//! The parts of a container's spec that tune its process and cgroup beyond the basics
//! (Docker's `HostConfig` resources and process options): recorded at create, shown back by
//! inspect under Docker's names, applied by the runc runtime's bundle, and (the cgroup
//! ones) changed on a live container by `docker update`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The cgroup settings beyond `memory`, `nano_cpus` and `pids_limit` (which the spec has
/// kept since its first version). 0 or empty means "not set": the kernel's default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Docker's CpuShares: the relative CPU weight (cgroup v1 `cpu.shares`).
    pub cpu_shares: i64,
    /// Docker's CpuPeriod: the CFS period in microseconds.
    pub cpu_period: i64,
    /// Docker's CpuQuota: CPU time in microseconds per period.
    pub cpu_quota: i64,
    /// Docker's CpusetCpus: the CPUs it may run on (`0-1`, `0,1`).
    pub cpuset_cpus: String,
    /// Docker's CpusetMems: the memory nodes it may use.
    pub cpuset_mems: String,
    /// Docker's MemoryReservation: the soft limit in bytes.
    pub memory_reservation: i64,
    /// Docker's MemorySwap: memory plus swap in bytes; -1 unlimited swap; 0 (unset) means
    /// no swap in moor (the limit equals `memory`).
    pub memory_swap: i64,
    /// Docker's OomKillDisable: the kernel's OOM killer leaves the container alone.
    pub oom_kill_disable: bool,
}

/// One `HostConfig.Ulimits` entry (`--ulimit nofile=1024:2048`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// The resource without `RLIMIT_` (`nofile`, `nproc`...), as Docker names it.
    pub name: String,
    /// The soft limit.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

/// The container process's options beyond user, env and capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessOptions {
    /// Docker's GroupAdd as given (group names of the image or numbers).
    pub group_add: Vec<String>,
    /// Docker's SecurityOpt as given (only `no-new-privileges[:true|false]` is taken).
    pub security_opt: Vec<String>,
    /// What `security_opt` says: the process cannot gain privileges (setuid, file caps).
    pub no_new_privileges: bool,
    /// Docker's Ulimits: the process's resource limits.
    pub ulimits: Vec<Ulimit>,
    /// Docker's Sysctls: namespaced kernel parameters set in the container's namespaces.
    pub sysctls: BTreeMap<String, String>,
    /// Docker's ShmSize in bytes (0: Docker's default, 64 MiB).
    pub shm_size: i64,
    /// Docker's ExtraHosts (`HOST:IP`, `IP` may be `host-gateway`): lines of its /etc/hosts.
    pub extra_hosts: Vec<String>,
    /// Docker's Dns: the name servers of its /etc/resolv.conf.
    pub dns: Vec<String>,
    /// Docker's DnsSearch: the search domains of its /etc/resolv.conf.
    pub dns_search: Vec<String>,
    /// Docker's DnsOptions: the options line of its /etc/resolv.conf.
    pub dns_options: Vec<String>,
    /// Docker's Init: a small init (tini) runs as pid 1, reaps zombies, forwards signals.
    pub init: bool,
}

impl ProcessOptions {
    /// Whether the container's resolv.conf is moor's choice rather than the host's.
    pub fn has_dns(&self) -> bool {
        !(self.dns.is_empty() && self.dns_search.is_empty() && self.dns_options.is_empty())
    }
}

/// The cgroup's limit of memory plus swap for a memory limit and Docker's MemorySwap: as
/// given (-1 unlimited), else no swap (the limit itself), as moor has always done.
pub fn memory_and_swap(memory: i64, swap: i64) -> i64 {
    if swap != 0 {
        swap
    } else {
        memory
    }
}

/// Docker's `host-gateway`: the bridge's gateway address, resolved at start.
pub const HOST_GATEWAY: &str = "host-gateway";

/// One `ExtraHosts` line: `HOST:IP` (or `HOST=IP`), IP an address or `host-gateway`.
pub fn extra_host(line: &str) -> Result<(String, String), String> {
    let (host, ip) = line
        .split_once('=')
        .or_else(|| line.split_once(':'))
        .ok_or_else(|| format!("invalid value {line:?}: HOST:IP"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("invalid host name in {line:?}"));
    }
    if ip != HOST_GATEWAY && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address in {line:?}"));
    }
    Ok((host.to_string(), ip.to_string()))
}

/// What `docker update` changes: each setting given replaces the spec's (None leaves it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceUpdate {
    /// Memory (bytes).
    pub memory: Option<i64>,
    /// MemorySwap (bytes, -1 unlimited).
    pub memory_swap: Option<i64>,
    /// MemoryReservation (bytes).
    pub memory_reservation: Option<i64>,
    /// NanoCpus.
    pub nano_cpus: Option<i64>,
    /// CpuShares.
    pub cpu_shares: Option<i64>,
    /// CpuQuota (microseconds).
    pub cpu_quota: Option<i64>,
    /// CpuPeriod (microseconds).
    pub cpu_period: Option<i64>,
    /// CpusetCpus.
    pub cpuset_cpus: Option<String>,
    /// CpusetMems.
    pub cpuset_mems: Option<String>,
    /// PidsLimit (0 or -1: none).
    pub pids_limit: Option<i64>,
    /// RestartPolicy.
    pub restart_policy: Option<crate::record::RestartPolicy>,
}

impl ResourceUpdate {
    /// Whether it changes a cgroup setting (else only the restart policy, or nothing).
    pub fn touches_cgroup(&self) -> bool {
        ResourceUpdate {
            restart_policy: None,
            ..self.clone()
        } != ResourceUpdate::default()
    }

    /// `spec` with this update applied.
    pub fn apply(&self, spec: &crate::ContainerSpec) -> crate::ContainerSpec {
        let mut out = spec.clone();
        let r = &mut out.resources;
        let set = |to: &mut i64, v: Option<i64>| {
            if let Some(v) = v {
                *to = v;
            }
        };
        set(&mut out.memory, self.memory);
        set(&mut out.nano_cpus, self.nano_cpus);
        set(&mut r.memory_swap, self.memory_swap);
        set(&mut r.memory_reservation, self.memory_reservation);
        set(&mut r.cpu_shares, self.cpu_shares);
        set(&mut r.cpu_quota, self.cpu_quota);
        set(&mut r.cpu_period, self.cpu_period);
        if let Some(c) = &self.cpuset_cpus {
            r.cpuset_cpus = c.clone();
        }
        if let Some(m) = &self.cpuset_mems {
            r.cpuset_mems = m.clone();
        }
        if let Some(limit) = self.pids_limit {
            out.pids_limit = (limit > 0).then_some(limit);
        }
        if let Some(p) = self.restart_policy {
            out.restart_policy = p;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_replaces_what_it_gives_only() {
        let spec = crate::ContainerSpec {
            memory: 10,
            pids_limit: Some(5),
            resources: Resources {
                cpu_shares: 100,
                ..Resources::default()
            },
            ..crate::ContainerSpec::default()
        };
        let up = ResourceUpdate {
            memory: Some(20),
            pids_limit: Some(-1),
            cpuset_cpus: Some("0".into()),
            ..ResourceUpdate::default()
        };
        let out = up.apply(&spec);
        assert_eq!((out.memory, out.pids_limit), (20, None));
        assert_eq!(out.resources.cpu_shares, 100);
        assert_eq!(out.resources.cpuset_cpus, "0");
        assert!(up.touches_cgroup());
        let policy = ResourceUpdate {
            restart_policy: Some(crate::record::RestartPolicy::Always),
            ..ResourceUpdate::default()
        };
        assert!(!policy.touches_cgroup());
        assert_eq!(
            policy.apply(&spec).restart_policy,
            crate::record::RestartPolicy::Always
        );
        assert_eq!(extra_host("a=192.0.2.1").unwrap().1, "192.0.2.1");
    }
}
