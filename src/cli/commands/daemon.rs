//! `moor daemon`: runs the daemon in the foreground, or checks its configuration
//! (`--validate`; `--check-upgrade`, for `moor admin upgrade`) without starting it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::args::DaemonArgs;

/// Runs the daemon until it is told to stop; with `--validate`, only checks daemon.json.
/// `host`: the `-H` given on the command line, the socket to listen on (as dockerd's).
pub fn execute(args: &DaemonArgs, host: Option<&str>) -> anyhow::Result<i32> {
    let mut opts = args.to_options();
    if let Some(host) = host {
        opts.socket = Some(listen_socket(host, opts.socket.as_deref())?);
    }
    if args.validate {
        let path = crate::config::options::config_path(&opts);
        crate::config::options::validate(&opts)?;
        println!("configuration OK: {}", path.display());
        return Ok(0);
    }
    if args.check_upgrade {
        crate::config::options::validate(&opts).context("the configuration is not valid")?;
        let report = crate::daemon::upgrade::CheckReport::this_build();
        println!("{}", serde_json::to_string(&report)?);
        return Ok(0);
    }
    crate::daemon::run(opts).context("run the daemon")?;
    Ok(0)
}

/// The socket `-H` names: `unix://PATH` (or a bare absolute path); anything else is refused,
/// as is a `--socket` that names another one.
fn listen_socket(host: &str, socket: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match host.strip_prefix("unix://") {
        Some(path) => PathBuf::from(path),
        None if host.starts_with('/') => PathBuf::from(host),
        None => anyhow::bail!(
            "-H {host}: moor daemon listens on a unix socket only (unix:///path/to/moor.sock)"
        ),
    };
    match socket {
        Some(other) if other != path => anyhow::bail!(
            "-H {host} and --socket {} name two sockets: give one",
            other.display()
        ),
        _ => Ok(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_h_names_the_socket_or_is_refused() {
        let p = |h, s: Option<&str>| listen_socket(h, s.map(Path::new)).map_err(|e| e.to_string());
        assert_eq!(
            p("unix:///tmp/a.sock", None),
            Ok(PathBuf::from("/tmp/a.sock"))
        );
        assert_eq!(
            p("/tmp/a.sock", Some("/tmp/a.sock")),
            Ok(PathBuf::from("/tmp/a.sock"))
        );
        assert!(p("tcp://0.0.0.0:2375", None)
            .unwrap_err()
            .contains("unix socket only"));
        assert!(p("unix:///tmp/a.sock", Some("/tmp/b.sock"))
            .unwrap_err()
            .contains("two sockets"));
    }
}
