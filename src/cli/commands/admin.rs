//! `moor admin`: inspect, orphans, adopt, kill-orphan, check, network and nat, working with the daemon down
//! (the store opened directly) and, for inspect and orphans, through the daemon when it runs.
//! The first line on stderr says which source answered.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::admin::inspect::{self, ContainerReport};
use crate::admin::{check, network as net, orphan, Access};
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
    /// Print the pid of the daemon running on this root (from its lock); exit code 1 if none
    /// does. For `kill -9 "$(moor admin pid)"`: `pidof moor` is ambiguous as soon as a second
    /// `moor` process runs.
    Pid,
    /// Replace the running daemon with a new binary in place (same pid, same socket, the
    /// containers untouched), after the binary passed its check.
    Upgrade {
        /// The new binary (default: the path the daemon was started from, as after a package
        /// replaced the file).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// List moor's network objects (bridge, veths, namespace files) and whose they are.
    Network {
        /// Remove the leftovers: veths and namespace files of no running container (the
        /// daemon must be stopped).
        #[arg(long)]
        clean: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
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

fn options(args: &AdminArgs) -> crate::config::options::Options {
    crate::config::options::Options {
        root: args.root.clone(),
        run_dir: args.run_dir.clone(),
        socket: None,
        config: args.config.clone(),
        runtime: Some("process".into()),
        live_restore: false,
    }
}

fn layout(args: &AdminArgs) -> anyhow::Result<Layout> {
    crate::config::options::layout(&options(args)).context("resolve the daemon's paths")
}

/// `admin network`: the objects (their containers named when the store can be read), and
/// with `clean` the leftovers removed (the daemon down: it owns them while it runs).
fn network(
    args: &AdminArgs,
    layout: &Layout,
    clean: bool,
    format: ReportFormat,
) -> anyhow::Result<i32> {
    let (_, config) =
        crate::config::options::resolve(&options(args)).context("read daemon.json")?;
    let bridge = net::bridge_name(&config).map_err(anyhow::Error::msg)?;
    let access = Access::open(layout)?;
    let records = match &access {
        Access::Direct(d) => Some(d.store.list().context("list the store")?),
        Access::Daemon(pid) if clean => {
            anyhow::bail!(
                "a moor daemon (pid {pid}) runs: stop it before cleaning its network objects"
            )
        }
        Access::Daemon(_) => None,
    };
    let objects = net::objects(layout, &bridge, records.as_deref())?;
    let shown = match clean {
        true => net::clean(&objects)?,
        false => objects,
    };
    match format {
        ReportFormat::Table if clean => {
            for o in &shown {
                println!("removed {} {}", o.kind, o.name);
            }
        }
        ReportFormat::Table => print!("{}", net::table(&shown)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&shown)?),
    }
    Ok(0)
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

/// How long the new daemon image may take to serve after the hand-over.
const UPGRADE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Asks the daemon `pid` to re-execute as `binary`, then waits until that process runs it
/// and answers `/_ping`.
fn upgrade(host: &str, pid: &str, binary: Option<&std::path::Path>) -> anyhow::Result<i32> {
    let client = Client::new(host)?;
    let binary = binary
        .map(std::fs::canonicalize)
        .transpose()
        .context("the new binary")?;
    let body = serde_json::json!({ "Binary": binary });
    let answer: serde_json::Value = client.post("/moor/admin/upgrade", &body)?;
    let (version, path) = (
        &answer["Version"],
        answer["Binary"].as_str().unwrap_or_default(),
    );
    eprintln!("checked: {path} is moor {version}; the daemon (pid {pid}) hands over to it");
    let exe = format!("/proc/{pid}/exe");
    let started = std::time::Instant::now();
    loop {
        let runs = std::fs::read_link(&exe).is_ok_and(|p| p == std::path::Path::new(path));
        if runs && client.get_raw("/_ping").is_ok() {
            println!("upgraded: the daemon (pid {pid}) runs {path} (moor {version})");
            return Ok(0);
        }
        if started.elapsed() > UPGRADE_DEADLINE {
            anyhow::bail!("the daemon (pid {pid}) did not serve as {path} within {UPGRADE_DEADLINE:?}: see its log");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
        AdminCommand::Pid => match Access::open(&layout)? {
            Access::Direct(direct) => {
                anyhow::bail!("no moor daemon runs on {}", direct.layout.root.display())
            }
            Access::Daemon(pid) => {
                println!("{pid}");
                Ok(0)
            }
        },
        AdminCommand::Upgrade { binary } => match Access::open(&layout)? {
            Access::Direct(direct) => anyhow::bail!(
                "no daemon runs on {}: nothing to upgrade (start the new binary)",
                direct.layout.root.display()
            ),
            Access::Daemon(pid) => upgrade(host, &pid, binary.as_deref()),
        },
        AdminCommand::Network { clean, format } => network(args, &layout, *clean, *format),
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
