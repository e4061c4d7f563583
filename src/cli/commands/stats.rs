//! `moor stats`: `GET /containers/{id}/stats` for each container, drawn as docker's table
//! with the docker CLI's arithmetic (CPU % from the reading and its precpu, memory without
//! the inactive page cache). `--no-stream` prints one table; otherwise the table is drawn
//! again each second (the screen cleared first on a terminal) until every stream ends.

use std::io::IsTerminal;

use clap::Args;
use serde_json::Value;

use super::container_path;
use crate::api::types::ContainerSummary;
use crate::cli::client::{BodyStream, Client};
use crate::cli::format::{binary_size, human_size, table};

/// Go's zero time: the `read` of Docker's empty object, for a container that does not run.
const NEVER_READ: &str = "0001-01-01T00:00:00Z";

/// `moor stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one reading and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate the ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Containers (default: every running one).
    #[arg(value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// One table row from a stats object, as the docker CLI computes it.
pub fn row(v: &Value, no_trunc: bool) -> Vec<String> {
    let n = |path: &[&str]| path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0);
    let cpu_delta = n(&["cpu_stats", "cpu_usage", "total_usage"]).saturating_sub(n(&[
        "precpu_stats",
        "cpu_usage",
        "total_usage",
    ]));
    let system_delta = n(&["cpu_stats", "system_cpu_usage"])
        .saturating_sub(n(&["precpu_stats", "system_cpu_usage"]));
    let online = match n(&["cpu_stats", "online_cpus"]) {
        0 => v["cpu_stats"]["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as u64,
        n => n,
    };
    let cpu = match (cpu_delta, system_delta) {
        (c, s) if c > 0 && s > 0 => c as f64 / s as f64 * online as f64 * 100.0,
        _ => 0.0,
    };
    let usage = n(&["memory_stats", "usage"]);
    let inactive = ["total_inactive_file", "inactive_file"]
        .iter()
        .find_map(|k| v["memory_stats"]["stats"][*k].as_u64())
        .filter(|&i| i < usage)
        .unwrap_or(0);
    let memory = usage - inactive;
    let limit = n(&["memory_stats", "limit"]);
    let percent = match limit {
        0 => 0.0,
        l => memory as f64 / l as f64 * 100.0,
    };
    let (mut rx, mut tx) = (0, 0);
    for dev in v["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += dev["rx_bytes"].as_u64().unwrap_or(0);
        tx += dev["tx_bytes"].as_u64().unwrap_or(0);
    }
    let id = v["id"].as_str().unwrap_or_default();
    let running = v["read"].as_str() != Some(NEVER_READ);
    let dash = |text: String| if running { text } else { "--".to_string() };
    vec![
        if no_trunc {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        },
        v["name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        dash(format!("{cpu:.2}%")),
        dash(format!("{} / {}", binary_size(memory), binary_size(limit))),
        dash(format!("{percent:.2}%")),
        dash(format!("{} / {}", human_size(rx), human_size(tx))),
        dash("0B / 0B".to_string()),
        dash(n(&["pids_stats", "current"]).to_string()),
    ]
}

fn header() -> Vec<String> {
    [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    .map(String::from)
    .to_vec()
}

/// A streamed answer read a line (one JSON object) at a time.
struct Lines<'c> {
    body: BodyStream<'c>,
    buf: Vec<u8>,
}

impl Lines<'_> {
    /// The next line, None at the end of the answer.
    fn next_line(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Ok(Some(line));
            }
            match self.body.next_chunk()? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None if self.buf.is_empty() => return Ok(None),
                None => return Ok(Some(std::mem::take(&mut self.buf))),
            }
        }
    }
}

/// Prints the table once (`--no-stream`), or again each second while any stream lasts.
pub fn execute(client: &Client, args: &StatsArgs) -> anyhow::Result<i32> {
    let names = match args.names.is_empty() {
        false => args.names.clone(),
        true => {
            let running: Vec<ContainerSummary> = client.get("/containers/json")?;
            running.into_iter().map(|c| c.id).collect()
        }
    };
    if args.no_stream {
        let mut rows = vec![header()];
        for name in &names {
            let v: Value = client.get(&container_path(name, "/stats?stream=false"))?;
            rows.push(row(&v, args.no_trunc));
        }
        print!("{}", table(&rows));
        return Ok(0);
    }
    let mut streams = Vec::new();
    for name in &names {
        let body = client.get_stream(&container_path(name, "/stats?stream=true"))?;
        streams.push(Lines {
            body,
            buf: Vec::new(),
        });
    }
    let mut last: Vec<Option<Value>> = vec![None; streams.len()];
    let clear = std::io::stdout().is_terminal();
    loop {
        let mut open = false;
        for (stream, last) in streams.iter_mut().zip(last.iter_mut()) {
            if let Some(line) = stream.next_line()? {
                *last = Some(serde_json::from_slice(&line)?);
                open = true;
            }
        }
        if !open {
            return Ok(0);
        }
        let mut rows = vec![header()];
        rows.extend(last.iter().flatten().map(|v| row(v, args.no_trunc)));
        if clear {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", table(&rows));
    }
}
