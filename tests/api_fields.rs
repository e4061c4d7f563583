//! Issue 16, the field rule: every field of Docker Engine API 1.44's create schema
//! (`Config`, `HostConfig` with `Resources`, `NetworkingConfig`), given a non-default value
//! through the real daemon, is either refused with a 400 naming it (and nothing is created)
//! or honoured and shown back in inspect under Docker's name. The schema list below is
//! written from moby v25.0.0 (API 1.44) api/types/container/{config,hostconfig}.go and
//! api/types/network/endpoint.go, independently of moor's table, and both are compared.

mod common;

use std::collections::BTreeSet;

use common::runc::skip_reason;
use common::{describe, Daemon, LIVE_RESTORE_ON};
use serde_json::{json, Value};

/// What a field with its value must give.
enum Expect {
    /// 400, the message names the field, nothing is created.
    Refused,
    /// 201 and inspect shows this value at this path (`HostConfig.Memory`...).
    Shown(&'static str, Value),
}

use Expect::{Refused, Shown};

/// One case: the field (its path in the body), a non-default value, other fields it needs.
struct Case {
    field: &'static str,
    value: Value,
    with: Vec<(&'static str, Value)>,
    expect: Expect,
}

fn case(field: &'static str, value: Value, expect: Expect) -> Case {
    Case {
        field,
        value,
        with: Vec::new(),
        expect,
    }
}

/// Shown back under the same name and value.
fn same(field: &'static str, value: Value) -> Case {
    let path = if field.contains('.') {
        field
    } else {
        // Top-level fields of the body are inspect's Config.
        Box::leak(format!("Config.{field}").into_boxed_str())
    };
    case(field, value.clone(), Shown(path, value))
}

/// `Config` (the top level of the body) of API 1.44.
fn config_cases() -> Vec<Case> {
    vec![
        same("Hostname", json!("h1")),
        case("Domainname", json!("example.com"), Refused),
        same("User", json!("1:1")),
        same("AttachStdin", json!(true)),
        same("AttachStdout", json!(true)),
        same("AttachStderr", json!(true)),
        same("ExposedPorts", json!({"80/tcp": {}})),
        same("Tty", json!(true)),
        Case {
            with: vec![("StdinOnce", json!(true))],
            ..same("OpenStdin", json!(true))
        },
        case("StdinOnce", json!(true), Refused),
        same("Env", json!(["A=1"])),
        same("Cmd", json!(["echo", "x"])),
        same(
            "Healthcheck",
            json!({"Test": ["CMD", "true"], "Interval": 1_000_000_000}),
        ),
        case("ArgsEscaped", json!(true), Refused),
        same("Image", json!("bb")),
        same("Volumes", json!({"/data": {}})),
        same("WorkingDir", json!("/tmp")),
        same("Entrypoint", json!(["/bin/sh"])),
        case("NetworkDisabled", json!(true), Refused),
        case("MacAddress", json!("02:42:ac:11:00:02"), Refused),
        case("OnBuild", json!(["RUN true"]), Refused),
        same("Labels", json!({"a": "b"})),
        same("StopSignal", json!("SIGINT")),
        same("StopTimeout", json!(5)),
        case("Shell", json!(["/bin/sh", "-c"]), Refused),
    ]
}

const MIB64: i64 = 64 << 20;

/// `HostConfig` of API 1.44, `Resources` included.
fn host_config_cases() -> Vec<Case> {
    let throttle = json!([{"Path": "/dev/null", "Rate": 1024}]);
    vec![
        same("HostConfig.Binds", json!(["/tmp:/data:ro"])),
        same("HostConfig.ContainerIDFile", json!("/tmp/cid")),
        same(
            "HostConfig.LogConfig",
            json!({"Type": "json-file", "Config": {"max-size": "1m"}}),
        ),
        Case {
            with: vec![("NetworkingConfig", json!({"EndpointsConfig": {"host": {}}}))],
            ..same("HostConfig.NetworkMode", json!("host"))
        },
        case(
            "HostConfig.PortBindings",
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
            Refused,
        ),
        same(
            "HostConfig.RestartPolicy",
            json!({"Name": "always", "MaximumRetryCount": 0}),
        ),
        same("HostConfig.AutoRemove", json!(true)),
        case("HostConfig.VolumeDriver", json!("local"), Refused),
        // The first container the walk creates is named `base`.
        same("HostConfig.VolumesFrom", json!(["base:ro"])),
        same("HostConfig.ConsoleSize", json!([24, 80])),
        case("HostConfig.Annotations", json!({"a": "b"}), Refused),
        same("HostConfig.CapAdd", json!(["NET_ADMIN"])),
        case("HostConfig.CapAdd", json!(["NOT_A_CAP"]), Refused),
        same("HostConfig.CapDrop", json!(["ALL"])),
        same("HostConfig.CgroupnsMode", json!("host")),
        case("HostConfig.CgroupnsMode", json!("private"), Refused),
        same("HostConfig.Dns", json!(["192.0.2.1"])),
        case("HostConfig.Dns", json!(["not-an-address"]), Refused),
        same("HostConfig.DnsOptions", json!(["ndots:2"])),
        same("HostConfig.DnsSearch", json!(["example.com"])),
        same("HostConfig.ExtraHosts", json!(["h:192.0.2.1"])),
        case("HostConfig.ExtraHosts", json!(["h:not-an-ip"]), Refused),
        same("HostConfig.GroupAdd", json!(["10", "20"])),
        case("HostConfig.GroupAdd", json!(["no-such-group"]), Refused),
        same("HostConfig.IpcMode", json!("private")),
        same("HostConfig.IpcMode", json!("host")),
        case("HostConfig.IpcMode", json!("shareable"), Refused),
        case("HostConfig.Cgroup", json!("other"), Refused),
        case("HostConfig.Links", json!(["a:b"]), Refused),
        case("HostConfig.OomScoreAdj", json!(100), Refused),
        same("HostConfig.PidMode", json!("host")),
        case("HostConfig.PidMode", json!("container:x"), Refused),
        same("HostConfig.Privileged", json!(true)),
        case("HostConfig.PublishAllPorts", json!(true), Refused),
        same("HostConfig.ReadonlyRootfs", json!(true)),
        same("HostConfig.SecurityOpt", json!(["no-new-privileges"])),
        same("HostConfig.SecurityOpt", json!(["no-new-privileges:false"])),
        case(
            "HostConfig.SecurityOpt",
            json!(["seccomp=unconfined"]),
            Refused,
        ),
        case("HostConfig.StorageOpt", json!({"size": "1G"}), Refused),
        same("HostConfig.Tmpfs", json!({"/run": "size=1m"})),
        same("HostConfig.UTSMode", json!("host")),
        case("HostConfig.UTSMode", json!("private"), Refused),
        case("HostConfig.UsernsMode", json!("host"), Refused),
        same("HostConfig.ShmSize", json!(MIB64)),
        same("HostConfig.ShmSize", json!(MIB64 * 2)),
        case("HostConfig.ShmSize", json!(-1), Refused),
        same("HostConfig.Sysctls", json!({"net.ipv4.ip_forward": "1"})),
        same("HostConfig.Sysctls", json!({"kernel.shmmax": "1000000"})),
        case(
            "HostConfig.Sysctls",
            json!({"kernel.pid_max": "1000"}),
            Refused,
        ),
        same("HostConfig.Runtime", json!("runc")),
        case("HostConfig.Isolation", json!("hyperv"), Refused),
        same("HostConfig.CpuShares", json!(512)),
        case("HostConfig.CpuShares", json!(-2), Refused),
        same("HostConfig.Memory", json!(MIB64)),
        same("HostConfig.NanoCpus", json!(500_000_000)),
        case("HostConfig.CgroupParent", json!("other"), Refused),
        case("HostConfig.BlkioWeight", json!(300), Refused),
        case(
            "HostConfig.BlkioWeightDevice",
            json!([{"Path": "/dev/null", "Weight": 300}]),
            Refused,
        ),
        case("HostConfig.BlkioDeviceReadBps", throttle.clone(), Refused),
        case("HostConfig.BlkioDeviceWriteBps", throttle.clone(), Refused),
        case("HostConfig.BlkioDeviceReadIOps", throttle.clone(), Refused),
        case("HostConfig.BlkioDeviceWriteIOps", throttle, Refused),
        same("HostConfig.CpuPeriod", json!(100_000)),
        case("HostConfig.CpuPeriod", json!(10), Refused),
        same("HostConfig.CpuQuota", json!(50_000)),
        Case {
            with: vec![("HostConfig.NanoCpus", json!(500_000_000))],
            ..case("HostConfig.CpuQuota", json!(50_000), Refused)
        },
        case("HostConfig.CpuRealtimePeriod", json!(1000), Refused),
        case("HostConfig.CpuRealtimeRuntime", json!(100), Refused),
        same("HostConfig.CpusetCpus", json!("0")),
        case("HostConfig.CpusetCpus", json!("0-999"), Refused),
        same("HostConfig.CpusetMems", json!("0")),
        case(
            "HostConfig.Devices",
            json!([{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]),
            Refused,
        ),
        case(
            "HostConfig.DeviceCgroupRules",
            json!(["c 1:3 rwm"]),
            Refused,
        ),
        case(
            "HostConfig.DeviceRequests",
            json!([{"Driver": "nvidia", "Count": -1}]),
            Refused,
        ),
        case("HostConfig.KernelMemory", json!(MIB64), Refused),
        case("HostConfig.KernelMemoryTCP", json!(MIB64), Refused),
        same("HostConfig.MemoryReservation", json!(MIB64)),
        Case {
            with: vec![("HostConfig.Memory", json!(MIB64))],
            ..case("HostConfig.MemoryReservation", json!(MIB64 * 2), Refused)
        },
        Case {
            with: vec![("HostConfig.Memory", json!(MIB64))],
            ..same("HostConfig.MemorySwap", json!(MIB64))
        },
        Case {
            with: vec![("HostConfig.Memory", json!(MIB64))],
            ..same("HostConfig.MemorySwap", json!(MIB64 * 2))
        },
        same("HostConfig.MemorySwap", json!(-1)),
        Case {
            with: vec![("HostConfig.Memory", json!(MIB64))],
            ..case("HostConfig.MemorySwap", json!(MIB64 / 2), Refused)
        },
        case("HostConfig.MemorySwappiness", json!(10), Refused),
        same("HostConfig.OomKillDisable", json!(true)),
        same("HostConfig.PidsLimit", json!(50)),
        same(
            "HostConfig.Ulimits",
            json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}]),
        ),
        case(
            "HostConfig.Ulimits",
            json!([{"Name": "nofile", "Soft": 4096, "Hard": 2048}]),
            Refused,
        ),
        case("HostConfig.CpuCount", json!(1), Refused),
        case("HostConfig.CpuPercent", json!(50), Refused),
        case("HostConfig.IOMaximumIOps", json!(100), Refused),
        case("HostConfig.IOMaximumBandwidth", json!(100), Refused),
        same(
            "HostConfig.Mounts",
            json!([{"Type": "bind", "Source": "/tmp", "Target": "/x", "ReadOnly": true}]),
        ),
        case("HostConfig.MaskedPaths", json!([]), Refused),
        case("HostConfig.ReadonlyPaths", json!([]), Refused),
        same("HostConfig.Init", json!(true)),
    ]
}

/// `NetworkingConfig.EndpointsConfig` of API 1.44: another network, or any setting.
fn endpoint_cases() -> Vec<Case> {
    let ep = "NetworkingConfig.EndpointsConfig.default";
    let settings: [(&str, Value); 14] = [
        ("IPAMConfig", json!({"IPv4Address": "192.0.2.2"})),
        ("Links", json!(["a:b"])),
        ("Aliases", json!(["web"])),
        ("MacAddress", json!("02:42:ac:11:00:02")),
        ("NetworkID", json!("abc")),
        ("EndpointID", json!("abc")),
        ("Gateway", json!("192.0.2.1")),
        ("IPAddress", json!("192.0.2.2")),
        ("IPPrefixLen", json!(24)),
        ("IPv6Gateway", json!("2001:db8::1")),
        ("GlobalIPv6Address", json!("2001:db8::2")),
        ("GlobalIPv6PrefixLen", json!(64)),
        ("DriverOpts", json!({"a": "b"})),
        ("DNSNames", json!(["web"])),
    ];
    let mut cases: Vec<Case> = settings
        .into_iter()
        .map(|(name, value)| Case {
            field: Box::leak(format!("{ep}.{name}").into_boxed_str()),
            value,
            with: Vec::new(),
            expect: Refused,
        })
        .collect();
    // `bridge` is the default mode's own network (Docker's name for it): taken like
    // `default`; a network moor does not have is refused.
    cases.push(case(
        "NetworkingConfig.EndpointsConfig.mynet",
        json!({}),
        Refused,
    ));
    cases
}

/// What the docker CLI 28.2.2 sends for `docker run -d busybox true` (captured).
const CLI_RUN_D: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#;

/// [`CLI_RUN_D`] for the imported image `bb` on runc.
fn base_body() -> Value {
    let mut body: Value = serde_json::from_str(CLI_RUN_D).expect("captured JSON");
    body["Image"] = json!("bb");
    body["HostConfig"]["Runtime"] = json!("runc");
    body
}

/// Sets `path` (dot-separated, the last part may itself contain no dot) in `body`.
fn set(body: &mut Value, path: &str, value: Value) {
    let mut at = body;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        at = at
            .as_object_mut()
            .expect("an object on the path")
            .entry(p.to_string())
            .or_insert_with(|| json!({}));
    }
    at[parts[parts.len() - 1]] = value;
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |at, p| &at[p])
}

fn runc_daemon() -> Option<Daemon> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    d.import_busybox("bb");
    Some(d)
}

/// The names of one part of the schema, as the cases cover them.
fn names(cases: &[Case], prefix: &str) -> BTreeSet<String> {
    cases
        .iter()
        .filter_map(|c| c.field.strip_prefix(prefix))
        .filter(|n| !n.contains('.'))
        .map(String::from)
        .collect()
}

fn table(t: &[(&str, moor::api::fields::Field)]) -> BTreeSet<String> {
    t.iter().map(|(n, _)| n.to_string()).collect()
}

#[test]
fn the_cases_cover_moors_table_and_the_schema() {
    let config = config_cases();
    let top: BTreeSet<String> = config.iter().map(|c| c.field.to_string()).collect();
    assert_eq!(top, table(moor::api::fields::CONFIG));
    assert_eq!(top.len(), 25, "Config of API 1.44 has 25 fields");
    let host = names(&host_config_cases(), "HostConfig.");
    assert_eq!(host, table(moor::api::fields::HOST_CONFIG));
    assert_eq!(
        host.len(),
        71,
        "HostConfig + Resources of API 1.44 have 71 fields"
    );
    let ep = names(
        &endpoint_cases(),
        "NetworkingConfig.EndpointsConfig.default.",
    );
    assert_eq!(ep, table(moor::api::fields::ENDPOINT));
}

#[test]
fn every_create_field_is_honoured_or_refused_by_name() {
    let Some(d) = runc_daemon() else { return };
    let created = d.http(
        "POST",
        "/v1.44/containers/create?name=base",
        Some(&base_body().to_string()),
    );
    assert_eq!(
        created.status, 201,
        "the CLI's defaults pass: {}",
        created.body
    );
    let base_id = created.json()["Id"].as_str().expect("id").to_string();
    let cases = [config_cases(), host_config_cases(), endpoint_cases()];
    let mut failures = Vec::new();
    for c in cases.iter().flatten() {
        let mut body = base_body();
        for (path, value) in &c.with {
            set(&mut body, path, value.clone());
        }
        set(&mut body, c.field, c.value.clone());
        let r = d.http("POST", "/v1.44/containers/create", Some(&body.to_string()));
        match (&c.expect, r.status) {
            (Refused, 400) if r.message().contains(c.field) => {}
            (Shown(path, want), 201) => {
                let id = r.json()["Id"].as_str().expect("id").to_string();
                let inspect = d.inspect_json(&id);
                if get(&inspect, path) != want {
                    failures.push(format!(
                        "{}: inspect {path} = {}, want {want}",
                        c.field,
                        get(&inspect, path)
                    ));
                }
                let rm = d.http("DELETE", &format!("/v1.44/containers/{id}"), None);
                assert_eq!(rm.status, 204, "{}", rm.body);
            }
            (_, status) => failures.push(format!("{} = {}: {status} {}", c.field, c.value, r.body)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let all = d.http("GET", "/v1.44/containers/json?all=1", None).json();
    let ids: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["Id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![base_id.as_str()],
        "a refused create left a container"
    );
}

/// `docker run --rm FLAGS bb ARGS` on the runc daemon: its stdout.
fn run(d: &Daemon, flags: &[&str], args: &[&str]) -> String {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(flags);
    all.push("bb");
    all.extend_from_slice(args);
    d.docker_ok(&all)
}

/// CapEff of the container's process, from its /proc/self/status.
fn cap_eff(d: &Daemon, flags: &[&str]) -> u64 {
    let status = run(d, flags, &["cat", "/proc/self/status"]);
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff: {status}"));
    u64::from_str_radix(line.trim(), 16).expect("hex")
}

/// The namespace link (`pid:[4026531836]`) the container's `ls` sees for `kind`.
fn namespace(d: &Daemon, flags: &[&str], kind: &str) -> String {
    let out = run(d, flags, &["ls", "-l", &format!("/proc/self/ns/{kind}")]);
    out.split("-> ")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_string()
}

fn host_namespace(kind: &str) -> String {
    let link = std::fs::read_link(format!("/proc/self/ns/{kind}")).expect("readlink");
    link.to_string_lossy().into_owned()
}

#[test]
fn namespace_modes_and_capabilities_take_effect_on_runc() {
    let Some(d) = runc_daemon() else { return };
    // Docker's default set is 0xa80425fb; CAP_NET_ADMIN is bit 12, CAP_CHOWN bit 0.
    assert_eq!(cap_eff(&d, &[]), 0xa804_25fb);
    assert_eq!(
        cap_eff(&d, &["--cap-add", "NET_ADMIN"]),
        0xa804_25fb | 1 << 12
    );
    assert_eq!(cap_eff(&d, &["--cap-drop", "CHOWN"]), 0xa804_25fb & !1);
    assert_eq!(
        cap_eff(&d, &["--cap-drop", "ALL", "--cap-add", "KILL"]),
        1 << 5
    );
    for (kind, flag) in [("pid", "--pid"), ("uts", "--uts"), ("ipc", "--ipc")] {
        let own = namespace(&d, &[], kind);
        assert_ne!(
            own,
            host_namespace(kind),
            "{kind}: a private namespace by default"
        );
        let shared = namespace(&d, &[flag, "host"], kind);
        assert_eq!(shared, host_namespace(kind), "{flag} host");
    }
    let host_name = nix::unistd::gethostname().expect("hostname");
    let shown = run(&d, &["--uts", "host"], &["hostname"]);
    assert_eq!(shown.trim(), host_name.to_string_lossy());
    // With the host's pid namespace the container sees the host's processes. (`ls /proc`
    // fails when a process of the busy host ends while it lists; the shell's glob does not.)
    let pids = |flags: &[&str]| {
        run(&d, flags, &["sh", "-c", "echo /proc/[0-9]*"])
            .split_whitespace()
            .filter(|e| e.trim_start_matches("/proc/").parse::<u32>().is_ok())
            .count()
    };
    assert!(pids(&[]) <= 2, "own pid namespace: only the shell");
    assert!(pids(&["--pid", "host"]) > 10, "the host's processes");
    let refused = d.docker_fail(&["run", "--rm", "--uts", "host", "-h", "x", "bb", "true"]);
    assert!(refused.contains("Hostname=x is not supported"), "{refused}");
}

#[test]
fn privileged_takes_effect_on_runc() {
    let Some(d) = runc_daemon() else { return };
    // Every capability the daemon (this test's parent) holds: its bounding set.
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("CapBnd");
    let bounding = u64::from_str_radix(bounding.trim(), 16).expect("hex");
    assert_eq!(cap_eff(&d, &["--privileged"]), bounding);
    let sys_options = |flags: &[&str]| {
        let mounts = run(&d, flags, &["cat", "/proc/mounts"]);
        let sys = mounts.lines().find(|l| l.split(' ').nth(1) == Some("/sys"));
        let sys = sys
            .unwrap_or_else(|| panic!("no /sys: {mounts}"))
            .to_string();
        sys.split(' ')
            .nth(3)
            .unwrap_or_default()
            .split(',')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(sys_options(&[]), "ro");
    assert_eq!(sys_options(&["--privileged"]), "rw");
    // A host device runc does not create by default.
    let device = ["loop-control", "kmsg", "fuse"]
        .into_iter()
        .find(|n| std::path::Path::new("/dev").join(n).exists())
        .expect("the host has /dev/loop-control, /dev/kmsg or /dev/fuse");
    let listed = |flags: &[&str]| {
        run(&d, flags, &["ls", "/dev"])
            .split_whitespace()
            .any(|e| e == device)
    };
    assert!(!listed(&[]), "/dev/{device} without --privileged");
    assert!(listed(&["--privileged"]), "/dev/{device} with --privileged");
    let inspect = d.http(
        "POST",
        "/v1.44/containers/create?name=priv",
        Some(r#"{"Image":"bb","Cmd":["true"],"HostConfig":{"Privileged":true,"Runtime":"runc"}}"#),
    );
    assert_eq!(inspect.status, 201, "{}", inspect.body);
    let hc = &d.inspect_json("priv")["HostConfig"];
    assert_eq!(
        (hc["Privileged"].as_bool(), hc["MaskedPaths"].is_null()),
        (Some(true), true)
    );
}

#[test]
fn read_only_rootfs_and_shm_size_take_effect_on_runc() {
    let Some(d) = runc_daemon() else { return };
    let write = ["sh", "-c", "echo x > /f && echo written"];
    assert_eq!(run(&d, &[], &write).trim(), "written");
    let out = d.docker(
        &[
            "run",
            "--rm",
            "--read-only",
            "bb",
            "sh",
            "-c",
            "echo x > /f",
        ],
        None,
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{}",
        describe(&out)
    );
    // /dev/shm is 64 MiB, as ShmSize shows.
    let mounts = run(&d, &["--shm-size", "64m"], &["cat", "/proc/mounts"]);
    let shm = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/dev/shm"));
    assert!(shm.is_some_and(|l| l.contains("size=65536k")), "{mounts}");
}
