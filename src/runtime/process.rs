//! The process runtime: no isolation, the command runs on the host under its shim. For
//! non-root development and tests that cannot be root.

use moor_state::reconcile::Observation;
use moor_state::record::RuntimeKind;
use moor_state::{ContainerSpec, ProcessIdentity};

use crate::archive::changes::Change;
use crate::archive::{ArchiveError, OpenedRoot, RootView};

use super::exec::{self, ExecCommand, ExecRuleError, ExecSpec};
use super::freeze::{self, FreezeError};
use super::interface::{LogTarget, Runtime, RuntimeFuture};
use super::stats::{self, Sample, StatsError};
use super::{RuntimeError, StartOutcome};
use crate::host::layout::Layout;
use crate::image::user::{ExecUser, UserError};

/// The process runtime of a daemon.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    /// Run directories, the shim binary.
    layout: Layout,
}

impl ProcessRuntime {
    /// The process runtime of the daemon whose paths are `layout`.
    pub fn new(layout: Layout) -> Self {
        ProcessRuntime { layout }
    }
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn binary(&self) -> Option<std::path::PathBuf> {
        Some(self.layout.shim_bin.clone())
    }

    fn check_create(&self, _: &ContainerSpec) -> Result<(), UserError> {
        Ok(())
    }

    fn start(
        &self,
        id: &str,
        spec: &ContainerSpec,
        log: LogTarget,
        _: &[moor_state::ports::PortMapping],
    ) -> RuntimeFuture<Result<StartOutcome, RuntimeError>> {
        // Ports need a bridge: the API refuses them on the host's network.
        let shim = super::process_spec(id, spec, log.path, log.max_size, log.max_file);
        let dir = self.layout.run_container_dir(id);
        let bin = self.layout.shim_bin.clone();
        Box::pin(async move { super::start_shim(&bin, &dir, shim).await })
    }

    fn pause(&self, id: &str, process: &ProcessIdentity) -> RuntimeFuture<Result<(), FreezeError>> {
        let (id, process) = (id.to_string(), process.clone());
        Box::pin(async move { freeze::pause(RuntimeKind::Process, None, &id, &process).await })
    }

    fn resume(
        &self,
        id: &str,
        process: &ProcessIdentity,
    ) -> RuntimeFuture<Result<(), FreezeError>> {
        let (id, process) = (id.to_string(), process.clone());
        Box::pin(async move { freeze::resume(RuntimeKind::Process, None, &id, &process).await })
    }

    fn frozen(&self, _: &str) -> RuntimeFuture<Option<bool>> {
        Box::pin(async { None })
    }

    fn stats(
        &self,
        _: &str,
        process: &ProcessIdentity,
    ) -> RuntimeFuture<Result<Sample, StatsError>> {
        let init = process.pid;
        stats::off_thread(move || Ok(stats::processes(&crate::identity::session_pids(init))))
    }

    fn observe(&self, id: &str) -> Observation {
        crate::runtime::observe::observe(&self.layout, id)
    }

    fn release(&self, _: &str) -> RuntimeFuture<()> {
        Box::pin(async {})
    }

    fn release_blocking(&self, _: &str) {}

    fn remove(&self, _: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn exec_env(
        &self,
        _: &str,
        spec: &ContainerSpec,
        env: Vec<String>,
        user: &str,
    ) -> Result<(Vec<String>, Option<ExecUser>), ExecRuleError> {
        exec::process_env(&spec.env, env, user)
    }

    fn exec_command(&self, spec: &ExecSpec<'_>) -> Result<ExecCommand, ExecRuleError> {
        Ok(exec::process_command(spec))
    }

    fn open_root(
        &self,
        _: &str,
        _: &ContainerSpec,
        _: Option<&ProcessIdentity>,
        _: RootView,
    ) -> RuntimeFuture<Result<OpenedRoot, ArchiveError>> {
        Box::pin(async { Err(no_rootfs()) })
    }

    fn close_root(&self, _: &str, _: OpenedRoot) -> RuntimeFuture<()> {
        Box::pin(async {})
    }

    fn changes(
        &self,
        _: &str,
        _: &ContainerSpec,
    ) -> RuntimeFuture<Result<Vec<Change>, ArchiveError>> {
        Box::pin(async { Err(no_rootfs()) })
    }
}

/// A process container runs on the host's own `/`: copying into it would write the host's
/// files, so cp, export and diff are refused.
fn no_rootfs() -> ArchiveError {
    ArchiveError::NoRootfs {
        runtime: super::interface::profile(RuntimeKind::Process).name,
    }
}
