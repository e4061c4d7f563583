//! Records to Docker's JSON shapes: ContainerInspect and ContainerSummary.

use std::fmt::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use moor_state::record::{MountKind, MountOrigin, MountSpec, RestartPolicy as Policy};
use moor_state::{ContainerRecord, ContainerSpec, State};
use std::collections::BTreeMap;

use crate::api::types::*;
use crate::api::volume_types::{BindOptions, Mount, MountPoint, TmpfsOptions, VolumeOptions};
use crate::daemon::container::exit_code;
use crate::host::layout::Layout;

/// Go's zero time, as Docker prints never-set times.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano), or Go's zero time.
pub fn go_time(t: Option<DateTime<Utc>>) -> String {
    let Some(t) = t else {
        return ZERO_TIME.into();
    };
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    match s.split_once('.') {
        Some((head, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{head}Z")
            } else {
                format!("{head}.{digits}Z")
            }
        }
        None => s,
    }
}

/// Docker's age text for the time between `from` and `now`, written into `out`.
fn write_age(out: &mut impl Write, from: DateTime<Utc>, now: DateTime<Utc>) -> fmt::Result {
    crate::humanize::write_human_duration(out, (now - from).to_std().unwrap_or_default())
}

fn policy(p: Policy) -> RestartPolicy {
    let (name, n) = match p {
        Policy::No => ("no", 0),
        Policy::OnFailure { max_retries } => ("on-failure", max_retries),
        Policy::Always => ("always", 0),
        Policy::UnlessStopped => ("unless-stopped", 0),
    };
    RestartPolicy {
        name: name.into(),
        maximum_retry_count: n,
    }
}

fn runtime_name(rec: &ContainerRecord) -> &'static str {
    crate::runtime::interface::profile(rec.spec.runtime).name
}

/// The network a container is on, by Docker's name.
fn network_name(rec: &ContainerRecord) -> String {
    crate::runtime::interface::profile(rec.spec.runtime).network_mode(&rec.spec)
}

/// Inspect's HostConfig: every key Docker always shows, with the values moor applies.
fn host_config(rec: &ContainerRecord) -> HostConfig {
    let spec = &rec.spec;
    let kind = crate::runtime::interface::profile(spec.runtime);
    // runc: private pid, ipc and uts namespaces, the host's cgroup and user namespaces;
    // the process runtime shares every namespace with the host.
    let shared = |private: &str| match kind.own_namespaces {
        true => private.into(),
        false => "host".into(),
    };
    let defaults = oci_spec::runtime::Linux::default();
    // A privileged container has no masked or read-only paths.
    let confined = kind.confined && !spec.privileged;
    let mut hc = HostConfig {
        auto_remove: spec.auto_remove,
        console_size: Some(spec.console_size),
        volumes_from: some_if_any(spec.volumes_from.clone()),
        restart_policy: Some(policy(spec.restart_policy)),
        log_config: Some(LogConfig {
            kind: "json-file".into(),
            config: spec.log_opts.clone(),
        }),
        network_mode: Some(network_name(rec)),
        runtime: Some(runtime_name(rec).into()),
        memory: spec.memory,
        nano_cpus: spec.nano_cpus,
        pids_limit: spec.pids_limit,
        readonly_rootfs: spec.read_only,
        container_id_file: spec.container_id_file.clone(),
        cgroupns_mode: "host".into(),
        ipc_mode: shared(if spec.ipc_mode.is_empty() {
            "private"
        } else {
            &spec.ipc_mode
        }),
        pid_mode: shared(&spec.pid_mode),
        uts_mode: shared(&spec.uts_mode),
        cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
        privileged: spec.privileged,
        masked_paths: confined.then(|| defaults.masked_paths().clone().unwrap_or_default()),
        readonly_paths: confined.then(|| defaults.readonly_paths().clone().unwrap_or_default()),
        port_bindings: port_bindings(spec),
        publish_all_ports: spec.publish_all,
        binds: some_if_any(from(spec, MountOrigin::Binds).map(bind_text).collect()),
        mounts: some_if_any(from(spec, MountOrigin::Mounts).map(mount_back).collect()),
        tmpfs: some_if_any(
            from(spec, MountOrigin::Tmpfs)
                .map(|m| (m.destination.clone(), m.mode.clone()))
                .collect(),
        ),
        ..HostConfig::default()
    };
    crate::api::resources::show(spec, kind, &mut hc);
    hc
}

/// The mounts of `spec` that came from the create field `origin`.
fn from(spec: &moor_state::ContainerSpec, origin: MountOrigin) -> impl Iterator<Item = &MountSpec> {
    spec.mounts.iter().filter(move |m| m.origin == origin)
}

/// None for an empty collection (Docker shows null or omits the key).
fn some_if_any<T: Collection>(c: T) -> Option<T> {
    (!c.empty()).then_some(c)
}

/// What [`some_if_any`] takes.
trait Collection {
    fn empty(&self) -> bool;
}

impl<T> Collection for Vec<T> {
    fn empty(&self) -> bool {
        self.is_empty()
    }
}

impl<K, V> Collection for std::collections::BTreeMap<K, V> {
    fn empty(&self) -> bool {
        self.is_empty()
    }
}

/// A Binds entry as given: `SRC:DST[:MODE]` (SRC a host path or a volume's name).
fn bind_text(m: &MountSpec) -> String {
    let src = match m.kind {
        MountKind::Bind => &m.source,
        _ => &m.name,
    };
    match m.mode.as_str() {
        "" => format!("{src}:{}", m.destination),
        mode => format!("{src}:{}:{mode}", m.destination),
    }
}

/// A `--mount` entry as the client sent it (its defaults filled in).
fn mount_back(m: &MountSpec) -> Mount {
    let mut out = Mount {
        source: match m.kind {
            MountKind::Bind => m.source.clone(),
            MountKind::Volume => m.name.clone(),
            MountKind::Tmpfs => String::new(),
        },
        target: m.destination.clone(),
        read_only: m.read_only,
        ..Mount::default()
    };
    match m.kind {
        MountKind::Bind => {
            out.kind = "bind".into();
            // Shown when asked for: Docker shows back the request.
            out.bind_options =
                (m.propagation != crate::api::mounts::DEFAULT_PROPAGATION).then(|| BindOptions {
                    propagation: m.propagation.clone(),
                });
        }
        MountKind::Volume => {
            out.kind = "volume".into();
            out.volume_options = m.no_copy.then(|| VolumeOptions {
                no_copy: true,
                ..VolumeOptions::default()
            });
        }
        MountKind::Tmpfs => {
            out.kind = "tmpfs".into();
            out.tmpfs_options = Some(TmpfsOptions {
                size_bytes: i64::try_from(m.tmpfs_size).unwrap_or(i64::MAX),
                mode: m.tmpfs_mode,
            });
        }
    }
    out
}

/// Inspect's `Mounts`, as Docker lists them: binds, volumes and `--mount` tmpfs mounts
/// (a `--tmpfs` one shows in `HostConfig.Tmpfs` only, as in Docker).
pub fn mount_points(spec: &moor_state::ContainerSpec) -> Vec<MountPoint> {
    let shown = spec
        .mounts
        .iter()
        .filter(|m| m.origin != MountOrigin::Tmpfs);
    shown
        .map(|m| MountPoint {
            kind: match m.kind {
                MountKind::Bind => "bind",
                MountKind::Volume => "volume",
                MountKind::Tmpfs => "tmpfs",
            }
            .into(),
            name: m.name.clone(),
            source: m.source.clone(),
            destination: m.destination.clone(),
            driver: match m.kind {
                MountKind::Volume => "local".into(),
                _ => String::new(),
            },
            mode: m.mode.clone(),
            rw: !m.read_only,
            propagation: m.propagation.clone(),
        })
        .collect()
}

/// Inspect's Config.
fn config(rec: &ContainerRecord) -> ContainerConfig {
    let spec = &rec.spec;
    let ports = spec
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), serde_json::json!({})));
    ContainerConfig {
        hostname: spec.hostname.clone(),
        user: spec.user.clone(),
        env: spec.env.clone(),
        cmd: spec.cmd.clone(),
        entrypoint: (!spec.entrypoint.is_empty()).then(|| spec.entrypoint.clone()),
        image: spec.image.clone(),
        working_dir: spec.working_dir.clone(),
        labels: spec.labels.clone(),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: spec.stop_timeout,
        tty: spec.tty,
        domainname: String::new(),
        attach_stdin: spec.attach.stdin,
        attach_stdout: spec.attach.stdout,
        attach_stderr: spec.attach.stderr,
        exposed_ports: (!spec.exposed_ports.is_empty()).then(|| ports.collect()),
        open_stdin: spec.open_stdin,
        stdin_once: spec.open_stdin,
        volumes: some_if_any(
            from(spec, MountOrigin::Volumes)
                .map(|m| (m.destination.clone(), serde_json::json!({})))
                .collect(),
        ),
        on_build: None,
        healthcheck: spec.healthcheck.clone(),
    }
}

/// Inspect's HostConfig.PortBindings: what was asked, Docker's shape (an ephemeral port is
/// an empty HostPort, every address an empty HostIp).
fn port_bindings(spec: &ContainerSpec) -> BTreeMap<String, serde_json::Value> {
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for b in &spec.port_bindings {
        let host_ip = b.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
        let host_port = b.host_port.map(|p| p.to_string()).unwrap_or_default();
        out.entry(format!("{}/{}", b.container_port, b.proto))
            .or_default()
            .push(serde_json::json!({"HostIp": host_ip, "HostPort": host_port}));
    }
    out.into_iter()
        .map(|(k, v)| (k, serde_json::Value::Array(v)))
        .collect()
}

/// Inspect's NetworkSettings.Ports: every exposed port, with the host side it is published
/// on (resolved at start), or `null`.
fn ports(rec: &ContainerRecord) -> BTreeMap<String, Option<Vec<serde_json::Value>>> {
    let mut out: BTreeMap<String, Option<Vec<serde_json::Value>>> = rec
        .spec
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), None))
        .collect();
    // Published while it runs (Docker shows none for a stopped container).
    let running = rec.state.run().is_some();
    for m in rec.published.iter().filter(|_| running) {
        let host =
            serde_json::json!({"HostIp": m.host_ip_text(), "HostPort": m.host_port.to_string()});
        out.entry(m.container_key())
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(host);
    }
    out
}

/// Inspect's NetworkSettings: each network of the container (its first gives the top-level
/// fields); a bridge container's address, gateway and MAC while it runs (Docker's), its
/// namespace file as the SandboxKey; `none` and `host` have no address, a container sharing
/// another's network no network at all (Docker's).
fn network_settings(rec: &ContainerRecord, layout: &Layout, running: bool) -> NetworkSettings {
    let all = moor_state::network::endpoints(rec);
    if all.is_empty() {
        let networks = match rec.spec.network_mode.starts_with("container:") {
            true => Default::default(),
            false => [(network_name(rec), Endpoint::default())].into(),
        };
        return NetworkSettings {
            ports: ports(rec),
            networks,
            ..NetworkSettings::default()
        };
    }
    let shown = |ep: &moor_state::network::Endpoint| {
        let mut out = Endpoint {
            network_id: ep.network_id.clone(),
            ..Endpoint::default()
        };
        if running {
            out.mac_address = ep.mac_text();
            out.endpoint_id = endpoint_id(&rec.id, &ep.network_id);
            out.gateway = ep.gateway.to_string();
            out.ip_address = ep.ip.to_string();
            out.ip_prefix_len = i64::from(ep.prefix_len);
        }
        out
    };
    let networks = all
        .iter()
        .map(|(ep, _, _)| (ep.network.clone(), shown(ep)))
        .collect();
    if !running {
        return NetworkSettings {
            ports: ports(rec),
            networks,
            ..NetworkSettings::default()
        };
    }
    let (first, _, _) = all[0];
    let top = shown(first);
    NetworkSettings {
        bridge: first.bridge.clone(),
        sandbox_key: crate::network::netns::path(&layout.run_dir, &rec.id)
            .display()
            .to_string(),
        endpoint_id: top.endpoint_id.clone(),
        gateway: top.gateway.clone(),
        ip_address: top.ip_address.clone(),
        ip_prefix_len: top.ip_prefix_len,
        mac_address: top.mac_address.clone(),
        ports: ports(rec),
        networks,
        ..NetworkSettings::default()
    }
}

/// Docker's EndpointID: 64 hex, the same for a container on a network at every inspect.
pub fn endpoint_id(container: &str, network: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{container}/{network}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /containers/{id}/json`: `layout` is the daemon's paths as the container was
/// started under them (its recorded run directory), `drift` its settings' drift.
pub fn inspect(
    rec: &ContainerRecord,
    layout: &Layout,
    drift: Vec<moor_state::settings::Drift>,
) -> ContainerInspect {
    let argv = rec.spec.argv();
    let state = &rec.state;
    let (error, finished_at) = match state {
        State::Exited {
            error, finished_at, ..
        }
        | State::Restarting {
            error, finished_at, ..
        } => (error.clone(), Some(*finished_at)),
        State::Orphaned { reason, .. } => (format!("orphaned: {reason}"), None),
        _ => (String::new(), None),
    };
    // Docker shows a paused container as running and paused, and a restarting one as
    // running and restarting (with no pid).
    let running = matches!(
        state,
        State::Running(_)
            | State::Paused(_)
            | State::Stopping(_)
            | State::Restarting { .. }
            | State::Orphaned { run: Some(_), .. }
    );
    let (orphan_reason, shim_pid) = match state {
        State::Orphaned { reason, run } => (reason.clone(), run.as_ref().map_or(0, |r| r.shim.pid)),
        other => (String::new(), other.run().map_or(0, |r| r.shim.pid)),
    };
    ContainerInspect {
        id: rec.id.clone(),
        created: go_time(Some(rec.created_at)),
        path: argv.first().cloned().unwrap_or_default(),
        args: argv.iter().skip(1).cloned().collect(),
        state: ContainerState {
            status: state.docker_status().into(),
            running,
            paused: matches!(state, State::Paused(_)),
            restarting: matches!(state, State::Restarting { .. }),
            oom_killed: matches!(state, State::Exited { .. })
                && crate::host::runfiles::read_run_files(&layout.run_container_dir(&rec.id))
                    .is_ok_and(|f| f.oom_killed),
            dead: false,
            pid: if running {
                state.run().map_or(0, |r| r.process.pid)
            } else {
                0
            },
            exit_code: exit_code(state) as i32,
            error,
            started_at: go_time(state.started_at()),
            finished_at: go_time(finished_at),
            health: rec.health.as_ref().map(crate::api::health::state),
        },
        image: if rec.spec.image_id.is_empty() {
            rec.spec.image.clone()
        } else {
            format!("sha256:{}", rec.spec.image_id)
        },
        name: format!("/{}", rec.name),
        restart_count: rec.restart_count,
        driver: if rec.spec.image_id.is_empty() {
            "none".into()
        } else {
            "overlay".into()
        },
        platform: "linux".into(),
        log_path: layout.log_path(&rec.id).display().to_string(),
        host_config: host_config(rec),
        config: config(rec),
        mounts: mount_points(&rec.spec),
        network_settings: network_settings(rec, layout, running),
        moor: MoorDetails {
            state: state.name().into(),
            runtime: runtime_name(rec).into(),
            shim_pid,
            orphan_reason,
        },
        drift,
    }
}

/// A list entry's `Status` text at `now`: `Up 5 minutes`, `Exited (0) 3 seconds ago`...
pub fn status(rec: &ContainerRecord, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_status(&mut out, rec, now);
    out
}

/// [`status`] written into `out`, without allocating.
pub fn write_status(
    out: &mut impl Write,
    rec: &ContainerRecord,
    now: DateTime<Utc>,
) -> fmt::Result {
    match &rec.state {
        State::Created | State::Starting => out.write_str("Created"),
        State::Running(run) | State::Stopping(run) => {
            out.write_str("Up ")?;
            write_age(out, run.started_at, now)?;
            match &rec.health {
                Some(h) => write!(out, " ({})", h.status.list_text()),
                None => Ok(()),
            }
        }
        State::Paused(run) => {
            out.write_str("Up ")?;
            write_age(out, run.started_at, now)?;
            out.write_str(" (Paused)")
        }
        State::Orphaned { .. } => out.write_str("Up (orphaned)"),
        State::Exited { finished_at, .. } => {
            write!(out, "Exited ({}) ", exit_code(&rec.state))?;
            write_age(out, *finished_at, now)?;
            out.write_str(" ago")
        }
        State::Restarting { finished_at, .. } => {
            write!(out, "Restarting ({}) ", exit_code(&rec.state))?;
            write_age(out, *finished_at, now)?;
            out.write_str(" ago")
        }
        State::Removing => out.write_str("Removal In Progress"),
    }
}

/// `GET /containers/json` entry.
pub fn summary(rec: &ContainerRecord, now: DateTime<Utc>) -> ContainerSummary {
    ContainerSummary {
        id: rec.id.clone(),
        names: vec![format!("/{}", rec.name)],
        image: rec.spec.image.clone(),
        image_id: if rec.spec.image_id.is_empty() {
            String::new()
        } else {
            format!("sha256:{}", rec.spec.image_id)
        },
        command: rec.spec.argv().join(" "),
        created: rec.created_at.timestamp(),
        state: rec.state.docker_status().into(),
        status: status(rec, now),
        drift: Vec::new(),
        labels: rec.spec.labels.clone(),
        ports: port_summaries(rec),
        size_rw: None,
        size_root_fs: None,
    }
}

/// A list entry's `Ports`: each published mapping (while it runs), then each exposed port
/// that none publishes, sorted as Docker sorts them (private port, then type).
fn port_summaries(rec: &ContainerRecord) -> Vec<crate::api::types::PortSummary> {
    use crate::api::types::PortSummary;
    let running = rec.state.run().is_some();
    let published = rec.published.iter().filter(|_| running);
    let mut out: Vec<PortSummary> = published
        .map(|m| PortSummary {
            ip: Some(m.host_ip_text()),
            private_port: m.container_port,
            public_port: Some(m.host_port),
            kind: m.proto.to_string(),
        })
        .collect();
    for key in &rec.spec.exposed_ports {
        let Some((port, kind)) = key.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if !out.iter().any(|p| p.private_port == port && p.kind == kind) {
            out.push(PortSummary {
                ip: None,
                private_port: port,
                public_port: None,
                kind: kind.to_string(),
            });
        }
    }
    out.sort_by(|a, b| (a.private_port, &a.kind).cmp(&(b.private_port, &b.kind)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn go_time_trims_like_rfc3339nano() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap();
        assert_eq!(go_time(Some(t)), "2026-11-27T16:00:00Z");
        let t = t + chrono::Duration::nanoseconds(123_450_000);
        assert_eq!(go_time(Some(t)), "2026-11-27T16:00:00.12345Z");
        assert_eq!(go_time(None), ZERO_TIME);
    }

    #[test]
    fn ports_have_dockers_shape() {
        use moor_state::ports::{PortBinding, PortMapping, Proto};
        use serde_json::json;
        let spec = ContainerSpec {
            exposed_ports: vec!["80/tcp".into(), "443/tcp".into()],
            port_bindings: vec![PortBinding {
                container_port: 80,
                proto: Proto::Tcp,
                host_ip: None,
                host_port: None,
            }],
            ..ContainerSpec::default()
        };
        let mut rec = ContainerRecord::new("ab".repeat(32), "web".into(), spec, Utc::now());
        assert_eq!(
            serde_json::to_value(port_bindings(&rec.spec)).unwrap(),
            json!({"80/tcp": [{"HostIp": "", "HostPort": ""}]})
        );
        rec.published = vec![PortMapping {
            container_port: 80,
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 32768,
        }];
        // Shown while it runs only (Docker shows none for a stopped container).
        assert_eq!(
            serde_json::to_value(ports(&rec)).unwrap(),
            json!({"80/tcp": null, "443/tcp": null})
        );
        let id = |pid| moor_state::ProcessIdentity {
            pid,
            start_time: 1,
            boot_id: "b".into(),
        };
        rec.state = State::Running(moor_state::Run {
            shim: id(1),
            process: id(2),
            started_at: Utc::now(),
        });
        assert_eq!(
            serde_json::to_value(ports(&rec)).unwrap(),
            json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}], "443/tcp": null})
        );
        let list = serde_json::to_value(port_summaries(&rec)).unwrap();
        assert_eq!(
            list,
            json!([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
                   {"PrivatePort": 443, "Type": "tcp"}])
        );
    }
}
