//! The Container actor: one per container, the only writer of its record. Every
//! handler runs the transition, persists it, then acts ("write the intent, then act"): the
//! write commits at once and its flush runs on the store's flush thread
//! (`daemon::durable`), and the step it announces waits for that flush without holding
//! the thread the actors share (`ordered.rs`). A start awaits its shim atomically so
//! operations on one container never interleave.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use moor_state::restart::{self, Occasion};
use moor_state::{transition, ContainerRecord, Event, State};
use tokio::sync::oneshot;
use tracing::{info, warn, Span};

use crate::daemon::cleanup;
use crate::daemon::error::ContainerError;
use crate::daemon::fault;
use crate::daemon::messages::*;
use crate::daemon::supervisor::SpecSync;
use crate::daemon::Shared;
use crate::identity::IdentityError;
use crate::runtime::{self, LogTarget, ProcessHandle, Runtime, StartOutcome};

mod archive;
pub mod endpoint;
mod exec;
mod health;
mod joined;
mod ordered;
mod orphan;
mod pause;
mod policy;
mod ports;
mod remove;
mod stats;
mod stop;
mod update;
mod watch;

/// Docker's default stop timeout, in seconds.
pub const DEFAULT_STOP_TIMEOUT: u32 = 10;

/// One container's actor.
pub struct ContainerActor {
    /// The record as last persisted.
    record: ContainerRecord,
    /// Store, layout and daemon settings.
    shared: Arc<Shared>,
    /// The runtime of this container's kind, chosen once from its spec.
    runtime: Arc<dyn Runtime>,
    /// Told when the container is removed.
    supervisor: Recipient<ContainerRemoved>,
    /// Clients waiting for an exit or the removal.
    waiters: Vec<(WaitCondition, oneshot::Sender<WaitOutcome>)>,
    /// The span every log line of this container is in.
    span: Span,
    /// A restart the policy scheduled, cancelled by a user's stop or remove.
    pending_restart: Option<SpawnHandle>,
    /// Restarts in a row without a long run in between (the back-off exponent).
    consecutive_restarts: u32,
    /// Set while the daemon stops it at shutdown: its exit starts nothing.
    suppress_restart: bool,
    /// The create's background fsync of the spec file, until the first start awaits it (a
    /// container never runs without its spec file durable).
    spec_sync: Option<SpecSync>,
    /// The store's counter of this actor's last write: what a step waits to be durable.
    written: u64,
    /// The healthcheck probes' chain and the transitions they are checked against.
    health: health::Prober,
}

impl ContainerActor {
    /// An actor for a record (created, recovered or reconciled).
    pub fn new(
        record: ContainerRecord,
        shared: Arc<Shared>,
        supervisor: Recipient<ContainerRemoved>,
    ) -> Self {
        let span = tracing::info_span!("container", container_id = %short(&record.id));
        let runtime = shared.runtimes.for_record(&record);
        ContainerActor {
            record,
            shared,
            runtime,
            supervisor,
            waiters: Vec::new(),
            span,
            pending_restart: None,
            consecutive_restarts: 0,
            suppress_restart: false,
            spec_sync: None,
            written: 0,
            health: health::Prober::default(),
        }
    }

    /// For a container just created: its spec file is being synced by `job`.
    pub fn with_spec_sync(mut self, job: SpecSync) -> Self {
        self.spec_sync = Some(job);
        self
    }

    /// Runs the transition and persists it before anything acts on it.
    fn apply(&mut self, event: Event) -> Result<(), ContainerError> {
        let event_name = event.name();
        let next = transition(&self.record.state, event)?;
        let rec = self.record.with_state(next);
        self.commit(&rec)?;
        info!(parent: &self.span, event = event_name, from = self.record.state.name(), to = rec.state.name(), "state changed");
        self.record = rec;
        self.health.moved();
        Ok(())
    }

    /// Publishes a Docker event about this container.
    fn emit(&self, action: &'static str, extra: &[(&str, String)]) {
        emit(&self.shared, &self.record, action, extra);
    }

    /// The exit code Docker reports for the current state.
    fn exit_code(&self) -> i64 {
        exit_code(&self.record.state)
    }

    fn after_start(
        &mut self,
        outcome: Result<StartOutcome, runtime::RuntimeError>,
        ctx: &mut Context<Self>,
    ) -> Result<(), ContainerError> {
        match outcome {
            Ok(StartOutcome::Started(run)) => {
                fault::point("shim-spawned");
                let pid = run.process.pid;
                self.apply(Event::Started(run))?;
                info!(parent: &self.span, pid, "started");
                self.emit("start", &[]);
                self.watch(ctx);
                self.health_begin(ctx);
                Ok(())
            }
            Ok(StartOutcome::Failed { code, error }) => {
                self.fail_start(code, error.clone(), ctx)?;
                Err(ContainerError::StartFailed { code, error })
            }
            Err(e) => {
                self.fail_start(128, runtime::chain(&e), ctx)?;
                Err(e.into())
            }
        }
    }

    fn fail_start(
        &mut self,
        code: i32,
        error: String,
        ctx: &mut Context<Self>,
    ) -> Result<(), ContainerError> {
        warn!(parent: &self.span, code, error = %error, "start failed");
        let at = Utc::now();
        self.apply(Event::StartFailed { code, error, at })?;
        self.emit("die", &[("exitCode", code.to_string())]);
        self.after_exit(ctx);
        if !matches!(self.record.state, State::Removing) {
            // A runc start that failed leaves no mount or runc state behind.
            self.release_in_order(ctx);
        }
        Ok(())
    }

    /// Answers waiters and applies `--rm` once the process ended.
    fn after_exit(&mut self, ctx: &mut Context<Self>) {
        self.shared.execs.container_exited(&self.record.id);
        let code = self.exit_code();
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(c, _)| *c != WaitCondition::Removed);
        self.waiters = keep;
        for (_, tx) in done {
            let _ = tx.send(Ok(code));
        }
        if self.record.spec.auto_remove {
            let removal = self.remove_now(true).map(|res, act, _| {
                if let Err(e) = res {
                    warn!(parent: &act.span, error = %e, "auto-remove failed");
                }
            });
            ctx.wait(removal);
            return;
        }
        if !self.suppress_restart && restart::should_restart(&self.record, Occasion::Exited) {
            let ran_for = match &self.record.state {
                State::Exited {
                    started_at: Some(started),
                    finished_at,
                    ..
                } => (*finished_at - *started).to_std().unwrap_or_default(),
                _ => Duration::ZERO,
            };
            if ran_for >= restart::RESET_AFTER {
                self.consecutive_restarts = 0;
            }
            let delay = restart::delay(self.consecutive_restarts, ran_for);
            self.consecutive_restarts += 1;
            // Docker's `restarting` for the back-off: shown, and `rm` needs a stop or force.
            if let Err(e) = self.apply(Event::RestartScheduled) {
                warn!(parent: &self.span, error = %e, "restart not recorded: not restarting");
                return;
            }
            info!(parent: &self.span, delay_ms = delay.as_millis() as u64, "restart policy: restarting");
            self.pending_restart = Some(ctx.notify_later(RestartByPolicy, delay));
        }
    }

    /// Starts the process once its spec file is on disk: the create's background fsync is
    /// awaited alongside the flush of `starting` (both before the shim), and a spec file
    /// that failed to sync or has gone since is written again from the record, durably. A
    /// container never runs without the file a rebuilt store needs.
    fn start(&mut self) -> ResponseActFuture<Self, Result<(), ContainerError>> {
        let pending = self.spec_sync.take();
        let path = self
            .shared
            .layout
            .container_dir(&self.record.id)
            .join(crate::host::layout::SPEC_FILE);
        let on_disk = async move {
            let synced = match pending {
                Some(job) => matches!(job.await, Ok(Ok(()))),
                None => true,
            };
            synced && path.is_file()
        };
        self.start_now(Box::pin(on_disk))
    }

    /// Starts the process: the transition, then (once it and the spec file are durable)
    /// the shim, atomically for this actor. A start refused before its transition still
    /// waits for `spec_on_disk`, so the create's fsync never outlives the answer.
    fn start_now(
        &mut self,
        spec_on_disk: futures_util::future::BoxFuture<'static, bool>,
    ) -> ResponseActFuture<Self, Result<(), ContainerError>> {
        // A spec promoted now (its network) has its file rewritten before the shim.
        let promoted = match self.promote_before_start() {
            Ok(promoted) => promoted,
            Err(e) => return refused(e, spec_on_disk, self),
        };
        let spec = match self.start_spec() {
            Ok(spec) => spec.into_owned(),
            Err(e) => return refused(e, spec_on_disk, self),
        };
        // The host ports of this run, resolved against the other running containers' and
        // the host's sockets, persisted with the transition.
        let published = match self.resolve_ports() {
            Ok(published) => published,
            Err(e) => return refused(e, spec_on_disk, self),
        };
        let before = std::mem::replace(&mut self.record.published, published);
        // A start runs under the daemon's settings now (README "Changing daemon options").
        let settings = Some(self.shared.current_settings(&self.record.spec));
        let recorded = std::mem::replace(&mut self.record.settings, settings);
        if let Err(e) = self.apply(Event::StartRequested) {
            (self.record.published, self.record.settings) = (before, recorded);
            return refused(e, spec_on_disk, self);
        }
        self.runtime = self.shared.runtimes.for_record(&self.record);
        let id = &self.record.id;
        let log = LogTarget {
            path: self.shared.layout.log_path(id),
            max_size: self.shared.log_max_size(&self.record.spec),
            max_file: self.shared.log_max_file(&self.record.spec),
        };
        let started = self.runtime.start(id, &spec, log, &self.record.published);
        // The shim only once `starting` and the spec file are durable (a start that polls
        // nothing does nothing).
        let flushed = self.shared.durable.flushed(self.written);
        let ready = async move { futures_util::future::join(flushed, spec_on_disk).await };
        let ready = ready
            .into_actor(self)
            .then(move |(flushed, on_disk), act, _| {
                if !on_disk {
                    warn!(parent: &act.span, "spec file missing or not synced: writing it again");
                }
                // Rewritten on the blocking pool, before this start goes on.
                let rewrite = (flushed.is_ok() && (promoted || !on_disk))
                    .then(|| crate::daemon::supervisor::write_spec_file(&act.shared, &act.record));
                async move {
                    flushed?;
                    if let Some(rewrite) = rewrite {
                        rewrite.await?;
                    }
                    fault::point("start-persisted");
                    Ok::<_, ContainerError>(started.await)
                }
                .into_actor(act)
            });
        Box::pin(ready.map(|outcome, act, ctx| match outcome {
            Ok(outcome) => act.after_start(outcome, ctx),
            Err(e) => {
                act.fail_start(128, e.to_string(), ctx)?;
                Err(e)
            }
        }))
    }

    /// Opens a handle on the container's process, verified by identity (a pidfd).
    fn process_pidfd(&self) -> Result<Box<dyn ProcessHandle>, ContainerError> {
        let run = self.record.state.signal_target()?;
        self.runtime
            .open(&run.process)
            .map_err(|source| ContainerError::Signal {
                id: self.record.id.clone(),
                source,
            })
    }

    /// The container's process, or `None` when it has just ended (its exit is on its way to
    /// this actor: a stop or a forced removal waits for that instead of signalling).
    fn live_process(&self) -> Result<Option<Box<dyn ProcessHandle>>, ContainerError> {
        match self.process_pidfd() {
            Err(ContainerError::Signal {
                source: IdentityError::Gone { .. },
                ..
            }) => Ok(None),
            other => other.map(Some),
        }
    }

    fn next_exit(&mut self) -> oneshot::Receiver<WaitOutcome> {
        let (tx, rx) = oneshot::channel();
        self.waiters.push((WaitCondition::NextExit, tx));
        rx
    }
}

/// A start refused before its transition: `error`, once the spec file's fsync is over.
fn refused(
    error: ContainerError,
    spec_on_disk: futures_util::future::BoxFuture<'static, bool>,
    act: &ContainerActor,
) -> ResponseActFuture<ContainerActor, Result<(), ContainerError>> {
    Box::pin(spec_on_disk.into_actor(act).map(move |_, _, _| Err(error)))
}

/// The exit code Docker reports for a state: 0 until it exits, 255 when unknown.
pub fn exit_code(state: &State) -> i64 {
    match state {
        State::Exited { exit: Some(e), .. } | State::Restarting { exit: Some(e), .. } => {
            i64::from(e.code())
        }
        State::Exited { exit: None, .. } | State::Restarting { exit: None, .. } => 255,
        _ => 0,
    }
}

/// Publishes a Docker event about `rec` on the daemon's bus.
pub fn emit(
    shared: &Shared,
    rec: &ContainerRecord,
    action: &'static str,
    extra: &[(&str, String)],
) {
    shared
        .events
        .publish(crate::daemon::events::DockerEvent::container(
            action,
            &rec.id,
            &rec.name,
            &rec.spec.image,
            extra,
        ));
}

/// The first 12 characters of an id, as Docker shows it.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

impl Actor for ContainerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A resumed container is watched again; an orphan's process is watched for its end.
        if matches!(
            self.record.state,
            State::Running(_) | State::Paused(_) | State::Stopping(_)
        ) {
            self.emit("restore", &[]);
            self.restore_freezer(ctx);
            self.watch(ctx);
            self.resume_stop(ctx);
            self.health_begin(ctx);
        } else if let State::Orphaned { .. } = self.record.state {
            self.watch(ctx);
        } else if restart::should_restart(&self.record, Occasion::DaemonStart) {
            info!(parent: &self.span, "restart policy: starting at daemon start");
            ctx.notify(RestartByPolicy);
        }
    }
}

impl Handler<StartContainer> for ContainerActor {
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, _: StartContainer, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(handle) = self.pending_restart.take() {
            ctx.cancel_future(handle);
        }
        if let Err(e) = self.set_manually_stopped(false) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        self.consecutive_restarts = 0;
        self.suppress_restart = false;
        AtomicResponse::new(self.start())
    }
}

impl Handler<StopContainer> for ContainerActor {
    type Result = ResponseFuture<Result<(), ContainerError>>;

    fn handle(&mut self, msg: StopContainer, ctx: &mut Context<Self>) -> Self::Result {
        let cancelled = self.pending_restart.take().map(|h| ctx.cancel_future(h));
        match msg.by {
            StopBy::User => {
                if let Err(e) = self.set_manually_stopped(true) {
                    return Box::pin(async move { Err(e) });
                }
            }
            StopBy::DaemonShutdown => self.suppress_restart = true,
            StopBy::HostShutdown => {
                self.suppress_restart = true;
                if self.record.state.run().is_some() {
                    self.emit("host-shutdown", &[]);
                }
            }
        }
        if matches!(self.record.state, State::Restarting { .. }) {
            // A stop during the back-off ends it: exited, as it was.
            if let Err(e) = self.apply(Event::StopRequested) {
                return Box::pin(async move { Err(e) });
            }
        }
        if cancelled.is_some() && self.record.state.run().is_none() {
            info!(parent: &self.span, "pending restart cancelled");
            return Box::pin(async { Ok(()) });
        }
        let paused = self.paused_run();
        let timeout = msg
            .timeout_secs
            .or(self.record.spec.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        // The exit waited for is taken now, not in the signal step: the end may be recorded
        // before that step runs (see `RemoveContainer`).
        let prepared: Result<_, ContainerError> = self.live_process().and_then(|pidfd| {
            self.apply_stop(Utc::now() + chrono::Duration::seconds(timeout.into()))
                .map(|()| (pidfd, self.next_exit()))
        });
        // A paused container is thawed (an async runc call) before the signal, in order.
        let thawed = match (&prepared, &paused) {
            (Ok(_), Some(run)) => self.thaw(run),
            _ => Box::pin(fut::ready(Ok(()))),
        };
        // The signal only once `stopping` (and its deadline) is durable.
        let thawed = self.after_durable(thawed);
        let signalled = thawed.map(move |thawed, act, _| {
            let (pidfd, exit) = prepared?;
            thawed?;
            let signal = act.stop_signal();
            match pidfd.as_ref().map(|p| p.signal(signal)) {
                // Ended on its own: its exit is what the stop waits for, as for any stop.
                None | Some(Err(IdentityError::Gone { .. })) => {
                    info!(parent: &act.span, "already exiting: no stop signal needed");
                }
                Some(other) => other.map_err(|source| ContainerError::Signal {
                    id: act.record.id.clone(),
                    source,
                })?,
            }
            // Docker's order for a stop: kill (the stop signal), die, stop.
            act.emit("kill", &[("signal", signal.to_string())]);
            fault::point("stop-signalled");
            Ok::<_, ContainerError>((pidfd, exit))
        });
        let prepared = self.in_order(ctx, Box::pin(signalled));
        let span = self.span.clone();
        let (shared, record) = (self.shared.clone(), self.record.clone());
        Box::pin(async move {
            let (pidfd, mut rx) = ordered::step_output(prepared).await??;
            let waited = tokio::time::timeout(Duration::from_secs(timeout.into()), &mut rx).await;
            if waited.is_err() {
                info!(parent: &span, timeout, "stop timeout: sending SIGKILL");
                // The pidfd still names the same process: a reused pid cannot be hit.
                if pidfd.is_some_and(|p| p.signal(libc::SIGKILL).is_ok()) {
                    emit(
                        &shared,
                        &record,
                        "kill",
                        &[("signal", libc::SIGKILL.to_string())],
                    );
                }
                let _ = rx.await;
            }
            emit(&shared, &record, "stop", &[]);
            Ok(())
        })
    }
}

impl Handler<KillContainer> for ContainerActor {
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    fn handle(&mut self, msg: KillContainer, _: &mut Context<Self>) -> Self::Result {
        let pidfd = match self.process_pidfd() {
            Ok(pidfd) => pidfd,
            Err(e) => return AtomicResponse::new(Box::pin(fut::ready(Err(e)))),
        };
        let thawed = self.unpause_for_signal(msg.signal);
        AtomicResponse::new(Box::pin(thawed.map(move |(), act, _| {
            info!(parent: &act.span, signal = msg.signal, "kill");
            pidfd
                .signal(msg.signal)
                .map_err(|source| ContainerError::Signal {
                    id: act.record.id.clone(),
                    source,
                })?;
            act.emit("kill", &[("signal", msg.signal.to_string())]);
            Ok(())
        })))
    }
}

impl Handler<WaitContainer> for ContainerActor {
    type Result = MessageResult<WaitContainer>;

    fn handle(&mut self, msg: WaitContainer, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let running = matches!(
            self.record.state,
            State::Running(_) | State::Paused(_) | State::Stopping(_) | State::Starting
        );
        if msg.0 == WaitCondition::NotRunning && !running {
            let _ = tx.send(Ok(self.exit_code()));
        } else {
            self.waiters.push((msg.0, tx));
        }
        MessageResult(rx)
    }
}

impl Handler<InspectContainer> for ContainerActor {
    type Result = MessageResult<InspectContainer>;

    fn handle(&mut self, _: InspectContainer, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.record.clone())
    }
}

impl Handler<RenameContainer> for ContainerActor {
    type Result = AtomicResponse<Self, Result<(), ContainerError>>;

    /// The new name is committed at once (a later create finds it taken); the answer waits
    /// for its flush and the spec file's rewrite, neither on the actors' thread.
    fn handle(&mut self, msg: RenameContainer, _: &mut Context<Self>) -> Self::Result {
        let old = match self.rename(msg.new_name) {
            Ok(old) => old,
            Err(e) => return AtomicResponse::new(Box::pin(fut::ready(Err(e)))),
        };
        let done = self.after_durable_spec(Box::pin(fut::ready(Ok(()))));
        AtomicResponse::new(Box::pin(done.map(move |res, act, _| {
            res?;
            info!(parent: &act.span, from = %old, to = %act.record.name, "renamed");
            act.emit("rename", &[("oldName", format!("/{old}"))]);
            Ok(())
        })))
    }
}

impl ContainerActor {
    /// Commits the name `new_name` (store and record); returns the old one.
    fn rename(&mut self, new_name: String) -> Result<String, ContainerError> {
        crate::daemon::supervisor::validate_name(&new_name)?;
        self.written = self
            .shared
            .store
            .rename_unflushed(&self.record.id, &new_name)
            .map_err(crate::daemon::supervisor::name_conflict)?;
        self.shared.durable.request();
        Ok(std::mem::replace(&mut self.record.name, new_name))
    }
}
