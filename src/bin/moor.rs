//! `moor`: the daemon (`moor daemon`) and the client commands. Thin: parse, initialize
//! tracing for the daemon only, call the library, turn its answer into an exit code.

use std::io::{IsTerminal, Write};

use clap::Parser;
use moor::cli::args::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Daemon(_)) {
        init_tracing();
    }
    let failure_code = cli.command.failure_code();
    let code = match moor::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", moor::cli::error_line(&error));
            failure_code
        }
    };
    // process::exit skips destructors: flush what print! left buffered.
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Logs to stderr, filtered by RUST_LOG (default `info`); colors only on a terminal.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
}
