//! `moor admin`: inspect, orphans, adopt, kill-orphan, check and nat, working with the daemon down
//! (the store opened directly) and, for inspect and orphans, through the daemon when it runs.
//! The first line on stderr says which source answered.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::admin::inspect::{self, ContainerReport};
use crate::admin::{check, orphan, Access};
use crate::cli::client::Client;
use crate::host::layout::Layout;

/// `moor admin` options: the daemon's paths, then what to do.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The daemon's state root.
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
    /// The daemon's run directory.
    #[arg(long, value_name = "DIR", global = true)]
    pub run_dir: Option<PathBuf>,
    /// The daemon's daemon.json (for its data-root and exec-root).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
}

/// The admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show each container's record, processes and what the next daemon start does with it.
    Inspect {
        /// Containers (id, prefix or name); all when none is given.
        containers: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// List orphans: live processes moor cannot manage, with why.
    Orphans {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Take an orphan whose shim and process are alive back under management.
    Adopt {
        /// The container (id, prefix or name).
        container: String,
    },
    /// Kill an orphan's process through a verified pidfd and record its exit.
    KillOrphan {
        /// The container (id, prefix or name).
        container: String,
    },
    /// Verify the store without changing it; exit code 1 if a problem is found.
    Check,
    /// Show moor's nftables table (bridges, published ports), or remove it.
    Nat {
        /// Remove the table (published ports stop answering until a daemon start).
        #[arg(long)]
        remove: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
}

fn layout(args: &AdminArgs) -> anyhow::Result<Layout> {
    let opts = crate::config::options::Options {
        root: args.root.clone(),
        run_dir: args.run_dir.clone(),
        socket: None,
        config: args.config.clone(),
        runtime: Some("process".into()),
    };
    crate::config::options::layout(&opts).context("resolve the daemon's paths")
}

/// The reports, from the store or from the running daemon.
fn reports(host: &str, layout: &Layout, keys: &[String]) -> anyhow::Result<Vec<ContainerReport>> {
    match Access::open(layout)? {
        Access::Direct(direct) => {
            eprintln!(
                "source: the store at {} (no daemon running)",
                direct.layout.store().display()
            );
            Ok(inspect::reports(&direct.store, &direct.layout, keys))
        }
        Access::Daemon(pid) => {
            eprintln!("source: the daemon (pid {pid}) at {host}");
            let client = Client::new(host)?;
            let mut all: Vec<ContainerReport> = client
                .get("/moor/admin/inspect")
                .context("ask the daemon")?;
            if !keys.is_empty() {
                all.retain(|r| keys.iter().any(|k| inspect::matches(r, k)));
            }
            Ok(all)
        }
    }
}

fn print(reports: &[ContainerReport], format: ReportFormat) -> anyhow::Result<()> {
    match format {
        ReportFormat::Table => print!("{}", inspect::table(reports)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(reports)?),
    }
    Ok(())
}

/// `adopt` or `kill-orphan` done by the running daemon, which holds the store.
fn through_daemon(
    host: &str,
    pid: &str,
    container: &str,
    action: &str,
    done: &str,
) -> anyhow::Result<i32> {
    eprintln!("source: the daemon (pid {pid}) at {host}");
    let client = Client::new(host)?;
    client.post_empty(&format!(
        "/moor/admin/containers/{}/{action}",
        crate::cli::client::encode(container)
    ))?;
    println!("{container}: {done}");
    Ok(0)
}

/// Runs one admin command; `host` is the daemon's socket when it runs.
pub fn execute(host: &str, args: &AdminArgs) -> anyhow::Result<i32> {
    let layout = layout(args)?;
    match &args.command {
        AdminCommand::Inspect { containers, format } => {
            let found = reports(host, &layout, containers)?;
            print(&found, *format)?;
            let missing: Vec<&String> = containers
                .iter()
                .filter(|k| !found.iter().any(|r| inspect::matches(r, k)))
                .collect();
            for key in &missing {
                eprintln!("moor: no such container: {key}");
            }
            Ok(i32::from(!missing.is_empty()))
        }
        AdminCommand::Orphans { format } => {
            let mut found = reports(host, &layout, &[])?;
            found.retain(ContainerReport::is_orphan);
            print(&found, *format)?;
            Ok(0)
        }
        AdminCommand::Adopt { container } => match Access::open(&layout)? {
            Access::Direct(direct) => {
                let rec = orphan::adopt(&direct, container)?;
                println!("{}: adopted, state {}", rec.id, rec.state.name());
                Ok(0)
            }
            Access::Daemon(pid) => through_daemon(host, &pid, container, "adopt", "adopted"),
        },
        AdminCommand::KillOrphan { container } => match Access::open(&layout)? {
            Access::Direct(direct) => {
                let rec = orphan::kill_orphan(&direct, container)?;
                println!("{}: killed, state {}", rec.id, rec.state.name());
                Ok(0)
            }
            Access::Daemon(pid) => through_daemon(host, &pid, container, "kill-orphan", "killed"),
        },
        AdminCommand::Nat { remove, format } => super::admin_nat::execute(*remove, *format),
        AdminCommand::Check => {
            let direct = Access::open(&layout)?.direct(&layout)?;
            let problems = check::check(&direct.store, &direct.layout);
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                println!("store OK: {}", direct.layout.store().display());
            }
            Ok(i32::from(!problems.is_empty()))
        }
    }
}
