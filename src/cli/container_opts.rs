//! The container options `run` and `create` share, and how they become a Docker create
//! request (restart policy, environment, labels, limits).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use crate::api::types::{CreateRequest, HostConfig, LogConfig, RestartPolicy};

/// The container options `run` and `create` share.
#[derive(Debug, Args)]
pub struct ContainerOpts {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open (OpenStdin); `run` sends it to the container.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a terminal (Tty).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Pull the image before creating: missing (when it is not here), always, never.
    #[arg(long, value_enum, default_value_t = crate::cli::commands::create::PullPolicy::Missing)]
    pub pull: crate::cli::commands::create::PullPolicy,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from this environment).
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file, one KEY=VALUE a line.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User name or UID[:GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the image's default entrypoint.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Set a label (KEY=VALUE).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Restart policy: no, always, unless-stopped, on-failure[:MAX-RETRIES].
    #[arg(long, value_name = "POLICY", value_parser = parse_restart)]
    pub restart: Option<RestartPolicy>,
    /// Signal to stop the container.
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal before killing the container.
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,
    /// Log driver option (KEY=VALUE), e.g. max-size=10m.
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Runtime for this container (process or runc).
    #[arg(long)]
    pub runtime: Option<String>,
    /// Memory limit (bytes, or with a k, m or g suffix).
    #[arg(short = 'm', long, value_name = "BYTES", value_parser = parse_memory)]
    pub memory: Option<i64>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long, value_name = "DECIMAL", value_parser = parse_cpus)]
    pub cpus: Option<i64>,
    /// Maximum number of tasks in the container (-1: unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Network: bridge (the default when the daemon has it), none, host, or a user
    /// network's name or id.
    #[arg(long = "network", visible_alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// Another name of the container on its user network; repeatable.
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// Publish a container's port(s) to the host: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp],
    /// ports may be ranges (8000-8001:80-81); no host port means an ephemeral one.
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every exposed port to an ephemeral host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Image to run (`host` for the process runtime).
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Command and its arguments.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub cmd: Vec<String>,
}

/// Parses `no`, `always`, `unless-stopped` and `on-failure[:N]` as docker does.
pub fn parse_restart(text: &str) -> Result<RestartPolicy, String> {
    let (name, count) = match text.split_once(':') {
        Some((name, count)) => (name, Some(count)),
        None => (text, None),
    };
    let maximum_retry_count = match count {
        None => 0,
        Some(count) => count
            .parse::<u32>()
            .map_err(|_| format!("maximum retry count must be a number: {count:?}"))?,
    };
    match name {
        "no" | "always" | "unless-stopped" if count.is_some() => Err(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        )),
        "no" | "always" | "unless-stopped" | "on-failure" => Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count,
        }),
        _ => Err(format!("invalid restart policy '{name}'")),
    }
}

/// One `-e` value: `KEY=VALUE` as is, `KEY` alone with this environment's value when set
/// (docker keeps the bare `KEY` otherwise).
pub fn resolve_env<F>(entry: &str, lookup: F) -> String
where
    F: Fn(&str) -> Option<String>,
{
    if entry.contains('=') {
        return entry.to_string();
    }
    match lookup(entry) {
        Some(value) => format!("{entry}={value}"),
        None => entry.to_string(),
    }
}

/// An env file's entries: blank lines and `#` comments skipped, a `KEY` alone taken from
/// this environment or dropped when unset (docker's rules).
pub fn parse_env_file<F>(text: &str, lookup: F) -> Vec<String>
where
    F: Fn(&str) -> Option<String>,
{
    text.lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| match line.contains('=') {
            true => Some(line.to_string()),
            false => lookup(line.trim_end()).map(|value| format!("{}={value}", line.trim_end())),
        })
        .collect()
}

/// `KEY=VALUE` entries as a map; a bare `KEY` gets an empty value.
pub fn parse_key_values(entries: &[String]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            None => (entry.clone(), String::new()),
        })
        .collect()
}

/// `--memory`: bytes, or with a b, k, m or g suffix (Docker's RAMInBytes).
pub fn parse_memory(s: &str) -> Result<i64, String> {
    crate::humanize::parse_size(s)
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| format!("invalid size: {s:?}"))
}

/// `--cpus`: a decimal number of CPUs, as NanoCpus.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && *c >= 0.0)
        .map(|c| (c * 1e9).round() as i64)
        .ok_or_else(|| format!("invalid number of CPUs: {s:?}"))
}

/// `-p` specs as Docker's `HostConfig.PortBindings`.
pub fn port_bindings(specs: &[String]) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for spec in specs {
        for b in crate::network::ports::parse_publish(spec)? {
            let host_ip = b.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
            let host_port = b.host_port.map(|p| p.to_string()).unwrap_or_default();
            out.entry(format!("{}/{}", b.container_port, b.proto))
                .or_default()
                .push(serde_json::json!({"HostIp": host_ip, "HostPort": host_port}));
        }
    }
    Ok(out
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::Array(v)))
        .collect())
}

impl ContainerOpts {
    /// `--network-alias` as the API's `EndpointsConfig.<network>.Aliases`.
    fn networking_config(&self) -> Option<crate::api::types::NetworkingConfig> {
        if self.network_alias.is_empty() {
            return None;
        }
        let network = self.network.clone().unwrap_or_else(|| "default".into());
        let entry = crate::api::types::EndpointRequest {
            aliases: Some(self.network_alias.clone()),
        };
        Some(crate::api::types::NetworkingConfig {
            endpoints_config: Some([(network, Some(entry))].into()),
        })
    }

    /// The `POST /containers/create` body for these options.
    pub fn to_request(&self) -> anyhow::Result<CreateRequest> {
        let restart_policy = self.restart.clone();
        if self.rm
            && restart_policy
                .as_ref()
                .is_some_and(|policy| policy.name != "no")
        {
            bail!("conflicting options: cannot specify both --restart and --rm");
        }
        let lookup = |key: &str| std::env::var(key).ok();
        let mut env = Vec::new();
        for file in &self.env_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("read env file {}", file.display()))?;
            env.extend(parse_env_file(&text, lookup));
        }
        env.extend(self.env.iter().map(|entry| resolve_env(entry, lookup)));
        Ok(CreateRequest {
            image: self.image.clone(),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            entrypoint: self.entrypoint.as_ref().map(|entry| vec![entry.clone()]),
            env: (!env.is_empty()).then_some(env),
            working_dir: self.workdir.clone(),
            user: self.user.clone(),
            labels: (!self.label.is_empty()).then(|| parse_key_values(&self.label)),
            hostname: self.hostname.clone(),
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: self.interactive,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            host_config: Some(HostConfig {
                auto_remove: self.rm,
                restart_policy,
                log_config: Some(LogConfig {
                    kind: "json-file".to_string(),
                    config: parse_key_values(&self.log_opt),
                }),
                network_mode: self.network.clone(),
                runtime: self.runtime.clone(),
                memory: self.memory.unwrap_or(0),
                nano_cpus: self.cpus.unwrap_or(0),
                pids_limit: self.pids_limit,
                readonly_rootfs: self.read_only,
                port_bindings: port_bindings(&self.publish)?,
                publish_all_ports: self.publish_all,
                console_size: self
                    .tty
                    .then(crate::cli::terminal::size)
                    .flatten()
                    .map(|(h, w)| [h, w]),
                ..HostConfig::default()
            }),
            networking_config: self.networking_config(),
            ..CreateRequest::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn publish_specs_become_docker_port_bindings() {
        let specs = [
            "8080:80".to_string(),
            "127.0.0.1::80".into(),
            "53/udp".into(),
        ];
        let got = port_bindings(&specs).unwrap();
        let want = json!({
            "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": ""}],
            "53/udp": [{"HostIp": "", "HostPort": ""}],
        });
        assert_eq!(serde_json::to_value(got).unwrap(), want);
        let err = port_bindings(&["x:80".to_string()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid port specification 'x:80': host port \"x\" is not a port (1-65535)"
        );
    }
}
