//! The field rule of `POST /containers/create`, enforced here and nowhere else: every field
//! of Docker Engine API 1.44's create schema (`Config`, `HostConfig` with its `Resources`,
//! `NetworkingConfig`) is either honoured (the typed conversion in
//! `routes::containers::to_spec` applies it and inspect shows it back under Docker's name)
//! or refused with a 400 naming it as soon as it carries anything but its default value.
//!
//! "Default" is what the docker CLI 28 and docker-py 7 send for a plain `docker run`:
//! null, false, 0, "", empty lists and maps ([`Allowed::Zero`]), plus the few values Docker
//! itself treats as unset (`"NetworkMode":"default"`, `"MemorySwappiness":-1`...).
//! A key outside the 1.44 schema is ignored when its value is zero (the CLI sends newer
//! fields such as `GwPriority: 0` even at 1.44, which Docker 25 ignores too) and refused
//! otherwise: moor never drops a value it was given.

use serde_json::{Map, Value};
use thiserror::Error;

/// A create request field moor will not take.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FieldError {
    /// A schema field moor does not implement, given a non-default value.
    #[error("{field} is not supported by moor yet")]
    Unsupported {
        /// Its path in the request body, e.g. `HostConfig.Binds`.
        field: String,
    },
    /// A field moor implements for some values only.
    #[error("{field}={value} is not supported by moor yet (it supports {supported})")]
    Value {
        /// Its path in the request body.
        field: String,
        /// The value given, as JSON.
        value: String,
        /// What moor takes instead.
        supported: &'static str,
    },
    /// A field moor implements, given a value it cannot take.
    #[error("{field}: {reason}")]
    Invalid {
        /// Its path in the request body.
        field: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// A key that is not in the 1.44 schema, given a value.
    #[error("{field} is not a field of the Docker Engine API 1.44 create request")]
    Unknown {
        /// Its path in the request body.
        field: String,
    },
    /// A part of the body that must be a JSON object is not one.
    #[error("{field} must be a JSON object")]
    NotAnObject {
        /// Its path in the request body.
        field: String,
    },
}

/// The values a refused field may still carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Absent, null, false, 0, "", or a list/map of such values.
    Zero,
    /// [`Allowed::Zero`] or one of these JSON texts (e.g. `-1`, `"default"`).
    ZeroOr(&'static [&'static str]),
    /// Absent or null only (`MaskedPaths: []` is a value: "mask nothing").
    Null,
}

/// What moor does with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Applied by `to_spec` (which checks its value) and shown in inspect.
    Honoured,
    /// Not implemented: a 400 naming it unless it carries a default value.
    Refused(Allowed),
}

use Allowed::{Null, Zero, ZeroOr};
use Field::{Honoured, Refused};

/// The top level of the body: Docker's container `Config` (api/types/container/config.go).
pub const CONFIG: &[(&str, Field)] = &[
    ("Hostname", Honoured),
    ("Domainname", Refused(Zero)),
    ("User", Honoured),
    ("AttachStdin", Honoured),
    ("AttachStdout", Honoured),
    ("AttachStderr", Honoured),
    ("ExposedPorts", Honoured),
    ("Tty", Honoured),
    ("OpenStdin", Honoured),
    ("StdinOnce", Honoured),
    ("Env", Honoured),
    ("Cmd", Honoured),
    ("Healthcheck", Honoured),
    ("ArgsEscaped", Refused(Zero)),
    ("Image", Honoured),
    ("Volumes", Honoured),
    ("WorkingDir", Honoured),
    ("Entrypoint", Honoured),
    ("NetworkDisabled", Refused(Zero)),
    ("MacAddress", Refused(Zero)),
    ("OnBuild", Refused(Zero)),
    ("Labels", Honoured),
    ("StopSignal", Honoured),
    ("StopTimeout", Honoured),
    ("Shell", Refused(Zero)),
];

/// `HostConfig` with the `Resources` it embeds (api/types/container/hostconfig.go).
pub const HOST_CONFIG: &[(&str, Field)] = &[
    ("Binds", Honoured),
    ("ContainerIDFile", Honoured),
    ("LogConfig", Honoured),
    ("NetworkMode", Honoured),
    ("PortBindings", Honoured),
    ("RestartPolicy", Honoured),
    ("AutoRemove", Honoured),
    ("VolumeDriver", Refused(Zero)),
    ("VolumesFrom", Honoured),
    ("ConsoleSize", Honoured),
    ("Annotations", Refused(Zero)),
    ("CapAdd", Honoured),
    ("CapDrop", Honoured),
    ("CgroupnsMode", Honoured),
    ("Dns", Honoured),
    ("DnsOptions", Honoured),
    ("DnsSearch", Honoured),
    ("ExtraHosts", Honoured),
    ("GroupAdd", Honoured),
    ("IpcMode", Honoured),
    ("Cgroup", Refused(Zero)),
    ("Links", Refused(Zero)),
    ("OomScoreAdj", Refused(Zero)),
    ("PidMode", Honoured),
    ("Privileged", Honoured),
    ("PublishAllPorts", Honoured),
    ("ReadonlyRootfs", Honoured),
    ("SecurityOpt", Honoured),
    ("StorageOpt", Refused(Zero)),
    ("Tmpfs", Honoured),
    ("UTSMode", Honoured),
    ("UsernsMode", Refused(Zero)),
    ("ShmSize", Honoured),
    ("Sysctls", Honoured),
    ("Runtime", Honoured),
    ("Isolation", Refused(ZeroOr(&["\"default\""]))),
    ("CpuShares", Honoured),
    ("Memory", Honoured),
    ("NanoCpus", Honoured),
    ("CgroupParent", Refused(Zero)),
    ("BlkioWeight", Refused(Zero)),
    ("BlkioWeightDevice", Refused(Zero)),
    ("BlkioDeviceReadBps", Refused(Zero)),
    ("BlkioDeviceWriteBps", Refused(Zero)),
    ("BlkioDeviceReadIOps", Refused(Zero)),
    ("BlkioDeviceWriteIOps", Refused(Zero)),
    ("CpuPeriod", Honoured),
    ("CpuQuota", Honoured),
    ("CpuRealtimePeriod", Refused(Zero)),
    ("CpuRealtimeRuntime", Refused(Zero)),
    ("CpusetCpus", Honoured),
    ("CpusetMems", Honoured),
    ("Devices", Refused(Zero)),
    ("DeviceCgroupRules", Refused(Zero)),
    ("DeviceRequests", Refused(Zero)),
    ("KernelMemory", Refused(Zero)),
    ("KernelMemoryTCP", Refused(Zero)),
    ("MemoryReservation", Honoured),
    ("MemorySwap", Honoured),
    ("MemorySwappiness", Refused(ZeroOr(&["-1"]))),
    ("OomKillDisable", Honoured),
    ("PidsLimit", Honoured),
    ("Ulimits", Honoured),
    ("CpuCount", Refused(Zero)),
    ("CpuPercent", Refused(Zero)),
    ("IOMaximumIOps", Refused(Zero)),
    ("IOMaximumBandwidth", Refused(Zero)),
    ("Mounts", Honoured),
    ("MaskedPaths", Refused(Null)),
    ("ReadonlyPaths", Refused(Null)),
    ("Init", Honoured),
];

/// The body of `POST /containers/{id}/update` (`docker update`): Docker's `UpdateConfig`,
/// the `Resources` of [`HOST_CONFIG`] plus `RestartPolicy`. 0 or "" leaves a setting as it is.
pub const UPDATE: &[(&str, Field)] = &[
    ("Memory", Honoured),
    ("MemorySwap", Honoured),
    ("MemoryReservation", Honoured),
    ("NanoCpus", Honoured),
    ("CpuShares", Honoured),
    ("CpuQuota", Honoured),
    ("CpuPeriod", Honoured),
    ("CpusetCpus", Honoured),
    ("CpusetMems", Honoured),
    ("PidsLimit", Honoured),
    ("RestartPolicy", Honoured),
    ("CgroupParent", Refused(Zero)),
    ("BlkioWeight", Refused(Zero)),
    ("BlkioWeightDevice", Refused(Zero)),
    ("BlkioDeviceReadBps", Refused(Zero)),
    ("BlkioDeviceWriteBps", Refused(Zero)),
    ("BlkioDeviceReadIOps", Refused(Zero)),
    ("BlkioDeviceWriteIOps", Refused(Zero)),
    ("CpuRealtimePeriod", Refused(Zero)),
    ("CpuRealtimeRuntime", Refused(Zero)),
    ("Devices", Refused(Zero)),
    ("DeviceCgroupRules", Refused(Zero)),
    ("DeviceRequests", Refused(Zero)),
    ("KernelMemory", Refused(Zero)),
    ("KernelMemoryTCP", Refused(Zero)),
    ("MemorySwappiness", Refused(ZeroOr(&["-1"]))),
    ("OomKillDisable", Refused(Zero)),
    ("Ulimits", Refused(Zero)),
    ("CpuCount", Refused(Zero)),
    ("CpuPercent", Refused(Zero)),
    ("IOMaximumIOps", Refused(Zero)),
    ("IOMaximumBandwidth", Refused(Zero)),
];

/// The field rule of an update body: Ok when every field is honoured or default.
pub fn check_update(body: &Value) -> Result<(), FieldError> {
    match object(body, "the update request")? {
        Some(obj) => check_object(obj, UPDATE, "", &[]),
        None => Ok(()),
    }
}

/// One entry of `NetworkingConfig.EndpointsConfig` (api/types/network/endpoint.go): an entry
/// is only taken for the container's own network mode, with `Aliases` at most.
pub const ENDPOINT: &[(&str, Field)] = &[
    ("IPAMConfig", Refused(Zero)),
    ("Links", Refused(Zero)),
    ("Aliases", Honoured),
    ("MacAddress", Refused(Zero)),
    ("NetworkID", Refused(Zero)),
    ("EndpointID", Refused(Zero)),
    ("Gateway", Refused(Zero)),
    ("IPAddress", Refused(Zero)),
    ("IPPrefixLen", Refused(Zero)),
    ("IPv6Gateway", Refused(Zero)),
    ("GlobalIPv6Address", Refused(Zero)),
    ("GlobalIPv6PrefixLen", Refused(Zero)),
    ("DriverOpts", Refused(Zero)),
    ("DNSNames", Refused(Zero)),
];

/// One `HostConfig.Mounts` entry (api/types/mount/mount.go).
pub const MOUNT: &[(&str, Field)] = &[
    ("Type", Honoured),
    ("Source", Honoured),
    ("Target", Honoured),
    ("ReadOnly", Honoured),
    // Docker Desktop's hint, which Docker ignores on Linux too.
    ("Consistency", Honoured),
    ("BindOptions", Honoured),
    ("VolumeOptions", Honoured),
    ("TmpfsOptions", Honoured),
    ("ClusterOptions", Refused(Zero)),
];

/// `Mount.BindOptions`.
pub const BIND_OPTIONS: &[(&str, Field)] = &[
    ("Propagation", Honoured),
    ("NonRecursive", Refused(Zero)),
    ("CreateMountpoint", Refused(Zero)),
    ("ReadOnlyNonRecursive", Refused(Zero)),
    ("ReadOnlyForceRecursive", Refused(Zero)),
];

/// `Mount.VolumeOptions`.
pub const VOLUME_OPTIONS: &[(&str, Field)] = &[
    ("NoCopy", Honoured),
    ("Labels", Honoured),
    ("DriverConfig", Refused(ZeroOr(&[r#"{"Name":"local"}"#]))),
    ("Subpath", Refused(Zero)),
];

/// `Mount.TmpfsOptions`.
pub const TMPFS_OPTIONS: &[(&str, Field)] = &[
    ("SizeBytes", Honoured),
    ("Mode", Honoured),
    ("Options", Refused(Zero)),
];

/// `HostConfig.Mounts`: each entry and its options against their tables.
fn check_mounts(v: &Value) -> Result<(), FieldError> {
    let Some(list) = v.as_array() else {
        return match v {
            Value::Null => Ok(()),
            _ => Err(FieldError::NotAnObject {
                field: "HostConfig.Mounts".into(),
            }),
        };
    };
    let options = [
        ("BindOptions", BIND_OPTIONS),
        ("VolumeOptions", VOLUME_OPTIONS),
        ("TmpfsOptions", TMPFS_OPTIONS),
    ];
    for (i, entry) in list.iter().enumerate() {
        let prefix = format!("HostConfig.Mounts[{i}]");
        let Some(m) = object(entry, &prefix)? else {
            continue;
        };
        check_object(m, MOUNT, &format!("{prefix}."), &[])?;
        for (key, table) in options {
            let field = format!("{prefix}.{key}");
            if let Some(o) = m.get(key).map(|o| object(o, &field)).transpose()?.flatten() {
                check_object(o, table, &format!("{field}."), &[])?;
            }
        }
    }
    Ok(())
}

/// Whether `v` is JSON's zero value: null, false, 0, "", an empty map, or a list of those
/// scalars (`ConsoleSize: [0, 0]`). A map with a key is a value (`Volumes: {"/data": {}}`).
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a
            .iter()
            .all(|x| !x.is_array() && !x.is_object() && is_zero(x)),
        Value::Object(m) => m.is_empty(),
    }
}

fn is_default(v: &Value, d: Allowed) -> bool {
    match d {
        Zero => is_zero(v),
        ZeroOr(texts) => {
            is_zero(v)
                || texts
                    .iter()
                    .any(|t| serde_json::from_str::<Value>(t).is_ok_and(|t| t == *v))
        }
        Null => v.is_null(),
    }
}

/// Checks the keys of `obj` against `table`; `prefix` names where `obj` sits in the body.
fn check_object(
    obj: &Map<String, Value>,
    table: &[(&str, Field)],
    prefix: &str,
    skip: &[&str],
) -> Result<(), FieldError> {
    for (key, value) in obj {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let field = format!("{prefix}{key}");
        match table.iter().find(|(name, _)| name == key) {
            Some((_, Honoured)) => {}
            Some((_, Refused(d))) if is_default(value, *d) => {}
            Some((_, Refused(_))) => return Err(FieldError::Unsupported { field }),
            None if is_zero(value) => {}
            None => return Err(FieldError::Unknown { field }),
        }
    }
    Ok(())
}

/// The `EndpointConfig` of `POST /networks/{id}/connect` (named `prefix` in errors):
/// [`ENDPOINT`]'s rule, with an `IPAMConfig` whose addresses are all empty taken as empty
/// (the docker CLI and docker-py send one).
pub fn check_endpoint(v: &Value, prefix: &str) -> Result<(), FieldError> {
    let Some(obj) = object(v, prefix)? else {
        return Ok(());
    };
    let mut obj = obj.clone();
    if obj
        .get("IPAMConfig")
        .and_then(Value::as_object)
        .is_some_and(|m| m.values().all(is_zero))
    {
        obj.remove("IPAMConfig");
    }
    check_object(&obj, ENDPOINT, &format!("{prefix}."), &[])
}

fn object<'a>(v: &'a Value, field: &str) -> Result<Option<&'a Map<String, Value>>, FieldError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        _ => Err(FieldError::NotAnObject {
            field: field.into(),
        }),
    }
}

/// `NetworkingConfig`: `EndpointsConfig` may name the container's own network (`default`,
/// `none` or `host`, as the CLI does) with every setting empty.
fn check_networking(v: &Value, network_mode: &str) -> Result<(), FieldError> {
    let Some(nc) = object(v, "NetworkingConfig")? else {
        return Ok(());
    };
    check_object(nc, &[], "NetworkingConfig.", &["EndpointsConfig"])?;
    let Some(endpoints) = nc.get("EndpointsConfig") else {
        return Ok(());
    };
    let Some(endpoints) = object(endpoints, "NetworkingConfig.EndpointsConfig")? else {
        return Ok(());
    };
    for (name, settings) in endpoints {
        let prefix = format!("NetworkingConfig.EndpointsConfig.{name}");
        let default = |n: &str| matches!(n, "" | "default" | "bridge");
        let own = name == network_mode || (default(name) && default(network_mode));
        if !own {
            return Err(FieldError::Unsupported { field: prefix });
        }
        if let Some(s) = object(settings, &prefix)? {
            check_object(s, ENDPOINT, &format!("{prefix}."), &[])?;
        }
    }
    Ok(())
}

/// Applies the field rule to a create request body (a JSON object): Ok when every field is
/// honoured or default, else the first refused field.
pub fn check(body: &Value) -> Result<(), FieldError> {
    let Some(obj) = object(body, "the create request")? else {
        return Ok(());
    };
    check_object(obj, CONFIG, "", &["HostConfig", "NetworkingConfig"])?;
    let mut network_mode = String::new();
    if let Some(hc) = obj.get("HostConfig") {
        if let Some(hc) = object(hc, "HostConfig")? {
            check_object(hc, HOST_CONFIG, "HostConfig.", &[])?;
            if let Some(mounts) = hc.get("Mounts") {
                check_mounts(mounts)?;
            }
            let mode = hc.get("NetworkMode").and_then(Value::as_str);
            network_mode = mode.unwrap_or_default().to_string();
        }
    }
    if let Some(nc) = obj.get("NetworkingConfig") {
        check_networking(nc, &network_mode)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What docker CLI 28.2.2 sends for `docker create busybox true` (captured).
    const CLI_CREATE: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#;

    /// What docker-py 7 sends for `containers.create("busybox", ["true"])` (captured).
    const PY_CREATE: &str = r#"{"Tty": false, "OpenStdin": false, "StdinOnce": false, "AttachStdin": false, "AttachStdout": true, "AttachStderr": true, "Cmd": ["true"], "Image": "busybox", "NetworkDisabled": false, "HostConfig": {"NetworkMode": "default"}}"#;

    #[test]
    fn what_clients_send_by_default_passes() {
        for body in [CLI_CREATE, PY_CREATE] {
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(check(&v), Ok(()), "{body}");
        }
    }

    #[test]
    fn a_refused_field_is_named() {
        let mut v: Value = serde_json::from_str(CLI_CREATE).unwrap();
        v["HostConfig"]["Binds"] = json!(["/a:/b"]);
        assert_eq!(check(&v), Ok(()), "Binds are honoured");
        v["HostConfig"]["Mounts"] = json!([{"Type": "bind", "Source": "/a", "Target": "/b",
            "BindOptions": {"Propagation": "rshared", "NonRecursive": true}}]);
        assert_eq!(
            check(&v).unwrap_err().to_string(),
            "HostConfig.Mounts[0].BindOptions.NonRecursive is not supported by moor yet"
        );
        v["HostConfig"]["Mounts"] = json!([{"Type": "volume", "Target": "/b",
            "VolumeOptions": {"DriverConfig": {"Name": "local"}}}]);
        assert_eq!(check(&v), Ok(()));
        v["HostConfig"]["Mounts"] = json!([{"Type": "tmpfs", "Target": "/b", "Future": 1}]);
        assert!(check(&v).is_err(), "an unknown key with a value is refused");
        v["HostConfig"]["Mounts"] = Value::Null;
        v["HostConfig"]["PortBindings"] = json!({"80/tcp": [{"HostPort": "80"}]});
        assert_eq!(check(&v), Ok(()), "PortBindings are honoured");
        v["HostConfig"]["OomScoreAdj"] = json!(100);
        assert_eq!(
            check(&v).unwrap_err().to_string(),
            "HostConfig.OomScoreAdj is not supported by moor yet"
        );
        v["HostConfig"]["OomScoreAdj"] = json!(0);
        v["HostConfig"]["MaskedPaths"] = json!([]);
        assert!(check(&v).is_err(), "[] unmasks everything: not a default");
        v["HostConfig"]["MaskedPaths"] = Value::Null;
        v["HostConfig"]["MemorySwappiness"] = json!(10);
        assert!(check(&v).is_err());
        v["HostConfig"]["MemorySwappiness"] = json!(-1);
        v["NetworkingConfig"]["EndpointsConfig"]["default"]["Aliases"] = json!(["x"]);
        assert_eq!(
            check(&v),
            Ok(()),
            "aliases are honoured (on a user network)"
        );
        v["NetworkingConfig"]["EndpointsConfig"]["default"]["Links"] = json!(["x"]);
        assert_eq!(
            check(&v).unwrap_err().to_string(),
            "NetworkingConfig.EndpointsConfig.default.Links is not supported by moor yet"
        );
    }

    #[test]
    fn unknown_keys_pass_only_when_zero() {
        assert_eq!(check(&json!({"Image": "x", "Future": 0})), Ok(()));
        assert_eq!(
            check(&json!({"Image": "x", "cmd": ["true"]})),
            Err(FieldError::Unknown {
                field: "cmd".into()
            })
        );
        assert!(check(&json!({"HostConfig": []})).is_err());
        assert!(
            check(&json!({"Labels": {"a": ""}, "Domainname": {"x": {}}})).is_err(),
            "a key is a value"
        );
        assert!(check(&json!({"HostConfig": {"ConsoleSize": [0, 0]}})).is_ok());
        assert!(check(&json!({"NetworkingConfig": {"EndpointsConfig": {"br": {}}}})).is_err());
    }

    #[test]
    fn every_table_entry_is_unique() {
        for table in [
            CONFIG,
            HOST_CONFIG,
            UPDATE,
            ENDPOINT,
            MOUNT,
            BIND_OPTIONS,
            VOLUME_OPTIONS,
            TMPFS_OPTIONS,
        ] {
            let mut names: Vec<_> = table.iter().map(|(n, _)| *n).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len());
        }
    }
}
