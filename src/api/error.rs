//! `ApiError`: the one place errors become Docker's status codes and `{"message": ...}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use moor_state::TransitionError;
use thiserror::Error;

use crate::api::types::ErrorBody;
use crate::daemon::error::ContainerError;

/// An API failure, rendered as Docker renders it.
#[derive(Debug, Error)]
pub enum ApiError {
    /// Anything the daemon's actors reported.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The request body is not valid JSON of the expected shape.
    #[error("invalid JSON")]
    Json(#[from] serde_json::Error),
    /// A query parameter has a value that cannot be used.
    #[error("invalid value {value:?} for query parameter {name:?}")]
    Query {
        /// The parameter.
        name: &'static str,
        /// The value given.
        value: String,
    },
    /// `kill` or `stop` with a signal that does not exist.
    #[error("Invalid signal: {0}")]
    InvalidSignal(String),
    /// A `detachKeys` value that is not a key sequence (Docker's text).
    #[error("Invalid detach keys ({0}) provided")]
    DetachKeys(String),
    /// A resize of a container without a terminal.
    #[error("Container {id} has no TTY to resize (it was not created with Tty)")]
    NoTty {
        /// Its id.
        id: String,
    },
    /// Neither Cmd nor Entrypoint.
    #[error("No command specified")]
    NoCommand,
    /// `-u` names a user or group the image does not have (or its files are unreadable).
    #[error(transparent)]
    User(#[from] crate::image::user::UserError),
    /// An import's `changes` line that cannot be applied.
    #[error(transparent)]
    Change(#[from] crate::image::changes::ChangeError),
    /// An image moor does not have.
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// A network moor does not have (Docker's message).
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// An image name Docker would refuse.
    #[error(transparent)]
    Reference(#[from] moor_state::image::ReferenceError),
    /// `docker pull` (`fromImage`) failed; 404 for an image the registry does not have.
    #[error("{}", crate::host::chain(.0))]
    Pull(#[from] crate::image::registry::PullError),
    /// `docker push` failed.
    #[error("{}", crate::host::chain(.0))]
    Push(#[from] crate::image::push::PushError),
    /// `docker login` (`POST /auth`) failed; 401 for refused credentials.
    #[error(transparent)]
    Login(#[from] crate::image::login::LoginError),
    /// A create request field refused by the field rule (`api::fields`).
    #[error(transparent)]
    Field(#[from] crate::api::fields::FieldError),
    /// A bind mount, volume or tmpfs moor cannot take.
    #[error(transparent)]
    Mount(#[from] crate::api::mounts::MountError),
    /// `docker cp`, `export` or `diff` failed.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// A container's use of the host could not be read.
    #[error("cannot read the container's stats")]
    Stats(#[from] crate::runtime::stats::StatsError),
    /// A new binary refused by the upgrade's check.
    #[error("upgrade refused")]
    Upgrade(#[from] crate::daemon::upgrade::UpgradeError),
    /// `one-shot` asked of a streamed stats answer (it only applies to a single one).
    #[error("one-shot applies only to stats with stream=false")]
    OneShotStream,
    /// A create option moor does not implement yet.
    #[error("{option} is not supported by moor yet")]
    Unsupported {
        /// The option.
        option: &'static str,
    },
    /// Removal of a running container without force.
    #[error("cannot remove container \"/{name}\": container is running: stop the container before removing or force remove")]
    RemoveRunning {
        /// Its name.
        name: String,
    },
    /// Removal of a container in its restart back-off without force.
    #[error("cannot remove container \"/{name}\": container is restarting: stop the container before removing or force remove")]
    RemoveRestarting {
        /// Its name.
        name: String,
    },
    /// Removal of a paused container without force (Docker's text).
    #[error("cannot remove container \"/{name}\": container is paused and must be unpaused first")]
    RemovePaused {
        /// Its name.
        name: String,
    },
    /// Kill of a container that does not run.
    #[error("Container {id} is not running")]
    NotRunning {
        /// Its id.
        id: String,
    },
    /// Pause of a paused container.
    #[error("Container {id} is already paused")]
    AlreadyPaused {
        /// Its id.
        id: String,
    },
    /// Unpause of a container that is not paused.
    #[error("Container {id} is not paused")]
    NotPaused {
        /// Its id.
        id: String,
    },
    /// A log option refused (Docker's "unknown log opt ..." and bounds).
    #[error("{0}")]
    LogOpt(#[from] crate::config::log_opts::LogOptError),
    /// The image store failed.
    #[error("image store: {0}")]
    ImageStore(#[from] moor_state::image::ImageStoreError),
    /// An import failed (a refused archive is the client's fault).
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// Removal of an image a container uses.
    #[error("conflict: unable to remove image {name} (must force) - image is being used by container {container}")]
    ImageInUse {
        /// The image as named in the request.
        name: String,
        /// The first container using it.
        container: String,
    },
    /// `top` could not run ps.
    #[error("cannot run ps")]
    Ps {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `top`: ps printed no PID column.
    #[error("ps {args}: no PID column in its output")]
    PsOutput {
        /// The ps arguments.
        args: String,
    },
    /// A container's log could not be read.
    #[error(transparent)]
    Logs(#[from] crate::logs::LogsError),
    /// An exec instance that is missing, started twice, or could not start.
    #[error(transparent)]
    Exec(#[from] crate::daemon::exec::ExecError),
    /// `docker exec` without a command.
    #[error("No exec command specified")]
    NoExecCommand,
    /// `docker exec` in a paused container.
    #[error("Container {id} is paused, unpause the container before exec")]
    ExecPaused {
        /// Its id.
        id: String,
    },
    /// Start of a running container, stop of a stopped one: Docker answers 304.
    #[error("not modified")]
    NotModified,
    /// A `since`/`until` parameter that is not a time, or one past the calendar.
    #[error("invalid value for query parameter {name:?}")]
    Time {
        /// The parameter.
        name: &'static str,
        /// Why.
        #[source]
        source: crate::logs::LogsError,
    },
    /// A request body over the limit (`Content-Length` or the bytes sent).
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// A hijacked route's body that ended before its `Content-Length`.
    #[error("the request body ended before its Content-Length ({expected} bytes)")]
    BodyIncomplete {
        /// The announced length.
        expected: usize,
    },
    /// A `Content-Length` header that is not one decimal number.
    #[error("invalid Content-Length {value:?}")]
    ContentLength {
        /// The header's value.
        value: String,
    },
    /// A hijacked route (attach, exec start) sent with a chunked body.
    #[error("{route}: a chunked request body is not supported; send Content-Length")]
    LengthRequired {
        /// The route.
        route: &'static str,
    },
    /// A request head longer than the server reads, or with too many headers.
    #[error("request head too large: at most {max_bytes} bytes and {max_headers} headers")]
    HeadTooLarge {
        /// The byte limit.
        max_bytes: usize,
        /// The header count limit.
        max_headers: usize,
    },
    /// A request head that is not HTTP/1.x.
    #[error("malformed request head")]
    MalformedHead(#[source] httparse::Error),
    /// A request head HTTP/1.x allows but the server refuses (the rules of actix-http).
    #[error("malformed request head: {reason}")]
    BadHead {
        /// What is wrong.
        reason: &'static str,
    },
    /// A request target that is not a valid URI.
    #[error("invalid request target {target:?}")]
    BadTarget {
        /// The target as sent (its first 200 characters).
        target: String,
    },
    /// A commit, save or load failed (a bad archive: 400).
    #[error(transparent)]
    ImageArchive(#[from] crate::image::archive::ArchiveError),
    /// A request handler panicked; the daemon caught it and serves on.
    #[error("internal error: the request handler panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
}

impl ApiError {
    /// The answer's `message`: this error and its causes, each once.
    pub fn message(&self) -> String {
        chain(self)
    }
}

/// `err: source: source...`, skipping a cause whose text is already shown (a layer that
/// prints its source with `{0}` and also exposes it through `source()`).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let cause = e.to_string();
        if !cause.is_empty() && !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = e.source();
    }
    text
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Container(e) => container_status(e),
            ApiError::Json(_)
            | ApiError::Query { .. }
            | ApiError::InvalidSignal(_)
            | ApiError::NoCommand
            | ApiError::NoExecCommand
            | ApiError::User(_)
            | ApiError::Change(_)
            | ApiError::Reference(_)
            | ApiError::OneShotStream
            | ApiError::Upgrade(_)
            | ApiError::DetachKeys(_)
            | ApiError::Time { .. }
            | ApiError::ContentLength { .. }
            | ApiError::BodyIncomplete { .. }
            | ApiError::MalformedHead(_)
            | ApiError::BadHead { .. }
            | ApiError::BadTarget { .. }
            | ApiError::Unsupported { .. }
            | ApiError::Field(_)
            | ApiError::Mount(_)
            | ApiError::LogOpt(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::LengthRequired { .. } => StatusCode::LENGTH_REQUIRED,
            ApiError::HeadTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Panicked { .. } | ApiError::Stats(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NoSuchImage(_) | ApiError::NoSuchNetwork(_) => StatusCode::NOT_FOUND,
            ApiError::Pull(e) if e.is_not_found() => StatusCode::NOT_FOUND,
            ApiError::Pull(e) if e.is_bad_request() => StatusCode::BAD_REQUEST,
            ApiError::Pull(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Push(e) if e.is_bad_request() => StatusCode::BAD_REQUEST,
            ApiError::Push(e) if e.is_not_found() => StatusCode::NOT_FOUND,
            ApiError::Push(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Login(e) if e.is_denied() => StatusCode::UNAUTHORIZED,
            ApiError::Login(e) if e.is_bad_request() => StatusCode::BAD_REQUEST,
            ApiError::Login(_) => StatusCode::BAD_GATEWAY,
            ApiError::ImageInUse { .. } => StatusCode::CONFLICT,
            ApiError::Archive(e) if e.is_not_found() => StatusCode::NOT_FOUND,
            ApiError::Archive(e) if e.is_bad_request() => StatusCode::BAD_REQUEST,
            ApiError::Archive(e) if e.is_conflict() => StatusCode::CONFLICT,
            ApiError::Archive(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Image(e) if e.is_bad_archive() => StatusCode::BAD_REQUEST,
            ApiError::ImageArchive(e) if e.is_bad_archive() => StatusCode::BAD_REQUEST,
            ApiError::ImageArchive(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Image(_) | ApiError::ImageStore(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::RemoveRunning { .. }
            | ApiError::RemoveRestarting { .. }
            | ApiError::RemovePaused { .. }
            | ApiError::NotRunning { .. }
            | ApiError::NoTty { .. }
            | ApiError::AlreadyPaused { .. }
            | ApiError::NotPaused { .. }
            | ApiError::ExecPaused { .. } => StatusCode::CONFLICT,
            ApiError::Exec(e) => exec_status(e),
            ApiError::NotModified => StatusCode::NOT_MODIFIED,
            ApiError::Ps { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::PsOutput { .. } => StatusCode::BAD_REQUEST,
            ApiError::Logs(crate::logs::LogsError::Time { .. })
            | ApiError::Logs(crate::logs::LogsError::TimeRange { .. }) => StatusCode::BAD_REQUEST,
            ApiError::Logs(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status == StatusCode::NOT_MODIFIED {
            return HttpResponse::NotModified().finish();
        }
        let message = self.message();
        if status.is_server_error() && !matches!(self, ApiError::Panicked { .. }) {
            tracing::error!(error = %message, "request failed");
        }
        HttpResponse::build(status)
            .insert_header(("Content-Type", "application/json"))
            .body(serde_json::to_string(&ErrorBody { message }).expect("an error body serializes"))
    }
}

fn exec_status(e: &crate::daemon::exec::ExecError) -> StatusCode {
    use crate::daemon::exec::ExecError;
    match e {
        ExecError::NotFound(_) => StatusCode::NOT_FOUND,
        ExecError::Running(_)
        | ExecError::Ran(_)
        | ExecError::NotRunning(_)
        | ExecError::Paused(_)
        | ExecError::NoTty(_) => StatusCode::CONFLICT,
        ExecError::Terminal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ExecError::UserUnsupported | ExecError::User(_) => StatusCode::BAD_REQUEST,
        ExecError::NoRunc | ExecError::Spawn { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn image_status(e: &crate::daemon::image::ImageOwnerError) -> StatusCode {
    use crate::daemon::image::ImageOwnerError;
    match e {
        ImageOwnerError::NoSuchImage(_) => StatusCode::NOT_FOUND,
        ImageOwnerError::InUse { .. } => StatusCode::CONFLICT,
        ImageOwnerError::LayerGone(_) => StatusCode::CONFLICT,
        e if e.is_bad_archive() => StatusCode::BAD_REQUEST,
        ImageOwnerError::Store(_)
        | ImageOwnerError::Containers(_)
        | ImageOwnerError::Records(_)
        | ImageOwnerError::Files(_)
        | ImageOwnerError::Flush(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn container_status(e: &ContainerError) -> StatusCode {
    match e {
        ContainerError::NotFound(_)
        | ContainerError::NoSuchVolume(_)
        | ContainerError::NoSuchNetwork(_) => StatusCode::NOT_FOUND,
        ContainerError::VolumeInUse { .. }
        | ContainerError::NetworkExists(_)
        | ContainerError::NetworkInUse { .. } => StatusCode::CONFLICT,
        ContainerError::Ambiguous(_)
        | ContainerError::InvalidName(_)
        | ContainerError::BadRequest(_)
        | ContainerError::StartFailed { .. } => StatusCode::BAD_REQUEST,
        ContainerError::OrphanRefused { .. }
        | ContainerError::NameInUse { .. }
        | ContainerError::JoinNotRunning(_)
        | ContainerError::Signal { .. } => StatusCode::CONFLICT,
        ContainerError::Transition(t) => match t {
            TransitionError::AlreadyRunning | TransitionError::NotRunning => {
                StatusCode::NOT_MODIFIED
            }
            TransitionError::RunningCannotRemove
            | TransitionError::RestartingCannotRemove
            | TransitionError::Restarting
            | TransitionError::AlreadyPaused
            | TransitionError::NotPaused
            | TransitionError::PausedCannotStart
            | TransitionError::BeingRemoved
            | TransitionError::Orphaned { .. }
            | TransitionError::Invalid { .. } => StatusCode::CONFLICT,
        },
        ContainerError::Exec(e) => exec_status(e),
        ContainerError::Image(e) => image_status(e),
        ContainerError::Store(_)
        | ContainerError::Flush(_)
        | ContainerError::Ports { .. }
        | ContainerError::VolumeStore(_)
        | ContainerError::NetworkStore(_)
        | ContainerError::Bridge { .. }
        | ContainerError::Runtime(_)
        | ContainerError::Freeze { .. }
        | ContainerError::Io { .. }
        | ContainerError::SpecFile(_)
        | ContainerError::Mailbox(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
