//! Published ports end to end (issue 17, part 2): a runc container on the default bridge
//! with `-p` answers on the host's 127.0.0.1 and on the host's own address, through moor's
//! nftables table and no process of moor's; across a `kill -9` of the daemon and after a
//! restart that finds the table gone; a port another container holds is refused at start
//! with Docker's words; `-P` takes an ephemeral port; `docker port` and inspect show them;
//! nothing of a container's is left in the table once it is gone. Every daemon runs in a
//! network namespace the test made (the host's tables and links are compared before/after).

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::netns::{host_network, TestNetns};
use common::runc::skip_reason;
use common::{wait_for, Daemon};

const BRIDGE_LIVE: &str = r#"{"live-restore": true, "bridge": "moor0"}"#;

/// The daemons' environment is this process's: one spawn at a time, so a fail point armed
/// through `FAILPOINTS` reaches only the daemon it was meant for.
static SPAWN: Mutex<()> = Mutex::new(());

/// A runc daemon on the bridge in `ns`, with the fail point `point` armed (None: none), and
/// busybox imported as `bb`.
fn daemon_in(ns: &TestNetns, point: Option<&str>) -> Daemon {
    let d = {
        let _one = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(point) = point {
            std::env::set_var("FAILPOINTS", format!("{point}=return"));
        }
        let d = ns.daemon(BRIDGE_LIVE, "runc");
        std::env::remove_var("FAILPOINTS");
        d
    };
    d.import_busybox("bb");
    d
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-ports > /www/index.html && exec httpd -f -p 80 -h /www";

fn answers(ns: &TestNetns, addr: &str, port: u16) -> bool {
    wait_for(Duration::from_secs(10), || {
        ns.http_get(addr, port)
            .is_some_and(|t| t.contains("hello-ports"))
    })
}

fn refused(ns: &TestNetns, addr: &str, port: u16) -> bool {
    wait_for(Duration::from_secs(10), || {
        ns.http_get(addr, port).is_none()
    })
}

/// The host's nftables ruleset (empty when nft lists nothing).
fn host_ruleset() -> String {
    let out = Command::new("nft").args(["list", "ruleset"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn published_ports_answer_across_a_daemon_kill_and_a_lost_table() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let (links, rules) = (host_network(), host_ruleset());
    let ns = TestNetns::new();
    let mut d = daemon_in(&ns, None);
    let gateway = d.http("GET", "/v1.44/networks/bridge", None).json()["IPAM"]["Config"][0]
        ["Gateway"]
        .as_str()
        .expect("gateway")
        .to_string();

    d.cli_ok(&[
        "run", "-d", "--name", "web", "-p", "8080:80", "bb", "sh", "-c", HTTPD,
    ]);
    assert!(answers(&ns, "127.0.0.1", 8080), "127.0.0.1:8080");
    assert!(
        answers(&ns, &gateway, 8080),
        "{gateway}:8080 (a host address)"
    );
    let v = d.inspect_json("web");
    assert_eq!(
        v["NetworkSettings"]["Ports"]["80/tcp"],
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "8080"}]),
        "{v:#}"
    );
    assert_eq!(
        d.docker_ok(&["port", "web"]).trim(),
        "80/tcp -> 0.0.0.0:8080"
    );
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(ps.trim(), "web 0.0.0.0:8080->80/tcp");
    assert!(d.cli_ok(&["ps"]).contains("0.0.0.0:8080->80/tcp"));
    let ip = v["NetworkSettings"]["IPAddress"].clone();

    // A second container asking for the same port: refused at start, in Docker's words.
    d.cli_ok(&[
        "create", "--name", "twin", "-p", "8080:80", "bb", "sh", "-c", HTTPD,
    ]);
    let start = d.http("POST", "/v1.44/containers/twin/start", None);
    assert_eq!(start.status, 500, "{}", start.body);
    assert!(
        start
            .message()
            .contains("Bind for 0.0.0.0:8080 failed: port is already allocated"),
        "{}",
        start.message()
    );
    assert!(answers(&ns, "127.0.0.1", 8080), "the first keeps its port");

    // PublishAllPorts (-P): the exposed port on an ephemeral port.
    let body = serde_json::json!({
        "Image": "bb", "Cmd": ["sh", "-c", HTTPD], "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PublishAllPorts": true},
    });
    let made = d.http(
        "POST",
        "/v1.44/containers/create?name=any",
        Some(&body.to_string()),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let started = d.http("POST", "/v1.44/containers/any/start", None);
    assert_eq!(started.status, 204, "{}", started.body);
    let host_port: u16 = d.inspect_json("any")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .expect("a host port")
        .parse()
        .expect("a number");
    assert!((32768..=60999).contains(&host_port), "{host_port}");
    assert!(answers(&ns, "127.0.0.1", host_port));

    // The daemon dies: nothing of moor's is on the path, the ports still answer.
    d.kill9();
    assert!(answers(&ns, "127.0.0.1", 8080), "while the daemon is down");
    let _one = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    // The table goes too while it is down: the next start puts it back.
    ns.ok(&["nft", "delete", "table", "ip", "moor"]);
    assert!(refused(&ns, "127.0.0.1", 8080));
    d.restart();
    assert!(
        answers(&ns, "127.0.0.1", 8080),
        "after the restart restored the table"
    );
    assert!(answers(&ns, "127.0.0.1", host_port));
    assert_eq!(d.inspect_json("web")["NetworkSettings"]["IPAddress"], ip);

    // Gone with the container: its ports, and nothing else of it in the table.
    d.cli_ok(&["rm", "-f", "web", "any", "twin"]);
    assert!(refused(&ns, "127.0.0.1", 8080));
    assert!(refused(&ns, "127.0.0.1", host_port));
    let table = ns.ok(&["nft", "list", "table", "ip", "moor"]);
    assert!(!table.contains("8080"), "{table}");
    d.stop_term();
    drop(d);
    drop(ns);
    assert_eq!(
        host_network(),
        links,
        "the host's links, addresses or routes changed"
    );
    assert_eq!(host_ruleset(), rules, "the host's nftables ruleset changed");
}

/// The daemon killed (fail points, as `kill -9`) after a start made the container's network,
/// and after it published its ports, before the shim ran: after the restart the start is
/// recorded as lost, no veth, namespace file or NAT element of it is left, and starting it
/// again gives it its network and its port.
#[test]
fn a_start_killed_after_its_network_or_ports_leaves_nothing_and_runs_again() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    for point in ["network-attached", "ports-published"] {
        let ns = TestNetns::new();
        let mut d = daemon_in(&ns, Some(point));
        let out = d.cli(&[
            "run", "-d", "--name", "web", "-p", "8080:80", "bb", "sh", "-c", HTTPD,
        ]);
        assert!(!out.status.success(), "{point}: the run went through");
        assert!(
            d.wait_exited(Duration::from_secs(20)).is_some(),
            "{point}: the daemon lives"
        );
        {
            let _one = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            d.restart();
        }
        let state = d.inspect_json("web")["State"].clone();
        assert_eq!(state["Status"], "exited", "{point}: {state}");
        assert!(
            wait_for(Duration::from_secs(10), || !ns
                .links()
                .iter()
                .any(|l| l.starts_with("moorv"))),
            "{point}: a veth is left: {:?}",
            ns.links()
        );
        let files: Vec<_> = std::fs::read_dir(d.run_dir().join("netns"))
            .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(files.is_empty(), "{point}: namespace files left: {files:?}");
        let table = ns.ok(&["nft", "list", "table", "ip", "moor"]);
        assert!(!table.contains("8080"), "{point}: {table}");
        d.cli_ok(&["start", "web"]);
        assert!(answers(&ns, "127.0.0.1", 8080), "{point}: started again");
        d.cli_ok(&["rm", "-f", "web"]);
        d.stop_term();
    }
}
