//! `moor-shim <container-run-dir>`: the per-container monitor the daemon starts;
//! `moor-shim adopt <container-run-dir>`: a new shim for an orphan whose shim died.
//! Thin: argument check, then [`moor::shim::run`]. std only; see `src/shim/` for the rest.

use std::path::Path;

fn main() {
    abort_on_panic();
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

/// The release profile unwinds (so that the daemon survives a panicking request handler);
/// the shim must not: it is single-threaded and holds the container's pipes, its exit-file
/// protocol has no "half unwound" state, and a panic unwinding through `main` would run
/// destructors and exit with 101, which the daemon would read as an ordinary shim exit. An
/// abort (SIGABRT) is what the daemon and the reconciler already treat as a shim crash, so
/// after printing the message as usual the hook aborts at once, as `panic = "abort"` did.
fn abort_on_panic() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        print(info);
        std::process::abort();
    }));
}
