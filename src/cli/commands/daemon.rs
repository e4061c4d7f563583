//! `moor daemon`: runs the daemon in the foreground, or checks its configuration
//! (`--validate`; `--check-upgrade`, for `moor admin upgrade`) without starting it.

use anyhow::Context;

use crate::cli::args::DaemonArgs;

/// Runs the daemon until it is told to stop; with `--validate`, only checks daemon.json.
pub fn execute(args: &DaemonArgs) -> anyhow::Result<i32> {
    let opts = args.to_options();
    if args.validate {
        let path = crate::config::options::config_path(&opts);
        crate::config::options::validate(&opts)
            .with_context(|| format!("{} is not valid", path.display()))?;
        println!("configuration OK: {}", path.display());
        return Ok(0);
    }
    if args.check_upgrade {
        crate::config::options::validate(&opts).context("the configuration is not valid")?;
        let report = crate::daemon::upgrade::CheckReport::this_build();
        println!("{}", serde_json::to_string(&report)?);
        return Ok(0);
    }
    crate::daemon::run(args.to_options()).context("run the daemon")?;
    Ok(0)
}
