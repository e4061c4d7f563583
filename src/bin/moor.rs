//! `moor`: the daemon (`moor daemon`) and the client commands. Thin: parse, initialize
//! tracing for the daemon only (`moor::logging`), call the library, turn its answer into an exit code.

use std::io::Write;

use moor::cli::args::{Cli, Command};

fn main() {
    let cli = Cli::parse_args();
    if let Command::Daemon(args) = &cli.command {
        moor::logging::init(args.log_level.as_deref());
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
