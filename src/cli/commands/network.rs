//! `moor network create|ls|inspect|rm|prune`: Docker's network endpoints.

use clap::Subcommand;

use crate::api::network_types::Network;
use crate::cli::client::{encode, Client};
use crate::cli::commands::{each_name, inspect_raw};
use crate::cli::format::table;

/// `moor network ...`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a user network (a bridge of its own); prints its id.
    Create {
        /// Its name.
        name: String,
        /// The driver: only `bridge`.
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// The subnet, A.B.C.D/N (one of Docker's pools free of the host's routes when left out).
        #[arg(long)]
        subnet: Option<String>,
        /// The bridge's address (the subnet's first host address when left out).
        #[arg(long)]
        gateway: Option<String>,
        /// Where addresses are allocated, A.B.C.D/N inside the subnet.
        #[arg(long)]
        ip_range: Option<String>,
        /// No masquerade and no default route out: its containers reach only each other.
        #[arg(long)]
        internal: bool,
        /// A label, KEY=VALUE; repeatable.
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
    /// List networks.
    #[command(visible_alias = "list")]
    Ls {
        /// Only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks in JSON.
    Inspect {
        /// Network names or ids.
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container is on one).
    #[command(visible_alias = "remove")]
    Rm {
        /// Network names or ids.
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
    },
    /// Remove every user network no container is on.
    Prune,
}

/// Runs one network command.
pub fn execute(client: &Client, cmd: &NetworkCommand) -> anyhow::Result<i32> {
    match cmd {
        NetworkCommand::Create {
            name,
            driver,
            subnet,
            gateway,
            ip_range,
            internal,
            labels,
        } => {
            let labels: std::collections::BTreeMap<&str, &str> = labels
                .iter()
                .map(|l| l.split_once('=').unwrap_or((l, "")))
                .collect();
            let config = match (subnet, gateway, ip_range) {
                (None, None, None) => vec![],
                (s, g, r) => vec![serde_json::json!({
                    "Subnet": s.clone().unwrap_or_default(),
                    "Gateway": g.clone().unwrap_or_default(),
                    "IPRange": r.clone().unwrap_or_default(),
                })],
            };
            let req = serde_json::json!({
                "Name": name, "Driver": driver, "Labels": labels, "IPAM": {"Config": config},
                "Internal": internal,
            });
            let answer: serde_json::Value = client.post("/networks/create", &req)?;
            println!("{}", answer["Id"].as_str().unwrap_or_default());
            Ok(0)
        }
        NetworkCommand::Ls { quiet } => {
            let mut list: Vec<Network> = client.get("/networks")?;
            list.sort_by(|a, b| a.name.cmp(&b.name));
            if *quiet {
                list.iter()
                    .for_each(|n| println!("{}", &n.id[..12.min(n.id.len())]));
                return Ok(0);
            }
            let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
                .map(String::from)
                .to_vec()];
            rows.extend(list.into_iter().map(|n| {
                vec![
                    n.id[..12.min(n.id.len())].to_string(),
                    n.name,
                    n.driver,
                    n.scope,
                ]
            }));
            print!("{}", table(&rows));
            Ok(0)
        }
        NetworkCommand::Inspect { names } => Ok(inspect_raw(client, names, |name| {
            format!("/networks/{}", encode(name))
        })),
        NetworkCommand::Rm { names } => Ok(each_name(names, |name| {
            Ok(client.delete(&format!("/networks/{}", encode(name)))?)
        })),
        NetworkCommand::Prune => {
            let report: serde_json::Value = client.post_answer("/networks/prune")?;
            let deleted = report["NetworksDeleted"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                deleted
                    .iter()
                    .filter_map(|n| n.as_str())
                    .for_each(|n| println!("{n}"));
            }
            Ok(0)
        }
    }
}
