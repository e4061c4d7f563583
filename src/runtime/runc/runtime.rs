//! The runc runtime behind the [`Runtime`] trait: an OCI bundle on an overlay of the
//! image's layers, started by the shim's `runc run`, frozen with `runc pause`, cleaned up
//! with `runc delete`. A daemon without runc (not root, or runc missing) still has one:
//! it refuses to start, freeze or exec, and its clean-up only unmounts.

use moor_state::ports::PortMapping;
use moor_state::reconcile::{Observation, RuntimeState};
use moor_state::record::RuntimeKind;
use moor_state::{ContainerSpec, ProcessIdentity};

use super::{Runc, UpdateOpts};
use crate::archive::changes::Change;
use crate::archive::{ArchiveError, OpenedRoot, RootView};
use crate::host::layout::Layout;
use crate::image::user::{ExecUser, UserError};
use crate::image::ImageDirs;
use crate::runtime::bundle::tuning;
use crate::runtime::exec::{self, ExecCommand, ExecRuleError, ExecSpec};
use crate::runtime::freeze::{self, FreezeError};
use crate::runtime::interface::{LogTarget, Runtime, RuntimeFuture};
use crate::runtime::stats::{self, Sample, StatsError};
use crate::runtime::{blocking, RuntimeError, StartOutcome};
use moor_state::resources::ResourceUpdate;

/// The runc runtime of a daemon.
#[derive(Debug, Clone)]
pub struct RuncRuntime {
    /// runc and its state directory; None when the daemon runs without root or runc.
    runc: Option<Runc>,
    /// Bundles, rootfs mounts, the shim binary.
    layout: Layout,
}

impl RuncRuntime {
    /// The runc runtime of the daemon whose paths are `layout`.
    pub fn new(runc: Option<Runc>, layout: Layout) -> Self {
        RuncRuntime { runc, layout }
    }
}

/// The container's network (a bridge container's), then its bundle, then its published
/// `ports`; a failed step takes the network down again. Blocking.
pub fn prepare(
    runc: &Runc,
    layout: &Layout,
    id: &str,
    spec: &ContainerSpec,
    log: (std::path::PathBuf, Option<u64>, u32),
    ports: &[PortMapping],
) -> Result<crate::shim::protocol::ShimSpec, RuntimeError> {
    let net = match (&spec.endpoint, &spec.joined_network) {
        // Another container's network (`container:NAME`): its namespace and files as they are.
        (_, Some(joined)) => Some(crate::network::Attached {
            netns: joined.netns.clone(),
            files: joined.files.clone(),
        }),
        (Some(ep), None) => {
            let hostname = match spec.hostname.as_str() {
                "" => &id[..12.min(id.len())],
                name => name,
            };
            let dir = layout.container_dir(id);
            let extras = &spec.extra_endpoints;
            let attached = crate::network::attach(
                &layout.run_dir,
                &dir,
                id,
                hostname,
                ep,
                extras,
                &spec.process,
            );
            let attached = attached.map_err(super::SetupError::from)?;
            crate::host::fault::point("network-attached");
            Some(attached)
        }
        (None, None) => None,
    };
    let prepared = runc
        .prepare(layout, id, spec, log, net.as_ref())
        .and_then(|shim| {
            let Some(ep) = spec.endpoint.as_ref().filter(|_| !ports.is_empty()) else {
                return Ok(shim);
            };
            crate::network::nat::publish(id, ep.ip, ports).map_err(super::SetupError::from)?;
            crate::host::fault::point("ports-published");
            Ok(shim)
        });
    if prepared.is_err() && spec.endpoint.is_some() {
        if let Err(e) = crate::network::detach(&layout.run_dir, id) {
            tracing::warn!(container_id = %&id[..12.min(id.len())], error = %e, "network teardown failed");
        }
    }
    Ok(prepared?)
}

/// The `runc update` flags of an update whose result is `spec`: each setting `changed`
/// gives, as `spec` now has it. A new memory limit or swap sets both (no swap unless asked:
/// memory plus swap is the limit itself); NanoCpus is a quota over Docker's period.
pub fn update_opts(spec: &ContainerSpec, changed: &ResourceUpdate) -> UpdateOpts {
    let r = &spec.resources;
    let mut opts = UpdateOpts::default();
    let memory_changed = changed.memory.is_some() || changed.memory_swap.is_some();
    if memory_changed && spec.memory > 0 {
        opts.memory = Some(spec.memory);
        opts.memory_swap = Some(moor_state::resources::memory_and_swap(
            spec.memory,
            r.memory_swap,
        ));
    }
    opts.memory_reservation = changed.memory_reservation.map(|_| r.memory_reservation);
    if changed.nano_cpus.is_some() && spec.nano_cpus > 0 {
        let quota = spec.nano_cpus.saturating_mul(tuning::CPU_PERIOD as i64) / 1_000_000_000;
        opts.cpu_period = Some(tuning::CPU_PERIOD);
        opts.cpu_quota = Some(quota.max(1000));
    }
    if changed.cpu_quota.is_some() {
        opts.cpu_quota = Some(r.cpu_quota);
    }
    if changed.cpu_period.is_some() {
        opts.cpu_period = u64::try_from(r.cpu_period).ok();
    }
    opts.cpu_shares = changed
        .cpu_shares
        .and_then(|_| u64::try_from(r.cpu_shares).ok());
    opts.cpuset_cpus = changed.cpuset_cpus.as_ref().map(|_| r.cpuset_cpus.clone());
    opts.cpuset_mems = changed.cpuset_mems.as_ref().map(|_| r.cpuset_mems.clone());
    opts.pids_limit = changed.pids_limit.map(|_| spec.pids_limit.unwrap_or(-1));
    opts
}

impl Runtime for RuncRuntime {
    fn name(&self) -> &'static str {
        "runc"
    }

    fn update(
        &self,
        id: &str,
        spec: &ContainerSpec,
        changed: &ResourceUpdate,
    ) -> RuntimeFuture<Result<(), RuntimeError>> {
        let (runc, id, opts) = (
            self.runc.clone(),
            id.to_string(),
            update_opts(spec, changed),
        );
        Box::pin(async move {
            let runc = runc.ok_or(RuntimeError::NoRunc)?;
            if opts.is_empty() {
                return Ok(());
            }
            runc.update(&id, &opts).await.map_err(RuntimeError::Update)
        })
    }

    fn binary(&self) -> Option<std::path::PathBuf> {
        self.runc.as_ref().map(|r| r.args.binary.clone())
    }

    fn check_create(&self, spec: &ContainerSpec) -> Result<(), UserError> {
        if spec.user.is_empty() && spec.process.group_add.is_empty() {
            return Ok(());
        }
        // Docker finds out at start; a create that cannot start is refused at once.
        let lowers = ImageDirs::new(&self.layout.root).lowers(&spec.image_id);
        crate::image::user::resolve_layers(&lowers, &spec.user)?;
        crate::image::user::group_ids(&lowers, &spec.process.group_add).map(|_| ())
    }

    fn start(
        &self,
        id: &str,
        spec: &ContainerSpec,
        log: LogTarget,
        ports: &[PortMapping],
    ) -> RuntimeFuture<Result<StartOutcome, RuntimeError>> {
        let (runc, layout) = (self.runc.clone(), self.layout.clone());
        let (id, spec, ports) = (id.to_string(), spec.clone(), ports.to_vec());
        Box::pin(async move {
            let runc = runc.ok_or(RuntimeError::NoRunc)?;
            let dir = layout.run_container_dir(&id);
            let bin = layout.shim_bin.clone();
            let log = (log.path, log.max_size, log.max_file);
            let shim = blocking(move || prepare(&runc, &layout, &id, &spec, log, &ports)).await?;
            crate::runtime::start_shim(&bin, &dir, shim).await
        })
    }

    fn pause(&self, id: &str, process: &ProcessIdentity) -> RuntimeFuture<Result<(), FreezeError>> {
        let (runc, id, process) = (self.runc.clone(), id.to_string(), process.clone());
        Box::pin(
            async move { freeze::pause(RuntimeKind::Runc, runc.as_ref(), &id, &process).await },
        )
    }

    fn resume(
        &self,
        id: &str,
        process: &ProcessIdentity,
    ) -> RuntimeFuture<Result<(), FreezeError>> {
        let (runc, id, process) = (self.runc.clone(), id.to_string(), process.clone());
        Box::pin(
            async move { freeze::resume(RuntimeKind::Runc, runc.as_ref(), &id, &process).await },
        )
    }

    fn frozen(&self, id: &str) -> RuntimeFuture<Option<bool>> {
        let (runc, id) = (self.runc.clone(), id.to_string());
        Box::pin(async move {
            // runc's state file first (a few reads on the blocking pool): every resumed
            // container asks at daemon start, and a `runc state` each cost ~11 ms there.
            let (r, i) = (runc.clone()?, id.clone());
            let read = tokio::task::spawn_blocking(move || r.state_from_file(&i)).await;
            match read.ok().flatten() {
                Some(RuntimeState::Missing) => None,
                Some(state) => Some(state == RuntimeState::Paused),
                None => freeze::runc_paused(runc.as_ref(), &id).await,
            }
        })
    }

    fn stats(
        &self,
        id: &str,
        process: &ProcessIdentity,
    ) -> RuntimeFuture<Result<Sample, StatsError>> {
        let (runc, id, init) = (self.runc.clone(), id.to_string(), process.pid);
        stats::off_thread(move || {
            let runc = runc.ok_or(StatsError::NoCgroup)?;
            let paths = runc.cgroup_paths(&id).ok_or(StatsError::NoCgroup)?;
            let mut sample = stats::cgroup(&paths)?;
            sample.networks = stats::networks(init);
            Ok(sample)
        })
    }

    fn observe(&self, id: &str) -> Observation {
        let mut obs = crate::runtime::observe::observe(&self.layout, id);
        // The container's runc (its recorded one, README "Changing daemon options") must
        // exist for it to be managed.
        obs.runtime_missing = self
            .runc
            .as_ref()
            .map(|r| &r.args.binary)
            .filter(|binary| !binary.is_file())
            .map(|binary| binary.display().to_string());
        obs
    }

    fn release(&self, id: &str) -> RuntimeFuture<()> {
        Box::pin(super::release_in_background(
            self.runc.clone(),
            self.layout.clone(),
            id.to_string(),
        ))
    }

    fn release_blocking(&self, id: &str) {
        super::release(self.runc.as_ref(), &self.layout, id);
    }

    fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        Ok(super::remove(self.runc.as_ref(), &self.layout, id)?)
    }

    fn exec_env(
        &self,
        id: &str,
        _: &ContainerSpec,
        env: Vec<String>,
        user: &str,
    ) -> Result<(Vec<String>, Option<ExecUser>), ExecRuleError> {
        let rootfs = super::bundle_dir(&self.layout, id).join("rootfs");
        exec::runc_env(&rootfs, env, user)
    }

    fn exec_command(&self, spec: &ExecSpec<'_>) -> Result<ExecCommand, ExecRuleError> {
        exec::runc_command(self.runc.as_ref(), spec)
    }

    fn open_root(
        &self,
        id: &str,
        spec: &ContainerSpec,
        running: Option<&ProcessIdentity>,
        view: RootView,
    ) -> RuntimeFuture<Result<OpenedRoot, ArchiveError>> {
        let (layout, id, image_id) = (self.layout.clone(), id.to_string(), spec.image_id.clone());
        let running = running.cloned();
        Box::pin(async move {
            let step = move || super::archive::open_root(&layout, &id, &image_id, running, view);
            tokio::task::spawn_blocking(step)
                .await
                .map_err(|e| ArchiveError::Root {
                    reason: e.to_string(),
                })?
        })
    }

    fn close_root(&self, id: &str, root: OpenedRoot) -> RuntimeFuture<()> {
        let id = id.to_string();
        Box::pin(async move {
            let done = tokio::task::spawn_blocking(move || super::archive::close_root(&id, root));
            if let Err(e) = done.await {
                tracing::warn!(error = %e, "the unmount after a copy did not finish");
            }
        })
    }

    fn changes(
        &self,
        id: &str,
        spec: &ContainerSpec,
    ) -> RuntimeFuture<Result<Vec<Change>, ArchiveError>> {
        let (layout, id, image_id) = (self.layout.clone(), id.to_string(), spec.image_id.clone());
        Box::pin(async move {
            let step = move || {
                let overlay =
                    super::overlay_of(&layout, &ImageDirs::new(&layout.root), &id, &image_id);
                crate::archive::changes::changes(&overlay.upper, &overlay.lowers)
            };
            tokio::task::spawn_blocking(step)
                .await
                .map_err(|e| ArchiveError::Root {
                    reason: e.to_string(),
                })?
        })
    }
}
