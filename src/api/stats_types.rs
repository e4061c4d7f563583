//! `GET /containers/{id}/stats` on the wire: Docker's `ContainerStatsResponse` (API 1.44),
//! field for field, with Go's `omitempty` where Docker has it, so `docker stats` and the
//! SDKs compute their percentages from it as they do against Docker.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::api::convert::go_time;
use crate::runtime::stats::{NetDev, Sample};

/// One stats object.
#[derive(Debug, Serialize)]
pub struct StatsResponse {
    /// When this reading was taken.
    pub read: String,
    /// When the previous one was (Go's zero time for none).
    pub preread: String,
    /// Tasks.
    pub pids_stats: PidsStats,
    /// Block I/O: moor does not account it (Docker's shape, every list null).
    pub blkio_stats: BlkioStats,
    /// Windows only; 0.
    pub num_procs: u32,
    /// Windows only; empty.
    pub storage_stats: BTreeMap<String, u64>,
    /// CPU now.
    pub cpu_stats: CpuStats,
    /// CPU at the previous reading.
    pub precpu_stats: CpuStats,
    /// Memory.
    pub memory_stats: MemoryStats,
    /// `/NAME`.
    pub name: String,
    /// The container's id.
    pub id: String,
    /// Per network device of the container's namespace (none: the host's network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

/// `pids_stats`.
#[derive(Debug, Default, Serialize)]
pub struct PidsStats {
    /// Tasks now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// Their limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// `blkio_stats`: every list null, as Docker answers where it has none.
#[derive(Debug, Default, Serialize)]
pub struct BlkioStats {
    io_service_bytes_recursive: Option<()>,
    io_serviced_recursive: Option<()>,
    io_queue_recursive: Option<()>,
    io_service_time_recursive: Option<()>,
    io_wait_time_recursive: Option<()>,
    io_merged_recursive: Option<()>,
    io_time_recursive: Option<()>,
    sectors_recursive: Option<()>,
}

/// `cpu_stats` and `precpu_stats`.
#[derive(Debug, Default, Serialize)]
pub struct CpuStats {
    /// The container's CPU time.
    pub cpu_usage: CpuUsage,
    /// The host's CPU time, nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    /// CPUs online.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u32>,
    /// CFS throttling: not read (zeros, as Docker without a CPU quota).
    pub throttling_data: Throttling,
}

/// `cpu_usage`, nanoseconds.
#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    /// User and system.
    pub total_usage: u64,
    /// Per CPU (cgroup v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    /// System.
    pub usage_in_kernelmode: u64,
    /// User.
    pub usage_in_usermode: u64,
}

/// `throttling_data`.
#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    periods: u64,
    throttled_periods: u64,
    throttled_time: u64,
}

/// `memory_stats`.
#[derive(Debug, Default, Serialize)]
pub struct MemoryStats {
    /// Usage, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    /// Peak usage (cgroup v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    /// `memory.stat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<BTreeMap<String, u64>>,
    /// The limit, at most the host's memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// One device of `networks`.
#[derive(Debug, Serialize)]
pub struct NetworkStats {
    rx_bytes: u64,
    rx_packets: u64,
    rx_errors: u64,
    rx_dropped: u64,
    tx_bytes: u64,
    tx_packets: u64,
    tx_errors: u64,
    tx_dropped: u64,
}

impl From<&NetDev> for NetworkStats {
    fn from(d: &NetDev) -> Self {
        NetworkStats {
            rx_bytes: d.rx[0],
            rx_packets: d.rx[1],
            rx_errors: d.rx[2],
            rx_dropped: d.rx[3],
            tx_bytes: d.tx[0],
            tx_packets: d.tx[1],
            tx_errors: d.tx[2],
            tx_dropped: d.tx[3],
        }
    }
}

/// A reading taken at a time.
pub type Reading = (DateTime<Utc>, Sample);

fn cpu(sample: Option<&Sample>) -> CpuStats {
    let Some(s) = sample else {
        return CpuStats::default();
    };
    CpuStats {
        cpu_usage: CpuUsage {
            total_usage: s.cpu.total_ns,
            percpu_usage: (!s.cpu.per_cpu_ns.is_empty()).then(|| s.cpu.per_cpu_ns.clone()),
            usage_in_kernelmode: s.cpu.kernel_ns,
            usage_in_usermode: s.cpu.user_ns,
        },
        system_cpu_usage: Some(s.system_cpu_ns),
        online_cpus: Some(s.online_cpus),
        throttling_data: Throttling::default(),
    }
}

impl StatsResponse {
    /// The answer for container `id` named `name`: `now` and the reading before it (either
    /// may be absent: a container that does not run answers Docker's empty object).
    pub fn new(id: &str, name: &str, now: Option<&Reading>, before: Option<&Reading>) -> Self {
        let sample = now.map(|(_, s)| s);
        let memory = sample.map_or_else(MemoryStats::default, |s| MemoryStats {
            usage: Some(s.memory.usage),
            max_usage: s.memory.max_usage,
            stats: Some(s.memory.stat.clone()),
            limit: Some(s.memory.limit),
        });
        let pids = sample.map_or_else(PidsStats::default, |s| PidsStats {
            current: Some(s.pids.0),
            limit: s.pids.1,
        });
        let networks = sample.filter(|s| !s.networks.is_empty()).map(|s| {
            s.networks
                .iter()
                .map(|(k, v)| (k.clone(), v.into()))
                .collect()
        });
        StatsResponse {
            read: go_time(now.map(|(t, _)| *t)),
            preread: go_time(before.map(|(t, _)| *t)),
            pids_stats: pids,
            blkio_stats: BlkioStats::default(),
            num_procs: 0,
            storage_stats: BTreeMap::new(),
            cpu_stats: cpu(sample),
            precpu_stats: cpu(before.map(|(_, s)| s)),
            memory_stats: memory,
            name: format!("/{name}"),
            id: id.to_string(),
            networks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_that_does_not_run_answers_dockers_empty_object() {
        let v = serde_json::to_value(StatsResponse::new("abc", "web", None, None)).unwrap();
        assert_eq!(v["read"], "0001-01-01T00:00:00Z");
        assert_eq!(v["pids_stats"], serde_json::json!({}));
        assert_eq!(v["memory_stats"], serde_json::json!({}));
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(v["cpu_stats"].get("system_cpu_usage").is_none());
        assert!(v["blkio_stats"]["io_service_bytes_recursive"].is_null());
        assert_eq!(
            (v["name"].as_str(), v["id"].as_str()),
            (Some("/web"), Some("abc"))
        );
        assert!(v.get("networks").is_none());
    }

    #[test]
    fn readings_fill_cpu_precpu_memory_and_networks() {
        let mut s = Sample::default();
        s.cpu.total_ns = 10;
        s.system_cpu_ns = 100;
        s.memory.usage = 5;
        s.memory.limit = 50;
        s.pids = (2, Some(9));
        s.networks.insert(
            "eth0".into(),
            NetDev {
                rx: [1, 2, 3, 4],
                tx: [5, 6, 7, 8],
            },
        );
        let mut before = s.clone();
        before.cpu.total_ns = 4;
        let (t0, t1) = (Utc::now(), Utc::now());
        let v = serde_json::to_value(StatsResponse::new(
            "abc",
            "web",
            Some(&(t1, s)),
            Some(&(t0, before)),
        ))
        .unwrap();
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 10);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 4);
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 100);
        assert_eq!(v["memory_stats"]["limit"], 50);
        assert_eq!(
            v["pids_stats"],
            serde_json::json!({"current": 2, "limit": 9})
        );
        assert_eq!(v["networks"]["eth0"]["tx_dropped"], 8);
        assert!(v["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
    }
}
