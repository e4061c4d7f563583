//! The runc runtime behind the [`Runtime`] trait: an OCI bundle on an overlay of the
//! image's layers, started by the shim's `runc run`, frozen with `runc pause`, cleaned up
//! with `runc delete`. A daemon without runc (not root, or runc missing) still has one:
//! it refuses to start, freeze or exec, and its clean-up only unmounts.

use moor_state::ports::PortMapping;
use moor_state::reconcile::{Observation, RuntimeState};
use moor_state::record::RuntimeKind;
use moor_state::{ContainerSpec, ProcessIdentity};

use super::Runc;
use crate::host::layout::Layout;
use crate::image::user::{ExecUser, UserError};
use crate::image::ImageDirs;
use crate::runtime::exec::{self, ExecCommand, ExecRuleError, ExecSpec};
use crate::runtime::freeze::{self, FreezeError};
use crate::runtime::interface::{LogTarget, Runtime, RuntimeFuture};
use crate::runtime::stats::{self, Sample, StatsError};
use crate::runtime::{blocking, RuntimeError, StartOutcome};

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
            let attached = crate::network::attach(&layout.run_dir, &dir, id, hostname, ep, extras);
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

impl Runtime for RuncRuntime {
    fn binary(&self) -> Option<std::path::PathBuf> {
        self.runc.as_ref().map(|r| r.args.binary.clone())
    }

    fn check_create(&self, spec: &ContainerSpec) -> Result<(), UserError> {
        if spec.user.is_empty() {
            return Ok(());
        }
        // Docker finds out at start; a create that cannot start is refused at once.
        let lowers = ImageDirs::new(&self.layout.root).lowers(&spec.image_id);
        crate::image::user::resolve_layers(&lowers, &spec.user).map(|_| ())
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
        crate::runtime::observe::observe(&self.layout, id)
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
}
