//! Healthcheck probes of the Container actor, as Docker runs them (moby `daemon/health.go`):
//! while the container runs, one probe at a time, each an exec inside the container through
//! the same path as `docker exec` (started by this actor, so a probe is ordered with this
//! container's pause, stop and removal; a paused or stopping container is not probed, and
//! a probe that was running when it was paused or stopped is not counted), killed at its
//! timeout, its output kept. Each result moves the recorded health by the pure rules of
//! `moor_state::health` and is persisted before anything shows it; `health_status: ...`
//! is published when the status changes. A daemon restart resumes the probes from the
//! recorded health (the actor starts a new chain for a resumed run).

use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use moor_state::health::{self, HealthStatus, ProbeResult, MAX_OUTPUT};
use moor_state::State;
use tracing::{debug, info, warn};

use super::ContainerActor;
use crate::daemon::exec::{self, bounded, ExecRequest};
use crate::image::healthcheck::go_duration_text;

/// The actor's bookkeeping of its probes.
#[derive(Debug, Default)]
pub(super) struct Prober {
    /// The current chain of probes: a new run starts a new one, and a tick or a result of an
    /// older chain is dropped.
    chain: u64,
    /// Transitions recorded so far: a result is counted only if none happened while its
    /// probe ran (a pause freezes the probe, a stop or an exit ends the run).
    transitions: u64,
}

impl Prober {
    /// Notes a transition (called by `apply`).
    pub(super) fn moved(&mut self) {
        self.transitions = self.transitions.wrapping_add(1);
    }
}

/// What a probe gave, before it becomes a [`ProbeResult`].
enum Outcome {
    /// The exec ran: its end.
    Ran(bounded::Bounded),
    /// The exec could not be created or started.
    NotStarted(String),
}

impl ContainerActor {
    /// Starts a new chain of probes for the current run, if its spec has a healthcheck; the
    /// first probe comes after the interval (Docker's).
    pub(super) fn health_begin(&mut self, ctx: &mut Context<Self>) {
        if self
            .record
            .spec
            .healthcheck
            .as_ref()
            .and_then(|c| c.probe())
            .is_none()
        {
            return;
        }
        self.health.chain = self.health.chain.wrapping_add(1);
        let chain = self.health.chain;
        self.health_schedule(chain, ctx);
    }

    /// The next tick of `chain`, after Docker's interval from now.
    fn health_schedule(&mut self, chain: u64, ctx: &mut Context<Self>) {
        let (Some(config), Some(run)) = (&self.record.spec.healthcheck, self.record.state.run())
        else {
            return;
        };
        let status = self
            .record
            .health
            .as_ref()
            .map_or(HealthStatus::Starting, |h| h.status);
        let delay = health::next_delay(config, status, run.started_at, Utc::now());
        ctx.run_later(delay, move |act, ctx| act.health_tick(chain, ctx));
    }

    /// A tick: probe a running container, skip a paused one (and one being stopped: a probe
    /// failing because the container is on its way out says nothing of its health), end
    /// with the run.
    fn health_tick(&mut self, chain: u64, ctx: &mut Context<Self>) {
        if chain != self.health.chain {
            return;
        }
        match self.record.state {
            State::Running(_) => self.probe(chain, ctx),
            State::Paused(_) | State::Stopping(_) => self.health_schedule(chain, ctx),
            _ => debug!(parent: &self.span, "run ended: no more probes"),
        }
    }

    /// Runs one probe as an exec, off this actor: the result comes back to
    /// [`Self::probe_done`].
    fn probe(&mut self, chain: u64, ctx: &mut Context<Self>) {
        let Some(config) = self.record.spec.healthcheck.clone() else {
            return;
        };
        let Some(probe) = config.probe() else {
            return;
        };
        let (start, mark) = (Utc::now(), self.health.transitions);
        let req = ExecRequest {
            argv: probe.argv(),
            attach_stdout: true,
            attach_stderr: true,
            ..ExecRequest::default()
        };
        let shared = self.shared.clone();
        let started =
            exec::config_for(&shared, &self.record, self.runtime.clone(), req).and_then(|config| {
                let id = shared.execs.insert(config.clone());
                let action = format!("exec_create: {}", config.command_line());
                exec::publish(&shared, &config, &id, action, &[]);
                match exec::start(&shared, &id, true) {
                    Ok(run) => Ok((id, run)),
                    Err(e) => {
                        shared.execs.forget(&id);
                        Err(e)
                    }
                }
            });
        let timeout = config.timeout();
        let outcome = async move {
            match started {
                Ok((id, run)) => {
                    Outcome::Ran(bounded::finish(shared, id, run, MAX_OUTPUT, timeout).await)
                }
                Err(e) => Outcome::NotStarted(crate::runtime::chain(&e)),
            }
        };
        ctx.spawn(outcome.into_actor(self).map(move |outcome, act, ctx| {
            let result = result_of(outcome, start, timeout);
            act.probe_done(chain, mark, result, ctx);
        }));
    }

    /// Records a probe's result (unless its chain is over or the container moved while it
    /// ran), publishes a change of status, and schedules the next probe.
    fn probe_done(&mut self, chain: u64, mark: u64, result: ProbeResult, ctx: &mut Context<Self>) {
        if chain != self.health.chain {
            return;
        }
        let counted = mark == self.health.transitions;
        let next = counted
            .then(|| health::after_probe(&self.record, result))
            .flatten();
        if let Some(rec) = next {
            let before = self.record.health.as_ref().map(|h| h.status);
            if let Err(e) = self.commit(&rec) {
                warn!(parent: &self.span, error = %e, "probe result not recorded");
            } else {
                self.record = rec;
                let after = self.record.health.as_ref().map(|h| h.status);
                if let Some(now) = after.filter(|s| Some(*s) != before) {
                    info!(parent: &self.span, status = now.word(), "health status changed");
                    self.emit(status_action(now), &[]);
                }
            }
        }
        if self.record.state.run().is_some() {
            self.health_schedule(chain, ctx);
        }
    }
}

/// Docker's event action for a new health status.
fn status_action(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Starting => "health_status: starting",
        HealthStatus::Healthy => "health_status: healthy",
        HealthStatus::Unhealthy => "health_status: unhealthy",
    }
}

/// A probe's outcome as Docker records it: a killed probe and one that could not start
/// are failures with exit code -1 and a message saying why.
fn result_of(outcome: Outcome, start: chrono::DateTime<Utc>, timeout: Duration) -> ProbeResult {
    let (exit_code, output) = match outcome {
        Outcome::Ran(ran) => {
            let output = health::kept_output(&ran.output, ran.truncated);
            match ran.exit_code {
                Some(code) => (i64::from(code), output),
                None => {
                    let limit = go_duration_text(timeout);
                    let text = match output.is_empty() {
                        true => format!("Health check exceeded timeout ({limit})"),
                        false => format!("Health check exceeded timeout ({limit}): {output}"),
                    };
                    (-1, text)
                }
            }
        }
        Outcome::NotStarted(error) => (-1, error),
    };
    ProbeResult {
        start,
        end: Utc::now(),
        exit_code,
        output,
    }
}
