//! Docker's healthchecks as pure data: the check a container was created with
//! ([`HealthConfig`], Docker's `Config.Healthcheck`), the health its probes gave
//! ([`Health`], Docker's `State.Health`), and the one place that decides how a probe's
//! result, a start or a daemon restart moves it ([`Health::after`], [`across`]). No I/O and
//! no clock: times come in with the results. The daemon runs the probes and persists what
//! these functions return; the rules are moby's `daemon/health.go`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::machine::State;
use crate::record::{ContainerRecord, Timestamp};

/// Docker's default interval between probes (and before the first).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Docker's default time a probe may run before it is killed and counted as failed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Docker's default interval between probes during the start period.
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
/// Docker's default number of failures in a row that make a container unhealthy.
pub const DEFAULT_RETRIES: u32 = 3;
/// Results kept in `State.Health.Log` (Docker's `maxLogEntries`).
pub const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of a probe's output kept (Docker's `maxOutputLen`); more is cut and marked `...`.
pub const MAX_OUTPUT: usize = 4096;
/// The shortest non-zero duration Docker takes (`MinimumDuration`, 1 ms), in nanoseconds.
pub const MIN_DURATION_NS: i64 = 1_000_000;

/// A container's healthcheck as created (Docker's `HealthConfig`, in Docker's JSON shape:
/// it is also an image config's `Healthcheck` and inspect's `Config.Healthcheck`): the
/// durations are nanoseconds as in Docker's API, 0 meaning Docker's default, and are shown
/// back as given (zeros left out, as Docker's `omitempty`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", arg...]` or `["CMD-SHELL", command]`; empty inherits the image's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Time between probes, ns (0: 30 s).
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// Time a probe may take, ns (0: 30 s).
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Time after the start during which failures do not count, ns (0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Time between probes during the start period, ns (0: 5 s).
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Failures in a row that make it unhealthy (0: 3).
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

/// For `skip_serializing_if`.
fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What a probe runs in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `CMD`: the arguments exec'd as they are.
    Exec(Vec<String>),
    /// `CMD-SHELL`: the arguments given to `/bin/sh -c`.
    Shell(Vec<String>),
}

impl Probe {
    /// The argv of the probe's exec (the shell of a `CMD-SHELL` is `/bin/sh -c`, as
    /// Docker's without `Config.Shell`, which moor refuses).
    pub fn argv(&self) -> Vec<String> {
        match self {
            Probe::Exec(argv) => argv.clone(),
            Probe::Shell(args) => ["/bin/sh", "-c"]
                .iter()
                .map(|s| s.to_string())
                .chain(args.iter().cloned())
                .collect(),
        }
    }
}

/// A nanosecond count as a duration, 0 and negative values giving `default`.
fn or_default(ns: i64, default: Duration) -> Duration {
    match u64::try_from(ns) {
        Ok(n) if n > 0 => Duration::from_nanos(n),
        _ => default,
    }
}

impl HealthConfig {
    /// The probe to run, or None for `NONE`, an empty test or an unknown kind (refused at
    /// create; a record never holds one).
    pub fn probe(&self) -> Option<Probe> {
        let (kind, args) = self.test.split_first()?;
        let args = args.to_vec();
        match kind.as_str() {
            "CMD" if !args.is_empty() => Some(Probe::Exec(args)),
            "CMD-SHELL" if !args.is_empty() => Some(Probe::Shell(args)),
            _ => None,
        }
    }

    /// The interval between probes.
    pub fn interval(&self) -> Duration {
        or_default(self.interval, DEFAULT_INTERVAL)
    }

    /// The time a probe may take.
    pub fn timeout(&self) -> Duration {
        or_default(self.timeout, DEFAULT_TIMEOUT)
    }

    /// The start period.
    pub fn start_period(&self) -> Duration {
        or_default(self.start_period, Duration::ZERO)
    }

    /// The interval between probes during the start period.
    pub fn start_interval(&self) -> Duration {
        or_default(self.start_interval, DEFAULT_START_INTERVAL)
    }

    /// The failures in a row that make a container unhealthy.
    pub fn retries(&self) -> u32 {
        match u32::try_from(self.retries) {
            Ok(n) if n > 0 => n,
            _ => DEFAULT_RETRIES,
        }
    }

    /// Docker's merge of a create's check over the image's: the create's test wins when
    /// given, and each of its zero fields takes the image's value.
    pub fn over(&self, image: &HealthConfig) -> HealthConfig {
        let pick = |own: i64, theirs: i64| if own == 0 { theirs } else { own };
        HealthConfig {
            test: match self.test.is_empty() {
                true => image.test.clone(),
                false => self.test.clone(),
            },
            interval: pick(self.interval, image.interval),
            timeout: pick(self.timeout, image.timeout),
            start_period: pick(self.start_period, image.start_period),
            start_interval: pick(self.start_interval, image.start_interval),
            retries: pick(self.retries, image.retries),
        }
    }
}

/// Docker's health words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No probe has passed since the start, and fewer than `retries` counted failures.
    Starting,
    /// The last probe passed.
    Healthy,
    /// `retries` counted failures in a row.
    Unhealthy,
}

impl HealthStatus {
    /// Docker's word.
    pub fn word(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// The part of `docker ps`'s status in parentheses (`Up 3 seconds (healthy)`).
    pub fn list_text(self) -> &'static str {
        match self {
            HealthStatus::Starting => "health: starting",
            other => other.word(),
        }
    }
}

/// One probe's result (Docker's `HealthcheckResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// When the probe started.
    pub start: Timestamp,
    /// When it ended.
    pub end: Timestamp,
    /// Its exit code: 0 passes; -1 for a probe killed at its timeout or not started.
    pub exit_code: i64,
    /// Its stdout and stderr, at most [`MAX_OUTPUT`] bytes (then `...`).
    pub output: String,
}

/// A container's health (Docker's `State.Health`): persisted in its record, so a daemon
/// restart resumes the probes from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// starting, healthy or unhealthy.
    pub status: HealthStatus,
    /// Counted failures in a row.
    pub failing_streak: u32,
    /// The last [`MAX_LOG_ENTRIES`] results, oldest first.
    pub log: Vec<ProbeResult>,
}

impl Health {
    /// The health of a run that just started: starting, no streak, the previous run's log
    /// kept (Docker's `initHealthMonitor`).
    pub fn started(previous: Option<&Health>) -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: previous.map(|h| h.log.clone()).unwrap_or_default(),
        }
    }

    /// The health after `result`, for a run started at `run_started` (Docker's
    /// `handleProbeResult`): a pass makes it healthy and ends the streak; a failure counts,
    /// unless it started within the start period while the container is still starting,
    /// and `retries` counted failures make it unhealthy.
    pub fn after(
        &self,
        result: ProbeResult,
        config: &HealthConfig,
        run_started: Timestamp,
    ) -> Health {
        let mut next = self.clone();
        if next.log.len() >= MAX_LOG_ENTRIES {
            next.log.drain(..=next.log.len() - MAX_LOG_ENTRIES);
        }
        let passed = result.exit_code == 0;
        let in_start_period = (result.start - run_started)
            .to_std()
            .map_or(true, |since| since < config.start_period());
        next.log.push(result);
        if passed {
            next.failing_streak = 0;
            next.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            next.failing_streak = next.failing_streak.saturating_add(1);
            if next.failing_streak >= config.retries() {
                next.status = HealthStatus::Unhealthy;
            }
        }
        next
    }
}

/// The health a record has after its state moves from `from` to `to`: a new run (starting
/// to running) starts its health again; a run resumed by a daemon start keeps what was
/// recorded, or starts one if none was; everything else (a pause, a stop, an exit) keeps
/// it as it was, as Docker shows a stopped container's last health.
pub fn across(
    from: &State,
    to: &State,
    health: Option<&Health>,
    config: Option<&HealthConfig>,
) -> Option<Health> {
    if config.and_then(HealthConfig::probe).is_none() {
        return health.cloned();
    }
    match (from, to, health) {
        (State::Starting, State::Running(_), previous) => Some(Health::started(previous)),
        (_, State::Running(_) | State::Paused(_) | State::Stopping(_), None) => {
            Some(Health::started(None))
        }
        (_, _, kept) => kept.cloned(),
    }
}

/// The time until the next probe, measured from the end of the last one at `now` (Docker's
/// `getInterval`): the interval, the start interval while starting within the start period,
/// and never past the end of the start period.
pub fn next_delay(
    config: &HealthConfig,
    status: HealthStatus,
    run_started: Timestamp,
    now: Timestamp,
) -> Duration {
    let elapsed = (now - run_started).to_std().unwrap_or_default();
    let (period, interval) = (config.start_period(), config.interval());
    if elapsed >= period {
        return interval;
    }
    let remaining = period - elapsed;
    if remaining < interval {
        return remaining;
    }
    match status {
        HealthStatus::Starting => config.start_interval(),
        _ => interval,
    }
}

/// The record after a probe's `result`: its health moved by [`Health::after`]. None when
/// the record has no live run with a health to move (a result that arrives too late).
pub fn after_probe(rec: &ContainerRecord, result: ProbeResult) -> Option<ContainerRecord> {
    let State::Running(run) = &rec.state else {
        return None;
    };
    let config = rec.spec.healthcheck.as_ref()?;
    let health = rec.health.as_ref()?.after(result, config, run.started_at);
    Some(ContainerRecord {
        health: Some(health),
        ..rec.clone()
    })
}

/// A probe's output as kept: the first [`MAX_OUTPUT`] bytes, `...` when there was more.
pub fn kept_output(bytes: &[u8], truncated: bool) -> String {
    let cut = bytes.len() > MAX_OUTPUT;
    let mut out = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_OUTPUT)]).into_owned();
    if cut || truncated {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::machine::Run;
    use crate::record::ProcessIdentity;

    fn at(ms: i64) -> Timestamp {
        chrono::Utc
            .timestamp_millis_opt(1_700_000_000_000 + ms)
            .unwrap()
    }

    fn result(start_ms: i64, code: i64) -> ProbeResult {
        ProbeResult {
            start: at(start_ms),
            end: at(start_ms + 10),
            exit_code: code,
            output: String::new(),
        }
    }

    fn shell(text: &str) -> HealthConfig {
        HealthConfig {
            test: vec!["CMD-SHELL".into(), text.into()],
            ..HealthConfig::default()
        }
    }

    #[test]
    fn probes_and_defaults_are_dockers() {
        let c = shell("test -f /ok");
        assert_eq!(c.probe().unwrap().argv(), ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(
            (c.interval(), c.timeout(), c.start_period()),
            (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, Duration::ZERO)
        );
        assert_eq!(
            (c.start_interval(), c.retries()),
            (DEFAULT_START_INTERVAL, 3)
        );
        let exec = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            ..HealthConfig::default()
        };
        assert_eq!(exec.probe(), Some(Probe::Exec(vec!["true".into()])));
        for test in [vec!["NONE"], vec![], vec!["CMD"], vec!["HTTP", "x"]] {
            let c = HealthConfig {
                test: test.into_iter().map(String::from).collect(),
                ..HealthConfig::default()
            };
            assert_eq!(c.probe(), None);
        }
    }

    #[test]
    fn the_create_wins_field_by_field_over_the_image() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "a".into()],
            interval: 5,
            retries: 7,
            ..HealthConfig::default()
        };
        let own = HealthConfig {
            interval: 9,
            ..HealthConfig::default()
        };
        let merged = own.over(&image);
        assert_eq!(merged.test, image.test);
        assert_eq!((merged.interval, merged.retries), (9, 7));
    }

    #[test]
    fn passes_heal_and_retries_failures_make_it_unhealthy() {
        let c = HealthConfig {
            retries: 2,
            ..shell("x")
        };
        let h = Health::started(None);
        let h = h.after(result(0, 1), &c, at(0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        let h = h.after(result(1000, 1), &c, at(0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        let h = h.after(result(2000, 0), &c, at(0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        // A healthy container needs `retries` failures too; -1 (a timeout) is one.
        let h = h.after(result(3000, -1), &c, at(0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 1));
        let h = h.after(result(4000, 2), &c, at(0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_while_starting() {
        let c = HealthConfig {
            start_period: 10_000_000_000,
            retries: 1,
            ..shell("x")
        };
        let h = Health::started(None).after(result(5_000, 1), &c, at(0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        let h = h.after(result(11_000, 1), &c, at(0));
        assert_eq!(h.status, HealthStatus::Unhealthy);
        // Healthy once: a failure in the start period counts.
        let healthy = Health::started(None).after(result(1_000, 0), &c, at(0));
        let h = healthy.after(result(2_000, 1), &c, at(0));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 1));
    }

    #[test]
    fn the_log_keeps_the_last_five() {
        let c = shell("x");
        let mut h = Health::started(None);
        for i in 0..8 {
            h = h.after(result(i * 1000, 0), &c, at(0));
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(h.log[0].start, at(3000));
        assert_eq!(h.log[4].start, at(7000));
        let again = Health::started(Some(&h));
        assert_eq!((again.status, again.log.len()), (HealthStatus::Starting, 5));
    }

    #[test]
    fn a_new_run_starts_its_health_and_a_resumed_one_keeps_it() {
        let id = |pid| ProcessIdentity {
            pid,
            start_time: 1,
            boot_id: "b".into(),
        };
        let run = Run {
            shim: id(1),
            process: id(2),
            started_at: at(0),
        };
        let c = shell("x");
        let healthy = Health {
            status: HealthStatus::Healthy,
            failing_streak: 1,
            log: vec![result(0, 0)],
        };
        let running = State::Running(run.clone());
        let started = across(&State::Starting, &running, Some(&healthy), Some(&c)).unwrap();
        assert_eq!(
            (started.status, started.failing_streak),
            (HealthStatus::Starting, 0)
        );
        let resumed = across(&running, &running, Some(&healthy), Some(&c));
        assert_eq!(resumed.as_ref(), Some(&healthy));
        let fresh = across(&running, &State::Running(run.clone()), None, Some(&c));
        assert_eq!(fresh.map(|h| h.status), Some(HealthStatus::Starting));
        let exited = State::Exited {
            exit: None,
            error: String::new(),
            started_at: None,
            finished_at: at(1),
        };
        assert_eq!(
            across(&running, &exited, Some(&healthy), Some(&c)),
            Some(healthy)
        );
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        };
        assert_eq!(across(&State::Starting, &running, None, Some(&none)), None);
        assert_eq!(across(&State::Starting, &running, None, None), None);
    }

    #[test]
    fn a_result_counts_only_for_a_running_container() {
        let id = |pid| ProcessIdentity {
            pid,
            start_time: 1,
            boot_id: "b".into(),
        };
        let run = Run {
            shim: id(1),
            process: id(2),
            started_at: at(0),
        };
        let spec = crate::ContainerSpec {
            healthcheck: Some(shell("x")),
            ..Default::default()
        };
        let rec = ContainerRecord::new("a".repeat(64), "c".into(), spec, at(0));
        let running = rec
            .with_state(State::Starting)
            .with_state(State::Running(run.clone()));
        let healthy = after_probe(&running, result(1000, 0)).expect("running");
        assert_eq!(
            healthy.health.map(|h| h.status),
            Some(HealthStatus::Healthy)
        );
        for state in [State::Paused(run.clone()), State::Stopping(run)] {
            assert_eq!(
                after_probe(&running.with_state(state), result(1000, 0)),
                None
            );
        }
    }

    #[test]
    fn the_delay_follows_the_start_period() {
        let c = HealthConfig {
            interval: 30_000_000_000,
            start_period: 60_000_000_000,
            start_interval: 2_000_000_000,
            ..shell("x")
        };
        let starting = HealthStatus::Starting;
        assert_eq!(
            next_delay(&c, starting, at(0), at(1000)),
            Duration::from_secs(2)
        );
        assert_eq!(
            next_delay(&c, HealthStatus::Healthy, at(0), at(1000)),
            Duration::from_secs(30)
        );
        assert_eq!(
            next_delay(&c, starting, at(0), at(50_000)),
            Duration::from_secs(10)
        );
        assert_eq!(
            next_delay(&c, starting, at(0), at(70_000)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn output_is_cut_at_4_kib() {
        assert_eq!(kept_output(b"ok\n", false), "ok\n");
        let long = vec![b'a'; MAX_OUTPUT + 10];
        let kept = kept_output(&long, false);
        assert_eq!(kept.len(), MAX_OUTPUT + 3);
        assert!(kept.ends_with("a..."));
        assert_eq!(kept_output(b"x", true), "x...");
    }
}
