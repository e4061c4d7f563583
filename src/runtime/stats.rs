//! What a container uses, read from the host: its cgroup's files for runc (v1 or v2, the
//! paths runc recorded in its state file), its session's `/proc` entries for the process
//! runtime (it has no cgroup of its own), and the network devices of the init's namespace.
//! The numbers are Docker's (`docker stats`), so the API can pass them through.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use thiserror::Error;

use crate::identity::ProcStat;

/// CPU time, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cpu {
    /// User and system time of every process of the container.
    pub total_ns: u64,
    /// Per CPU (cgroup v1's `cpuacct.usage_percpu`; empty elsewhere, as Docker on v2).
    pub per_cpu_ns: Vec<u64>,
    /// User time.
    pub user_ns: u64,
    /// System time.
    pub kernel_ns: u64,
}

/// Memory, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// Usage (page cache included, as the cgroup counts it; RSS for a process container).
    pub usage: u64,
    /// Peak usage where the kernel keeps it (cgroup v1).
    pub max_usage: Option<u64>,
    /// The limit: the cgroup's, at most the host's memory (Docker's rule).
    pub limit: u64,
    /// `memory.stat`, as the kernel names its fields.
    pub stat: BTreeMap<String, u64>,
}

/// One network device's counters (`/proc/PID/net/dev`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    /// Received bytes, packets, errors, drops.
    pub rx: [u64; 4],
    /// Sent bytes, packets, errors, drops.
    pub tx: [u64; 4],
}

/// One reading of a container's use of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time of the container.
    pub cpu: Cpu,
    /// CPU time of the whole host (`/proc/stat`), nanoseconds: the base of a CPU percentage.
    pub system_cpu_ns: u64,
    /// CPUs online.
    pub online_cpus: u32,
    /// Memory.
    pub memory: Memory,
    /// Tasks in the container, and their limit (None: unlimited).
    pub pids: (u64, Option<u64>),
    /// Network devices of the container's namespace but `lo` (empty: the host's network).
    pub networks: BTreeMap<String, NetDev>,
}

/// Why a container's use could not be read.
#[derive(Debug, Error)]
pub enum StatsError {
    /// The runtime keeps no record of the container's cgroup.
    #[error("runc's state of the container cannot be read")]
    NoCgroup,
    /// A file that must be there could not be read.
    #[error("read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A reading taken on the blocking pool, as an actor awaits it (a panic in it goes on).
pub fn off_thread(
    read: impl FnOnce() -> Result<Sample, StatsError> + Send + 'static,
) -> crate::runtime::interface::RuntimeFuture<Result<Sample, StatsError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(read)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    })
}

/// Clock ticks per second (`/proc` times are in ticks).
fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

fn read(path: &Path) -> Result<String, StatsError> {
    std::fs::read_to_string(path).map_err(|source| StatsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// A file holding one number (`max` and a missing file are None).
fn number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat).
fn keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The host's memory (`MemTotal`), bytes.
fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib.saturating_mul(1024))
}

/// The host's CPU time and online CPUs, as Docker reads them.
fn host_cpu() -> (u64, u32) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let online = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1);
    (
        ticks.saturating_mul(1_000_000_000 / ticks_per_second()),
        online,
    )
}

/// The network devices of `pid`'s namespace but `lo`.
pub fn networks(pid: i32) -> BTreeMap<String, NetDev> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, counters) = l.split_once(':')?;
            let v: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            let name = name.trim();
            (name != "lo" && v.len() >= 12).then(|| {
                let dev = NetDev {
                    rx: [v[0], v[1], v[2], v[3]],
                    tx: [v[8], v[9], v[10], v[11]],
                };
                (name.to_string(), dev)
            })
        })
        .collect()
}

/// A runc container's reading from the cgroup paths runc recorded (`cgroup_paths` of its
/// state file: a path per v1 controller, or `""` for the v2 unified one).
pub fn cgroup(paths: &HashMap<String, String>) -> Result<Sample, StatsError> {
    let (system_cpu_ns, online_cpus) = host_cpu();
    let mut sample = Sample {
        system_cpu_ns,
        online_cpus,
        ..Sample::default()
    };
    // A hybrid host (v1 controllers and an empty unified hierarchy) records both: the v1
    // controllers hold the figures there.
    match (paths.contains_key("cpuacct"), paths.get("")) {
        (false, Some(unified)) => cgroup_v2(Path::new(unified), &mut sample)?,
        _ => cgroup_v1(paths, &mut sample)?,
    }
    sample.memory.limit = match (sample.memory.limit, host_memory()) {
        (0, host) => host,
        (limit, 0) => limit,
        (limit, host) => limit.min(host),
    };
    Ok(sample)
}

fn cgroup_v1(paths: &HashMap<String, String>, s: &mut Sample) -> Result<(), StatsError> {
    let dir = |c: &str| paths.get(c).map(Path::new).ok_or(StatsError::NoCgroup);
    let cpuacct = dir("cpuacct")?;
    s.cpu.total_ns = number(&cpuacct.join("cpuacct.usage")).unwrap_or(0);
    s.cpu.per_cpu_ns = std::fs::read_to_string(cpuacct.join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let times = keyed(&std::fs::read_to_string(cpuacct.join("cpuacct.stat")).unwrap_or_default());
    let ns = 1_000_000_000 / ticks_per_second();
    s.cpu.user_ns = times.get("user").copied().unwrap_or(0).saturating_mul(ns);
    s.cpu.kernel_ns = times.get("system").copied().unwrap_or(0).saturating_mul(ns);
    let memory = dir("memory")?;
    s.memory.usage = number(&memory.join("memory.usage_in_bytes")).unwrap_or(0);
    s.memory.max_usage = number(&memory.join("memory.max_usage_in_bytes"));
    s.memory.limit = number(&memory.join("memory.limit_in_bytes")).unwrap_or(0);
    s.memory.stat = keyed(&read(&memory.join("memory.stat"))?);
    if let Ok(pids) = dir("pids") {
        s.pids = (
            number(&pids.join("pids.current")).unwrap_or(0),
            number(&pids.join("pids.max")),
        );
    }
    Ok(())
}

fn cgroup_v2(dir: &Path, s: &mut Sample) -> Result<(), StatsError> {
    let cpu = keyed(&read(&dir.join("cpu.stat"))?);
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0).saturating_mul(1000);
    s.cpu.total_ns = us("usage_usec");
    s.cpu.user_ns = us("user_usec");
    s.cpu.kernel_ns = us("system_usec");
    s.memory.usage = number(&dir.join("memory.current")).unwrap_or(0);
    s.memory.limit = number(&dir.join("memory.max")).unwrap_or(0);
    s.memory.stat = keyed(&std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default());
    s.pids = (
        number(&dir.join("pids.current")).unwrap_or(0),
        number(&dir.join("pids.max")),
    );
    Ok(())
}

/// A process container's reading: the sum over `pids` (its init's session) of their CPU
/// times and resident memory; the limit is the host's memory.
pub fn processes(pids: &[i32]) -> Sample {
    let (system_cpu_ns, online_cpus) = host_cpu();
    let ns = 1_000_000_000 / ticks_per_second();
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    let mut s = Sample {
        system_cpu_ns,
        online_cpus,
        ..Sample::default()
    };
    for &pid in pids {
        let Ok(Some(ProcStat {
            times: (user, system),
            children_times: waited,
            ..
        })) = crate::identity::stat(pid)
        else {
            continue;
        };
        // The times of children it reaped count too (a shell loop's short-lived commands),
        // as a cgroup counts them.
        let (user, system) = (user + waited.0, system + waited.1);
        s.cpu.user_ns = s.cpu.user_ns.saturating_add(user.saturating_mul(ns));
        s.cpu.kernel_ns = s.cpu.kernel_ns.saturating_add(system.saturating_mul(ns));
        s.pids.0 += 1;
        let rss_pages = std::fs::read_to_string(format!("/proc/{pid}/statm"))
            .ok()
            .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        s.memory.usage = s
            .memory
            .usage
            .saturating_add(rss_pages.saturating_mul(page));
    }
    s.cpu.total_ns = s.cpu.user_ns.saturating_add(s.cpu.kernel_ns);
    s.memory.limit = host_memory();
    s.memory.stat.insert("rss".into(), s.memory.usage);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_from_proc() {
        let me = std::process::id() as i32;
        let burn = std::time::Instant::now();
        while burn.elapsed() < std::time::Duration::from_millis(30) {
            std::hint::black_box(0u64);
        }
        let s = processes(&[me]);
        assert_eq!(s.pids.0, 1);
        assert!(s.cpu.total_ns > 0 && s.memory.usage > 0, "{s:?}");
        assert!(s.memory.limit >= s.memory.usage && s.system_cpu_ns > s.cpu.total_ns);
        assert!(s.online_cpus >= 1);
    }

    #[test]
    fn keyed_files_and_net_dev_parse() {
        let stat = keyed("cache 4096\nrss 8192\nbad line\n");
        assert_eq!(stat.get("rss"), Some(&8192));
        assert_eq!(stat.len(), 2);
        let nets = networks(std::process::id() as i32);
        assert!(!nets.contains_key("lo"));
    }

    #[test]
    fn a_v1_cgroup_is_read_with_the_host_memory_as_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let (cpu, mem) = (dir.path().join("cpuacct"), dir.path().join("memory"));
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(cpu.join("cpuacct.usage"), "5000\n").unwrap();
        std::fs::write(cpu.join("cpuacct.usage_percpu"), "2000 3000 \n").unwrap();
        std::fs::write(cpu.join("cpuacct.stat"), "user 1\nsystem 2\n").unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "1048576\n").unwrap();
        std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(mem.join("memory.stat"), "total_inactive_file 4096\n").unwrap();
        let paths: HashMap<String, String> = [("cpuacct", &cpu), ("memory", &mem)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.display().to_string()))
            .collect();
        let s = cgroup(&paths).unwrap();
        assert_eq!(
            (s.cpu.total_ns, s.cpu.per_cpu_ns.clone()),
            (5000, vec![2000, 3000])
        );
        assert_eq!(s.memory.usage, 1 << 20);
        assert_eq!(s.memory.limit, host_memory());
        assert_eq!(s.memory.stat["total_inactive_file"], 4096);
        assert_eq!(s.pids, (0, None));
        std::fs::remove_file(mem.join("memory.stat")).unwrap();
        assert!(cgroup(&paths)
            .unwrap_err()
            .to_string()
            .contains("memory.stat"));
    }
}
