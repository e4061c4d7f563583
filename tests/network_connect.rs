//! Networks of running containers for real (root, runc, busybox), each daemon in a network
//! namespace the test made (`common::netns`; the host's links, addresses and routes are the
//! same before and after): `docker network connect`/`disconnect` of a running container
//! (a second veth in its namespace, names in `/etc/hosts` both ways), both networks kept
//! across a daemon `kill -9` with a deleted veth repaired; `--network container:NAME`;
//! `Internal` networks and `IPRange`; a removed network's masquerade leaves the NAT table.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::netns::{bridged_runc as setup, host_network, httpd, Outside};
use common::{wait_for, Daemon};
use serde_json::Value;

fn hosts(d: &Daemon, name: &str) -> String {
    d.cli_ok(&["exec", name, "cat", "/etc/hosts"])
}

/// What container `from` gets from `host:80` with busybox `nc`.
fn fetch_from(d: &Daemon, from: &str, host: &str) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80");
    let out = d.cli(&["exec", from, "sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`fetch_from`] without the daemon: busybox `nc` in the namespaces of process `pid`.
fn fetch_direct(pid: i64, host: &str) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 {host} 80");
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-m",
            "-n",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("nsenter");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The addresses in the network namespace of process `pid` (`ip -o addr`, the host's `ip`).
fn addresses_direct(pid: i64) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "--", "ip", "-o", "addr"])
        .stdin(Stdio::null())
        .output()
        .expect("nsenter");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_on(d: &Daemon, name: &str, network: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--network", network, "bb"];
    args.extend_from_slice(cmd);
    d.cli_ok(&args).trim().to_string()
}

fn networks_of(d: &Daemon, name: &str) -> Value {
    d.inspect_json(name)["NetworkSettings"]["Networks"].clone()
}

/// The interfaces inside container `name`, sorted.
fn interfaces(d: &Daemon, name: &str) -> Vec<String> {
    let mut out: Vec<String> = d
        .cli_ok(&["exec", name, "ls", "/sys/class/net"])
        .split_whitespace()
        .map(String::from)
        .collect();
    out.sort();
    out
}

#[test]
fn a_running_container_is_connected_and_disconnected_and_keeps_both_across_a_kill9() {
    let before = host_network();
    let Some((ns, mut d)) = setup() else {
        return;
    };
    d.cli_ok(&["network", "create", "--subnet", "10.61.0.0/24", "front"]);
    d.cli_ok(&["network", "create", "--subnet", "10.62.0.0/24", "back"]);
    run_on(&d, "fweb", "front", &["sh", "-c", &httpd("front-page")]);
    run_on(&d, "bweb", "back", &["sh", "-c", &httpd("back-page")]);
    let cli = run_on(&d, "cli", "front", &["sleep", "1000"]);
    let front_page = |d: &Daemon| fetch_from(d, "cli", "fweb").contains("front-page");
    assert!(
        wait_for(Duration::from_secs(10), || front_page(&d)),
        "cli -> fweb"
    );
    assert!(!fetch_from(&d, "cli", "bweb").contains("back-page"));

    // Connected while it runs: eth1 with an address of back, names both ways.
    d.docker_ok(&["network", "connect", "--alias", "c2", "back", "cli"]);
    assert_eq!(interfaces(&d, "cli"), ["eth0", "eth1", "lo"]);
    let nets = networks_of(&d, "cli");
    assert_eq!(nets["front"]["IPAddress"], "10.61.0.3", "{nets:#}");
    assert_eq!(nets["back"]["IPAddress"], "10.62.0.3", "{nets:#}");
    let back_page = |d: &Daemon| fetch_from(d, "cli", "bweb").contains("back-page");
    assert!(
        wait_for(Duration::from_secs(10), || back_page(&d)),
        "{}",
        hosts(&d, "cli")
    );
    let line = format!("10.62.0.3\tcli c2 {}", &cli[..12]);
    assert!(hosts(&d, "bweb").contains(&line), "{}", hosts(&d, "bweb"));
    let listed = d.http("GET", "/v1.44/networks/back", None).json();
    assert_eq!(listed["Containers"][&cli]["IPv4Address"], "10.62.0.3/24");
    let again = d.docker_fail(&["network", "connect", "back", "cli"]);
    assert!(again.contains("already exists in network back"), "{again}");

    // The daemon dies; the second veth is deleted meanwhile: the next start puts it back,
    // and both networks still work.
    let second = format!("moorv{}n1", &cli[..8]);
    assert!(ns.links().contains(&second), "{:?}", ns.links());
    let pid = d.inspect_json("cli")["State"]["Pid"].as_i64().expect("Pid");
    d.kill9();
    assert!(
        fetch_direct(pid, "bweb").contains("back-page"),
        "with the daemon down"
    );
    assert!(addresses_direct(pid).contains("10.62.0.3/24"));
    ns.ok(&["ip", "link", "del", &second]);
    assert!(
        !addresses_direct(pid).contains("10.62.0.3/24"),
        "the veth is gone"
    );
    d.restart();
    assert!(
        addresses_direct(pid).contains("10.62.0.3/24"),
        "eth1 is back"
    );
    assert!(ns.links().contains(&second), "{:?}", ns.links());
    assert!(
        wait_for(Duration::from_secs(10), || back_page(&d)),
        "after the repair"
    );
    assert!(front_page(&d), "eth0 after the restart");

    // Disconnected: the name goes and back is out of reach.
    d.docker_ok(&["network", "disconnect", "back", "cli"]);
    assert_eq!(interfaces(&d, "cli"), ["eth0", "lo"]);
    assert!(!hosts(&d, "cli").contains("bweb"), "{}", hosts(&d, "cli"));
    assert!(
        !hosts(&d, "bweb").contains("\tcli "),
        "{}",
        hosts(&d, "bweb")
    );
    assert!(!back_page(&d), "bweb by name");
    assert!(!ns.links().contains(&second));
    let nets = networks_of(&d, "cli");
    assert!(nets.get("back").is_none(), "{nets:#}");
    // The last network goes: loopback only.
    d.docker_ok(&["network", "disconnect", "front", "cli"]);
    assert_eq!(interfaces(&d, "cli"), ["lo"]);
    assert!(!front_page(&d));
    // Stopped, connected to back, started: back is its network now.
    d.cli_ok(&["stop", "-t", "1", "cli"]);
    d.docker_ok(&["network", "connect", "back", "cli"]);
    d.cli_ok(&["start", "cli"]);
    assert!(wait_for(Duration::from_secs(10), || back_page(&d)));
    assert_eq!(interfaces(&d, "cli"), ["eth0", "lo"]);

    for name in ["fweb", "bweb", "cli"] {
        d.cli_ok(&["rm", "-f", name]);
    }
    d.cli_ok(&["network", "rm", "front", "back"]);
    d.stop_term();
    drop(d);
    drop(ns);
    assert_eq!(host_network(), before, "the host's network is unchanged");
}

fn create(d: &Daemon, body: Value) -> common::HttpResponse {
    d.http("POST", "/v1.44/networks/create", Some(&body.to_string()))
}

#[test]
fn internal_networks_ip_ranges_container_mode_and_masquerade_removal() {
    let before = host_network();
    let Some((ns, mut d)) = setup() else {
        return;
    };
    let outside = Outside::new(&ns);
    // IPRange: a range outside the subnet is refused by name; inside, it is where
    // addresses come from.
    let r = create(
        &d,
        serde_json::json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.91.0.0/24", "IPRange": "10.91.1.0/28"}]}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("IPRange 10.91.1.0/28"), "{}", r.body);
    let made = create(
        &d,
        serde_json::json!({"Name": "int", "Internal": true,
            "IPAM": {"Config": [{"Subnet": "10.91.0.0/24", "IPRange": "10.91.0.128/28"}]}}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let shown = d.http("GET", "/v1.44/networks/int", None).json();
    assert_eq!(shown["Internal"], true, "{shown:#}");
    assert_eq!(shown["IPAM"]["Config"][0]["IPRange"], "10.91.0.128/28");
    d.cli_ok(&["network", "create", "--subnet", "10.94.0.0/24", "ext"]);

    run_on(&d, "iweb", "int", &["sh", "-c", &httpd("inside-page")]);
    run_on(&d, "icli", "int", &["sleep", "1000"]);
    run_on(&d, "ecli", "ext", &["sleep", "1000"]);
    assert_eq!(networks_of(&d, "iweb")["int"]["IPAddress"], "10.91.0.128");
    assert_eq!(networks_of(&d, "icli")["int"]["IPAddress"], "10.91.0.129");
    let inside = || fetch_from(&d, "icli", "iweb").contains("inside-page");
    assert!(
        wait_for(Duration::from_secs(10), inside),
        "on the internal network"
    );
    // ext reaches outside (masqueraded); int has no default route and no masquerade.
    let out_page = |from: &str| fetch_from(&d, from, "10.93.0.2").contains("outside-page");
    assert!(out_page("ecli"), "ext reaches outside");
    assert!(!out_page("icli"), "int must not reach outside");
    let routes = d.cli_ok(&["exec", "icli", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let table = ns.ok(&["nft", "list", "set", "ip", "moor", "subnets"]);
    assert!(
        !table.contains("10.91.0.0/24") && table.contains("10.94.0.0/24"),
        "{table}"
    );
    let ports = d.cli(&[
        "run",
        "-d",
        "--network",
        "int",
        "-p",
        "8081:80",
        "bb",
        "true",
    ]);
    let said = String::from_utf8_lossy(&ports.stderr);
    assert!(said.contains("network int is internal"), "{said}");

    // container:NAME: the same interfaces, address and files as the other container.
    run_on(&d, "eweb", "ext", &["sh", "-c", &httpd("shared-page")]);
    let joined = d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "jn",
        "--network",
        "container:eweb",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(joined.trim().len(), 64, "{joined}");
    let addr = |name: &str| d.cli_ok(&["exec", name, "ip", "addr", "show", "eth0"]);
    assert!(addr("jn").contains("10.94.0.3/24"), "{}", addr("jn"));
    assert_eq!(addr("jn"), addr("eweb"));
    assert_eq!(hosts(&d, "jn"), hosts(&d, "eweb"));
    assert_eq!(
        d.cli_ok(&["exec", "jn", "hostname"]),
        d.cli_ok(&["exec", "eweb", "hostname"])
    );
    assert!(fetch_from(&d, "jn", "127.0.0.1").contains("shared-page"));
    let j = d.inspect_json("jn");
    assert_eq!(j["HostConfig"]["NetworkMode"], "container:eweb");
    assert_eq!(j["NetworkSettings"]["Networks"], serde_json::json!({}));
    assert_eq!(j["NetworkSettings"]["IPAddress"], "");
    let refused = d.docker_fail(&["network", "connect", "ext", "jn"]);
    assert!(refused.contains("shares the network of eweb"), "{refused}");
    // The other stops: the joiner runs on, and cannot start again until it runs.
    d.cli_ok(&["stop", "-t", "1", "eweb"]);
    assert_eq!(d.inspect_json("jn")["State"]["Running"], true);
    d.cli_ok(&["stop", "-t", "1", "jn"]);
    let start = d.docker_fail(&["start", "jn"]);
    assert!(
        start.contains("cannot join network of a non running container: eweb"),
        "{start}"
    );
    let body = |extra: Value| {
        let mut v = serde_json::json!({"Image": "bb", "Cmd": ["true"],
            "HostConfig": {"NetworkMode": "container:nosuch"}});
        v.as_object_mut()
            .expect("object")
            .extend(extra.as_object().cloned().unwrap_or_default());
        v.to_string()
    };
    let missing = d.http("POST", "/v1.44/containers/create", Some(&body(Value::Null)));
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(missing.body.contains("nosuch"), "{}", missing.body);
    let named = body(serde_json::json!({"Hostname": "x",
        "HostConfig": {"NetworkMode": "container:eweb"}}));
    let named = d.http("POST", "/v1.44/containers/create", Some(&named));
    assert_eq!(named.status, 400, "{}", named.body);
    assert!(named.body.contains("Hostname"), "{}", named.body);

    // A removed network's masquerade goes with it.
    for name in ["iweb", "icli", "ecli", "eweb", "jn"] {
        d.cli_ok(&["rm", "-f", name]);
    }
    d.cli_ok(&["network", "rm", "ext", "int"]);
    let table = ns.ok(&["nft", "list", "set", "ip", "moor", "subnets"]);
    assert!(!table.contains("10.94.0.0/24"), "{table}");
    let bridges = ns.ok(&["nft", "list", "set", "ip", "moor", "bridges"]);
    assert!(!bridges.contains("moor-"), "{bridges}");
    drop(outside);
    d.stop_term();
    drop(d);
    drop(ns);
    assert_eq!(host_network(), before, "the host's network is unchanged");
}
