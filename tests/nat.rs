//! moor's NAT table for real (root): in network namespaces this test creates, a bridge and a
//! second namespace standing in for a container (made with `ip` here only) serve a page with
//! `busybox httpd`; the library's `nat::ensure` and `publish` run on a thread moved into the
//! "host" namespace (the `nft` children inherit it), and `busybox wget` from that namespace
//! reaches the page on 127.0.0.1 and on the namespace's own address. The host's own ruleset,
//! links, addresses and routes are compared before and after.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use moor::network::nat::{self, BridgeNat, Published};
use moor_state::ports::{PortMapping, Proto};

mod common;

/// The host's network as `ip -j` and `nft` show it.
fn host_network() -> Vec<String> {
    let mut out = Vec::new();
    for args in [
        &["-j", "link", "show"][..],
        &["-j", "addr", "show"],
        &["-j", "route", "show", "table", "all"],
    ] {
        out.push(run("ip", args));
    }
    if Command::new("nft").arg("--version").output().is_ok() {
        out.push(run("nft", &["list", "ruleset"]));
    }
    out
}

fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    common::succeeded(tool, args, output)
}

/// Runs `args` inside network namespace `ns` (its /run/netns name).
fn in_ns(ns: &str, args: &[&str]) -> Output {
    let net = format!("--net=/run/netns/{ns}");
    Command::new("nsenter")
        .arg(&net)
        .args(args)
        .output()
        .expect("nsenter")
}

fn ns_ok(ns: &str, args: &[&str]) {
    let out = in_ns(ns, args);
    assert!(
        out.status.success(),
        "{ns}: {args:?}: {}",
        common::describe(&out)
    );
}

/// Two namespaces, a bridge, a veth, an httpd; every process killed by pid and both
/// namespaces deleted on drop.
struct Lab {
    host: String,
    container: String,
    holder: Child,
    httpd: Option<Child>,
    _www: tempfile::TempDir,
}

const BRIDGE: &str = "moortest0";
const SUBNET: [u8; 3] = [10, 231, 7];
const OWN_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PAGE: &str = "hello from the container\n";

impl Lab {
    fn new() -> Lab {
        let tag: u32 = rand::random();
        let host = format!("moor-nat-{tag:08x}");
        let container = format!("moor-nat-{tag:08x}-c");
        run("ip", &["netns", "add", &host]);
        run("ip", &["netns", "add", &container]);
        let holder = Command::new("nsenter")
            .args([&format!("--net=/run/netns/{host}"), "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("holder");
        let www = tempfile::tempdir().expect("tempdir");
        std::fs::write(www.path().join("index.html"), PAGE).unwrap();
        let mut lab = Lab {
            host,
            container,
            holder,
            httpd: None,
            _www: www,
        };
        lab.wire();
        let root = lab._www.path().to_str().unwrap().to_string();
        let httpd = Command::new("nsenter")
            .args([
                &format!("--net=/run/netns/{}", lab.container),
                "busybox",
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                &root,
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("httpd");
        lab.httpd = Some(httpd);
        let direct = format!("http://{}:80/", lab.container_ip());
        assert!(
            common::wait_for(Duration::from_secs(10), || lab.fetch(&direct).is_ok()),
            "httpd answers on the bridge"
        );
        lab
    }

    fn container_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 2)
    }

    /// The bridge with its gateway address, a veth into the container namespace, and the
    /// host namespace's "own" address (on its loopback link: no dummy module here).
    fn wire(&self) {
        let (h, c) = (self.host.as_str(), self.container.as_str());
        let gw = format!("{}.{}.{}.1/24", SUBNET[0], SUBNET[1], SUBNET[2]);
        let cip = format!("{}/24", self.container_ip());
        let own = format!("{OWN_ADDR}/32");
        ns_ok(h, &["ip", "link", "set", "lo", "up"]);
        ns_ok(h, &["ip", "link", "add", BRIDGE, "type", "bridge"]);
        ns_ok(h, &["ip", "addr", "add", &gw, "dev", BRIDGE]);
        ns_ok(h, &["ip", "link", "set", BRIDGE, "up"]);
        ns_ok(h, &["ip", "addr", "add", &own, "dev", "lo"]);
        ns_ok(
            h,
            &[
                "ip", "link", "add", "vh0", "type", "veth", "peer", "name", "vc0",
            ],
        );
        ns_ok(h, &["ip", "link", "set", "vh0", "master", BRIDGE, "up"]);
        // What moor's bridge code does for its ports: a container may reach itself.
        ns_ok(
            h,
            &[
                "ip",
                "link",
                "set",
                "vh0",
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ],
        );
        ns_ok(h, &["ip", "link", "set", "vc0", "netns", c]);
        ns_ok(c, &["ip", "link", "set", "lo", "up"]);
        ns_ok(c, &["ip", "addr", "add", &cip, "dev", "vc0"]);
        ns_ok(c, &["ip", "link", "set", "vc0", "up"]);
        let via = format!("{}.{}.{}.1", SUBNET[0], SUBNET[1], SUBNET[2]);
        ns_ok(c, &["ip", "route", "add", "default", "via", &via]);
    }

    /// `busybox wget` from the host namespace: the page, or why not.
    fn fetch(&self, url: &str) -> Result<String, String> {
        self.fetch_from(&self.host, url)
    }

    /// `busybox wget` from namespace `ns`.
    fn fetch_from(&self, ns: &str, url: &str) -> Result<String, String> {
        // `timeout`, not wget's `-T`: busybox 1.35's wget crashes with it here.
        let out = in_ns(
            ns,
            &["timeout", "10", "busybox", "wget", "-q", "-O", "-", url],
        );
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(common::describe(&out)),
        }
    }

    /// Runs `f` on a thread moved into the host namespace (through the holder's
    /// `/proc/PID/ns/net`): what moor's daemon does, from its own namespace.
    fn nat<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let ns =
            std::fs::File::open(format!("/proc/{}/ns/net", self.holder.id())).expect("holder ns");
        std::thread::spawn(move || {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("nat thread")
    }

    /// `moor admin nat ARGS` run in the host namespace, on paths of the test's own.
    fn admin_nat(&self, args: &[&str]) -> String {
        let root = self._www.path().join("root");
        let run = self._www.path().join("run");
        let (root, run) = (root.to_str().unwrap(), run.to_str().unwrap());
        let mut all = vec![
            env!("CARGO_BIN_EXE_moor"),
            "admin",
            "--root",
            root,
            "--run-dir",
            run,
            "nat",
        ];
        all.extend(args);
        let out = in_ns(&self.host, &all);
        assert!(
            out.status.success(),
            "moor admin nat {args:?}: {}",
            common::describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn bridge() -> BridgeNat {
        BridgeNat {
            name: BRIDGE.into(),
            subnet: Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 0),
            prefix_len: 24,
            internal: false,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in self.httpd.iter_mut().chain([&mut self.holder]) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.container, &self.host] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn mapping(host_ip: Option<Ipv4Addr>, host_port: u16) -> PortMapping {
    PortMapping {
        container_port: 80,
        proto: Proto::Tcp,
        host_ip,
        host_port,
    }
}

#[test]
fn published_ports_reach_the_container_from_loopback_and_own_address() {
    let before = host_network();
    {
        let lab = Lab::new();
        let ip = lab.container_ip();
        let any = mapping(None, 18080);
        let lo_only = mapping(Some(Ipv4Addr::LOCALHOST), 18081);
        let ports = vec![any, lo_only];
        let p = ports.clone();
        lab.nat(move || {
            nat::ensure(&Lab::bridge()).expect("ensure");
            nat::ensure(&Lab::bridge()).expect("ensure again (idempotent)");
            nat::publish("c1", ip, &p).expect("publish");
        });
        let own = format!("http://{OWN_ADDR}:18080/");
        assert_eq!(lab.fetch("http://127.0.0.1:18080/").as_deref(), Ok(PAGE));
        assert_eq!(lab.fetch(&own).as_deref(), Ok(PAGE));
        assert_eq!(lab.fetch("http://127.0.0.1:18081/").as_deref(), Ok(PAGE));
        assert!(
            lab.fetch(&format!("http://{OWN_ADDR}:18081/")).is_err(),
            "published on 127.0.0.1 only"
        );
        // Hairpin: the container reaches its own published port through a host address.
        let gateway = format!("http://{}.{}.{}.1:18080/", SUBNET[0], SUBNET[1], SUBNET[2]);
        assert_eq!(
            lab.fetch_from(&lab.container, &gateway).as_deref(),
            Ok(PAGE)
        );

        let listing = lab.nat(nat::list).expect("list").expect("table present");
        assert_eq!(
            listing.bridges,
            vec![BRIDGE.to_string()],
            "ensure twice adds the bridge once"
        );
        assert_eq!(listing.subnets, vec!["10.231.7.0/24".to_string()]);
        assert_eq!(listing.published.len(), 2, "{listing:?}");
        for e in &listing.published {
            assert_eq!(e.owner.as_deref(), Some("c1"));
            assert_eq!((e.container_ip, e.container_port), (Some(ip), Some(80)));
        }

        let p = ports.clone();
        lab.nat(move || {
            nat::unpublish("c1", ip, &p).expect("unpublish");
            nat::unpublish("c1", ip, &p).expect("unpublishing again is no error");
        });
        assert!(
            lab.fetch("http://127.0.0.1:18080/").is_err(),
            "unpublished: refused"
        );
        assert!(lab.fetch(&own).is_err(), "unpublished: refused");
        assert!(lab.nat(nat::list).unwrap().unwrap().published.is_empty());

        let published = vec![Published {
            id: "c1".into(),
            ip,
            ports: ports.clone(),
        }];
        lab.nat(move || nat::replace_all(&[Lab::bridge()], &published).expect("replace_all"));
        assert_eq!(lab.fetch("http://127.0.0.1:18080/").as_deref(), Ok(PAGE));
        assert_eq!(lab.fetch(&own).as_deref(), Ok(PAGE));
        assert_eq!(lab.nat(nat::list).unwrap().unwrap().published.len(), 2);
        let shown = lab.admin_nat(&[]);
        assert!(shown.contains("bridges: moortest0\n"), "{shown}");
        let line = format!("tcp    0.0.0.0:18080          {ip}:80          c1");
        assert!(shown.contains(&line), "{shown}");
        assert!(
            shown.contains(&format!("tcp    127.0.0.1:18081        {ip}:80")),
            "{shown}"
        );

        lab.nat(|| {
            nat::remove_table().expect("remove");
            nat::remove_table().expect("removing an absent table is no error");
        });
        assert_eq!(
            lab.nat(nat::list).expect("list"),
            None,
            "no table ip moor left"
        );
        assert!(lab.fetch("http://127.0.0.1:18080/").is_err());
    }
    assert_eq!(before, host_network(), "the host's network is unchanged");
}

#[test]
fn a_key_held_by_another_container_is_neither_taken_nor_removed() {
    let lab = Lab::new();
    let ip = lab.container_ip();
    let other = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 3);
    let result = lab.nat(move || {
        nat::ensure(&Lab::bridge()).expect("ensure");
        nat::publish("c1", ip, &[mapping(None, 18082)]).expect("publish");
        let taken = nat::publish("c2", other, &[mapping(None, 18082)]);
        let removed = nat::unpublish("c2", other, &[mapping(None, 18082)]);
        (
            taken.map_err(|e| e.to_string()),
            removed.map_err(|e| e.to_string()),
        )
    });
    let (taken, removed) = result;
    assert!(taken
        .unwrap_err()
        .contains("nft failed while publishing ports"));
    assert!(removed.is_err(), "c2 cannot remove c1's port");
    assert_eq!(
        lab.fetch("http://127.0.0.1:18082/").as_deref(),
        Ok(PAGE),
        "c1's port stays"
    );
    let shown = lab.admin_nat(&["--remove"]);
    assert!(shown.contains("table ip moor removed"), "{shown}");
    assert_eq!(lab.admin_nat(&[]), "no table ip moor\n");
    assert_eq!(lab.admin_nat(&["--format", "json"]), "null\n");
    assert!(
        lab.fetch("http://127.0.0.1:18082/").is_err(),
        "removed with the table"
    );
}

#[test]
fn a_bridge_leaves_a_table_an_older_moor_made_without_the_isolation_sets() {
    let lab = Lab::new();
    let old = "add table ip moor\n\
        add set ip moor bridges { type ifname; }\n\
        add set ip moor subnets { type ipv4_addr; flags interval; }\n\
        add element ip moor bridges { moortest0 }\n\
        add element ip moor subnets { 10.231.7.0/24 }\n";
    let script = format!("printf '{old}' | nft -f -");
    ns_ok(&lab.host, &["sh", "-c", &script]);
    let forgot = lab.nat(|| nat::forget(&Lab::bridge()).map_err(|e| e.to_string()));
    assert_eq!(forgot, Ok(()));
    let listing = lab.nat(nat::list).expect("list").expect("table present");
    assert!(
        listing.bridges.is_empty() && listing.subnets.is_empty(),
        "{listing:?}"
    );
    assert!(listing.isolated.is_empty(), "{listing:?}");
}
