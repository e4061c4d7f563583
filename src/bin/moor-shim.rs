//! `moor-shim <container-run-dir>`: the per-container monitor the daemon starts.
//! Thin: argument check, then [`moor::shim::run`]. std only; see `src/shim/` for the rest.

use std::path::Path;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() != 2 {
        eprintln!("usage: moor-shim <container-run-dir>");
        std::process::exit(2);
    }
    std::process::exit(moor::shim::run(Path::new(&args[1])));
}
