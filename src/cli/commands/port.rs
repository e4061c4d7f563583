//! `moor port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published ports from
//! inspect's `NetworkSettings.Ports`, printed as `docker port` does.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde_json::Value;

use super::container_path;
use crate::cli::args::PortArgs;
use crate::cli::client::Client;

/// Inspect's `NetworkSettings.Ports`.
type Ports = BTreeMap<String, Option<Vec<Value>>>;

/// Prints the mappings (all, or those of one container port).
pub fn execute(client: &Client, args: &PortArgs) -> anyhow::Result<i32> {
    let inspect: Value = client.get(&container_path(&args.container, "/json"))?;
    let ports: Ports = serde_json::from_value(inspect["NetworkSettings"]["Ports"].clone())
        .context("decode NetworkSettings.Ports")?;
    match lines(&ports, args.port.as_deref()) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            Ok(0)
        }
        Err(key) => bail!("No public port '{key}' published for {}", args.container),
    }
}

fn host_side(binding: &Value) -> String {
    let text = |k: &str| binding[k].as_str().unwrap_or_default().to_string();
    format!("{}:{}", text("HostIp"), text("HostPort"))
}

/// `80/tcp -> 0.0.0.0:8080` lines, or for one port (`80`, `80/udp`) its host sides only;
/// Err(the port as given, as docker names it) when that port is not published.
fn lines(ports: &Ports, only: Option<&str>) -> Result<Vec<String>, String> {
    let Some(only) = only else {
        let all = ports.iter().flat_map(|(key, hosts)| {
            let hosts = hosts.iter().flatten();
            hosts.map(move |h| format!("{key} -> {}", host_side(h)))
        });
        return Ok(all.collect());
    };
    let key = match only.contains('/') {
        true => only.to_string(),
        false => format!("{only}/tcp"),
    };
    match ports.get(&key) {
        Some(Some(hosts)) if !hosts.is_empty() => Ok(hosts.iter().map(host_side).collect()),
        _ => Err(only.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_as_docker_port() {
        let ports: Ports = serde_json::from_value(json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "9090"}],
            "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
            "443/tcp": null,
        }))
        .unwrap();
        assert_eq!(
            lines(&ports, None).unwrap(),
            [
                "53/udp -> 0.0.0.0:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> 127.0.0.1:9090"
            ]
        );
        assert_eq!(
            lines(&ports, Some("80")).unwrap(),
            ["0.0.0.0:8080", "127.0.0.1:9090"]
        );
        assert_eq!(lines(&ports, Some("53/udp")).unwrap(), ["0.0.0.0:5353"]);
        assert_eq!(lines(&ports, Some("443")).unwrap_err(), "443");
        assert_eq!(lines(&ports, Some("53")).unwrap_err(), "53");
    }
}
