//! Issue 16 with the real docker CLI and the raw API: create fields moor does not implement
//! are refused by name (nothing created), and the shapes the CLI reads are Docker's:
//! `docker port` on moor's NetworkSettings, Mounts, HostConfig's keys, `/info`'s counts and
//! default runtime, `ImageID` in the list, and prune's `SpaceReclaimed`.

mod common;

use common::*;

/// `docker ps -a --format '{{.Names}} {{.Status}}'` as lines.
fn ps_lines(d: &Daemon) -> Vec<String> {
    d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
        .lines()
        .map(String::from)
        .collect()
}

/// Issue 16: `-v`, `-p`, `--privileged` and friends are refused by name, never dropped, and
/// a refused `run` leaves no container behind.
#[test]
fn unsupported_flags_are_refused_by_name() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let cases: &[(&[&str], &str)] = &[
        (
            &["-v", "/tmp:/data"],
            "HostConfig.Binds is not supported by the process runtime (use runc)",
        ),
        (
            &["-p", "8080:80"],
            "HostConfig.PortBindings: published ports (-p/-P, PortBindings, PublishAllPorts) need a bridge network; this container's network is \"host\"",
        ),
        (
            &["--privileged"],
            "HostConfig.Privileged=true is not supported by moor yet (it supports false with the process runtime)",
        ),
        (
            &["--mount", "type=bind,src=/tmp,dst=/x"],
            "HostConfig.Mounts",
        ),
        (&["--cap-add", "NET_ADMIN"], "HostConfig.CapAdd"),
        (&["--init"], "HostConfig.Init"),
        (&["--tmpfs", "/run"], "HostConfig.Tmpfs"),
        (&["--cpu-shares", "512"], "HostConfig.CpuShares"),
        (&["--memory-swap", "1g"], "HostConfig.MemorySwap"),
        (
            &["--device-cgroup-rule", "c 1:3 rwm"],
            "HostConfig.DeviceCgroupRules",
        ),
        (&["--pid", "container:x"], "HostConfig.PidMode"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["host", "true"]);
        let stderr = d.docker_fail(&args);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(
        ps_lines(&d),
        Vec::<String>::new(),
        "a refused run created a container"
    );
    // What the CLI sends by default still passes, and `--cidfile` (client-side) is recorded.
    let cid = d.root().with_file_name("cid");
    let cid = cid.to_str().expect("utf-8");
    d.docker_ok(&["run", "--name", "ok", "--cidfile", cid, "host", "true"]);
    let id = std::fs::read_to_string(cid).expect("the CLI wrote the cidfile");
    let shown = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.ContainerIDFile}} {{.Id}}",
        "ok",
    ]);
    assert_eq!(shown.trim(), format!("{cid} {id}"));
}

/// Issue 17: moor's own `-p`/`-P` and `moor port`. A bad spec is refused by the CLI before
/// any request; ports on a network without a bridge are refused at create, nothing created.
#[test]
fn moor_publish_flags_and_port() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let out = d.cli_fail(&["run", "-d", "-p", "x:80", "host", "sleep", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid port specification 'x:80': host port \"x\" is not a port"),
        "{err}"
    );
    let out = d.cli_fail(&["create", "--name", "all", "-P", "host", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HostConfig.PublishAllPorts: published ports") && err.contains("\"host\""),
        "{err}"
    );
    assert_eq!(
        d.cli_ok(&["ps", "-aq"]),
        "",
        "a refused create created nothing"
    );
    d.cli_ok(&["run", "-d", "--name", "np", "host", "sleep", "1000"]);
    assert_eq!(d.cli_ok(&["port", "np"]), "");
    let out = d.cli_fail(&["port", "np", "80"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No public port '80' published for np"),
        "{err}"
    );
    d.cli_ok(&["rm", "-f", "np"]);
}

#[test]
fn inspect_has_dockers_network_settings_mounts_and_host_config() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.docker_ok(&["run", "-d", "--name", "web", "host", "sleep", "1000"]);
    // The CLI dereferenced a missing NetworkSettings here (nil pointer).
    let out = d.docker(&["port", "web"], None);
    assert!(out.status.success(), "docker port: {}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let out = d.docker(&["port", "web", "80"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("No public port '80' published for web"),
        "{}",
        describe(&out)
    );
    let shown = d.docker_ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Ports}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}} {{json .Mounts}}",
        "web",
    ]);
    assert_eq!(shown.trim(), "{} host []");
    let hc = &d.inspect_json("web")["HostConfig"];
    for key in [
        "MemorySwap",
        "MemorySwappiness",
        "CpuShares",
        "CpusetCpus",
        "CpuQuota",
        "CpuPeriod",
        "Privileged",
        "CapAdd",
        "CapDrop",
        "Binds",
        "PortBindings",
        "ShmSize",
        "PidMode",
        "IpcMode",
        "UTSMode",
        "CgroupnsMode",
        "Dns",
        "ExtraHosts",
        "GroupAdd",
        "SecurityOpt",
    ] {
        assert!(hc.get(key).is_some(), "HostConfig lacks {key}: {hc}");
    }
    // The process runtime shares the host's namespaces, and says so.
    assert_eq!(
        (hc["PidMode"].as_str(), hc["IpcMode"].as_str()),
        (Some("host"), Some("host"))
    );
    d.docker_ok(&["rm", "-f", "web"]);
}

#[test]
fn info_counts_and_prune_reports_the_space_it_freed() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    d.docker_ok(&["run", "-d", "--name", "up", "host", "sleep", "1000"]);
    d.docker_ok(&["run", "--name", "done", "host", "sh", "-c", "seq 1 20000"]);
    d.docker_ok(&["create", "--name", "new", "host", "true"]);
    let counts = d.docker_ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}}",
    ]);
    assert_eq!(counts.trim(), "3 1 2 0");
    let info = d.http("GET", "/v1.44/info", None).json();
    assert_eq!(info["ExperimentalBuild"], false);
    assert_eq!(info["DefaultRuntime"], "process");
    let ids: Vec<String> = ["done", "new"]
        .iter()
        .map(|n| d.inspect_json(n)["Id"].as_str().expect("id").to_string())
        .collect();
    let expected: u64 = ids.iter().map(|id| dir_bytes(&d.container_dir(id))).sum();
    assert!(
        expected > 20_000 * 5,
        "the log of seq 1 20000 alone: {expected}"
    );
    let pruned = d.http("POST", "/v1.44/containers/prune", Some("")).json();
    assert_eq!(
        pruned["SpaceReclaimed"].as_u64(),
        Some(expected),
        "{pruned}"
    );
    assert_eq!(
        pruned["ContainersDeleted"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(ps_lines(&d).len(), 1);
    d.docker_ok(&["rm", "-f", "up"]);
}

/// Bytes of the regular files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("container dir").flatten() {
        let meta = entry.path().symlink_metadata().expect("stat");
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else if meta.is_file() {
            meta.len()
        } else {
            0
        };
    }
    total
}

#[test]
fn runc_list_and_info_name_the_image_and_the_runtime() {
    if let Some(reason) = runc::skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let out = d.docker(&["import", "-", "bb:1"], Some(&runc::busybox_tar()));
    assert!(out.status.success(), "docker import: {}", describe(&out));
    let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    d.docker_ok(&["create", "--name", "cc", "bb:1", "true"]);
    let list = d.http("GET", "/v1.44/containers/json?all=1", None).json();
    assert_eq!(list[0]["ImageID"].as_str(), Some(image.as_str()), "{list}");
    let info = d.docker_ok(&["info", "--format", "{{.Images}} {{.DefaultRuntime}}"]);
    assert_eq!(info.trim(), "1 runc");
    let hc = &d.inspect_json("cc")["HostConfig"];
    assert_eq!(
        (
            hc["ShmSize"].as_i64(),
            hc["IpcMode"].as_str(),
            hc["PidMode"].as_str()
        ),
        (Some(64 << 20), Some("private"), Some(""))
    );
    let networks = &d.inspect_json("cc")["NetworkSettings"]["Networks"];
    assert!(networks.get("none").is_some(), "{networks}");
    d.docker_ok(&["rm", "cc"]);
}
