//! The default bridge network for real (root, runc, busybox): each daemon runs in a network
//! namespace the test made (`common::netns`), and the host's own links, addresses and routes
//! are the same before and after. A container on `bridge` gets an address, eth0, a default
//! route and moor's /etc files; it answers HTTP from the daemon's namespace, across a
//! `kill -9` of the daemon, and again after a restart that repairs a deleted veth; `none`
//! has only loopback; addresses are never handed out twice while held; nothing of a
//! container's network is left once it is gone.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use common::netns::{host_network, TestNetns};
use common::runc::skip_reason;
use common::{wait_for, Daemon};
use serde_json::Value;

const BRIDGE_LIVE: &str = r#"{"live-restore": true, "bridge": "moor0"}"#;
const BRIDGE: &str = r#"{"bridge": "moor0"}"#;

/// The namespace and a runc daemon in it with busybox imported as `bb`; None when skipped.
fn setup(config: &str) -> Option<(TestNetns, Daemon)> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let ns = TestNetns::new();
    let d = ns.daemon(config, "runc");
    d.import_busybox("bb");
    Some((ns, d))
}

fn ip_of(d: &Daemon, name: &str) -> Ipv4Addr {
    let v = d.inspect_json(name);
    let ip = v["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or_default();
    ip.parse()
        .unwrap_or_else(|_| panic!("{name} has no address: {v:#}"))
}

/// The container's page on port 80, fetched from the daemon's namespace.
fn fetch(ns: &TestNetns, ip: Ipv4Addr) -> Option<String> {
    ns.http_get(&ip.to_string(), 80)
}

fn answers(ns: &TestNetns, ip: Ipv4Addr) -> bool {
    wait_for(Duration::from_secs(10), || {
        fetch(ns, ip).is_some_and(|t| t.contains("hello-moor"))
    })
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-moor > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn a_bridge_container_answers_across_a_daemon_kill_and_its_veth_is_repaired() {
    let before = host_network();
    let Some((ns, mut d)) = setup(BRIDGE_LIVE) else {
        return;
    };
    let id = d.cli_ok(&["run", "-d", "--name", "web", "bb", "sh", "-c", HTTPD]);
    let id = id.trim().to_string();
    let v = d.inspect_json("web");
    let net = d.http("GET", "/v1.44/networks/bridge", None).json();
    let subnet = net["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .expect("subnet")
        .to_string();
    let gateway = net["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .expect("gateway")
        .to_string();
    let ip = ip_of(&d, "web");
    let (addr, len) = subnet.split_once('/').expect("CIDR");
    let mask = u32::MAX << (32 - len.parse::<u32>().expect("prefix"));
    let base: Ipv4Addr = addr.parse().expect("subnet address");
    assert_eq!(u32::from(ip) & mask, u32::from(base), "{ip} in {subnet}");
    let settings = &v["NetworkSettings"];
    assert_eq!(settings["Gateway"], gateway.as_str());
    assert_eq!(
        settings["Networks"]["bridge"]["IPAddress"],
        ip.to_string().as_str()
    );
    assert_eq!(settings["Networks"]["bridge"]["NetworkID"], net["Id"]);
    let o = ip.octets();
    let mac = format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
    assert_eq!(settings["MacAddress"], mac.as_str());
    assert_eq!(v["HostConfig"]["NetworkMode"], "bridge");
    let sandbox = settings["SandboxKey"]
        .as_str()
        .expect("SandboxKey")
        .to_string();
    assert!(std::path::Path::new(&sandbox).exists(), "{sandbox}");
    assert!(
        net["Containers"][&id]["IPv4Address"]
            .as_str()
            .is_some_and(|a| a.starts_with(&ip.to_string())),
        "{net:#}"
    );

    // Inside: eth0 with the address and MAC, moor's /etc files.
    let eth0 = d.cli_ok(&["exec", "web", "ip", "addr", "show", "eth0"]);
    assert!(eth0.contains(&format!("inet {ip}/{len}")), "{eth0}");
    assert!(eth0.contains(&mac), "{eth0}");
    let hosts = d.cli_ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\t{}", &id[..12])), "{hosts}");
    assert_eq!(
        d.cli_ok(&["exec", "web", "cat", "/etc/hostname"]).trim(),
        &id[..12]
    );
    let resolv = d.cli_ok(&["exec", "web", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains("nameserver") && !resolv.contains("nameserver 127."),
        "{resolv}"
    );
    let route = d.cli_ok(&["exec", "web", "ip", "route"]);
    assert!(route.contains(&format!("default via {gateway}")), "{route}");
    assert!(answers(&ns, ip), "the container's httpd answers on {ip}");

    // The daemon dies: the container keeps answering.
    d.kill9();
    assert!(answers(&ns, ip), "answers with the daemon killed");

    // Its veth is deleted while the daemon is down: the next start puts it back.
    let veth = format!("moorv{}", &id[..10]);
    assert!(ns.links().contains(&veth), "{:?}", ns.links());
    ns.ok(&["ip", "link", "del", &veth]);
    assert!(fetch(&ns, ip).is_none(), "no answer without the veth");
    // Its namespace file goes too: the next start mounts it again from the container's init.
    nix::mount::umount2(sandbox.as_str(), nix::mount::MntFlags::MNT_DETACH).expect("umount");
    std::fs::remove_file(&sandbox).expect("remove the namespace file");
    d.restart();
    assert_eq!(ip_of(&d, "web"), ip, "same address after the restart");
    assert!(ns.links().contains(&veth), "{:?}", ns.links());
    assert!(answers(&ns, ip), "answers again after the repair");
    assert!(d.output().contains("network repaired"), "{}", d.output());
    assert!(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&sandbox),
        "{sandbox} is mounted again"
    );
    let again = d.http("GET", "/v1.44/networks/bridge", None).json();
    assert_eq!(
        (&again["Id"], &again["IPAM"]),
        (&net["Id"], &net["IPAM"]),
        "the stored network is reused"
    );

    // Removed: its veth and namespace file go.
    d.cli_ok(&["rm", "-f", "web"]);
    let gone = wait_for(Duration::from_secs(10), || {
        !ns.links().contains(&veth) && !std::path::Path::new(&sandbox).exists()
    });
    assert!(
        gone,
        "links {:?}, {sandbox} exists: {}",
        ns.links(),
        std::path::Path::new(&sandbox).exists()
    );
    d.stop_term();
    drop(d);
    drop(ns);
    assert_eq!(
        host_network(),
        before,
        "the host's links, addresses and routes are unchanged"
    );
}

#[test]
fn none_has_only_loopback_and_a_stop_without_live_restore_leaves_nothing() {
    let before = host_network();
    let Some((ns, mut d)) = setup(BRIDGE) else {
        return;
    };
    d.cli_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "nn",
        "bb",
        "sleep",
        "1000",
    ]);
    let dev = d.cli_ok(&["exec", "nn", "cat", "/proc/net/dev"]);
    let names: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(names, ["lo"], "{dev}");
    assert_eq!(d.inspect_json("nn")["NetworkSettings"]["IPAddress"], "");
    let id = d.cli_ok(&["run", "-d", "--name", "bb1", "bb", "sleep", "1000"]);
    let dev = d.cli_ok(&["exec", "bb1", "cat", "/proc/net/dev"]);
    assert!(dev.contains("eth0"), "{dev}");
    let veth = format!("moorv{}", &id.trim()[..10]);
    assert!(ns.links().contains(&veth));
    let netns_dir = d.run_dir().join("netns");
    d.stop_term();
    let links = ns.links();
    assert!(!links.iter().any(|l| l.starts_with("moorv")), "{links:?}");
    let files: Vec<_> = std::fs::read_dir(&netns_dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "{files:?}");
    // The bridge may stay (as Docker's); no other address of moor's is in the namespace.
    let addrs: Value = serde_json::from_str(&ns.ok(&["ip", "-j", "addr"])).expect("ip -j addr");
    let named: Vec<&str> = addrs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["ifname"].as_str())
        .collect();
    assert_eq!(named, ["lo", "moor0"], "{addrs:#}");
    drop(d);
    drop(ns);
    assert_eq!(
        host_network(),
        before,
        "the host's links, addresses and routes are unchanged"
    );
}

#[test]
fn addresses_held_by_containers_are_never_handed_out_again() {
    let Some((ns, mut d)) = setup(BRIDGE) else {
        return;
    };
    d.cli_ok(&["run", "-d", "--name", "aa", "bb", "sleep", "1000"]);
    d.cli_ok(&["run", "-d", "--name", "bb1", "bb", "sleep", "1000"]);
    let (a, b) = (ip_of(&d, "aa"), ip_of(&d, "bb1"));
    assert_ne!(a, b);
    d.cli_ok(&["rm", "-f", "aa"]);
    // `c` is only created: it holds an address too (a's, the first free one).
    d.cli_ok(&["create", "--name", "cc", "bb", "sleep", "1000"]);
    d.cli_ok(&["run", "-d", "--name", "ee", "bb", "sleep", "1000"]);
    let e = ip_of(&d, "ee");
    assert!(e != a && e != b, "e got {e}; a had {a}, b has {b}");
    d.cli_ok(&["start", "cc"]);
    assert_eq!(ip_of(&d, "cc"), a, "c holds the address freed by a");
    for name in ["bb1", "cc", "ee"] {
        d.cli_ok(&["rm", "-f", name]);
    }
    // The default networks as Docker lists them; an unknown one is 404.
    let list = d.http("GET", "/v1.44/networks", None).json();
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|n| n["Name"].as_str())
        .collect();
    assert_eq!(names, ["bridge", "host", "none"], "{list:#}");
    assert_eq!(list[0]["Driver"], "bridge");
    assert_eq!(list[2]["Driver"], "null");
    assert_eq!(d.http("GET", "/v1.44/networks/nosuch", None).status, 404);
    let by_id = list[0]["Id"].as_str().expect("id")[..12].to_string();
    assert_eq!(
        d.http("GET", &format!("/networks/{by_id}"), None).json()["Name"],
        "bridge"
    );
    // The stored network is kept: a later different `bip` is refused, naming both.
    d.stop_term();
    d.write_config(r#"{"bridge": "moor0", "bip": "10.99.0.1/16"}"#);
    let mut cmd = Command::new("nsenter");
    cmd.args([
        "-t",
        &ns.pid().to_string(),
        "-n",
        "--",
        common::MOOR,
        "daemon",
    ])
    .args(d.path_args())
    .args(["--runtime", "runc"])
    .env("MOOR_SHIM", common::MOOR_SHIM);
    let out = common::run_client(cmd, "moor", &["daemon"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bip 10.99.0.1/16") && err.contains("bip 172.17.0.1/16"),
        "{err}"
    );
}

#[test]
fn without_the_bridge_containers_default_to_none_and_bridge_is_refused() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    // The harness's daemon.json has `"bridge": "none"`.
    let d = Daemon::start_with_runtime("{}", "runc");
    d.import_busybox("bb");
    d.cli_ok(&["create", "--name", "plain", "bb", "true"]);
    assert_eq!(d.inspect_json("plain")["HostConfig"]["NetworkMode"], "none");
    let out = d.cli_fail(&["create", "--network", "bridge", "bb", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("network bridge not found"), "{err}");
    let body = r#"{"Image": "bb", "Cmd": ["true"], "HostConfig": {"NetworkMode": "bridge"}}"#;
    let r = d.http("POST", "/v1.44/containers/create", Some(body));
    assert_eq!(r.status, 404, "{}", r.body);
    let names: Vec<String> = d
        .http("GET", "/networks", None)
        .json()
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|n| n["Name"].as_str().map(String::from))
        .collect();
    assert_eq!(names, ["host", "none"]);
}

#[test]
fn an_exit_while_the_daemon_is_down_takes_the_network_and_admin_cleans_leftovers() {
    let Some((ns, mut d)) = setup(BRIDGE_LIVE) else {
        return;
    };
    let id = d.cli_ok(&["run", "-d", "--name", "gone", "bb", "sleep", "1000"]);
    let id = id.trim().to_string();
    let kept = d.cli_ok(&["run", "-d", "--name", "kept", "bb", "sleep", "1000"]);
    let kept = kept.trim().to_string();
    let pid = d.inspect_json("gone")["State"]["Pid"]
        .as_i64()
        .expect("pid") as i32;
    let netns_dir = d.run_dir().join("netns");
    d.kill9();
    // The container ends while the daemon is away; its network goes at the next start.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the container");
    let veth = format!("moorv{}", &id[..10]);
    d.restart();
    let torn = wait_for(Duration::from_secs(10), || {
        !ns.links().contains(&veth) && !netns_dir.join(&id).exists()
    });
    assert!(torn, "links {:?}", ns.links());
    d.stop_term();
    // Leftovers of no container: a veth named as moor names them and a namespace file.
    ns.ok(&[
        "ip",
        "link",
        "add",
        "moorv00deadbeef",
        "type",
        "veth",
        "peer",
        "name",
        "moorc00deadbeef",
    ]);
    let stray = netns_dir.join("00deadbeef".repeat(6) + "0123");
    std::fs::write(&stray, "").expect("write a stray namespace file");
    let paths = [d.root(), d.run_dir(), d.config_path()].map(|p| p.display().to_string());
    let admin = |args: &[&str]| {
        let mut all = vec![
            common::MOOR,
            "admin",
            "--root",
            &paths[0],
            "--run-dir",
            &paths[1],
        ];
        all.extend_from_slice(&["--config", &paths[2]]);
        all.extend_from_slice(args);
        ns.ok(&all)
    };
    let listed = admin(&["network"]);
    for want in [
        "moor0",
        "moorv00deadbeef",
        &format!("moorv{}", &kept[..10]),
        &kept[..12],
    ] {
        assert!(listed.contains(want), "{want} in\n{listed}");
    }
    assert_eq!(listed.matches("(leftover)").count(), 2, "{listed}");
    let removed = admin(&["network", "--clean"]);
    assert!(
        removed.contains("removed veth moorv00deadbeef"),
        "{removed}"
    );
    assert!(!stray.exists() && !ns.links().contains(&"moorv00deadbeef".to_string()));
    // The running container's objects stay.
    assert!(ns.links().contains(&format!("moorv{}", &kept[..10])));
    assert!(netns_dir.join(&kept).exists());
    d.restart();
    d.cli_ok(&["rm", "-f", "kept"]);
}

#[test]
fn a_rebuilt_store_keeps_the_network_its_containers_hold_addresses_in() {
    let config = r#"{"live-restore": true, "bridge": "moor0", "bip": "10.77.0.1/16"}"#;
    let Some((ns, mut d)) = setup(config) else {
        return;
    };
    d.cli_ok(&["run", "-d", "--name", "web", "bb", "sh", "-c", HTTPD]);
    let ip = ip_of(&d, "web");
    let id = d.http("GET", "/networks/bridge", None).json()["Id"].clone();
    assert!(answers(&ns, ip));
    d.stop_term();
    // The store is garbled (moved aside and rebuilt from spec files at the next start, which
    // loses the networks tree), and daemon.json no longer names `bip`: the network comes
    // back from the container's endpoint, not from a new choice (172.17.0.0/16 here).
    let db = d.root().join("moor.db").join("db");
    let len = std::fs::metadata(&db).expect("the store's db file").len();
    let garbage: Vec<u8> = (0..len / 2).map(|i| (i * 7919 % 251) as u8).collect();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .expect("open db");
    std::os::unix::fs::FileExt::write_all_at(&file, &garbage, len / 4).expect("garble");
    file.sync_all().expect("sync");
    d.write_config(r#"{"live-restore": true, "bridge": "moor0"}"#);
    d.restart();
    assert!(
        d.output().contains("network record was lost"),
        "{}",
        d.output()
    );
    let net = d.http("GET", "/networks/bridge", None).json();
    assert_eq!(
        net["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/16",
        "{net:#}"
    );
    assert_eq!(net["Id"], id);
    assert_eq!(ip_of(&d, "web"), ip);
    assert!(answers(&ns, ip), "answers after the rebuild");
    d.cli_ok(&["rm", "-f", "web"]);
}
