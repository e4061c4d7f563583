//! The persisted container record and the value types it is made of.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::machine::State;
use crate::ports::{PortBinding, PortMapping};

/// A point in time, always UTC; serialized as RFC 3339 with nanoseconds.
pub type Timestamp = DateTime<Utc>;

/// Version of [`ContainerRecord`]'s on-disk shape; bumped with a migration in `schema`.
pub const RECORD_VERSION: u32 = 1;

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// It called exit(2) with this code.
    Code(i32),
    /// It was killed by this signal number.
    Signal(i32),
}

impl Exit {
    /// The exit code Docker reports: the code, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// A process as moor records it: a pid is never trusted alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// The process id in the host pid namespace.
    pub pid: i32,
    /// Field 22 of /proc/PID/stat (clock ticks after boot): tells a reused pid apart.
    pub start_time: u64,
    /// /proc/sys/kernel/random/boot_id at the time it was recorded: tells a reboot apart.
    pub boot_id: String,
}

/// Which runtime runs the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    /// A plain process on the host, no isolation (development and non-root use).
    #[default]
    Process,
    /// An OCI container run by runc.
    Runc,
}

/// Docker's restart policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (Docker's default).
    #[default]
    No,
    /// Restart when the exit code is not 0, at most `max_retries` times (0 = no limit).
    OnFailure { max_retries: u32 },
    /// Always restart, also after a daemon restart.
    Always,
    /// Like `always`, but not after the user stopped it.
    UnlessStopped,
}

/// What the user asked for at create time; changed afterwards only by `docker update`
/// (resources and restart policy).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The image name as the user gave it (`host` for the process runtime).
    pub image: String,
    /// Command arguments (Docker's Cmd).
    pub cmd: Vec<String>,
    /// Entrypoint, prepended to `cmd` when set.
    pub entrypoint: Vec<String>,
    /// Environment as `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// Working directory; empty means the runtime's default (`/`).
    pub working_dir: String,
    /// `UID[:GID]` or empty for the runtime's default.
    pub user: String,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
    /// Hostname; empty means the short id.
    pub hostname: String,
    /// Signal sent by `stop`, e.g. `SIGTERM` (empty = SIGTERM).
    pub stop_signal: String,
    /// Seconds between the stop signal and SIGKILL (None = daemon default, 10 s).
    pub stop_timeout: Option<u32>,
    /// Remove the container once it exits (`--rm`).
    pub auto_remove: bool,
    /// When to start it again after it exits.
    pub restart_policy: RestartPolicy,
    /// The runtime it was created for; a daemon with another default still runs it with this one.
    pub runtime: RuntimeKind,
    /// Log driver options (`max-size`, `max-file`...), Docker's `--log-opt`.
    pub log_opts: BTreeMap<String, String>,
    /// Keep a stdin the shim feeds from attached clients (Docker's OpenStdin, `-i`).
    #[serde(default)]
    pub open_stdin: bool,
    /// The image's id (64 hex) resolved at create: a later re-tag never changes the rootfs.
    #[serde(default)]
    pub image_id: String,
    /// Memory limit in bytes (Docker's HostConfig.Memory; 0 = none).
    #[serde(default)]
    pub memory: i64,
    /// CPU limit in billionths of a CPU (HostConfig.NanoCpus; 0 = none).
    #[serde(default)]
    pub nano_cpus: i64,
    /// Maximum number of tasks in the container (HostConfig.PidsLimit; None or <= 0 = none).
    #[serde(default)]
    pub pids_limit: Option<i64>,
    /// Mount the root filesystem read-only (`--read-only`).
    #[serde(default)]
    pub read_only: bool,
    /// `none` (own netns, loopback only; the default) or `host`.
    #[serde(default)]
    pub network_mode: String,
    /// Docker's AttachStdin/AttachStdout/AttachStderr: hints of the creating client, kept to
    /// be shown back in inspect.
    #[serde(default)]
    pub attach: AttachHints,
    /// Docker's ExposedPorts (`80/tcp`...): metadata, as in Docker; nothing is published.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// Docker's ContainerIDFile (`--cidfile`): the client writes it; kept for inspect.
    #[serde(default)]
    pub container_id_file: String,
    /// Docker's PidMode: empty (own pid namespace) or `host`.
    #[serde(default)]
    pub pid_mode: String,
    /// Docker's UTSMode: empty (own hostname) or `host`.
    #[serde(default)]
    pub uts_mode: String,
    /// Docker's IpcMode: empty or `private` (own IPC namespace) or `host`.
    #[serde(default)]
    pub ipc_mode: String,
    /// Docker's CapAdd (`--cap-add`), names as given (`ALL` allowed).
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Docker's CapDrop (`--cap-drop`), names as given (`ALL` allowed).
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// Docker's Privileged: every capability, the host's devices, no masked paths.
    #[serde(default)]
    pub privileged: bool,
    /// Bind mounts, volumes and tmpfs mounts (Binds, Mounts, Tmpfs, Volumes), in the order
    /// they are mounted: part of the runc bundle, so they live as long as the container.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// The container's address on the default bridge network, allocated at create (when
    /// its network mode is `bridge`) and held until it is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<crate::network::Endpoint>,
    /// Other names the container has on a user network (`--network-alias`,
    /// `EndpointsConfig.<net>.Aliases`), written into its peers' `/etc/hosts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
    /// The networks connected after the first (`docker network connect`), each with its own
    /// address (held until it is disconnected or the container removed), aliases and
    /// interface (`eth<slot>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_endpoints: Vec<crate::network::ExtraEndpoint>,
    /// For network mode `container:<name>`: the other container's network as its actor
    /// resolved it for this start. Never stored: it is looked up again at every start.
    #[serde(skip)]
    pub joined_network: Option<crate::network::JoinedNetwork>,
    /// Docker's HostConfig.PortBindings (`-p`): container ports to publish on the host.
    #[serde(default)]
    pub port_bindings: Vec<PortBinding>,
    /// Docker's PublishAllPorts (`-P`): every exposed port on an ephemeral host port.
    #[serde(default)]
    pub publish_all: bool,
    /// Docker's Tty (`-t`): the shim gives the container a pseudo-terminal and holds its
    /// master; the output is one stream (stdout) and attach sends it raw.
    #[serde(default)]
    pub tty: bool,
    /// Docker's HostConfig.VolumesFrom as given (`C[:ro|rw]`); the mounts it gave are in
    /// `mounts` (origin `volumes_from`).
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// Docker's HostConfig.ConsoleSize, `[height, width]` (`[0, 0]`: the pty's default), the
    /// terminal's size at start.
    #[serde(default)]
    pub console_size: [u16; 2],
    /// Docker's Config.Healthcheck, the create's merged over the image's (None: neither
    /// has one): what the daemon probes while the container runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::health::HealthConfig>,
    /// Docker's cgroup settings beyond memory, CPUs and pids (CpuShares, Cpuset*, CpuQuota,
    /// CpuPeriod, MemoryReservation, MemorySwap, OomKillDisable); `docker update` changes
    /// them on a live container.
    #[serde(default)]
    pub resources: crate::resources::Resources,
    /// The process's options (GroupAdd, SecurityOpt, Ulimits, Sysctls, ShmSize, Init) and
    /// what moor writes into its /etc/hosts and /etc/resolv.conf (ExtraHosts, Dns*).
    #[serde(default)]
    pub process: crate::resources::ProcessOptions,
}

/// What a mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// A host path bind-mounted into the container.
    #[default]
    Bind,
    /// A named or anonymous volume of the `local` driver (a bind of its data directory).
    Volume,
    /// A tmpfs, gone with the container's mount namespace.
    Tmpfs,
}

/// Which create field a mount came from: inspect shows it back under that field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountOrigin {
    /// `HostConfig.Binds` (`-v SRC:DST[:MODE]`).
    #[default]
    Binds,
    /// `HostConfig.Mounts` (`--mount`).
    Mounts,
    /// `HostConfig.Tmpfs` (`--tmpfs`).
    Tmpfs,
    /// `Config.Volumes` (`-v /DST`, an image's VOLUME): an anonymous volume.
    Volumes,
    /// `HostConfig.VolumesFrom` (`--volumes-from C[:ro|rw]`): a bind or volume of another
    /// container, copied at create.
    VolumesFrom,
}

/// One mount of a container, as recorded at create.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MountSpec {
    /// Bind, volume or tmpfs.
    pub kind: MountKind,
    /// Which create field gave it.
    pub origin: MountOrigin,
    /// The host path: the bind's source, a volume's data directory; empty for a tmpfs.
    pub source: String,
    /// The absolute path inside the container.
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Docker's Mode text as given in Binds (`ro`, `rw,z`...) or empty.
    #[serde(default)]
    pub mode: String,
    /// Bind propagation (`rprivate` unless asked); empty for volumes and tmpfs.
    #[serde(default)]
    pub propagation: String,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// A bind whose missing source is created as a directory at start (`-v`, not `--mount`).
    #[serde(default)]
    pub create_source: bool,
    /// Do not copy the image's content at the destination into a new, empty volume.
    #[serde(default)]
    pub no_copy: bool,
    /// tmpfs size in bytes (0: the kernel's default).
    #[serde(default)]
    pub tmpfs_size: u64,
    /// tmpfs mode bits (0: 1777).
    #[serde(default)]
    pub tmpfs_mode: u32,
    /// tmpfs mount flags as given (`noexec`, `nosuid`...).
    #[serde(default)]
    pub options: Vec<String>,
}

/// Which standard streams the creating client said it attaches (Docker's Attach* fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AttachHints {
    /// AttachStdin.
    pub stdin: bool,
    /// AttachStdout.
    pub stdout: bool,
    /// AttachStderr.
    pub stderr: bool,
}

impl ContainerSpec {
    /// The argv the runtime executes: entrypoint then cmd.
    pub fn argv(&self) -> Vec<String> {
        self.entrypoint
            .iter()
            .chain(self.cmd.iter())
            .cloned()
            .collect()
    }
}

/// One container, as stored in the `containers` tree (and, at create, in its own directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Shape version of this record ([`RECORD_VERSION`]).
    pub version: u32,
    /// 64 lowercase hex digits.
    pub id: String,
    /// Unique name, without Docker's leading `/`.
    pub name: String,
    /// What the user asked for. Shared: it rarely changes after the create (a network
    /// connect, an update: [`Arc::make_mut`]), and it is most of a record's size (1,168 of
    /// 1,624 bytes inline), so a state change's new record, the container actor's copy and
    /// the list's copy hold one spec (a restart with 10,000 containers: 23 MB less).
    pub spec: Arc<ContainerSpec>,
    /// Where the container is in its life; changed only through [`crate::transition`].
    pub state: State,
    /// When it was created.
    pub created_at: Timestamp,
    /// How many times moor started it again by its restart policy.
    pub restart_count: u32,
    /// Set when a user stopped it, cleared when a user starts it: `unless-stopped`
    /// does not bring it back, and no policy restarts it until then.
    #[serde(default)]
    pub manually_stopped: bool,
    /// While `Stopping`: when the stop's SIGKILL is due. Recorded with the `StopRequested`
    /// transition, so a daemon that dies mid-stop leaves the next one the deadline to finish
    /// the stop at (at once if it has passed). `None` in every other state, and in records
    /// written before it existed (older readers ignore the field; see `schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_deadline: Option<Timestamp>,
    /// The published ports as resolved at the container's last start (host ports chosen):
    /// what inspect's `NetworkSettings.Ports` and `docker port` show, and what the NAT
    /// table holds for it while it runs.
    #[serde(default)]
    pub published: Vec<PortMapping>,
    /// Docker's State.Health: set when a run with a healthcheck starts, moved by each
    /// probe's result (see [`crate::health`]), kept after the run ends; persisted so that a
    /// daemon restart resumes the probes from it. None without a healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
    /// The daemon settings it was created or last started under (README "Changing daemon
    /// options"): it is managed under these after the daemon's options change. None in a
    /// record written before the field existed: the daemon records its settings at the
    /// next start-up (they are what that record's container ran under, unless the options
    /// changed in the same upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Arc<crate::settings::DaemonSettings>>,
}

impl ContainerRecord {
    /// A freshly created record, in state `Created`.
    pub fn new(id: String, name: String, spec: ContainerSpec, created_at: Timestamp) -> Self {
        ContainerRecord {
            version: RECORD_VERSION,
            id,
            name,
            spec: Arc::new(spec),
            state: State::Created,
            created_at,
            restart_count: 0,
            manually_stopped: false,
            stop_deadline: None,
            published: Vec::new(),
            health: None,
            settings: None,
        }
    }

    /// The record in state `next` (a result of [`crate::transition`]): a stop deadline
    /// outlives only a stop that goes on (`Stopping` to `Stopping`); the health moves as
    /// [`crate::health::across`] says.
    pub fn with_state(&self, next: State) -> ContainerRecord {
        let keep = matches!(
            (&self.state, &next),
            (State::Stopping(_), State::Stopping(_))
        );
        let health = crate::health::across(
            &self.state,
            &next,
            self.health.as_ref(),
            self.spec.healthcheck.as_ref(),
        );
        ContainerRecord {
            health,
            state: next,
            stop_deadline: if keep { self.stop_deadline } else { None },
            ..self.clone()
        }
    }

    /// The record after a stop asked for a SIGKILL at `deadline`, once in state `Stopping`:
    /// the earliest of the stops under way is kept (each sends its SIGKILL when its own
    /// time is up; the next daemon honours the first).
    pub fn with_stop_deadline(&self, deadline: Timestamp) -> ContainerRecord {
        let mut rec = self.clone();
        if matches!(rec.state, State::Stopping(_)) {
            rec.stop_deadline = Some(rec.stop_deadline.map_or(deadline, |d| d.min(deadline)));
        }
        rec
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::machine::Run;

    fn run() -> Run {
        let id = |pid| ProcessIdentity {
            pid,
            start_time: 7,
            boot_id: "b".into(),
        };
        Run {
            shim: id(1),
            process: id(2),
            started_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_stop_deadline_lives_while_stopping_only() {
        let mut rec = ContainerRecord::new("a".repeat(64), "c".into(), Default::default(), at(0));
        rec.state = State::Running(run());
        // Not stopping: nothing recorded.
        assert_eq!(rec.with_stop_deadline(at(30)).stop_deadline, None);
        let stopping = rec
            .with_state(State::Stopping(run()))
            .with_stop_deadline(at(30));
        assert_eq!(stopping.stop_deadline, Some(at(30)));
        // A second, shorter stop wins; a longer one does not postpone the first.
        assert_eq!(
            stopping.with_stop_deadline(at(10)).stop_deadline,
            Some(at(10))
        );
        assert_eq!(
            stopping.with_stop_deadline(at(90)).stop_deadline,
            Some(at(30))
        );
        // Resumed as stopping by the next daemon: kept. Exited or orphaned: gone.
        let resumed = stopping.with_state(State::Stopping(run()));
        assert_eq!(resumed.stop_deadline, Some(at(30)));
        let exited = stopping.with_state(State::Exited {
            exit: None,
            error: String::new(),
            started_at: None,
            finished_at: at(40),
        });
        assert_eq!(exited.stop_deadline, None);
    }

    #[test]
    fn a_record_without_the_field_reads_and_one_with_it_round_trips() {
        let rec = ContainerRecord::new("a".repeat(64), "c".into(), Default::default(), at(0));
        let mut old = serde_json::to_value(&rec).unwrap();
        assert!(old.get("stop_deadline").is_none(), "not written when unset");
        old.as_object_mut().unwrap().remove("stop_deadline");
        let read: ContainerRecord = serde_json::from_value(old).unwrap();
        assert_eq!(read.stop_deadline, None);
        let stopping = rec
            .with_state(State::Stopping(run()))
            .with_stop_deadline(at(5));
        let text = serde_json::to_string(&stopping).unwrap();
        let back: ContainerRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stopping);
    }
}
