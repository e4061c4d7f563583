//! A create request to a container spec: the body passes the field rule
//! ([`crate::api::fields`]) and is then converted here, where every honoured field's value
//! is checked (a value moor cannot apply is a 400 naming the field) and kept in the spec
//! that inspect shows back.

use std::collections::BTreeMap;

use moor_state::image::ImageRecord;
use moor_state::ports::PortBinding;
use moor_state::record::{AttachHints, RestartPolicy as Policy, RuntimeKind};
use moor_state::ContainerSpec;

use crate::api::error::ApiError;
use crate::api::fields::{self, FieldError};
use crate::api::types::{CreateRequest, HostConfig};
use crate::host::signal::parse_signal;
// One path per line: the architecture test reads one level of `{...}` only.
use crate::runtime::interface::kind_named;
use crate::runtime::interface::profile;
use crate::runtime::interface::Profile;
use crate::runtime::interface::HOST_IMAGE_KIND;

/// The image name the process runtime runs: the host's own filesystem.
pub const HOST_IMAGE: &str = "host";

/// The size of `/dev/shm` in a runc container (Docker's default, `size=65536k`).
pub const SHM_SIZE: i64 = 64 << 20;

/// Parses a create body: the field rule first, then the typed request.
pub fn parse(body: &[u8]) -> Result<CreateRequest, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    fields::check(&value)?;
    Ok(serde_json::from_value(value)?)
}

/// A value of an honoured field that moor cannot apply.
fn refuse(field: &str, value: impl std::fmt::Display, supported: &'static str) -> ApiError {
    FieldError::Value {
        field: field.into(),
        value: value.to_string(),
        supported,
    }
    .into()
}

pub fn restart_policy(p: Option<&crate::api::types::RestartPolicy>) -> Result<Policy, ApiError> {
    let Some(p) = p else { return Ok(Policy::No) };
    match p.name.as_str() {
        "" | "no" => Ok(Policy::No),
        "always" => Ok(Policy::Always),
        "unless-stopped" => Ok(Policy::UnlessStopped),
        "on-failure" => Ok(Policy::OnFailure {
            max_retries: p.maximum_retry_count,
        }),
        other => Err(ApiError::Query {
            name: "RestartPolicy.Name",
            value: other.into(),
        }),
    }
}

/// The runtime a create request gets: `host` without a runtime asked is the process runtime.
fn runtime_of(req: &CreateRequest, default: RuntimeKind) -> Result<RuntimeKind, ApiError> {
    let asked = req.host_config.as_ref().and_then(|h| h.runtime.as_deref());
    match asked {
        None | Some("") if req.image == HOST_IMAGE => Ok(HOST_IMAGE_KIND),
        None | Some("") => Ok(default),
        Some(name) => {
            kind_named(name).ok_or_else(|| refuse("HostConfig.Runtime", name, "runc and process"))
        }
    }
}

/// `name` must be one of `allowed` (the modes moor applies for this runtime).
fn mode(
    name: &str,
    value: &str,
    allowed: &[&str],
    supported: &'static str,
) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(refuse(name, value, supported))
    }
}

/// The namespace modes: runc gives private pid, ipc and uts namespaces unless `host` is
/// asked, and shares the cgroup namespace (and never creates a user namespace); the
/// process runtime shares them all with the host.
fn check_modes(req: &CreateRequest, host: &HostConfig, runtime: Profile) -> Result<(), ApiError> {
    mode(
        "HostConfig.PidMode",
        &host.pid_mode,
        &["", "host"],
        "\"\" and host",
    )?;
    mode(
        "HostConfig.UTSMode",
        &host.uts_mode,
        &["", "host"],
        "\"\" and host",
    )?;
    let (ipc, ipc_text) = if runtime.own_namespaces {
        (
            &["", "private", "host"][..],
            "\"\", private and host with runc",
        )
    } else {
        (&["", "host"][..], "\"\" and host with the process runtime")
    };
    mode("HostConfig.IpcMode", &host.ipc_mode, ipc, ipc_text)?;
    mode(
        "HostConfig.CgroupnsMode",
        &host.cgroupns_mode,
        &["", "host"],
        "\"\" and host",
    )?;
    let hostname = req.hostname.as_deref().unwrap_or_default();
    if host.uts_mode == "host" && !hostname.is_empty() {
        // Docker: "Conflicting options: hostname and the UTS mode".
        return Err(refuse("Hostname", hostname, "none with UTSMode host"));
    }
    let mode = host.network_mode.as_deref().unwrap_or_default();
    if mode.starts_with("container:") && !hostname.is_empty() {
        // Docker: "conflicting options: hostname and the network mode"; it takes the other's.
        return Err(refuse(
            "Hostname",
            hostname,
            "none with NetworkMode container: (the other container's hostname is used)",
        ));
    }
    Ok(())
}

/// CapAdd or CapDrop: capability names (`NET_ADMIN`, `CAP_NET_ADMIN`) or `ALL`, on runc.
fn capabilities(
    field: &str,
    list: Option<&Vec<String>>,
    runtime: Profile,
) -> Result<Vec<String>, ApiError> {
    let list = list.cloned().unwrap_or_default();
    for name in &list {
        if !runtime.confined {
            return Err(refuse(field, name, "none with the process runtime"));
        }
        // oci-spec's names, as the runc bundle parses them (`NET_ADMIN`, `CAP_NET_ADMIN`).
        let known = name.eq_ignore_ascii_case("ALL")
            || serde_json::from_value::<oci_spec::runtime::Capability>(name.as_str().into())
                .is_ok();
        if !known {
            return Err(refuse(field, name, "capability names and ALL"));
        }
    }
    Ok(list)
}

/// Memory, CPU, pids, /dev/shm, a read-only rootfs and Privileged: runc applies them, the
/// process runtime applies none (the other resources: [`crate::api::resources`]).
fn check_resources(host: &HostConfig, runtime: Profile) -> Result<(), ApiError> {
    if host.memory < 0 {
        return Err(refuse(
            "HostConfig.Memory",
            host.memory,
            "0 or a positive size",
        ));
    }
    if host.nano_cpus < 0 {
        return Err(refuse(
            "HostConfig.NanoCpus",
            host.nano_cpus,
            "0 or a positive count",
        ));
    }
    if runtime.limits {
        return Ok(());
    }
    let process = "0 with the process runtime";
    let set = [
        ("HostConfig.Memory", host.memory),
        ("HostConfig.NanoCpus", host.nano_cpus),
        ("HostConfig.PidsLimit", host.pids_limit.unwrap_or(0).max(0)),
        ("HostConfig.ShmSize", host.shm_size),
    ];
    if let Some((field, v)) = set.into_iter().find(|(_, v)| *v != 0) {
        return Err(refuse(field, v, process));
    }
    if host.privileged && !runtime.confined {
        return Err(refuse(
            "HostConfig.Privileged",
            true,
            "false with the process runtime",
        ));
    }
    if host.readonly_rootfs {
        return Err(refuse(
            "HostConfig.ReadonlyRootfs",
            true,
            "false with the process runtime",
        ));
    }
    Ok(())
}

/// ExposedPorts keys: `PORT[/tcp|udp|sctp]`, as Docker's nat.ParsePort takes them.
fn exposed_ports(req: &CreateRequest) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for key in req.exposed_ports.iter().flat_map(BTreeMap::keys) {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let ok =
            port.parse::<u16>().is_ok_and(|p| p > 0) && ["tcp", "udp", "sctp"].contains(&proto);
        if !ok {
            return Err(refuse("ExposedPorts", key, "PORT[/tcp|udp|sctp]"));
        }
        out.push(format!("{port}/{proto}"));
    }
    Ok(out)
}

/// Published ports (`PortBindings`, `PublishAllPorts` with the exposed ports) and the
/// exposed ports with the published ones added, as Docker records them. Refused on a
/// network without a bridge (`none`, `host`).
fn published_ports(
    host: &HostConfig,
    mut exposed: Vec<String>,
    shown_network: &str,
) -> Result<(Vec<PortBinding>, Vec<String>), ApiError> {
    let invalid = |field: &str, reason: String| FieldError::Invalid {
        field: field.into(),
        reason,
    };
    let field = match host.port_bindings.is_empty() {
        true => "HostConfig.PublishAllPorts",
        false => "HostConfig.PortBindings",
    };
    let bindings = crate::network::ports::from_api(&host.port_bindings)
        .map_err(|e| invalid("HostConfig.PortBindings", e.to_string()))?;
    let publishes = !bindings.is_empty() || host.publish_all_ports;
    crate::network::ports::check_network(shown_network, publishes)
        .map_err(|reason| invalid(field, reason))?;
    for b in &bindings {
        let key = format!("{}/{}", b.container_port, b.proto);
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    Ok((bindings, exposed))
}

/// The network mode moor records for a runc container: `default`, `bridge`, `none`, `host`
/// or a user network's name or id (the Supervisor finds it).
fn network_mode(host: &HostConfig) -> Result<String, ApiError> {
    match host.network_mode.as_deref() {
        None | Some("" | "default") => Ok("default".into()),
        Some(name) if moor_state::network::valid_name(name).is_ok() => Ok(name.into()),
        Some(m @ ("none" | "bridge" | "host")) => Ok(m.into()),
        Some(m) if m.strip_prefix("container:").is_some_and(|c| !c.is_empty()) => Ok(m.into()),
        Some(other) => Err(refuse(
            "HostConfig.NetworkMode",
            other,
            "default, bridge, none, host, container:NAME and the name or id of a user network",
        )),
    }
}

/// `EndpointsConfig.<own network>.Aliases` (the field rule let no other entry through):
/// refused unless the network is a user network (Docker's rule), on a runtime with a network
/// of its own.
fn network_aliases(
    req: &CreateRequest,
    mode: &str,
    kind: Profile,
) -> Result<Vec<String>, ApiError> {
    let endpoints = req
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.as_ref());
    let mut out = Vec::new();
    for (key, entry) in endpoints.into_iter().flatten() {
        let Some(aliases) = entry.as_ref().and_then(|e| e.aliases.clone()) else {
            continue;
        };
        let builtin = matches!(mode, "default" | "bridge" | "none" | "host")
            || mode.starts_with("container:");
        if !aliases.is_empty() && (builtin || !kind.own_network) {
            return Err(refuse(
                &format!("NetworkingConfig.EndpointsConfig.{key}.Aliases"),
                aliases.join(","),
                "aliases on a user-defined network",
            ));
        }
        out.extend(aliases);
    }
    Ok(out)
}

/// Without Tty, StdinOnce must follow OpenStdin: the shim closes a container's stdin when
/// its first writer goes (Docker's StdinOnce). A terminal's input is never closed by a
/// client that goes (Docker's too), so with Tty either value is taken.
fn check_streams(req: &CreateRequest) -> Result<(), ApiError> {
    if !req.tty && req.open_stdin != req.stdin_once {
        return Err(refuse(
            "StdinOnce",
            req.stdin_once,
            "the value of OpenStdin: stdin closes when the first attached client detaches",
        ));
    }
    Ok(())
}

/// `VolumesFrom`, checked (the sources are looked up by the create route); runc only.
fn volumes_from(host: &HostConfig, runc: bool) -> Result<Vec<String>, ApiError> {
    let entries = host.volumes_from.clone().unwrap_or_default();
    for entry in &entries {
        crate::api::mounts::parse_volumes_from(entry)?;
    }
    if !runc && !entries.is_empty() {
        return Err(crate::api::mounts::MountError::ProcessRuntime {
            field: "HostConfig.VolumesFrom",
        }
        .into());
    }
    Ok(entries)
}

/// The json-file driver's options (the only driver).
fn log_opts(host: &HostConfig) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(lc) = host.log_config.as_ref() else {
        return Ok(BTreeMap::new());
    };
    if !matches!(lc.kind.as_str(), "" | "json-file") {
        return Err(refuse("HostConfig.LogConfig.Type", &lc.kind, "json-file"));
    }
    Ok(lc.config.clone())
}

/// Turns a Docker create request into a container spec and the create's warnings, or says
/// what is wrong with it. `find_image` maps an image name or id to an imported image, whose
/// config gives the defaults ([`crate::api::image_defaults::merge`]).
pub fn to_spec(
    mut req: CreateRequest,
    default_runtime: RuntimeKind,
    find_image: impl FnOnce(&str) -> Result<Option<ImageRecord>, ApiError>,
) -> Result<(ContainerSpec, Vec<String>), ApiError> {
    if req.image.is_empty() {
        return Err(ApiError::Query {
            name: "Image",
            value: String::new(),
        });
    }
    let runtime = runtime_of(&req, default_runtime)?;
    let kind = profile(runtime);
    let image_id = match kind.runs_images {
        false if req.image == HOST_IMAGE => String::new(),
        false => return Err(ApiError::NoSuchImage(req.image)),
        true => {
            let img =
                find_image(&req.image)?.ok_or_else(|| ApiError::NoSuchImage(req.image.clone()))?;
            crate::api::image_defaults::merge(&mut req, &img.config);
            img.id
        }
    };
    check_streams(&req)?;
    let cmd = req.cmd.take().unwrap_or_default();
    let entrypoint = req.entrypoint.take().unwrap_or_default();
    if cmd.is_empty() && entrypoint.is_empty() {
        return Err(ApiError::NoCommand);
    }
    let host = req.host_config.take().unwrap_or_default();
    if let Some(sig) = req.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        parse_signal(sig).ok_or_else(|| ApiError::InvalidSignal(sig.into()))?;
    }
    let log_opts = log_opts(&host)?;
    let network_mode = network_mode(&host)?;
    let builtin = matches!(
        network_mode.as_str(),
        "default" | "bridge" | "none" | "host"
    );
    if !builtin && !kind.own_network {
        return Err(refuse(
            "HostConfig.NetworkMode",
            &network_mode,
            "the host's network on a runtime without a network of its own",
        ));
    }
    let network_aliases = network_aliases(&req, &network_mode, kind)?;
    check_modes(&req, &host, kind)?;
    check_resources(&host, kind)?;
    let cap_add = capabilities("HostConfig.CapAdd", host.cap_add.as_ref(), kind)?;
    let cap_drop = capabilities("HostConfig.CapDrop", host.cap_drop.as_ref(), kind)?;
    let resources = crate::api::resources::resources(&host)?;
    let process = crate::api::resources::process_options(&host, &network_mode)?;
    crate::api::resources::check_runtime(&resources, &process, kind)?;
    // Mounts are part of the runtime's bundle: a runtime with images of its own has one.
    let (mounts, warnings) = crate::api::mounts::mounts_of(&req, &host, kind.runs_images)?;
    let mut spec = ContainerSpec {
        healthcheck: crate::api::health::of(&req)?,
        mounts,
        endpoint: None,
        exposed_ports: exposed_ports(&req)?,
        attach: AttachHints {
            stdin: req.attach_stdin,
            stdout: req.attach_stdout,
            stderr: req.attach_stderr,
        },
        container_id_file: host.container_id_file.clone(),
        pid_mode: host.pid_mode.clone(),
        uts_mode: host.uts_mode.clone(),
        ipc_mode: host.ipc_mode.clone(),
        cap_add,
        cap_drop,
        privileged: host.privileged,
        image: req.image,
        cmd,
        entrypoint,
        env: req.env.unwrap_or_default(),
        working_dir: req.working_dir.unwrap_or_default(),
        user: req.user.unwrap_or_default(),
        labels: req.labels.unwrap_or_default(),
        hostname: req.hostname.unwrap_or_default(),
        stop_signal: req.stop_signal.unwrap_or_default(),
        stop_timeout: req.stop_timeout,
        auto_remove: host.auto_remove,
        restart_policy: restart_policy(host.restart_policy.as_ref())?,
        runtime,
        log_opts,
        open_stdin: req.open_stdin,
        tty: req.tty,
        console_size: host.console_size.unwrap_or_default(),
        volumes_from: volumes_from(&host, kind.confined)?,
        image_id,
        memory: host.memory,
        nano_cpus: host.nano_cpus,
        pids_limit: host.pids_limit.filter(|l| *l > 0),
        read_only: host.readonly_rootfs,
        network_mode: kind.network_mode_at_create(&network_mode),
        network_aliases,
        extra_endpoints: Vec::new(),
        joined_network: None,
        port_bindings: Vec::new(),
        publish_all: host.publish_all_ports,
        resources,
        process,
    };
    let (bindings, exposed) =
        published_ports(&host, spec.exposed_ports.clone(), &kind.network_mode(&spec))?;
    spec.port_bindings = bindings;
    spec.exposed_ports = exposed;
    Ok((spec, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn req(cmd: &[&str]) -> CreateRequest {
        CreateRequest {
            image: HOST_IMAGE.into(),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn create_needs_a_command() {
        let spec = |r| to_spec(r, RuntimeKind::Runc, |_| Ok(None));
        assert!(matches!(spec(req(&[])), Err(ApiError::NoCommand)));
        assert_eq!(spec(req(&["true"])).unwrap().0.cmd, vec!["true"]);
    }

    fn image(config: moor_state::image::ImageConfig) -> ImageRecord {
        ImageRecord {
            version: moor_state::image::IMAGE_RECORD_VERSION,
            id: "ab".repeat(32),
            repo_tags: Vec::new(),
            created_at: Utc::now(),
            size: 0,
            config,
            layers: Vec::new(),
            repo_digests: Vec::new(),
            manifest_type: None,
        }
    }

    #[test]
    fn the_image_config_gives_the_defaults() {
        let changes = ["ENV A=1".to_string(), "CMD echo $A".to_string()];
        let config = crate::image::changes::apply(&Default::default(), &changes).unwrap();
        let mut r = req(&[]);
        r.image = "bb".into();
        let with = |c: &moor_state::image::ImageConfig| {
            let c = c.clone();
            move |_: &str| Ok(Some(image(c)))
        };
        let (spec, _) = to_spec(r.clone(), RuntimeKind::Runc, with(&config)).expect("image cmd");
        assert_eq!(spec.argv(), vec!["/bin/sh", "-c", "echo $A"]);
        assert_eq!(spec.env, vec!["A=1"]);
        let e = to_spec(r, RuntimeKind::Runc, with(&Default::default())).unwrap_err();
        assert!(matches!(e, ApiError::NoCommand));
    }

    #[test]
    fn a_user_network_is_refused_on_a_runtime_without_a_network() {
        let mut r = req(&["true"]);
        r.host_config = Some(HostConfig {
            network_mode: Some("front".into()),
            ..HostConfig::default()
        });
        let e = to_spec(r.clone(), RuntimeKind::Process, |_| Ok(None)).unwrap_err();
        assert!(
            e.to_string().contains("HostConfig.NetworkMode=front"),
            "{e}"
        );
        r.image = "busybox".into();
        let found = |_: &str| Ok(Some(image(Default::default())));
        let (spec, _) = to_spec(r, RuntimeKind::Runc, found).expect("runc");
        assert_eq!(spec.network_mode, "front");
    }

    #[test]
    fn port_bindings_are_parsed_and_refused_without_a_bridge() {
        let found = |_: &str| Ok(Some(image(Default::default())));
        let mut r = req(&["true"]);
        r.image = "busybox".into();
        let mut host = HostConfig {
            port_bindings: [("80/tcp".to_string(), serde_json::json!([{"HostPort": "x"}]))].into(),
            // `default` is resolved by the Supervisor (bridge or none): `none` is refused here.
            network_mode: Some("none".into()),
            ..HostConfig::default()
        };
        r.host_config = Some(host.clone());
        let e = to_spec(r.clone(), RuntimeKind::Runc, found).unwrap_err();
        assert_eq!(
            e.to_string(),
            "HostConfig.PortBindings: invalid port specification '80/tcp {\"HostPort\":\"x\"}': \
             host port \"x\" is not a port (1-65535)"
        );
        host.port_bindings = [(
            "80/tcp".to_string(),
            serde_json::json!([{"HostPort": "8080"}]),
        )]
        .into();
        // `default` may be the bridge (the Supervisor refuses it when the bridge is off).
        host.network_mode = None;
        r.host_config = Some(host.clone());
        assert!(to_spec(r.clone(), RuntimeKind::Runc, found).is_ok());
        host.network_mode = Some("none".into());
        r.host_config = Some(host.clone());
        let e = to_spec(r.clone(), RuntimeKind::Runc, found).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("HostConfig.PortBindings: published ports"),
            "{e}"
        );
        assert!(
            e.to_string()
                .ends_with("this container's network is \"none\""),
            "{e}"
        );
        host.port_bindings.clear();
        host.publish_all_ports = true;
        r.host_config = Some(host);
        let e = to_spec(r, RuntimeKind::Runc, found).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("HostConfig.PublishAllPorts: published ports"),
            "{e}"
        );
    }

    #[test]
    fn published_ports_join_the_exposed_ones() {
        let host = HostConfig {
            port_bindings: [(
                "80/tcp".to_string(),
                serde_json::json!([{"HostPort": "8080"}]),
            )]
            .into(),
            ..HostConfig::default()
        };
        let (bindings, exposed) =
            published_ports(&host, vec!["443/tcp".into(), "80/tcp".into()], "bridge").unwrap();
        assert_eq!(exposed, ["443/tcp", "80/tcp"]);
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].host_port, Some(8080));
        let (_, exposed) = published_ports(&host, vec![], "bridge").unwrap();
        assert_eq!(exposed, ["80/tcp"]);
    }

    #[test]
    fn unknown_image_is_named() {
        let mut r = req(&["true"]);
        r.image = "busybox".into();
        let e = to_spec(r.clone(), RuntimeKind::Runc, |_| Ok(None)).unwrap_err();
        assert_eq!(e.to_string(), "No such image: busybox");
        let found = |_: &str| Ok(Some(image(Default::default())));
        let (spec, _) = to_spec(r.clone(), RuntimeKind::Runc, found).expect("imported");
        assert_eq!(
            (spec.runtime, spec.network_mode.as_str()),
            (RuntimeKind::Runc, "default")
        );
        let e = to_spec(r, RuntimeKind::Process, found).unwrap_err();
        assert_eq!(e.to_string(), "No such image: busybox");
    }
}
