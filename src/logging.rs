//! The daemon's logs: stderr, human-readable (colored on a terminal); under journald
//! (`JOURNAL_STREAM` naming our stderr) without timestamps and with syslog priority prefixes
//! (`<3>` error ... `<7>` debug) so `journalctl -u moor -p warning` filters by level.
//!
//! The level comes from `RUST_LOG`, else `--log-level`, else daemon.json (`log-level`, or
//! `debug: true`), else `info`. Only the last source changes on a reload: the others were
//! given by a person on purpose and win until the next start.

use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::DaemonConfig;

/// The installed filter's handle and whether daemon.json may change it.
struct Installed {
    /// Swaps the level filter on reload.
    handle: reload::Handle<EnvFilter, Registry>,
    /// Set when RUST_LOG or --log-level chose the level: daemon.json is then not consulted.
    fixed: bool,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Whether stderr is the journal stream systemd named in `JOURNAL_STREAM` (`dev:inode`).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr().as_raw_fd()) else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
}

/// The syslog priority of a tracing level.
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Prefixes each line with `<N>` (sd-daemon(3)), leaving the rest to tracing's formatter.
struct Journald(Format<Full, ()>);

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// The filter daemon.json asks for: `log-level`, else `debug`, else `info`.
pub fn config_level(config: &DaemonConfig) -> String {
    match (&config.log_level, config.debug) {
        (Some(level), _) => level.clone(),
        (None, true) => "debug".into(),
        (None, false) => "info".into(),
    }
}

/// Installs the daemon's subscriber (once; later calls do nothing).
pub fn init(cli_level: Option<&str>) {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let fixed = from_env.is_some() || cli_level.is_some();
    let directive = from_env
        .or(cli_level.map(str::to_string))
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let journal = stderr_is_journal();
    let color =
        !journal && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let journal_layer = journal.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(Journald(Format::default().without_time().with_level(false)))
    });
    let plain_layer = (!journal).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(color)
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(journal_layer)
        .with(plain_layer)
        .try_init()
        .is_ok();
    if installed {
        let _ = INSTALLED.set(Installed { handle, fixed });
    }
}

/// Applies daemon.json's level, unless RUST_LOG or `--log-level` fixed it.
/// An invalid level is reported and the current one kept.
pub fn apply_config(config: &DaemonConfig) {
    let Some(installed) = INSTALLED.get() else {
        return;
    };
    if installed.fixed {
        return;
    }
    let level = config_level(config);
    match EnvFilter::try_new(&level) {
        Ok(filter) => {
            if let Err(e) = installed.handle.reload(filter) {
                tracing::warn!(error = %e, "cannot change the log level");
            }
        }
        Err(e) => {
            tracing::warn!(level = %level, error = %e, "daemon.json: invalid log-level: kept the current one")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(syslog_priority(&Level::ERROR), 3);
        assert_eq!(syslog_priority(&Level::WARN), 4);
        assert_eq!(syslog_priority(&Level::INFO), 6);
        assert_eq!(syslog_priority(&Level::DEBUG), 7);
    }

    #[test]
    fn config_level_prefers_log_level_over_debug() {
        let mut c = DaemonConfig::default();
        assert_eq!(config_level(&c), "info");
        c.debug = true;
        assert_eq!(config_level(&c), "debug");
        c.log_level = Some("warn".into());
        assert_eq!(config_level(&c), "warn");
    }
}
