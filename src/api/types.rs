//! Docker Engine API types (the subset moor serves), shared by the server and moor's CLI.
//! Field names are Docker's (PascalCase); unknown fields are tolerated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /containers/create` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    /// Image name (`host` for the process runtime).
    pub image: String,
    /// Command arguments.
    pub cmd: Option<Vec<String>>,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` environment.
    pub env: Option<Vec<String>>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Hostname.
    pub hostname: Option<String>,
    /// A pseudo-terminal (`-t`), held by the shim.
    pub tty: bool,
    /// Keep stdin open for attached clients (`-i`).
    pub open_stdin: bool,
    /// Close stdin once the first attached client detaches (moor always does so with
    /// OpenStdin: `false` there is refused).
    pub stdin_once: bool,
    /// Recorded client hint: the creator attaches stdin.
    pub attach_stdin: bool,
    /// Recorded client hint: the creator attaches stdout.
    pub attach_stdout: bool,
    /// Recorded client hint: the creator attaches stderr.
    pub attach_stderr: bool,
    /// `--expose` (metadata, as in Docker: nothing is published).
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Stop signal, e.g. `SIGTERM`.
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal.
    pub stop_timeout: Option<u32>,
    /// Anonymous volumes (`-v /DST`), as `{"/DST": {}}`.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// Host-side options.
    pub host_config: Option<HostConfig>,
    /// `EndpointsConfig` (checked by the field rule: only the container's own network, and
    /// of its entry only `Aliases`).
    pub networking_config: Option<NetworkingConfig>,
    /// `Healthcheck`, checked by `api::health` at the conversion.
    pub healthcheck: Option<serde_json::Value>,
    /// The image's `Healthcheck`, set by the image defaults' merge (never on the wire): the
    /// create's is merged over it at the conversion.
    #[serde(skip)]
    pub image_healthcheck: Option<serde_json::Value>,
}

/// `NetworkingConfig` of a create request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    /// Per network name, its settings.
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointRequest>>>,
}

/// One `EndpointsConfig` entry as far as moor reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointRequest {
    /// Other names of the container on a user network (`--network-alias`).
    pub aliases: Option<Vec<String>>,
}

/// Docker's HostConfig subset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `--rm`.
    pub auto_remove: bool,
    /// The terminal's size at start, `[height, width]` (the docker CLI's, with `-t`).
    pub console_size: Option<[u16; 2]>,
    /// `--volumes-from C[:ro|rw]`.
    pub volumes_from: Option<Vec<String>>,
    /// `--restart`.
    pub restart_policy: Option<RestartPolicy>,
    /// `--log-driver` / `--log-opt`.
    pub log_config: Option<LogConfig>,
    /// `--network`.
    pub network_mode: Option<String>,
    /// `--runtime`.
    pub runtime: Option<String>,
    /// `--memory` in bytes (0 = no limit).
    pub memory: i64,
    /// `--cpus` in billionths of a CPU (0 = no limit).
    pub nano_cpus: i64,
    /// `--pids-limit` (None, 0 or -1 = no limit).
    pub pids_limit: Option<i64>,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `--cidfile`: written by the client, recorded and shown as Docker does.
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    /// Bind mounts and named volumes (`-v SRC:DST[:MODE]`).
    pub binds: Option<Vec<String>>,
    /// `--mount` (bind, volume, tmpfs); omitted when none, as Docker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<crate::api::volume_types::Mount>>,
    /// `--tmpfs PATH[:OPTIONS]`; omitted when none, as Docker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// Published ports (`-p`): `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`, parsed by
    /// `network::ports::from_api` (kept as JSON here so a bad entry is refused by name).
    pub port_bindings: BTreeMap<String, serde_json::Value>,
    /// `-P`: every exposed port on an ephemeral host port.
    pub publish_all_ports: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Option<Vec<String>>,
    /// `--cap-drop`.
    pub cap_drop: Option<Vec<String>>,
    /// `--cgroupns`: moor does not unshare the cgroup namespace (`host`).
    pub cgroupns_mode: String,
    /// `--ipc`.
    pub ipc_mode: String,
    /// `--pid`.
    pub pid_mode: String,
    /// `--uts`.
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `--userns`: always empty (moor never creates a user namespace).
    pub userns_mode: String,
    /// `/dev/shm`'s size in bytes (runc: Docker's 64 MiB).
    pub shm_size: i64,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `--cpu-period`.
    pub cpu_period: i64,
    /// `--cpu-quota`.
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--memory-reservation`.
    pub memory_reservation: i64,
    /// `--memory-swap`: memory plus swap (moor allows no swap: equal to Memory when set).
    pub memory_swap: i64,
    /// `--memory-swappiness` (null: the kernel's).
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable` (null: not set).
    pub oom_kill_disable: Option<bool>,
    /// `--group-add`.
    pub group_add: Option<Vec<String>>,
    /// `--security-opt`.
    pub security_opt: Option<Vec<String>>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--add-host`.
    pub extra_hosts: Option<Vec<String>>,
    /// `--device`.
    pub devices: Vec<serde_json::Value>,
    /// `--ulimit`.
    pub ulimits: Vec<serde_json::Value>,
    /// `--sysctl`: namespaced kernel parameters; omitted when none, as Docker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<BTreeMap<String, String>>,
    /// `--init`; omitted when not set, as Docker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Paths hidden from the container (null in a request: the runtime's defaults).
    pub masked_paths: Option<Vec<String>>,
    /// Paths mounted read-only (null in a request: the runtime's defaults).
    pub readonly_paths: Option<Vec<String>>,
}

/// Docker's RestartPolicy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `no`, `on-failure`, `always`, `unless-stopped` (empty = `no`).
    pub name: String,
    /// For `on-failure`.
    pub maximum_retry_count: u32,
}

/// Docker's LogConfig.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    /// Always `json-file` in moor.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Driver options.
    pub config: BTreeMap<String, String>,
}

/// `POST /containers/create` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateResponse {
    /// The new container's id.
    pub id: String,
    /// Always present, usually empty.
    pub warnings: Vec<String>,
}

/// `GET /containers/{id}/json` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspect {
    /// 64 hex.
    pub id: String,
    /// RFC 3339 nanoseconds.
    pub created: String,
    /// argv[0].
    pub path: String,
    /// argv[1..].
    pub args: Vec<String>,
    /// The state.
    pub state: ContainerState,
    /// Image id or name.
    pub image: String,
    /// `/name`.
    pub name: String,
    /// Restarts by policy.
    pub restart_count: u32,
    /// Storage driver name.
    pub driver: String,
    /// Always `linux`.
    pub platform: String,
    /// The json-file log path.
    pub log_path: String,
    /// Host-side options.
    pub host_config: HostConfig,
    /// The container's config.
    pub config: ContainerConfig,
    /// The container's bind mounts, volumes and tmpfs mounts.
    pub mounts: Vec<crate::api::volume_types::MountPoint>,
    /// Docker's network facts for the container's one network (`none` or `host`).
    pub network_settings: NetworkSettings,
    /// moor's own facts (shim, runtime, orphan reason).
    pub moor: MoorDetails,
    /// moor's extension: each daemon setting the container runs under that differs from
    /// the daemon's current one (README "Changing daemon options"); empty without drift.
    pub drift: Vec<moor_state::settings::Drift>,
}

/// Docker's NetworkSettings: the legacy default-network fields and `Networks` carry a bridge
/// container's address while it runs; empty for `none` and `host`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    /// The Linux bridge of a bridge container (`moor0`); else empty.
    pub bridge: String,
    /// Always empty: moor keeps no sandbox objects.
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    /// A bridge container's network namespace file; else empty.
    pub sandbox_key: String,
    /// Published ports, Docker's shape: `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort":
    /// "8080"}]}`; an exposed port that is not published is `null`.
    pub ports: BTreeMap<String, Option<Vec<serde_json::Value>>>,
    /// Always false.
    pub hairpin_mode: bool,
    /// Always empty.
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    /// Always 0.
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: i64,
    /// Always null.
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<String>>,
    /// Always null.
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<String>>,
    /// Legacy default-network field: empty for `none`/`host`.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// Legacy default-network field: empty.
    pub gateway: String,
    /// Legacy default-network field: empty.
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    /// Legacy default-network field: 0.
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    /// Legacy default-network field: empty.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// Legacy default-network field: 0.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    /// Legacy default-network field: empty.
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    /// Legacy default-network field: empty.
    pub mac_address: String,
    /// The container's network by name (`bridge`, `none` or `host`).
    pub networks: BTreeMap<String, Endpoint>,
}

/// Docker's EndpointSettings with everything a `none`/`host` endpoint leaves empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// Null.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<serde_json::Value>,
    /// Null.
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    /// Null.
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    /// Empty.
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// Empty: moor has no network objects.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// Empty.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// Empty.
    #[serde(rename = "Gateway")]
    pub gateway: String,
    /// Empty.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// 0.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    /// Empty.
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    /// Empty.
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    /// 0.
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    /// Null.
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Null.
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

/// Docker's ContainerState.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// created, running, paused, restarting, removing, exited, dead.
    pub status: String,
    /// Whether it runs.
    pub running: bool,
    /// Always false for now.
    pub paused: bool,
    /// Whether a restart policy is about to start it again.
    pub restarting: bool,
    /// Killed by the OOM killer.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Whether removal failed.
    pub dead: bool,
    /// Host pid of its process, 0 when not running.
    pub pid: i32,
    /// Exit code (128+signal for a signal).
    pub exit_code: i32,
    /// Why it ended abnormally, empty if not.
    pub error: String,
    /// RFC 3339 nanoseconds, `0001-01-01T00:00:00Z` when never.
    pub started_at: String,
    /// RFC 3339 nanoseconds, `0001-01-01T00:00:00Z` when never.
    pub finished_at: String,
    /// Docker's `Health`, for a container with a healthcheck (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::api::health::HealthState>,
}

/// Docker's container Config subset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    /// Hostname.
    pub hostname: String,
    /// User.
    pub user: String,
    /// Environment.
    pub env: Vec<String>,
    /// Cmd.
    pub cmd: Vec<String>,
    /// Entrypoint (null when unset).
    pub entrypoint: Option<Vec<String>>,
    /// The image name used.
    pub image: String,
    /// Working directory.
    pub working_dir: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Stop signal.
    pub stop_signal: String,
    /// Stop timeout in seconds.
    pub stop_timeout: Option<u32>,
    /// TTY.
    pub tty: bool,
    /// Always empty (refused at create).
    pub domainname: String,
    /// Recorded client hint.
    pub attach_stdin: bool,
    /// Recorded client hint.
    pub attach_stdout: bool,
    /// Recorded client hint.
    pub attach_stderr: bool,
    /// Exposed ports (metadata), omitted when none as Docker does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Keeps a stdin for attached clients.
    pub open_stdin: bool,
    /// Stdin closes after the first attached client.
    pub stdin_once: bool,
    /// Anonymous volumes (`-v /DST`, an image's VOLUME), as `{"/DST": {}}`.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// Always null.
    pub on_build: Option<Vec<String>>,
    /// The healthcheck probed (the create's over the image's), left out when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<moor_state::health::HealthConfig>,
}

/// moor's own fields in inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MoorDetails {
    /// The state machine's state name (created, starting, running, stopping, exited, removing, orphaned).
    pub state: String,
    /// The runtime (`process` or `runc`).
    pub runtime: String,
    /// The shim's pid while one runs, else 0.
    pub shim_pid: i32,
    /// Why the container is an orphan, empty if it is not.
    pub orphan_reason: String,
}

/// `GET /containers/json` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    /// 64 hex.
    pub id: String,
    /// `["/name"]`.
    pub names: Vec<String>,
    /// Image name.
    pub image: String,
    /// Image id.
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// The command line, joined by spaces.
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    /// Docker's status word (running, exited...).
    pub state: String,
    /// Human text: `Up 5 seconds`, `Exited (0) 3 seconds ago`.
    pub status: String,
    /// moor's extension: the daemon settings the container runs under that differ from the
    /// daemon's current ones (their names, as inspect's `Drift`); absent without drift.
    /// Must follow `Status` (see `api::list_cache`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Its ports: published ones (while it runs) with their host side, exposed ones without.
    #[serde(default)]
    pub ports: Vec<PortSummary>,
    /// Bytes written by the container (`size=1` only; 0 for the process runtime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    /// Bytes of its root filesystem (`size=1` only; 0 for the process runtime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
}

/// One entry of a list entry's `Ports` (Docker's `Port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSummary {
    /// The host address (published ports only).
    #[serde(rename = "IP", default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The container's port.
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    /// The host's port (published ports only).
    #[serde(
        rename = "PublicPort",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub public_port: Option<u16>,
    /// `tcp` or `udp`.
    #[serde(rename = "Type")]
    pub kind: String,
}

/// `POST /containers/{id}/wait` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitResponse {
    /// The exit code.
    pub status_code: i64,
    /// Set when waiting failed.
    pub error: Option<WaitError>,
}

/// The error inside a [`WaitResponse`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitError {
    /// What went wrong.
    pub message: String,
}

/// Every error answer: `{"message": "..."}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Docker's text.
    pub message: String,
}

/// `GET /version` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Version {
    /// moor's version.
    pub version: String,
    /// Highest API version served.
    pub api_version: String,
    /// Lowest API version served.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub arch: String,
    /// Kernel release.
    pub kernel_version: String,
}

/// `POST /containers/{id}/update` body (Docker's `UpdateConfig`, checked by `api::update`):
/// 0 or "" leaves a setting as it is (Docker's), `PidsLimit` 0 or -1 removes the limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateRequest {
    /// `--memory` in bytes.
    pub memory: i64,
    /// `--memory-swap`: memory plus swap in bytes (-1: unlimited).
    pub memory_swap: i64,
    /// `--memory-reservation` in bytes.
    pub memory_reservation: i64,
    /// `--cpus` in billionths of a CPU.
    pub nano_cpus: i64,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `--cpu-quota` in microseconds.
    pub cpu_quota: i64,
    /// `--cpu-period` in microseconds.
    pub cpu_period: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--pids-limit` (null: unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// `--restart` (an empty name: unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
}

/// The update's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateResponse {
    /// Always present, usually empty.
    pub warnings: Vec<String>,
}
