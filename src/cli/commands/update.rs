//! `moor update [OPTIONS] NAME...`: `POST /containers/{id}/update` for each name (Docker's
//! `docker update`): resources and the restart policy of running or stopped containers.

use clap::Args;

use super::{container_path, each_name};
use crate::api::types::{RestartPolicy, UpdateRequest, UpdateResponse};
use crate::cli::args::{parse_cpus, parse_memory, parse_restart};
use crate::cli::client::Client;

/// `moor update`'s flags (docker update's names).
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit (bytes, or with a b, k, m or g suffix).
    #[arg(short = 'm', long, value_name = "BYTES", value_parser = parse_memory)]
    pub memory: Option<i64>,
    /// Memory plus swap (-1: unlimited swap).
    #[arg(long, value_name = "BYTES", value_parser = parse_swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Memory soft limit.
    #[arg(long, value_name = "BYTES", value_parser = parse_memory)]
    pub memory_reservation: Option<i64>,
    /// Number of CPUs (a decimal).
    #[arg(long, value_name = "DECIMAL", value_parser = parse_cpus)]
    pub cpus: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, value_name = "N")]
    pub cpu_shares: Option<i64>,
    /// CPU CFS quota in microseconds.
    #[arg(long, value_name = "MICROSECONDS", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long, value_name = "MICROSECONDS")]
    pub cpu_period: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long, value_name = "POLICY", value_parser = parse_restart)]
    pub restart: Option<RestartPolicy>,
    /// The containers.
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// `--memory-swap`: a size, or -1 for unlimited swap.
fn parse_swap(s: &str) -> Result<i64, String> {
    match s {
        "-1" => Ok(-1),
        _ => parse_memory(s),
    }
}

impl UpdateArgs {
    /// The request body: what was not given is 0 or "" (unchanged), as the docker CLI sends.
    pub fn request(&self) -> UpdateRequest {
        UpdateRequest {
            memory: self.memory.unwrap_or(0),
            memory_swap: self.memory_swap.unwrap_or(0),
            memory_reservation: self.memory_reservation.unwrap_or(0),
            nano_cpus: self.cpus.unwrap_or(0),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            cpu_period: self.cpu_period.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            pids_limit: self.pids_limit,
            restart_policy: self.restart.clone(),
        }
    }
}

/// Updates each container; the exit code is 1 if any failed. Warnings go to stderr.
pub fn update(client: &Client, args: &UpdateArgs) -> i32 {
    let body = args.request();
    each_name(&args.names, |name| {
        let answer: UpdateResponse = client.post(&container_path(name, "/update"), &body)?;
        for w in answer.warnings {
            eprintln!("WARNING: {w}");
        }
        Ok(())
    })
}
