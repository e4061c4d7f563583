//! A fake [`Runtime`] for in-process tests of the actors (test builds only): no shim, no
//! process, no runc. Its "processes" are entries in a table; a test tells it to fail a
//! start, to be slow to pause, to let a shim die or a process exit, or to fail opening
//! pidfds, and reads back the calls it got, in order.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use moor_state::reconcile::{Liveness, Observation, ObservedExit, ObservedRun};
use moor_state::{ContainerSpec, Exit, ProcessIdentity, Run};
use nix::errno::Errno;
use tokio::sync::watch;

use super::exec::{ExecCommand, ExecRuleError, ExecSpec};
use super::freeze::FreezeError;
use super::interface::{LogTarget, ProcessHandle, Runtime, RuntimeFuture};
use super::{RuntimeError, StartOutcome};
use crate::identity::IdentityError;
use crate::image::user::{ExecUser, UserError};

/// What the fake does and has seen.
#[derive(Debug, Default)]
struct Table {
    /// Calls, in the order they were made (`start <id>`, `pause-begin <id>`, ...).
    calls: Vec<String>,
    /// The next start reports this failure (code, error).
    fail_start: Option<(i32, String)>,
    /// How long a pause takes.
    pause_delay: Duration,
    /// Opening a process handle fails (EMFILE) while this is set.
    fail_open: bool,
    /// Each fake process: alive or not, and who waits for its end.
    processes: HashMap<i32, watch::Sender<bool>>,
    /// The run of each container started.
    runs: HashMap<String, Run>,
    /// The exit "file" of each container whose process ended.
    exits: HashMap<String, ObservedExit>,
    /// The last pid handed out.
    last_pid: i32,
    /// Runs once, inside the next end of a watched process that the actor sees (before
    /// the actor hears of it): what arrives "in the same instant" as an exit.
    on_exit_seen: Option<Hook>,
}

/// A test's hook (see [`FakeRuntime::on_exit_seen`]).
struct Hook(Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

/// The fake runtime; clones share one table.
#[derive(Debug, Clone, Default)]
pub struct FakeRuntime {
    /// The shared table.
    table: Arc<Mutex<Table>>,
}

impl FakeRuntime {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, call: String) {
        self.lock().calls.push(call);
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The next start fails with Docker's `code` and `error`.
    pub fn fail_next_start(&self, code: i32, error: &str) {
        self.lock().fail_start = Some((code, error.into()));
    }

    /// Every pause takes `delay`.
    pub fn slow_pause(&self, delay: Duration) {
        self.lock().pause_delay = delay;
    }

    /// `hook` runs once, inside the next watched end the actor sees, before the actor
    /// handles it: a message it sends lands in the actor's mailbox at that very moment.
    pub fn on_exit_seen(&self, hook: impl FnOnce() + Send + 'static) {
        self.lock().on_exit_seen = Some(Hook(Box::new(hook)));
    }

    /// Opening process handles (pidfds) fails while `on`.
    pub fn fail_open(&self, on: bool) {
        self.lock().fail_open = on;
    }

    /// The run of container `id`, once started.
    pub fn run_of(&self, id: &str) -> Option<Run> {
        self.lock().runs.get(id).cloned()
    }

    fn set_alive(&self, pid: i32, alive: bool) {
        if let Some(tx) = self.lock().processes.get(&pid) {
            tx.send_replace(alive);
        }
    }

    /// The shim of `id` dies, its process lives on (no exit file).
    pub fn kill_shim(&self, id: &str) {
        let Some(run) = self.run_of(id) else { return };
        self.set_alive(run.shim.pid, false);
    }

    /// The process of `id` ends with `exit`; its shim writes the exit file and ends.
    pub fn exit(&self, id: &str, exit: Exit) {
        let Some(run) = self.run_of(id) else { return };
        self.set_alive(run.process.pid, false);
        self.lock().exits.insert(
            id.into(),
            ObservedExit {
                exit,
                at: Utc::now(),
            },
        );
        self.set_alive(run.shim.pid, false);
    }

    /// The process of `id` ends and nothing is written (its shim was gone already).
    pub fn vanish(&self, id: &str) {
        let Some(run) = self.run_of(id) else { return };
        self.set_alive(run.process.pid, false);
        self.set_alive(run.shim.pid, false);
    }

    fn new_process(&self) -> ProcessIdentity {
        let mut t = self.lock();
        t.last_pid += 1;
        let pid = 100_000 + t.last_pid;
        let (tx, _) = watch::channel(true);
        t.processes.insert(pid, tx);
        ProcessIdentity {
            pid,
            start_time: 1,
            boot_id: "fake".into(),
        }
    }

    fn alive(&self, pid: i32) -> bool {
        self.lock()
            .processes
            .get(&pid)
            .is_some_and(|tx| *tx.borrow())
    }

    fn id_of(&self, pid: i32) -> Option<String> {
        self.lock()
            .runs
            .iter()
            .find(|(_, r)| r.process.pid == pid)
            .map(|(id, _)| id.clone())
    }
}

/// A handle on a fake process: a signal that ends it (SIGKILL, SIGTERM) is an exit by
/// that signal, written by its shim.
#[derive(Debug)]
struct FakeHandle {
    /// The runtime that made it.
    runtime: FakeRuntime,
    /// The process.
    pid: i32,
    /// Turns false when it ends.
    alive: watch::Receiver<bool>,
}

impl ProcessHandle for FakeHandle {
    fn signal(&self, signal: i32) -> Result<(), IdentityError> {
        self.runtime.record(format!("signal {signal}"));
        if matches!(signal, libc::SIGKILL | libc::SIGTERM) {
            if let Some(id) = self.runtime.id_of(self.pid) {
                self.runtime.exit(&id, Exit::Signal(signal));
            }
        }
        Ok(())
    }

    fn exited(self: Box<Self>) -> RuntimeFuture<io::Result<()>> {
        let (mut alive, runtime) = (self.alive, self.runtime);
        Box::pin(async move {
            alive
                .wait_for(|a| !*a)
                .await
                .map_err(|_| io::Error::other("fake process table gone"))?;
            let hook = runtime.lock().on_exit_seen.take();
            if let Some(Hook(hook)) = hook {
                hook();
            }
            Ok(())
        })
    }
}

impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn binary(&self) -> Option<std::path::PathBuf> {
        None
    }

    fn check_create(&self, _: &ContainerSpec) -> Result<(), UserError> {
        Ok(())
    }

    fn start(
        &self,
        id: &str,
        _: &ContainerSpec,
        _: LogTarget,
        _: &[moor_state::ports::PortMapping],
    ) -> RuntimeFuture<Result<StartOutcome, RuntimeError>> {
        self.record(format!("start {id}"));
        if let Some((code, error)) = self.lock().fail_start.take() {
            return Box::pin(async move { Ok(StartOutcome::Failed { code, error }) });
        }
        let run = Run {
            shim: self.new_process(),
            process: self.new_process(),
            started_at: Utc::now(),
        };
        let mut t = self.lock();
        t.exits.remove(id);
        t.runs.insert(id.into(), run.clone());
        Box::pin(async move { Ok(StartOutcome::Started(run)) })
    }

    fn pause(&self, id: &str, _: &ProcessIdentity) -> RuntimeFuture<Result<(), FreezeError>> {
        let (me, id) = (self.clone(), id.to_string());
        let delay = self.lock().pause_delay;
        Box::pin(async move {
            me.record(format!("pause-begin {id}"));
            tokio::time::sleep(delay).await;
            me.record(format!("pause-end {id}"));
            Ok(())
        })
    }

    fn resume(&self, id: &str, _: &ProcessIdentity) -> RuntimeFuture<Result<(), FreezeError>> {
        let (me, id) = (self.clone(), id.to_string());
        // Recorded when it runs, not when it is built (a pause builds its undo up front).
        Box::pin(async move {
            me.record(format!("resume {id}"));
            Ok(())
        })
    }

    fn frozen(&self, _: &str) -> RuntimeFuture<Option<bool>> {
        Box::pin(async { None })
    }

    fn open(&self, process: &ProcessIdentity) -> Result<Box<dyn ProcessHandle>, IdentityError> {
        let t = self.lock();
        if t.fail_open {
            return Err(IdentityError::PidfdOpen {
                pid: process.pid,
                source: Errno::EMFILE,
            });
        }
        match t.processes.get(&process.pid) {
            Some(tx) if *tx.borrow() => Ok(Box::new(FakeHandle {
                runtime: self.clone(),
                pid: process.pid,
                alive: tx.subscribe(),
            })),
            _ => Err(IdentityError::Gone { pid: process.pid }),
        }
    }

    fn liveness(&self, process: &ProcessIdentity) -> Liveness {
        match self.alive(process.pid) {
            true => Liveness::Alive,
            false => Liveness::Gone,
        }
    }

    fn stats(
        &self,
        _: &str,
        _: &ProcessIdentity,
    ) -> RuntimeFuture<Result<crate::runtime::stats::Sample, crate::runtime::stats::StatsError>>
    {
        // One task and nothing used: what a fake process uses.
        let sample = crate::runtime::stats::Sample {
            pids: (1, None),
            online_cpus: 1,
            ..Default::default()
        };
        Box::pin(async move { Ok(sample) })
    }

    fn observe(&self, id: &str) -> Observation {
        let (run, exit) = {
            let t = self.lock();
            (t.runs.get(id).cloned(), t.exits.get(id).cloned())
        };
        Observation {
            started: run.map(|run| ObservedRun {
                shim: self.liveness(&run.shim),
                process: self.liveness(&run.process),
                run,
            }),
            exit,
            unsupported_protocol: None,
            runtime_state: None,
            runtime_missing: None,
            now: Utc::now(),
        }
    }

    fn release(&self, id: &str) -> RuntimeFuture<()> {
        let (me, id) = (self.clone(), id.to_string());
        Box::pin(async move { me.record(format!("release {id}")) })
    }

    fn release_blocking(&self, id: &str) {
        self.record(format!("release {id}"));
    }

    fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("remove {id}"));
        Ok(())
    }

    fn exec_env(
        &self,
        _: &str,
        spec: &ContainerSpec,
        env: Vec<String>,
        user: &str,
    ) -> Result<(Vec<String>, Option<ExecUser>), ExecRuleError> {
        super::exec::process_env(&spec.env, env, user)
    }

    fn exec_command(&self, exec: &ExecSpec<'_>) -> Result<ExecCommand, ExecRuleError> {
        self.record(format!("exec {}", exec.argv.join(" ")));
        Ok(super::exec::process_command(exec))
    }

    fn open_root(
        &self,
        _: &str,
        _: &ContainerSpec,
        _: Option<&ProcessIdentity>,
        _: crate::archive::RootView,
    ) -> RuntimeFuture<Result<crate::archive::OpenedRoot, crate::archive::ArchiveError>> {
        Box::pin(async { Err(crate::archive::ArchiveError::NoRootfs { runtime: "fake" }) })
    }

    fn close_root(&self, _: &str, _: crate::archive::OpenedRoot) -> RuntimeFuture<()> {
        Box::pin(async {})
    }

    fn changes(
        &self,
        _: &str,
        _: &ContainerSpec,
    ) -> RuntimeFuture<Result<Vec<crate::archive::changes::Change>, crate::archive::ArchiveError>>
    {
        Box::pin(async { Err(crate::archive::ArchiveError::NoRootfs { runtime: "fake" }) })
    }
}
