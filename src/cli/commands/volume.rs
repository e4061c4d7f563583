//! `moor volume create|ls|inspect|rm|prune`: Docker's volume endpoints.

use clap::Subcommand;

use crate::api::volume_types::{Volume, VolumeCreateRequest, VolumeList, VolumePruneReport};
use crate::cli::client::{encode, Client};
use crate::cli::commands::{each_name, inspect_raw};
use crate::cli::format::table;

/// `moor volume ...`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (the `local` driver); prints its name.
    Create {
        /// Its name (a generated one when left out).
        name: Option<String>,
        /// A label, KEY=VALUE; repeatable.
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
    },
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls {
        /// Only the names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes in JSON.
    Inspect {
        /// Volume names.
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one).
    #[command(visible_alias = "remove")]
    Rm {
        /// Do not fail on a missing volume.
        #[arg(short, long)]
        force: bool,
        /// Volume names.
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Remove the anonymous volumes no container uses (every unused one with --all).
    Prune {
        /// Named volumes too.
        #[arg(short, long)]
        all: bool,
    },
}

/// Runs one volume command.
pub fn execute(client: &Client, cmd: &VolumeCommand) -> anyhow::Result<i32> {
    match cmd {
        VolumeCommand::Create { name, labels } => {
            let mut req = VolumeCreateRequest {
                name: name.clone().unwrap_or_default(),
                ..VolumeCreateRequest::default()
            };
            for label in labels {
                let (k, v) = label.split_once('=').unwrap_or((label, ""));
                req.labels.insert(k.into(), v.into());
            }
            let v: Volume = client.post("/volumes/create", &req)?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls { quiet } => {
            let list: VolumeList = client.get("/volumes")?;
            let mut names: Vec<_> = list.volumes.into_iter().map(|v| v.name).collect();
            names.sort();
            if *quiet {
                names.iter().for_each(|n| println!("{n}"));
                return Ok(0);
            }
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
            rows.extend(names.into_iter().map(|n| vec!["local".to_string(), n]));
            print!("{}", table(&rows));
            Ok(0)
        }
        VolumeCommand::Inspect { names } => Ok(inspect_raw(client, names, |name| {
            format!("/volumes/{}", encode(name))
        })),
        VolumeCommand::Rm { force, names } => Ok(each_name(names, |name| {
            let path = format!("/volumes/{}?force={force}", encode(name));
            Ok(client.delete(&path)?)
        })),
        VolumeCommand::Prune { all } => {
            let path = match all {
                true => format!("/volumes/prune?filters={}", encode(r#"{"all":["true"]}"#)),
                false => "/volumes/prune".to_string(),
            };
            let report: VolumePruneReport = client.post_answer(&path)?;
            if !report.volumes_deleted.is_empty() {
                println!("Deleted Volumes:");
                report.volumes_deleted.iter().for_each(|n| println!("{n}"));
                println!();
            }
            println!("Total reclaimed space: {} B", report.space_reclaimed);
            Ok(0)
        }
    }
}
