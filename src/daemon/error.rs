//! Errors of the daemon's actors; the API maps them to Docker's status codes.

use moor_state::store::StoreError;
use moor_state::TransitionError;
use thiserror::Error;

use crate::runtime::RuntimeError;

/// Why a container operation failed.
#[derive(Debug, Error)]
pub enum ContainerError {
    /// No container has this id, name or prefix.
    #[error("No such container: {0}")]
    NotFound(String),
    /// An id prefix matches several containers.
    #[error("multiple containers match the prefix {0:?}: use more characters")]
    Ambiguous(String),
    /// The name is taken.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse {
        /// The name.
        name: String,
        /// The holder.
        id: String,
    },
    /// The name is not a valid container name.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// The request is not valid (bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// Its published ports cannot be had (Docker's words, and a 500 as Docker's).
    #[error("driver failed programming external connectivity on endpoint {name}")]
    Ports {
        /// The container's name.
        name: String,
        /// Why.
        #[source]
        source: crate::network::ports::PortError,
    },
    /// The state machine refused the request.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A write of the record was committed but its flush failed.
    #[error(transparent)]
    Flush(#[from] crate::daemon::durable::FlushError),
    /// Starting or reading the shim failed.
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
    /// The process could not be started (exit code 126/127/128 recorded).
    #[error("failed to start container: {error}")]
    StartFailed {
        /// Docker's code.
        code: i32,
        /// Why.
        error: String,
    },
    /// `moor admin adopt`/`kill-orphan` of a container that cannot be handled so.
    #[error("container {id}: {why}")]
    OrphanRefused {
        /// The container.
        id: String,
        /// Why (not an orphan, its processes are gone...).
        why: String,
    },
    /// The container could not be frozen or thawed.
    #[error("cannot {action} container {id}")]
    Freeze {
        /// `pause` or `unpause`.
        action: &'static str,
        /// The container.
        id: String,
        /// Why.
        #[source]
        source: crate::runtime::freeze::FreezeError,
    },
    /// A signal could not be delivered.
    #[error("cannot signal container {id}: {source}")]
    Signal {
        /// The container.
        id: String,
        /// Why.
        #[source]
        source: crate::identity::IdentityError,
    },
    /// A file of the container could not be written or removed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The container's spec file could not be written.
    #[error("write the spec file")]
    SpecFile(#[source] crate::host::atomic::ExitFileError),
    /// An exec instance could not be created or started.
    #[error(transparent)]
    Exec(#[from] crate::daemon::exec::ExecError),
    /// An image operation failed, or a create's image is gone.
    #[error(transparent)]
    Image(#[from] crate::daemon::image::ImageOwnerError),
    /// No volume has this name.
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// A network the daemon does not have (Docker's message).
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// A volume in use by containers cannot be removed (Docker's text).
    #[error("remove {name}: volume is in use - [{}]", .ids.join(", "))]
    VolumeInUse {
        /// The volume.
        name: String,
        /// The containers that use it.
        ids: Vec<String>,
    },
    /// A network of that name exists (Docker's text).
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    /// A network some container is on cannot be removed (Docker's text, with their names).
    #[error("error while removing network: network {name} has active endpoints ({})", .containers.join(", "))]
    NetworkInUse {
        /// The network.
        name: String,
        /// The containers on it.
        containers: Vec<String>,
    },
    /// A host step of a user network failed (its bridge, the host's routes).
    #[error("cannot {what} network {name}")]
    Bridge {
        /// What was being done.
        what: &'static str,
        /// The network.
        name: String,
        /// Why (boxed: the error stays small).
        #[source]
        source: Box<crate::network::NetworkError>,
    },
    /// `--network container:NAME` whose container does not run (Docker's message).
    #[error("cannot join network of a non running container: {0}")]
    JoinNotRunning(String),
    /// The networks tree failed.
    #[error("network store")]
    NetworkStore(#[from] moor_state::network::NetworkStoreError),
    /// The volumes tree failed.
    #[error("volume store: {0}")]
    VolumeStore(#[from] moor_state::volume::VolumeStoreError),
    /// The actor is gone (daemon shutting down).
    #[error("the daemon is shutting down")]
    Mailbox(#[from] actix::MailboxError),
}
