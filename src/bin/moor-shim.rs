//! `moor-shim <container-run-dir>`: the per-container monitor the daemon starts;
//! `moor-shim adopt <container-run-dir>`: a new shim for an orphan whose shim died.
//! Thin: argument check, then [`moor::shim::run`]. std only; see `src/shim/` for the rest.

use std::path::Path;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.len() {
        2 => std::process::exit(moor::shim::run(Path::new(&args[1]))),
        3 if args[1] == "adopt" => std::process::exit(moor::shim::adopt::run(Path::new(&args[2]))),
        _ => {
            eprintln!("usage: moor-shim <container-run-dir> | moor-shim adopt <container-run-dir>");
            std::process::exit(2);
        }
    }
}
