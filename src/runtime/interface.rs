//! The runtime interface: one [`Runtime`] trait object per container kind, chosen once per
//! container from its spec by [`Runtimes::for_spec`], the only place that turns a
//! [`RuntimeKind`] into behaviour. The actors hold `Arc<dyn Runtime>` and never ask which
//! kind they run; tests give them a fake (`runtime::fake`, test builds only).
//!
//! Methods that may block return a boxed future (a child process, or a step on the blocking
//! pool) so the actors' shared thread never waits on them; the synchronous ones are cheap
//! or documented as blocking (called from a blocking context).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use moor_state::ports::PortMapping;
use moor_state::reconcile::{Liveness, Observation};
use moor_state::record::RuntimeKind;
use moor_state::resources::ResourceUpdate;
use moor_state::{ContainerSpec, ProcessIdentity};

use super::exec::{ExecCommand, ExecRuleError, ExecSpec};
use super::freeze::FreezeError;
use super::stats::{Sample, StatsError};
use super::{RuntimeError, StartOutcome};
use crate::archive::changes::Change;
use crate::archive::{ArchiveError, OpenedRoot, RootView};
use crate::identity::{IdentityError, PidFd};
use crate::image::user::{ExecUser, UserError};

/// A future a runtime hands to an actor: owns what it needs, runs off the actor thread.
pub type RuntimeFuture<T> = BoxFuture<'static, T>;

/// Where a container's output goes and how its log rotates (from its log options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    /// The json-file log.
    pub path: PathBuf,
    /// `max-size` in bytes.
    pub max_size: Option<u64>,
    /// `max-file`.
    pub max_file: u32,
}

/// A process the daemon may signal and wait for, opened after its identity was checked:
/// a pidfd for the real runtimes, so a reused pid is never signalled.
pub trait ProcessHandle: Send + fmt::Debug {
    /// Sends `signal` to the process.
    fn signal(&self, signal: i32) -> Result<(), IdentityError>;
    /// Resolves when the process has ended (an error says it could not be waited for,
    /// which is not an end).
    fn exited(self: Box<Self>) -> RuntimeFuture<io::Result<()>>;
}

impl ProcessHandle for PidFd {
    fn signal(&self, signal: i32) -> Result<(), IdentityError> {
        self.send_signal(signal)
    }

    fn exited(self: Box<Self>) -> RuntimeFuture<io::Result<()>> {
        Box::pin(crate::runtime::pidwatch::exited(*self))
    }
}

/// Everything a runtime does for one container: what the actors, the reconciler and the
/// exec code call, whatever the container's kind.
pub trait Runtime: Send + Sync + fmt::Debug {
    /// Checks, at create, what this runtime finds out only at start (the image's user).
    /// Blocking (reads the image's files).
    fn check_create(&self, spec: &ContainerSpec) -> Result<(), UserError>;

    /// Prepares the container (bundle, rootfs mount, network with `ports` published) and
    /// starts it through its shim; the outcome is what the shim reported.
    fn start(
        &self,
        id: &str,
        spec: &ContainerSpec,
        log: LogTarget,
        ports: &[PortMapping],
    ) -> RuntimeFuture<Result<StartOutcome, RuntimeError>>;

    /// Freezes the container whose init is `process`.
    fn pause(&self, id: &str, process: &ProcessIdentity) -> RuntimeFuture<Result<(), FreezeError>>;

    /// Thaws it.
    fn resume(&self, id: &str, process: &ProcessIdentity)
        -> RuntimeFuture<Result<(), FreezeError>>;

    /// Changes the cgroup settings of the live container `id` to those of `spec` that
    /// `changed` gives (`docker update`). The default: a runtime without a cgroup refuses.
    fn update(
        &self,
        id: &str,
        spec: &ContainerSpec,
        changed: &ResourceUpdate,
    ) -> RuntimeFuture<Result<(), RuntimeError>> {
        let _ = (id, spec, changed);
        let name = self.name();
        Box::pin(async move { Err(RuntimeError::UpdateUnsupported(name)) })
    }

    /// The runtime's name, as clients give it (`runc`, `process`).
    fn name(&self) -> &'static str;

    /// Whether the runtime itself reports the container frozen (`None`: it keeps no such
    /// state, or cannot tell). Used at daemon start to repair a half-done pause/unpause.
    fn frozen(&self, id: &str) -> RuntimeFuture<Option<bool>>;

    /// Opens a handle on a recorded process (shim or container init), verified by identity.
    fn open(&self, process: &ProcessIdentity) -> Result<Box<dyn ProcessHandle>, IdentityError> {
        let fd = PidFd::open_verified(&super::from_identity(process))?;
        Ok(Box::new(fd))
    }

    /// Whether a recorded process is alive, gone, or its pid now names another process.
    fn liveness(&self, process: &ProcessIdentity) -> Liveness {
        super::liveness(process)
    }

    /// What the running container whose init is `process` uses now (CPU, memory, tasks,
    /// network devices). Runs off the actor thread.
    fn stats(
        &self,
        id: &str,
        process: &ProcessIdentity,
    ) -> RuntimeFuture<Result<Sample, StatsError>>;

    /// What the host shows for the container's run (files, identities, the runtime's own
    /// state): the reconciler's input. Blocking.
    fn observe(&self, id: &str) -> Observation;

    /// The program this runtime runs containers with, for `/info`'s `Runtimes` (None: the
    /// runtime is not available to this daemon).
    fn binary(&self) -> Option<std::path::PathBuf>;

    /// After the container ended: the runtime's state and mounts go (idempotent; failures
    /// logged, retried at removal). Runs off the actor thread.
    fn release(&self, id: &str) -> RuntimeFuture<()>;

    /// [`Runtime::release`] in a blocking context (the reconciler, a clean-up thread).
    fn release_blocking(&self, id: &str);

    /// At removal: [`Runtime::release_blocking`], then the runtime's files of the container.
    /// Blocking.
    fn remove(&self, id: &str) -> Result<(), RuntimeError>;

    /// The environment and user an exec gets in this container: `env` and `user` as the
    /// client gave them.
    fn exec_env(
        &self,
        id: &str,
        spec: &ContainerSpec,
        env: Vec<String>,
        user: &str,
    ) -> Result<(Vec<String>, Option<ExecUser>), ExecRuleError>;

    /// The command that runs an exec in the container.
    fn exec_command(&self, exec: &ExecSpec<'_>) -> Result<ExecCommand, ExecRuleError>;

    /// The container's root made reachable on the host (`docker cp`, `export`): a running
    /// container's (`running`: its init) as `view` asks, a stopped one's mounted for the
    /// operation. A runtime without a filesystem of its own refuses. Off the actor thread.
    fn open_root(
        &self,
        id: &str,
        spec: &ContainerSpec,
        running: Option<&ProcessIdentity>,
        view: RootView,
    ) -> RuntimeFuture<Result<OpenedRoot, ArchiveError>>;

    /// After the operation: what [`Runtime::open_root`] mounted is unmounted.
    fn close_root(&self, id: &str, root: OpenedRoot) -> RuntimeFuture<()>;

    /// The container's changes to its image's files (`docker diff`). Off the actor thread.
    fn changes(
        &self,
        id: &str,
        spec: &ContainerSpec,
    ) -> RuntimeFuture<Result<Vec<Change>, ArchiveError>>;
}

/// What a runtime kind accepts and shows, known without a daemon (create checks, inspect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The name clients use (`HostConfig.Runtime`, inspect).
    pub name: &'static str,
    /// It runs an imported image (else only the host's own filesystem).
    pub runs_images: bool,
    /// It can apply resource limits and a read-only rootfs.
    pub limits: bool,
    /// It gives the container its own network setting (else the host's network).
    pub own_network: bool,
    /// It gives the container private pid, ipc and uts namespaces unless `host` is asked
    /// (an ipc mode `private` included); else every namespace is the host's.
    pub own_namespaces: bool,
    /// It confines the container: capabilities (CapAdd, CapDrop, Privileged), masked and
    /// read-only paths, a `/dev/shm` of its own.
    pub confined: bool,
}

impl Profile {
    /// The network mode recorded at create from the mode the client asked for.
    pub fn network_mode_at_create(&self, asked: &str) -> String {
        match self.own_network {
            true => asked.into(),
            false => String::new(),
        }
    }

    /// The network mode inspect shows for a container of this kind.
    pub fn network_mode(&self, spec: &ContainerSpec) -> String {
        match (self.own_network, spec.network_mode.as_str()) {
            (false, _) => "host".into(),
            (true, "") => "none".into(),
            (true, mode) => mode.into(),
        }
    }
}

/// Every runtime kind, each at its [`kind_slot`]: for what is kept per kind.
pub const KINDS: [RuntimeKind; 2] = [RuntimeKind::Process, RuntimeKind::Runc];

/// Where `kind` is in [`KINDS`] (a new kind fails to compile here until it has a slot).
pub fn kind_slot(kind: RuntimeKind) -> usize {
    match kind {
        RuntimeKind::Process => 0,
        RuntimeKind::Runc => 1,
    }
}

/// The profile of a kind.
pub fn profile(kind: RuntimeKind) -> Profile {
    match kind {
        RuntimeKind::Process => Profile {
            name: "process",
            runs_images: false,
            limits: false,
            own_network: false,
            own_namespaces: false,
            confined: false,
        },
        RuntimeKind::Runc => Profile {
            name: "runc",
            runs_images: true,
            limits: true,
            own_network: true,
            own_namespaces: true,
            confined: true,
        },
    }
}

/// The kind a client names (`process`, `runc`); `None` for a name moor does not know.
pub fn kind_named(name: &str) -> Option<RuntimeKind> {
    [RuntimeKind::Process, RuntimeKind::Runc]
        .into_iter()
        .find(|k| profile(*k).name == name)
}

/// The kind of a container created without a runtime for the host image.
pub const HOST_IMAGE_KIND: RuntimeKind = RuntimeKind::Process;

/// The runtimes of a daemon, one per kind, and the kind new containers get by default.
#[derive(Debug, Clone)]
pub struct Runtimes {
    /// The process runtime.
    process: Arc<dyn Runtime>,
    /// The runc runtime (one that refuses to start when the daemon has no runc).
    runc: Arc<dyn Runtime>,
    /// The kind of containers that do not name one.
    pub default_kind: RuntimeKind,
    /// What the daemon's own runtimes were made of, to make those of a container recorded
    /// under other settings ([`Runtimes::for_record`]); None for runtimes given whole
    /// (in-process tests).
    origin: Option<Origin>,
}

/// The layout and runc a daemon's runtimes were made with.
#[derive(Debug, Clone)]
struct Origin {
    /// The daemon's paths.
    layout: crate::host::layout::Layout,
    /// Its runc, when it has one.
    runc: Option<super::runc::Runc>,
}

impl Runtimes {
    /// Every kind's name and binary (when available), for `/info`.
    pub fn described(&self) -> Vec<(&'static str, std::path::PathBuf)> {
        [RuntimeKind::Process, RuntimeKind::Runc]
            .into_iter()
            .filter_map(|k| Some((profile(k).name, self.for_kind(k).binary()?)))
            .collect()
    }
}

impl Runtimes {
    /// The runtimes of a daemon.
    pub fn new(
        process: Arc<dyn Runtime>,
        runc: Arc<dyn Runtime>,
        default_kind: RuntimeKind,
    ) -> Self {
        Runtimes {
            process,
            runc,
            default_kind,
            origin: None,
        }
    }

    /// The runtime binary a container of `kind` started now is recorded under (None: its
    /// runtime calls no binary, as the process runtime).
    pub fn recorded_path(&self, kind: RuntimeKind) -> Option<PathBuf> {
        match kind {
            RuntimeKind::Process => None,
            RuntimeKind::Runc => self.runc.binary(),
        }
    }

    /// The cgroup parent of containers of `kind` (empty: the runtime makes no cgroup).
    pub fn cgroup_parent(kind: RuntimeKind) -> String {
        match kind {
            RuntimeKind::Process => String::new(),
            RuntimeKind::Runc => super::runc::CGROUP_PARENT.into(),
        }
    }

    /// The runtime of the container `rec`, under the settings it was started with: its
    /// recorded run directory and runtime binary when they differ from the daemon's (README
    /// "Changing daemon options"), else the daemon's own runtime of its kind.
    pub fn for_record(&self, rec: &moor_state::ContainerRecord) -> Arc<dyn Runtime> {
        let kind = rec.spec.runtime;
        let (Some(origin), Some(recorded)) = (&self.origin, &rec.settings) else {
            return self.for_kind(kind);
        };
        let run_dir = PathBuf::from(&recorded.run_dir);
        let binary = recorded.runtime_path.as_ref().map(PathBuf::from);
        if run_dir == origin.layout.run_dir && binary == self.recorded_path(kind) {
            return self.for_kind(kind);
        }
        let layout = crate::host::layout::Layout {
            run_dir,
            ..origin.layout.clone()
        };
        match kind {
            RuntimeKind::Process => Arc::new(super::process::ProcessRuntime::new(layout)),
            RuntimeKind::Runc => {
                let runc = binary.map(|binary| {
                    let mut args = match &origin.runc {
                        Some(r) => r.args.clone(),
                        None => super::runc::RuncArgs::new(binary.clone(), PathBuf::new()),
                    };
                    args.binary = binary;
                    args.root = layout.run_dir.join("runc");
                    super::runc::Runc::new(args)
                });
                Arc::new(super::runc::runtime::RuncRuntime::new(runc, layout))
            }
        }
    }

    /// The runtime of containers of `kind`: the single place a kind becomes behaviour.
    pub fn for_kind(&self, kind: RuntimeKind) -> Arc<dyn Runtime> {
        match kind {
            RuntimeKind::Process => self.process.clone(),
            RuntimeKind::Runc => self.runc.clone(),
        }
    }

    /// The runtime of the container `spec` describes.
    pub fn for_spec(&self, spec: &ContainerSpec) -> Arc<dyn Runtime> {
        self.for_kind(spec.runtime)
    }

    /// Every runtime, for clean-up of a container whose spec is gone (its kind unknown).
    pub fn all(&self) -> [Arc<dyn Runtime>; 2] {
        [self.process.clone(), self.runc.clone()]
    }
}

/// Why the daemon cannot have the default runtime it was asked for.
#[derive(Debug, thiserror::Error)]
pub enum DefaultRuntimeError {
    /// A runtime this build cannot run containers with.
    #[error("unknown runtime {name:?}: use \"runc\" or \"process\"")]
    Unsupported {
        /// The runtime asked for.
        name: String,
    },
    /// runc asked for by a user who is not root.
    #[error("the runc runtime needs root; run as root or use --runtime process")]
    RuncNeedsRoot,
    /// runc is the default runtime but its binary is missing.
    #[error(
        "runc not found ({where_}): install it (apt-get install runc) or use --runtime process"
    )]
    RuncMissing {
        /// Where it was looked for.
        where_: String,
    },
}

/// The default kind and runc: root gets runc when it is found; runc asked for without
/// root, or asked for and missing, is an error at start, not at the first run.
pub fn choose_default(
    asked: Option<&str>,
    config: &crate::config::DaemonConfig,
    run_dir: &std::path::Path,
    is_root: bool,
) -> Result<(RuntimeKind, Option<super::runc::Runc>), DefaultRuntimeError> {
    use super::runc::{self, Runc};
    let binary = runc::find_binary(config).filter(|p| p.is_file());
    let runc = binary
        .filter(|_| is_root)
        .map(|binary| Runc::new(runc::args_from_config(config, binary, run_dir.join("runc"))));
    let kind = match asked.map(|name| (name, kind_named(name))) {
        Some((_, Some(RuntimeKind::Process))) => RuntimeKind::Process,
        Some((_, Some(RuntimeKind::Runc))) if !is_root => {
            return Err(DefaultRuntimeError::RuncNeedsRoot)
        }
        Some((_, Some(RuntimeKind::Runc))) if runc.is_none() => {
            return Err(DefaultRuntimeError::RuncMissing {
                where_: match config.runtimes.get("runc") {
                    Some(e) => format!("daemon.json runtimes: {}", e.path.display()),
                    None => "not on PATH".into(),
                },
            })
        }
        Some((_, Some(RuntimeKind::Runc))) => RuntimeKind::Runc,
        Some((name, None)) => {
            return Err(DefaultRuntimeError::Unsupported { name: name.into() });
        }
        None if runc.is_some() => RuntimeKind::Runc,
        None => RuntimeKind::Process,
    };
    Ok((kind, runc))
}

/// The runtimes of a daemon whose paths are `layout`, with runc when it has one.
pub fn daemon_runtimes(
    layout: &crate::host::layout::Layout,
    runc: Option<super::runc::Runc>,
    default_kind: RuntimeKind,
) -> Runtimes {
    let mut runtimes = Runtimes::new(
        Arc::new(super::process::ProcessRuntime::new(layout.clone())),
        Arc::new(super::runc::runtime::RuncRuntime::new(
            runc.clone(),
            layout.clone(),
        )),
        default_kind,
    );
    runtimes.origin = Some(Origin {
        layout: layout.clone(),
        runc,
    });
    runtimes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_and_profiled() {
        assert_eq!(kind_named("runc"), Some(RuntimeKind::Runc));
        assert_eq!(kind_named("process"), Some(RuntimeKind::Process));
        assert_eq!(kind_named("kata"), None);
        let mut spec = ContainerSpec::default();
        assert_eq!(profile(RuntimeKind::Process).network_mode(&spec), "host");
        assert_eq!(profile(RuntimeKind::Runc).network_mode(&spec), "none");
        spec.network_mode = "host".into();
        assert_eq!(profile(RuntimeKind::Runc).network_mode(&spec), "host");
        assert_eq!(
            profile(RuntimeKind::Process).network_mode_at_create("host"),
            ""
        );
    }
}
