//! Messages between the API, the Supervisor and the Container actors: commands are
//! imperative, reports past tense.

use actix::prelude::*;
use moor_state::{ContainerRecord, ContainerSpec};
use tokio::sync::oneshot;

use crate::daemon::container::ContainerActor;
use crate::daemon::error::ContainerError;

/// Create a container (Supervisor).
#[derive(Message)]
#[rtype(result = "Result<String, ContainerError>")]
pub struct CreateContainer {
    /// The requested name, or `None` for a generated one.
    pub name: Option<String>,
    /// What to run.
    pub spec: ContainerSpec,
}

/// Find a container by full id, name, or unique id prefix (Supervisor).
#[derive(Message)]
#[rtype(result = "Result<(String, Addr<ContainerActor>), ContainerError>")]
pub struct ResolveContainer(pub String);

/// All records, sorted by creation time then id (Supervisor). Shared: the same list serves
/// every request until the store changes.
#[derive(Message)]
#[rtype(result = "Result<std::sync::Arc<Vec<ContainerRecord>>, ContainerError>")]
pub struct ListContainers;

/// Rename a container (Supervisor).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct RenameContainer {
    /// Name or id.
    pub target: String,
    /// The new name.
    pub new_name: String,
}

/// A container actor finished removing its container (Supervisor).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ContainerRemoved {
    /// Its id.
    pub id: String,
    /// The volumes of its mounts to remove if anonymous and unused (`--rm` does so, as
    /// Docker's; empty for a plain `rm`, whose `-v` the API handles).
    pub volumes: Vec<String>,
}

/// Stop every container (live-restore off, or the host shutting down) or none (on), then
/// answer (Supervisor).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutDown {
    /// Whether containers keep running.
    pub live_restore: bool,
    /// The host is going down: every container stops (its own stop signal and timeout),
    /// whatever live-restore says, and is started at the next boot as its policy asks.
    pub host_shutdown: bool,
    /// Upper bound for each container's stop timeout.
    pub timeout_secs: Option<u32>,
}

/// SIGKILL every running container now (a second interrupt during shutdown) (Supervisor).
#[derive(Message)]
#[rtype(result = "()")]
pub struct KillEverything;

/// Counts for the start-up summary and STATUS (Supervisor).
#[derive(Message)]
#[rtype(result = "Summary")]
pub struct Summarize;

/// Container counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, MessageResponse)]
pub struct Summary {
    /// Running (or stopping).
    pub running: usize,
    /// Exited or created.
    pub stopped: usize,
    /// Orphaned.
    pub orphaned: usize,
    /// Paused (Docker counts them apart from running: `ContainersPaused`).
    pub paused: usize,
}

/// Start the container (Container).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct StartContainer;

/// Stop it: its stop signal, then SIGKILL after the timeout; answers once it exited (Container).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct StopContainer {
    /// Seconds before SIGKILL; `None` = the container's own stop timeout.
    pub timeout_secs: Option<u32>,
    /// Who asks: a user's stop holds restart policies back, the daemon's shutdown does not.
    pub by: StopBy,
}

/// Who asked for a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopBy {
    /// A client (`stop`, `restart`): no policy restarts it until it is started again.
    User,
    /// The daemon shutting down without live-restore: restarted at the next daemon start.
    DaemonShutdown,
    /// The host shutting down: as [`StopBy::DaemonShutdown`], with a `host-shutdown` event.
    HostShutdown,
}

/// Start it again because its restart policy says so (Container, internal).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RestartByPolicy;

/// Send a signal to its process (Container).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct KillContainer {
    /// The signal number.
    pub signal: i32,
}

/// Freeze its processes (Container): the cgroup freezer for runc, SIGSTOP for a process.
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct PauseContainer;

/// Change its resources and restart policy (Container), `docker update`: recorded, and
/// applied at once when it runs.
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct UpdateContainer(pub moor_state::resources::ResourceUpdate);

/// Thaw its processes (Container).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct UnpauseContainer;

/// Remove it (Container).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct RemoveContainer {
    /// Kill it first when it runs.
    pub force: bool,
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Until it is not running (at once if it is not).
    NotRunning,
    /// Until its next exit.
    NextExit,
    /// Until it is removed.
    Removed,
}

/// The end of a wait: the exit code, or why waiting failed.
pub type WaitOutcome = Result<i64, String>;

/// Register a waiter (Container): answers at once with the receiver.
#[derive(Message)]
#[rtype(result = "oneshot::Receiver<WaitOutcome>")]
pub struct WaitContainer(pub WaitCondition);

/// What the container uses now (Container): None when it does not run.
#[derive(Message)]
#[rtype(
    result = "Option<Result<crate::runtime::stats::Sample, crate::runtime::stats::StatsError>>"
)]
pub struct SampleStats;

/// The current record (Container).
#[derive(Message)]
#[rtype(result = "ContainerRecord")]
pub struct InspectContainer;

/// The watched process ended, or may have: the shim (its pidfd became readable, or the
/// liveness poll found it gone), or an orphan's process (Container, internal). The actor
/// observes and classifies before it records anything.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShimExited;

/// `moor admin adopt` while the daemon runs: manage an orphan again (Container).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct AdoptOrphan;

/// `moor admin kill-orphan` while the daemon runs: SIGKILL through a verified pidfd,
/// answered once the exit is recorded (Container).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct KillOrphan;

/// Create an exec instance in this container (Container): checked against its state and
/// registered in one step, in order with its other operations.
#[derive(Message)]
#[rtype(result = "Result<String, ContainerError>")]
pub struct CreateExec(pub crate::daemon::exec::ExecRequest);

/// Start a created exec instance in this container (Container): the state check and the
/// spawn are one step, so an exec never starts in a container being paused or stopped.
#[derive(Message)]
#[rtype(result = "Result<crate::daemon::exec::ExecRun, ContainerError>")]
pub struct StartExec {
    /// The exec instance.
    pub exec_id: String,
    /// The client streams (else output is dropped and stdin is /dev/null).
    pub attached: bool,
}

// Images: the Supervisor owns them (src/daemon/image.rs). The API sends these; it never
// writes the images tree or their records itself.

/// What an import or a pull hands to the images' owner once its slow part is done.
#[derive(Debug)]
pub enum ImageFiles {
    /// An import unpacked into its work directory (moved into place by the commit).
    Unpacked(crate::image::Unpacked),
    /// A pull whose layers are unpacked: the image's directory (its layer list) is put in
    /// place again by the commit if a removal took it meanwhile.
    Layers,
}

/// Record an imported or pulled image, and the name it gets (Supervisor): the files go
/// into place and the record is written in one step, in order with removals and creates.
#[derive(Message)]
#[rtype(result = "Result<crate::daemon::image::Committed, crate::daemon::image::ImageOwnerError>")]
pub struct CommitImage {
    /// The new image's record (an existing one of this id is kept and gets the name).
    pub record: moor_state::image::ImageRecord,
    /// The checked, normalized name, if any.
    pub name: Option<String>,
    /// Its files.
    pub files: ImageFiles,
}

/// Give an image one more name (Supervisor); the image that had it loses it.
#[derive(Message)]
#[rtype(result = "Result<moor_state::image::ImageRecord, crate::daemon::image::ImageOwnerError>")]
pub struct TagImage {
    /// The image: name or id.
    pub image: String,
    /// The checked, normalized new name.
    pub name: String,
}

/// Record that image `id` was pushed as `digest` (`REPO@sha256:...`, a RepoDigest)
/// (Supervisor); refused when the image was removed meanwhile.
#[derive(Message)]
#[rtype(result = "Result<moor_state::image::ImageRecord, crate::daemon::image::ImageOwnerError>")]
pub struct AddRepoDigest {
    /// The image's id.
    pub id: String,
    /// `REPO@sha256:<hex>`.
    pub digest: String,
}

/// Remove an image, or only the name it is asked by when it has others (Supervisor).
/// Refused while a container uses it; a create of a container on it waits for the answer.
#[derive(Message)]
#[rtype(
    result = "Result<crate::daemon::image::ImageRemoved, crate::daemon::image::ImageOwnerError>"
)]
pub struct RemoveImage(pub String);

/// The image a name, `sha256:` id or unique id prefix means, if any (Supervisor).
#[derive(Message)]
#[rtype(
    result = "Result<Option<moor_state::image::ImageRecord>, crate::daemon::image::ImageOwnerError>"
)]
pub struct FindImage(pub String);

/// Remove the images no container uses: the untagged ones, or all with `all` (Supervisor);
/// then every layer no image lists.
#[derive(Message)]
#[rtype(result = "Result<crate::daemon::image::Pruned, crate::daemon::image::ImageOwnerError>")]
pub struct PruneImages {
    /// Docker's `dangling=false`: every unused image, not only the untagged ones.
    pub all: bool,
}

/// Every image, newest first (Supervisor).
#[derive(Message)]
#[rtype(
    result = "Result<Vec<moor_state::image::ImageRecord>, crate::daemon::image::ImageOwnerError>"
)]
pub struct ListImages;

/// Create a volume, or find the one of that name (Supervisor).
#[derive(Message)]
#[rtype(result = "Result<moor_state::volume::VolumeRecord, ContainerError>")]
pub struct CreateVolume {
    /// Its name (None: a generated one).
    pub name: Option<String>,
    /// Labels of a new volume.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Every volume (Supervisor).
#[derive(Message)]
#[rtype(result = "Result<Vec<moor_state::volume::VolumeRecord>, ContainerError>")]
pub struct ListVolumes;

/// One volume by name (Supervisor).
#[derive(Message)]
#[rtype(result = "Result<moor_state::volume::VolumeRecord, ContainerError>")]
pub struct InspectVolume(pub String);

/// Remove a volume: refused while a container uses it, unless `force` (Docker's `force`
/// removes an unused volume's record even when its data cannot be, and ignores a missing one).
#[derive(Message)]
#[rtype(result = "Result<(), ContainerError>")]
pub struct RemoveVolume {
    /// Its name.
    pub name: String,
    /// Docker's `force`.
    pub force: bool,
}

/// Remove the volumes no container uses: anonymous ones, or every one with `all` (Supervisor).
/// The names removed and the bytes freed.
#[derive(Message)]
#[rtype(result = "Result<(Vec<String>, u64), ContainerError>")]
pub struct PruneVolumes {
    /// Named volumes too (Docker's `all=true` filter).
    pub all: bool,
}

/// Remove the anonymous volumes of a removed container's spec (`rm -v`) that nothing else
/// uses (Supervisor).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveAnonymousVolumes(pub Vec<String>);

/// `docker cp` and `docker export`: the container's root made reachable on the host, as
/// `0` asks (Container). A stopped container's is mounted for the lease's life, and its
/// actor takes no other message until the lease is dropped.
#[derive(Message)]
#[rtype(result = "Result<RootLease, crate::archive::ArchiveError>")]
pub struct OpenRoot(pub crate::archive::RootView);

/// A container's root for one archive operation; dropping it ends the operation.
#[derive(Debug)]
pub struct RootLease {
    /// Where the host sees the container's root.
    pub path: std::path::PathBuf,
    /// The container's user (`copyUIDGID` resolves it in the root).
    pub user: String,
    /// Dropped with the lease: tells the actor the operation is over (None: it does not
    /// wait for it, the container runs).
    pub release: Option<oneshot::Sender<()>>,
}

/// `docker diff`: the container's changes to its image's files (Container).
#[derive(Message)]
#[rtype(result = "Result<Vec<crate::archive::changes::Change>, crate::archive::ArchiveError>")]
pub struct ContainerChanges;
