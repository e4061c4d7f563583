//! `moor completion SHELL` (clap_complete: the script for bash, zsh, fish, elvish or
//! powershell, on stdout) and `moor man [--dir DIR]` (clap_mangen: `moor.1` on stdout, or
//! one page per command, `moor-run.1` and so on, written into DIR). Both come from the same
//! clap definitions as `--help`, so they cannot drift from the commands. Neither needs a
//! daemon.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory};

use crate::cli::args::Cli;

/// `moor completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `moor man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `moor.1` and a page per command (`moor-run.1`, ...) into this directory instead
    /// of printing `moor.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script.
pub fn completion(args: &CompletionArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    // Rendered first: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "moor", &mut script);
    print(&script, "the completion script")
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn print(bytes: &[u8], what: &str) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).with_context(|| format!("write {what}"))
        }
        _ => Ok(0),
    }
}

/// Prints `moor.1`, or writes every page into `--dir`.
pub fn man(args: &ManArgs) -> anyhow::Result<i32> {
    let cmd = Cli::command();
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .context("render moor.1")?;
            return print(&page, "moor.1");
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            write_pages(cmd, dir)?;
        }
    }
    Ok(0)
}

/// The page of `cmd` and of each of its subcommands, named as man expects (`moor-image-ls.1`).
fn write_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<()> {
    let cmd = cmd.disable_help_subcommand(true);
    cmd.clone().build();
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .with_context(|| format!("render {}", path.display()))?;
    std::fs::write(&path, page).with_context(|| format!("write {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub = sub
            .clone()
            .display_name(format!("{name}-{}", sub.get_name()))
            .bin_name(format!("{} {}", name.replace('-', " "), sub.get_name()));
        write_pages(sub, dir)?;
    }
    Ok(())
}
