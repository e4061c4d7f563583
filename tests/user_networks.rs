//! User networks for real (root, runc, busybox), each daemon in a network namespace the test
//! made (`common::netns`; the host's links, addresses and routes are the same before and
//! after): created with a bridge of their own, containers on one find each other by name,
//! alias and short id through moor-kept `/etc/hosts` entries, a container on another network
//! does not get them, an entry goes when its container stops, a network in use is not removed.

mod common;

use std::time::Duration;

use common::netns::{host_network, TestNetns};
use common::runc::skip_reason;
use common::{wait_for, Daemon};
use serde_json::Value;

const BRIDGE: &str = r#"{"bridge": "moor0"}"#;

/// The namespace and a runc daemon in it with busybox imported as `bb`; None when skipped.
fn setup() -> Option<(TestNetns, Daemon)> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let ns = TestNetns::new();
    let d = ns.daemon(BRIDGE, "runc");
    d.import_busybox("bb");
    Some((ns, d))
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-moor > /www/index.html && exec httpd -f -p 80 -h /www";

fn hosts(d: &Daemon, name: &str) -> String {
    d.cli_ok(&["exec", name, "cat", "/etc/hosts"])
}

/// Whether container `from` gets the page of `host` (a name it resolves) with busybox `nc`.
fn fetch_from(d: &Daemon, from: &str, host: &str) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80");
    let out = d.cli(&["exec", from, "sh", "-c", &script]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name_and_only_they() {
    let before = host_network();
    let Some((ns, mut d)) = setup() else {
        return;
    };
    let id1 = d.cli_ok(&["network", "create", "front"]).trim().to_string();
    d.cli_ok(&["network", "create", "back"]);
    let bridge = format!("moor-{}", &id1[..10]);
    assert!(ns.links().contains(&bridge), "{:?}", ns.links());
    // moor admin lists the user network's bridge with the default one.
    let paths = [d.root(), d.run_dir(), d.config_path()].map(|p| p.display().to_string());
    let listed = ns.ok(&[
        common::MOOR,
        "admin",
        "--root",
        &paths[0],
        "--run-dir",
        &paths[1],
        "--config",
        &paths[2],
        "network",
    ]);
    assert!(
        listed.contains(&bridge) && listed.contains("moor0"),
        "{listed}"
    );
    let web = d.cli_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "-p",
        "8080:80",
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    let web = web.trim().to_string();
    // A port published from a user network answers on the host's loopback.
    let published = || ns.http_get("127.0.0.1", 8080).is_some();
    assert!(
        common::wait_for(std::time::Duration::from_secs(10), published),
        "127.0.0.1:8080"
    );
    d.cli_ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "front",
        "bb",
        "sleep",
        "1000",
    ]);
    d.cli_ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "back",
        "bb",
        "sleep",
        "1000",
    ]);
    let web_ip = d.inspect_json("web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .expect("IPAddress")
        .to_string();
    let line = format!("{web_ip}\tweb www {}", &web[..12]);
    let got = wait_for(Duration::from_secs(10), || hosts(&d, "cli").contains(&line));
    assert!(got, "cli's /etc/hosts: {}", hosts(&d, "cli"));
    assert!(hosts(&d, "web").contains("\tcli "), "{}", hosts(&d, "web"));
    for name in ["web", "www", &web[..12]] {
        let page = fetch_from(&d, "cli", name);
        assert!(page.contains("hello-moor"), "cli fetching {name}: {page:?}");
    }
    let other = hosts(&d, "other");
    assert!(!other.contains("web") && !other.contains("cli"), "{other}");
    assert!(!fetch_from(&d, "other", "web").contains("hello-moor"));

    // The network lists its running containers; one in use is not removed.
    let net = d.http("GET", "/v1.44/networks/front", None).json();
    assert_eq!(net["Containers"][&web]["Name"], "web", "{net:#}");
    let rm = d.http("DELETE", "/v1.44/networks/front", None);
    assert_eq!(rm.status, 409, "{}", rm.body);
    assert!(
        rm.body.contains("cli") && rm.body.contains("web"),
        "{}",
        rm.body
    );

    // web stops: its entry goes from cli's /etc/hosts.
    d.cli_ok(&["stop", "-t", "1", "web"]);
    let gone = wait_for(Duration::from_secs(10), || {
        !hosts(&d, "cli").contains("www")
    });
    assert!(gone, "{}", hosts(&d, "cli"));
    d.cli_ok(&["start", "web"]);
    let back = wait_for(Duration::from_secs(10), || hosts(&d, "cli").contains(&line));
    assert!(back, "{}", hosts(&d, "cli"));

    // The daemon dies: names still resolve (no process of moor on the path). web ends while
    // it is away: the next start takes its entry out.
    let pid_of =
        |d: &Daemon, name: &str| d.inspect_json(name)["State"]["Pid"].as_i64().expect("Pid");
    let (cli_pid, web_pid) = (pid_of(&d, "cli"), pid_of(&d, "web"));
    d.kill9();
    let script = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 www 80";
    let out = std::process::Command::new("nsenter")
        .args([
            "-t",
            &cli_pid.to_string(),
            "-m",
            "-n",
            "--",
            "/bin/sh",
            "-c",
            script,
        ])
        .output()
        .expect("nsenter");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains("hello-moor"),
        "with the daemon down: {page:?} {out:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(web_pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .expect("kill web");
    d.restart();
    let gone = wait_for(Duration::from_secs(10), || {
        !hosts(&d, "cli").contains("www")
    });
    assert!(gone, "after the restart: {}", hosts(&d, "cli"));

    for name in ["web", "cli", "other"] {
        d.cli_ok(&["rm", "-f", name]);
    }
    d.cli_ok(&["network", "rm", "front", "back"]);
    assert!(!ns.links().contains(&bridge), "{:?}", ns.links());
    d.stop_term();
    drop(d);
    drop(ns);
    assert_eq!(host_network(), before, "the host's network is unchanged");
}

fn create(d: &Daemon, body: Value) -> common::HttpResponse {
    d.http("POST", "/v1.44/networks/create", Some(&body.to_string()))
}

#[test]
fn network_create_list_prune_and_bridges_made_again_at_start() {
    let Some((ns, mut d)) = setup() else {
        return;
    };
    let made = create(
        &d,
        serde_json::json!({"Name": "n1", "Driver": "bridge", "CheckDuplicate": true,
            "Labels": {"a": "b"},
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.9"}]}}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.json()["Id"].as_str().expect("Id").to_string();
    let n1 = d
        .http("GET", &format!("/v1.44/networks/{}", &id[..12]), None)
        .json();
    assert_eq!(n1["Name"], "n1");
    assert_eq!(n1["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/24");
    assert_eq!(n1["IPAM"]["Config"][0]["Gateway"], "10.77.0.9");
    assert_eq!(n1["Labels"]["a"], "b");
    let dup = create(&d, serde_json::json!({"Name": "n1"}));
    assert_eq!(dup.status, 409, "{}", dup.body);
    for (body, names) in [
        (
            serde_json::json!({"Name": "x", "Driver": "overlay"}),
            "Driver=overlay",
        ),
        (serde_json::json!({"Name": "x", "Ingress": true}), "Ingress"),
        (
            serde_json::json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.77.0.128/25"}]}}),
            "overlaps",
        ),
        (
            serde_json::json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.78.0.0/24", "IPRange": "10.78.0.0/23"}]}}),
            "IPRange 10.78.0.0/23 is not inside subnet 10.78.0.0/24",
        ),
        (serde_json::json!({"Name": "bridge"}), "pre-defined"),
        (
            serde_json::json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.79.0.5/24"}]}}),
            "it should be 10.79.0.0/24",
        ),
        (
            serde_json::json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.79.0.0/24", "Gateway": "10.80.0.1"}]}}),
            "not a host address",
        ),
    ] {
        let r = create(&d, body);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains(names), "{names}: {}", r.body);
    }
    // A subnet chosen from Docker's pools, free of the default network's and n1's.
    d.cli_ok(&["network", "create", "n2"]);
    let n2 = d.http("GET", "/v1.44/networks/n2", None).json();
    let bridge = d.http("GET", "/v1.44/networks/bridge", None).json();
    let s2 = n2["IPAM"]["Config"][0]["Subnet"].as_str().expect("subnet");
    assert_ne!(Some(s2), bridge["IPAM"]["Config"][0]["Subnet"].as_str());
    let ls = d.cli_ok(&["network", "ls"]);
    assert!(
        ls.contains("n1") && ls.contains("n2") && ls.contains("bridge"),
        "{ls}"
    );
    d.cli_ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "n1",
        "bb",
        "sleep",
        "1000",
    ]);
    let ip = d.inspect_json("c1")["NetworkSettings"]["IPAddress"].clone();
    assert_eq!(ip, "10.77.0.1", "the first free address");
    let alias = d.cli(&["run", "-d", "--network-alias", "x", "bb", "true"]);
    let said = String::from_utf8_lossy(&alias.stderr);
    assert!(
        said.contains("NetworkingConfig.EndpointsConfig.default.Aliases=x"),
        "{said}"
    );
    let unknown = d.cli(&["run", "-d", "--network", "nosuch", "bb", "true"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("network nosuch not found"));

    // A bridge deleted while the daemon is down is made again at start.
    let br1 = format!("moor-{}", &id[..10]);
    d.kill9();
    ns.ok(&["ip", "link", "del", &br1]);
    d.restart();
    assert!(ns.links().contains(&br1), "{:?}", ns.links());

    // The docker CLI: create, ls, inspect, run --network with an alias, rm (refused in use).
    let id3 = d.docker_ok(&["network", "create", "--label", "k=v", "n3"]);
    assert_eq!(id3.trim().len(), 64, "{id3}");
    assert!(d.docker_ok(&["network", "ls"]).contains("n3"));
    let shown = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{.Labels.k}}",
        "n3",
    ]);
    assert_eq!(shown.trim(), "bridge v");
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "c3",
        "--network",
        "n3",
        "--network-alias",
        "al",
        "bb",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "c4",
        "--network",
        "n3",
        "bb",
        "sleep",
        "1000",
    ]);
    let seen = wait_for(Duration::from_secs(10), || {
        d.cli_ok(&["exec", "c4", "cat", "/etc/hosts"])
            .contains("\tc3 al ")
    });
    assert!(seen, "{}", d.cli_ok(&["exec", "c4", "cat", "/etc/hosts"]));
    let refused = d.docker_fail(&["network", "rm", "n3"]);
    assert!(refused.contains("active endpoints"), "{refused}");
    d.docker_ok(&["rm", "-f", "c3", "c4"]);
    d.docker_ok(&["network", "rm", "n3"]);

    // Concurrent creates without a subnet each get one of their own (a pool another create
    // took meanwhile is chosen again).
    let socket = d.socket();
    let answers: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let socket = socket.clone();
                s.spawn(move || {
                    let body = format!(r#"{{"Name": "race{i}"}}"#);
                    let req = format!(
                        "POST /v1.44/networks/create HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    common::raw_request(&socket, &req, Duration::from_secs(30)).expect("create")
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect()
    });
    for a in &answers {
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let mut subnets: Vec<String> = (0..4)
        .map(|i| {
            let n = d
                .http("GET", &format!("/v1.44/networks/race{i}"), None)
                .json();
            n["IPAM"]["Config"][0]["Subnet"]
                .as_str()
                .expect("subnet")
                .to_string()
        })
        .collect();
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 4, "{subnets:?}");

    // Prune removes n2 and the race networks (unused) and keeps n1 (c1 is on it).
    let pruned = d.http("POST", "/v1.44/networks/prune", None).json();
    let mut deleted: Vec<String> =
        serde_json::from_value(pruned["NetworksDeleted"].clone()).expect("names");
    deleted.sort();
    assert_eq!(deleted, ["n2", "race0", "race1", "race2", "race3"]);
    d.cli_ok(&["rm", "-f", "c1"]);
    d.cli_ok(&["network", "rm", "n1"]);
    assert!(!ns.links().contains(&br1));
    d.stop_term();
}
