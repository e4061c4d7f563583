//! Issue 16, items 2 and `update`: the create fields that tune a runc container's process and
//! cgroup, each checked in effect (inside the container, or in its cgroup on the host) and
//! in inspect under Docker's name, through the docker CLI; `docker update` of a running
//! container (its cgroup changes at once, and the change survives a `kill -9` of the daemon
//! and a restart of the container); the process runtime refuses them by name.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::netns::TestNetns;
use common::runc::skip_reason;
use common::{describe, wait_for, Daemon, LIVE_RESTORE_ON};
use serde_json::{json, Value};

fn runc_daemon() -> Option<Daemon> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    d.import_busybox("bb");
    Some(d)
}

/// `docker run --rm FLAGS bb ARGS`: its stdout.
fn run(d: &Daemon, flags: &[&str], args: &[&str]) -> String {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(flags);
    all.push("bb");
    all.extend_from_slice(args);
    d.docker_ok(&all)
}

/// A `Name:\tvalue` line of the container's /proc/self/status.
fn status_line(d: &Daemon, flags: &[&str], key: &str) -> String {
    let status = run(d, flags, &["cat", "/proc/self/status"]);
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key}: {status}"))
        .trim()
        .to_string()
}

#[test]
fn process_options_take_effect_in_a_runc_container() {
    let Some(d) = runc_daemon() else { return };
    // SecurityOpt no-new-privileges: the kernel's flag on the process.
    assert_eq!(status_line(&d, &[], "NoNewPrivs"), "0");
    let nnp = ["--security-opt", "no-new-privileges"];
    assert_eq!(status_line(&d, &nnp, "NoNewPrivs"), "1");
    let off = ["--security-opt", "no-new-privileges:false"];
    assert_eq!(status_line(&d, &off, "NoNewPrivs"), "0");
    // CapAdd still reaches CapEff next to them (bit 12: NET_ADMIN).
    let caps = status_line(&d, &["--cap-add", "NET_ADMIN"], "CapEff");
    assert_eq!(
        u64::from_str_radix(&caps, 16).unwrap() >> 12 & 1,
        1,
        "{caps}"
    );
    // Ulimits.
    let limits = ["--ulimit", "nofile=1024:2048"];
    let out = run(&d, &limits, &["sh", "-c", "ulimit -n; ulimit -Hn"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1024", "2048"]);
    // GroupAdd: supplementary groups by number.
    let out = run(
        &d,
        &["--group-add", "10", "--group-add", "20"],
        &["id", "-G"],
    );
    let groups: Vec<&str> = out.split_whitespace().collect();
    assert!(groups.contains(&"10") && groups.contains(&"20"), "{out}");
    assert!(!run(&d, &[], &["id", "-G"]).contains("10"));
    // Sysctls: IPC and net ones, in the container's own namespaces; the host's unchanged.
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let flags = [
        "--sysctl",
        "kernel.shmmax=1000000",
        "--sysctl",
        "net.ipv4.ip_forward=1",
    ];
    let read = [
        "cat",
        "/proc/sys/kernel/shmmax",
        "/proc/sys/net/ipv4/ip_forward",
    ];
    let out = run(&d, &flags, &read);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1000000", "1"]);
    let now = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    assert_eq!(now, host_shmmax, "the host's value is not touched");
    // (The docker CLI refuses this one itself; through the API it is moor's 400.)
    let body = json!({"Image": "bb", "Cmd": ["true"], "HostConfig": {"Sysctls": {"kernel.pid_max": "100"}}});
    let refused = d.http("POST", "/v1.44/containers/create", Some(&body.to_string()));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .message()
            .starts_with("HostConfig.Sysctls: kernel.pid_max"),
        "{}",
        refused.body
    );
    // ShmSize.
    let mounts = run(&d, &["--shm-size", "1m"], &["cat", "/proc/mounts"]);
    let shm = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/dev/shm"));
    assert!(shm.is_some_and(|l| l.contains("size=1024k")), "{mounts}");
    // Shown back in inspect under Docker's names.
    let id = d.docker_ok(&[
        "create",
        "--security-opt",
        "no-new-privileges",
        "--ulimit",
        "nofile=1024:2048",
        "--group-add",
        "10",
        "--sysctl",
        "kernel.shmmax=1000000",
        "--shm-size",
        "1m",
        "bb",
        "true",
    ]);
    let hc = &d.inspect_json(id.trim())["HostConfig"];
    assert_eq!(hc["SecurityOpt"], json!(["no-new-privileges"]));
    assert_eq!(
        hc["Ulimits"],
        json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
    );
    assert_eq!(hc["GroupAdd"], json!(["10"]));
    assert_eq!(hc["Sysctls"], json!({"kernel.shmmax": "1000000"}));
    assert_eq!(hc["ShmSize"], json!(1 << 20));
}

#[test]
fn extra_hosts_and_dns_are_written_into_the_containers_files() {
    let Some(d) = runc_daemon() else { return };
    let flags = [
        "--add-host",
        "db:192.0.2.9",
        "--add-host",
        "v6:2001:db8::9",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.org",
        "--dns-option",
        "ndots:2",
    ];
    let hosts = run(&d, &flags, &["cat", "/etc/hosts"]);
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("192.0.2.9\tdb\n"), "{hosts}");
    assert!(hosts.contains("2001:db8::9\tv6\n"), "{hosts}");
    let resolv = run(&d, &flags, &["cat", "/etc/resolv.conf"]);
    let lines: Vec<&str> = resolv.lines().collect();
    assert!(lines.contains(&"nameserver 192.0.2.53"), "{resolv}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("nameserver")).count(),
        1,
        "only the asked server: {resolv}"
    );
    assert!(lines.contains(&"search example.org"), "{resolv}");
    assert!(lines.contains(&"options ndots:2"), "{resolv}");
    // Without a bridge there is no gateway: host-gateway cannot be honoured, and says so.
    let out = d.docker(
        &["run", "--rm", "--add-host", "gw:host-gateway", "bb", "true"],
        None,
    );
    let text = describe(&out);
    assert!(
        !out.status.success() && text.contains("host-gateway"),
        "{text}"
    );
    let id = d.docker_ok(&[
        "create",
        "--add-host",
        "db:192.0.2.9",
        "--dns",
        "192.0.2.53",
        "bb",
        "true",
    ]);
    let hc = &d.inspect_json(id.trim())["HostConfig"];
    assert_eq!(hc["ExtraHosts"], json!(["db:192.0.2.9"]));
    assert_eq!(hc["Dns"], json!(["192.0.2.53"]));
}

#[test]
fn host_gateway_is_the_bridge_gateway() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let ns = TestNetns::new();
    let d = ns.daemon(r#"{"live-restore": true, "bridge": "moor0"}"#, "runc");
    d.import_busybox("bb");
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--add-host",
        "gw:host-gateway",
        "--add-host",
        "db:192.0.2.9",
        "--dns",
        "192.0.2.53",
        "bb",
        "sleep",
        "300",
    ]);
    let id = id.trim();
    let gateway = d.inspect_json(id)["NetworkSettings"]["Gateway"]
        .as_str()
        .expect("a gateway")
        .to_string();
    assert!(!gateway.is_empty());
    let hosts = d.docker_ok(&["exec", id, "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{gateway}\tgw\n")), "{hosts}");
    assert!(hosts.contains("192.0.2.9\tdb\n"), "{hosts}");
    let resolv = d.docker_ok(&["exec", id, "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 192.0.2.53\n"), "{resolv}");
    d.docker_ok(&["rm", "-f", id]);
}

/// The states (`R`, `S`, `Z`...) of the processes the container `id` sees.
fn process_states(d: &Daemon, id: &str) -> Vec<String> {
    let stats = d.docker_ok(&["exec", id, "sh", "-c", "cat /proc/[0-9]*/stat"]);
    stats
        .lines()
        .filter_map(|l| l.rsplit_once(") ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split(' ').next().map(String::from))
        .collect()
}

#[test]
fn init_is_pid_1_reaps_zombies_and_forwards_signals() {
    let Some(d) = runc_daemon() else { return };
    let cmdline = run(&d, &["--init"], &["cat", "/proc/1/cmdline"]);
    assert!(
        cmdline.starts_with("/sbin/docker-init\0--\0cat"),
        "{cmdline:?}"
    );
    // A child orphaned inside the container is re-parented to pid 1: `sleep` as pid 1
    // never reaps it, the init does.
    let orphan = "sh -c 'sleep 1 &'; exec sleep 300";
    let zombies = |flags: &[&str]| {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend(["bb", "sh", "-c", orphan]);
        let id = d.docker_ok(&args).trim().to_string();
        std::thread::sleep(Duration::from_millis(3000));
        let n = process_states(&d, &id).iter().filter(|s| *s == "Z").count();
        (id, n)
    };
    let (plain, n) = zombies(&[]);
    assert_eq!(n, 1, "without --init the orphan stays a zombie");
    d.docker_ok(&["rm", "-f", &plain]);
    let (with_init, n) = zombies(&["--init"]);
    assert_eq!(n, 0, "--init reaps it");
    // The init forwards SIGTERM to the command, which dies of it: 128 + 15.
    d.docker_ok(&["stop", "-t", "30", &with_init]);
    let code = d.inspect_json(&with_init)["State"]["ExitCode"].clone();
    assert_eq!(code, json!(143));
    assert_eq!(
        d.inspect_json(&with_init)["HostConfig"]["Init"],
        json!(true)
    );
}

/// A cgroup file of runc container `id`: the v1 controller's, else the unified one's.
fn cgroup_file(id: &str, v1: (&str, &str), v2: &str) -> String {
    let base = PathBuf::from("/sys/fs/cgroup");
    let path = if base.join(v1.0).join("moor").is_dir() {
        base.join(v1.0).join("moor").join(id).join(v1.1)
    } else {
        base.join("moor").join(id).join(v2)
    };
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

fn cgroup_v1() -> bool {
    PathBuf::from("/sys/fs/cgroup/memory/moor").is_dir()
}

/// The memory limit of the container's cgroup in bytes.
fn memory_max(id: &str) -> String {
    cgroup_file(id, ("memory", "memory.limit_in_bytes"), "memory.max")
}

#[test]
fn cgroup_settings_take_effect_and_show_in_inspect() {
    let Some(d) = runc_daemon() else { return };
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--cpu-shares",
        "512",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--memory-swap",
        "128m",
        "--oom-kill-disable",
        "bb",
        "sleep",
        "300",
    ]);
    let id = id.trim();
    let quota = cgroup_file(id, ("cpu", "cpu.cfs_quota_us"), "cpu.max");
    let cpus = cgroup_file(
        id,
        ("cpuset", "cpuset.effective_cpus"),
        "cpuset.cpus.effective",
    );
    assert_eq!(cpus, "0");
    assert_eq!(memory_max(id), (64 << 20).to_string());
    let low = cgroup_file(id, ("memory", "memory.soft_limit_in_bytes"), "memory.low");
    assert_eq!(low, (32 << 20).to_string());
    if cgroup_v1() {
        assert_eq!(quota, "50000");
        assert_eq!(cgroup_file(id, ("cpu", "cpu.shares"), ""), "512");
        let swap = cgroup_file(id, ("memory", "memory.memsw.limit_in_bytes"), "");
        assert_eq!(swap, (128 << 20).to_string());
        let oom = cgroup_file(id, ("memory", "memory.oom_control"), "");
        assert!(oom.contains("oom_kill_disable 1"), "{oom}");
    } else {
        assert_eq!(quota, "50000 100000");
        assert_eq!(
            cgroup_file(id, ("", ""), "memory.swap.max"),
            (64 << 20).to_string()
        );
    }
    let hc = &d.inspect_json(id)["HostConfig"];
    let shown = [
        ("CpuShares", json!(512)),
        ("CpuQuota", json!(50000)),
        ("CpuPeriod", json!(100000)),
        ("CpusetCpus", json!("0")),
        ("CpusetMems", json!("0")),
        ("Memory", json!(64 << 20)),
        ("MemoryReservation", json!(32 << 20)),
        ("MemorySwap", json!(128 << 20)),
        ("OomKillDisable", json!(true)),
    ];
    for (key, want) in shown {
        assert_eq!(hc[key], want, "HostConfig.{key}");
    }
    d.docker_ok(&["rm", "-f", id]);
}

#[test]
fn update_changes_a_running_container_and_survives_a_daemon_kill_and_a_restart() {
    let Some(mut d) = runc_daemon() else { return };
    let id = d
        .docker_ok(&["run", "-d", "--memory", "64m", "bb", "sleep", "300"])
        .trim()
        .to_string();
    assert_eq!(memory_max(&id), (64 << 20).to_string());
    // The docker CLI's `update`.
    d.docker_ok(&["update", "--memory", "128m", "--pids-limit", "50", &id]);
    assert_eq!(memory_max(&id), (128 << 20).to_string());
    let pids = cgroup_file(&id, ("pids", "pids.max"), "pids.max");
    assert_eq!(pids, "50");
    // The API's answer, and a field update does not take.
    let r = d.http(
        "POST",
        &format!("/v1.44/containers/{id}/update"),
        Some(r#"{"CpuShares": 256, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}"#),
    );
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"Warnings": []})),
        "{}",
        r.body
    );
    let refused = d.http(
        "POST",
        &format!("/v1.44/containers/{id}/update"),
        Some(r#"{"BlkioWeight": 300}"#),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.message().contains("BlkioWeight"),
        "{}",
        refused.body
    );
    let too_small = d.docker_fail(&["update", "--memory-swap", "32m", &id]);
    assert!(too_small.contains("MemorySwap"), "{too_small}");
    let shown = |d: &Daemon| {
        let hc = d.inspect_json(&id)["HostConfig"].clone();
        (
            hc["Memory"].clone(),
            hc["PidsLimit"].clone(),
            hc["CpuShares"].clone(),
            hc["RestartPolicy"]["Name"].clone(),
        )
    };
    let want = (json!(128 << 20), json!(50), json!(256), json!("on-failure"));
    assert_eq!(shown(&d), want);
    // The daemon dies: the record kept it; the live container kept its limit.
    let pid = d.inspect_json(&id)["State"]["Pid"].clone();
    d.kill9();
    d.restart();
    assert_eq!(shown(&d), want);
    assert_eq!(
        d.inspect_json(&id)["State"]["Pid"],
        pid,
        "resumed, not restarted"
    );
    assert_eq!(memory_max(&id), (128 << 20).to_string());
    // A new run of the container gets the updated limits from its spec.
    d.docker_ok(&["restart", "-t", "0", &id]);
    assert!(wait_for(Duration::from_secs(10), || {
        d.inspect_json(&id)["State"]["Running"] == json!(true)
    }));
    assert_eq!(memory_max(&id), (128 << 20).to_string());
    // A stopped container's update takes effect at its next start; `moor update` too.
    d.docker_ok(&["stop", "-t", "0", &id]);
    d.cli_ok(&["update", "--memory", "96m", &id]);
    d.docker_ok(&["start", &id]);
    assert_eq!(memory_max(&id), (96 << 20).to_string());
    d.docker_ok(&["rm", "-f", &id]);
}

#[test]
fn the_process_runtime_refuses_them_by_name() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let bodies: [(&str, Value); 4] = [
        ("HostConfig.CpuShares", json!({"CpuShares": 512})),
        (
            "HostConfig.Ulimits",
            json!({"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1}]}),
        ),
        ("HostConfig.Init", json!({"Init": true})),
        ("HostConfig.Dns", json!({"Dns": ["192.0.2.1"]})),
    ];
    for (field, host) in bodies {
        let body = json!({"Image": "host", "Cmd": ["true"], "HostConfig": host});
        let r = d.http("POST", "/v1.44/containers/create", Some(&body.to_string()));
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        let msg = r.message();
        assert!(
            msg.contains(field) && msg.contains("process runtime"),
            "{msg}"
        );
    }
    let r = d.http(
        "POST",
        "/v1.44/containers/create?name=proc1",
        Some(r#"{"Image": "host", "Cmd": ["sleep", "30"]}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let up = d.http(
        "POST",
        "/v1.44/containers/proc1/update",
        Some(r#"{"Memory": 67108864}"#),
    );
    assert_eq!(up.status, 400, "{}", up.body);
    assert!(up.message().contains("process runtime"), "{}", up.body);
    let policy = r#"{"RestartPolicy": {"Name": "always"}}"#;
    let up = d.http("POST", "/v1.44/containers/proc1/update", Some(policy));
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(
        d.inspect_json("proc1")["HostConfig"]["RestartPolicy"]["Name"],
        "always"
    );
    // One `update` event, for the update that took (Docker's).
    let until = chrono::Utc::now().timestamp() + 1;
    let r = d.http("GET", &format!("/v1.44/events?since=0&until={until}"), None);
    let updates = r
        .body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["Action"] == "update")
        .count();
    assert_eq!(updates, 1, "{}", r.body);
}
