//! `runc update`: the cgroup settings of a running container changed in place (Docker's
//! `docker update`), each one a flag set only when asked.

use std::ffi::OsString;

use super::{RuncArgs, RuncCommand};

/// Options of `runc update`: None leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateOpts {
    /// `--memory`: the memory limit in bytes (-1: none).
    pub memory: Option<i64>,
    /// `--memory-swap`: memory plus swap in bytes (-1: unlimited swap).
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`: the soft limit in bytes.
    pub memory_reservation: Option<i64>,
    /// `--cpu-share`: the relative CPU weight.
    pub cpu_shares: Option<u64>,
    /// `--cpu-period`: the CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// `--cpu-quota`: CPU time in microseconds per period (-1: none).
    pub cpu_quota: Option<i64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--pids-limit` (-1: none).
    pub pids_limit: Option<i64>,
}

impl UpdateOpts {
    /// Whether any setting is asked for (a `runc update` without one changes nothing).
    pub fn is_empty(&self) -> bool {
        *self == UpdateOpts::default()
    }

    fn push(&self, args: &mut Vec<OsString>) {
        let mut opt = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                args.push(format!("--{name}={v}").into());
            }
        };
        opt("memory", self.memory.map(|v| v.to_string()));
        opt("memory-swap", self.memory_swap.map(|v| v.to_string()));
        opt(
            "memory-reservation",
            self.memory_reservation.map(|v| v.to_string()),
        );
        opt("cpu-share", self.cpu_shares.map(|v| v.to_string()));
        opt("cpu-period", self.cpu_period.map(|v| v.to_string()));
        opt("cpu-quota", self.cpu_quota.map(|v| v.to_string()));
        opt("cpuset-cpus", self.cpuset_cpus.clone());
        opt("cpuset-mems", self.cpuset_mems.clone());
        opt("pids-limit", self.pids_limit.map(|v| v.to_string()));
    }
}

impl RuncArgs {
    /// `runc update [opts] ID`.
    pub fn update(&self, id: &str, opts: &UpdateOpts) -> RuncCommand {
        let mut c = self.command("update");
        opts.push(&mut c.args);
        c.args.push(id.into());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_asked_is_passed() {
        let args = RuncArgs::new("/usr/bin/runc", "/run/r");
        let opts = UpdateOpts {
            memory: Some(1 << 26),
            memory_swap: Some(1 << 26),
            cpu_quota: Some(50_000),
            cpuset_cpus: Some("0".into()),
            ..UpdateOpts::default()
        };
        assert_eq!(
            args.update("c1", &opts).argv().join(" "),
            "--root /run/r update --memory=67108864 --memory-swap=67108864 \
             --cpu-quota=50000 --cpuset-cpus=0 c1"
        );
        assert!(UpdateOpts::default().is_empty() && !opts.is_empty());
    }
}
