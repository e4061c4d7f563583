//! Memory figures of a set of processes: VmRSS (/proc/PID/status) and PSS
//! (/proc/PID/smaps_rollup), and the marginal memory per running container between two
//! container counts.

/// A `Key:   N kB` field of a /proc file, in KiB (None when the process is gone).
fn kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(key)?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// The VmRSS of `pid` in KiB; panics when it is gone (a daemon the bench measures).
pub fn rss_kib(pid: i32) -> u64 {
    kib(&format!("/proc/{pid}/status"), "VmRSS:")
        .unwrap_or_else(|| panic!("VmRSS of pid {pid}: the process is gone"))
}

/// The PSS of `pid` in KiB; panics when it is gone.
pub fn pss_kib(pid: i32) -> u64 {
    kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
        .unwrap_or_else(|| panic!("PSS of pid {pid}: the process is gone"))
}

/// The summed VmRSS of `pids`, in KiB.
pub fn total_rss(pids: &[i32]) -> u64 {
    pids.iter().map(|&p| rss_kib(p)).sum()
}

/// The summed PSS of `pids`, in KiB.
pub fn total_pss(pids: &[i32]) -> u64 {
    pids.iter().map(|&p| pss_kib(p)).sum()
}

/// One engine's memory with a given number of running containers.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Running containers.
    pub containers: usize,
    /// The daemon processes' summed VmRSS, KiB.
    pub daemon_rss: u64,
    /// The daemon processes' summed PSS, KiB.
    pub daemon_pss: u64,
    /// Monitors (one per container): how many were found.
    pub monitors: usize,
    /// Their summed PSS, KiB.
    pub monitor_pss: u64,
}

impl Sample {
    /// Reads the figures of `daemons` and `monitors` with `containers` running.
    pub fn read(containers: usize, daemons: &[i32], monitors: &[i32]) -> Sample {
        Sample {
            containers,
            daemon_rss: total_rss(daemons),
            daemon_pss: total_pss(daemons),
            monitors: monitors.len(),
            monitor_pss: total_pss(monitors),
        }
    }

    /// Daemon and monitors, PSS, KiB.
    pub fn total_pss(&self) -> u64 {
        self.daemon_pss + self.monitor_pss
    }
}

/// The marginal PSS per container between two samples, KiB: (daemon, monitors, total).
pub fn slope(lo: &Sample, hi: &Sample) -> (f64, f64, f64) {
    let n = hi.containers.saturating_sub(lo.containers).max(1) as f64;
    let per = |a: u64, b: u64| (b as f64 - a as f64) / n;
    (
        per(lo.daemon_pss, hi.daemon_pss),
        per(lo.monitor_pss, hi.monitor_pss),
        per(lo.total_pss(), hi.total_pss()),
    )
}
