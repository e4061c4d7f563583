//! Isolation between moor's networks for real (root, runc, busybox), each daemon in a network
//! namespace the test made (`common::netns`; the host's links, addresses and routes are the
//! same before and after): a container does not reach the address of a container on another
//! network (user networks and the default bridge), while one on both reaches both and a
//! published port answers; the isolation holds with the daemon killed, and a deleted chain or
//! set element is put back by the next start. An internal network reaches nothing but its own
//! bridge even when one of its containers has a default route.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::netns::{bridged_runc as setup, host_network, httpd, Outside, TestNetns};
use common::{wait_for, Daemon};
use serde_json::Value;

fn run_on(d: &Daemon, name: &str, network: &str, extra: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.push("bb");
    args.extend_from_slice(cmd);
    d.cli_ok(&args).trim().to_string()
}

/// What `GET /` on `host:port` gives container `from` (busybox `nc`, 2 s).
fn fetch_from(d: &Daemon, from: &str, host: &str, port: u16) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} {port}");
    let out = d.cli(&["exec", from, "sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// [`fetch_from`] without the daemon: busybox `nc` in the namespaces of process `pid`.
fn fetch_direct(pid: i64, host: &str) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 {host} 80");
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-n", "--", "/bin/sh", "-c"])
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .expect("nsenter");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip_on(d: &Daemon, name: &str, network: &str) -> String {
    let nets = d.inspect_json(name)["NetworkSettings"]["Networks"].clone();
    nets[network]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} on {network}: {nets:#}"))
        .to_string()
}

fn pid_of(d: &Daemon, name: &str) -> i64 {
    d.inspect_json(name)["State"]["Pid"].as_i64().expect("Pid")
}

/// The bridge of user network `name` (`moor-<10 hex of its id>`).
fn bridge_of(d: &Daemon, name: &str) -> String {
    let net = d
        .http("GET", &format!("/v1.44/networks/{name}"), None)
        .json();
    let id = net["Id"].as_str().expect("network Id");
    format!("moor-{}", &id[..10])
}

/// `moor admin nat --format json`, run in the daemon's namespace.
fn admin_nat(ns: &TestNetns, d: &Daemon) -> Value {
    let (root, run) = (d.root(), d.run_dir());
    let text = ns.ok(&[
        env!("CARGO_BIN_EXE_moor"),
        "admin",
        "--root",
        root.to_str().expect("utf-8"),
        "--run-dir",
        run.to_str().expect("utf-8"),
        "nat",
        "--format",
        "json",
    ]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn containers_on_different_networks_do_not_reach_each_other_and_a_restart_repairs_it() {
    let before = host_network();
    let Some((ns, mut d)) = setup() else {
        return;
    };
    d.cli_ok(&["network", "create", "--subnet", "10.71.0.0/24", "neta"]);
    d.cli_ok(&["network", "create", "--subnet", "10.72.0.0/24", "netb"]);
    run_on(&d, "aweb", "neta", &[], &["sh", "-c", &httpd("a-page")]);
    let published = ["-p", "8089:80"];
    run_on(
        &d,
        "bweb",
        "netb",
        &published,
        &["sh", "-c", &httpd("b-page")],
    );
    run_on(&d, "dweb", "bridge", &[], &["sh", "-c", &httpd("d-page")]);
    run_on(&d, "acli", "neta", &[], &["sleep", "1000"]);
    run_on(&d, "both", "neta", &[], &["sleep", "1000"]);
    d.docker_ok(&["network", "connect", "netb", "both"]);
    let (a_ip, b_ip) = (ip_on(&d, "aweb", "neta"), ip_on(&d, "bweb", "netb"));
    let d_ip = ip_on(&d, "dweb", "bridge");
    let page =
        |d: &Daemon, from: &str, ip: &str, page: &str| fetch_from(d, from, ip, 80).contains(page);

    // Same network: reached. Another network, the default bridge included: not.
    assert!(
        wait_for(Duration::from_secs(10), || page(
            &d, "acli", &a_ip, "a-page"
        )),
        "acli -> aweb on neta"
    );
    assert!(
        !page(&d, "acli", &b_ip, "b-page"),
        "neta must not reach netb"
    );
    assert!(
        !page(&d, "acli", &d_ip, "d-page"),
        "neta must not reach bridge"
    );
    assert!(
        !page(&d, "dweb", &a_ip, "a-page"),
        "bridge must not reach neta"
    );
    // On both networks: both reached.
    assert!(page(&d, "both", &a_ip, "a-page"), "both -> aweb");
    assert!(
        wait_for(Duration::from_secs(10), || page(
            &d, "both", &b_ip, "b-page"
        )),
        "both -> bweb"
    );
    // A published port answers on the namespace's loopback, and from another network
    // through the host (it is open to every client of the host).
    let lo = ns.http_get("127.0.0.1", 8089);
    assert!(lo.is_some_and(|p| p.contains("b-page")), "published port");
    let gateway = fetch_from(&d, "acli", "10.71.0.1", 8089);
    assert!(
        gateway.contains("b-page"),
        "published port from neta: {gateway}"
    );

    let (bridge_a, bridge_b) = (bridge_of(&d, "neta"), bridge_of(&d, "netb"));
    let listed = admin_nat(&ns, &d);
    for bridge in ["moor0", &bridge_a, &bridge_b] {
        assert!(
            listed["isolated"]
                .as_array()
                .is_some_and(|a| a.iter().any(|b| b == bridge)),
            "{bridge}: {listed:#}"
        );
    }

    // The daemon dies: the isolation stays. The chain and one set element are deleted
    // meanwhile (then netb is reached), and the next start puts both back.
    let acli = pid_of(&d, "acli");
    d.kill9();
    assert!(fetch_direct(acli, &a_ip).contains("a-page"), "daemon down");
    assert!(!fetch_direct(acli, &b_ip).contains("b-page"), "daemon down");
    ns.ok(&["nft", "delete", "chain", "ip", "moor", "forward"]);
    let element = format!("{{ {bridge_b} }}");
    ns.ok(&[
        "nft",
        "delete",
        "element",
        "ip",
        "moor",
        "isolated_bridges",
        &element,
    ]);
    assert!(
        fetch_direct(acli, &b_ip).contains("b-page"),
        "without the chain, netb is reached"
    );
    d.restart();
    assert!(
        !page(&d, "acli", &b_ip, "b-page"),
        "isolated again after the restart"
    );
    assert!(page(&d, "acli", &a_ip, "a-page"), "neta after the restart");
    assert!(page(&d, "both", &b_ip, "b-page"), "both after the restart");
    let sets = ns.ok(&["nft", "list", "set", "ip", "moor", "isolated_bridges"]);
    assert!(sets.contains(&bridge_b), "{sets}");

    // A removed network leaves the isolation sets.
    for name in ["aweb", "bweb", "dweb", "acli", "both"] {
        d.cli_ok(&["rm", "-f", name]);
    }
    d.cli_ok(&["network", "rm", "neta", "netb"]);
    let listed = admin_nat(&ns, &d);
    assert_eq!(
        listed["isolated"],
        serde_json::json!(["moor0"]),
        "{listed:#}"
    );
    let same = ns.ok(&["nft", "list", "set", "ip", "moor", "same_bridge"]);
    assert!(!same.contains("moor-"), "{same}");
    d.stop_term();
    drop(d);
    drop(ns);
    assert_eq!(host_network(), before, "the host's network is unchanged");
}

#[test]
fn an_internal_network_reaches_nothing_but_its_bridge_even_with_a_route() {
    let before = host_network();
    let Some((ns, mut d)) = setup() else {
        return;
    };
    let outside = Outside::new(&ns);
    // The outside answers whoever routes to it through the daemon's namespace.
    outside
        .ns
        .ok(&["ip", "route", "add", "default", "via", "10.93.0.1"]);
    d.cli_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.91.0.0/24",
        "int",
    ]);
    run_on(&d, "iweb", "int", &[], &["sh", "-c", &httpd("inside-page")]);
    run_on(&d, "icli", "int", &[], &["sleep", "1000"]);
    let i_ip = ip_on(&d, "iweb", "int");
    assert!(
        wait_for(Duration::from_secs(10), || fetch_from(
            &d, "icli", &i_ip, 80
        )
        .contains("inside-page")),
        "on the internal network"
    );
    let listed = admin_nat(&ns, &d);
    let bridge = bridge_of(&d, "int");
    assert_eq!(
        listed["internal"],
        serde_json::json!([bridge]),
        "{listed:#}"
    );
    assert!(
        !listed["bridges"]
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b == bridge.as_str())),
        "an internal network is not masqueraded: {listed:#}"
    );

    // iweb is given a default route (what a container with NET_ADMIN could do): the host
    // still forwards nothing for it, either way.
    let iweb = pid_of(&d, "iweb");
    let gw = ["ip", "route", "add", "default", "via", "10.91.0.1"];
    let out = Command::new("nsenter")
        .args(["-t", &iweb.to_string(), "-n", "--"])
        .args(gw)
        .output()
        .expect("nsenter ip route");
    assert!(out.status.success(), "{}", common::describe(&out));
    let out_page = || fetch_direct(iweb, "10.93.0.2").contains("outside-page");
    let in_page = || {
        outside
            .ns
            .http_get(&i_ip, 80)
            .is_some_and(|p| p.contains("inside-page"))
    };
    assert!(!out_page(), "int must not reach outside");
    assert!(!in_page(), "outside must not reach int");

    // Without the chain (deleted while the daemon is away) both pass; the next start puts
    // it back.
    d.kill9();
    ns.ok(&["nft", "flush", "chain", "ip", "moor", "forward"]);
    assert!(out_page(), "without the chain, int reaches outside");
    assert!(in_page(), "without the chain, outside reaches int");
    d.restart();
    assert!(!out_page(), "int isolated again after the restart");
    assert!(!in_page(), "int isolated again after the restart");
    assert!(fetch_from(&d, "icli", &i_ip, 80).contains("inside-page"));

    for name in ["iweb", "icli"] {
        d.cli_ok(&["rm", "-f", name]);
    }
    d.cli_ok(&["network", "rm", "int"]);
    let listed = admin_nat(&ns, &d);
    assert_eq!(listed["internal"], serde_json::json!([]), "{listed:#}");
    drop(outside);
    d.stop_term();
    drop(d);
    drop(ns);
    assert_eq!(host_network(), before, "the host's network is unchanged");
}
