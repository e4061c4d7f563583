//! A network namespace of the test's own for a daemon that makes a bridge: `ip netns add
//! moor-test-<random>`, one holder process in it (`nsenter --net=... sleep`) that every daemon
//! start enters (`nsenter -t HOLDER -n`: only the network namespace, the host's mounts and
//! cgroups stay, which runc needs; `ip netns exec` would remount /sys). Dropped: the holder
//! is killed by pid and the namespace deleted. [`host_network`] is what the host shows of its
//! own links, addresses and routes, for a before/after comparison.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{wait_for, Binaries, Daemon};

/// A named network namespace with a holder process in it.
pub struct TestNetns {
    /// `moor-test-<random>`.
    pub name: String,
    /// `nsenter --net=/run/netns/NAME sleep`: keeps a process in the namespace.
    holder: Child,
}

impl TestNetns {
    /// Creates the namespace (loopback up) and its holder.
    pub fn new() -> TestNetns {
        let name = format!("moor-test-{:08x}", rand::random::<u32>());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            super::describe(&out)
        );
        let holder = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{name}"))
            .args(["sleep", "100000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the namespace's holder");
        let ns = TestNetns { name, holder };
        let want = std::fs::metadata(format!("/run/netns/{}", ns.name))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let entered = wait_for(Duration::from_secs(10), || {
            let link = std::fs::metadata(format!("/proc/{}/ns/net", ns.pid()));
            matches!((&link, &want), (Ok(l), Ok(w)) if std::os::unix::fs::MetadataExt::ino(l) == *w)
        });
        assert!(entered, "the holder did not enter {}", ns.name);
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The holder's pid.
    pub fn pid(&self) -> i32 {
        self.holder.id() as i32
    }

    /// Runs `args` in the namespace.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n", "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("nsenter {args:?}: {e}"))
    }

    /// [`TestNetns::run`] that must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        super::succeeded("nsenter", args, out)
    }

    /// `GET /` on `addr:port` from inside the namespace with `busybox nc` (this machine's
    /// static busybox `wget` crashes in its resolver): the answer, if it is a 200.
    pub fn http_get(&self, addr: &str, port: u16) -> Option<String> {
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t",
            &self.pid().to_string(),
            "-n",
            "--",
            "busybox",
            "nc",
            "-w",
            "2",
        ])
        .arg(addr)
        .arg(port.to_string());
        let out = super::run_client(cmd, "busybox nc", &[], Some(b"GET / HTTP/1.0\r\n\r\n"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.starts_with("HTTP/1.1 200").then_some(text)
    }

    /// The namespace's links by name (`ip -j link`).
    pub fn links(&self) -> Vec<String> {
        let text = self.ok(&["ip", "-j", "link"]);
        let v: Value = serde_json::from_str(&text).expect("ip -j link");
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["ifname"].as_str().map(String::from))
            .collect()
    }

    /// A daemon of `runtime` on `config_json` (which must name `bridge`) in this namespace.
    pub fn daemon(&self, config_json: &str, runtime: &'static str) -> Daemon {
        self.daemon_with_env(config_json, runtime, &[])
    }

    /// [`TestNetns::daemon`] with `env` added to the daemon's environment (every start).
    pub fn daemon_with_env(
        &self,
        config_json: &str,
        runtime: &'static str,
        env: &[(&str, &str)],
    ) -> Daemon {
        assert!(
            config_json.contains("\"bridge\""),
            "a bridge test names its bridge"
        );
        let mut d = Daemon::unstarted(config_json, runtime, Binaries::current());
        d.netns_holder = Some(self.pid());
        d.set_env(env);
        d.spawn();
        d
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A second namespace of the test's, joined to the daemon's by a veth (`10.93.0.1` on the
/// daemon's side, `10.93.0.2` in it), serving a page on port 80: "outside" for containers.
pub struct Outside {
    /// The namespace (`10.93.0.2` on `mtout1`).
    pub ns: TestNetns,
    httpd: Child,
    _www: tempfile::TempDir,
}

impl Outside {
    /// Makes the namespace, its veth and its server, and checks the page from `daemon_ns`.
    pub fn new(daemon_ns: &TestNetns) -> Outside {
        let ns = TestNetns::new();
        daemon_ns.ok(&[
            "ip", "link", "add", "mtout0", "type", "veth", "peer", "name", "mtout1", "netns",
            &ns.name,
        ]);
        daemon_ns.ok(&["ip", "addr", "add", "10.93.0.1/24", "dev", "mtout0"]);
        daemon_ns.ok(&["ip", "link", "set", "mtout0", "up"]);
        ns.ok(&["ip", "addr", "add", "10.93.0.2/24", "dev", "mtout1"]);
        ns.ok(&["ip", "link", "set", "mtout1", "up"]);
        let www = tempfile::tempdir().expect("tempdir");
        std::fs::write(www.path().join("index.html"), "outside-page\n").expect("page");
        let httpd = Command::new("nsenter")
            .args([
                "-t",
                &ns.pid().to_string(),
                "-n",
                "--",
                "busybox",
                "httpd",
                "-f",
            ])
            .args(["-p", "80", "-h"])
            .arg(www.path())
            .stdin(Stdio::null())
            .spawn()
            .expect("busybox httpd");
        let listening = wait_for(Duration::from_secs(10), || {
            !ns.ok(&["ss", "-Hltn", "sport = :80"]).trim().is_empty()
        });
        assert!(listening, "the outside server listens");
        let up = daemon_ns.http_get("10.93.0.2", 80);
        assert!(
            up.is_some_and(|p| p.contains("outside-page")),
            "the outside page"
        );
        Outside {
            ns,
            httpd,
            _www: www,
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.httpd.kill();
        let _ = self.httpd.wait();
        let _ = &self.ns;
    }
}

/// The host's links, addresses and routes as `ip -j` shows them, less the fields that change
/// by themselves (address lifetimes).
pub fn host_network() -> Vec<Value> {
    ["link", "addr", "route"]
        .iter()
        .map(|what| {
            let out = Command::new("ip")
                .args(["-j", what])
                .output()
                .expect("run ip");
            let mut v: Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
            strip_lifetimes(&mut v);
            v
        })
        .collect()
}

fn strip_lifetimes(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.ends_with("_life_time"));
            map.values_mut().for_each(strip_lifetimes);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_lifetimes),
        _ => {}
    }
}

/// `config_json` with `"bridge": "none"` added unless it names `bridge` (or is not a JSON
/// object, for tests of malformed files): test daemons never make a bridge on the host. A
/// test of networking names `bridge` and runs its daemon in a network namespace of its own
/// ([`TestNetns`]).
pub fn no_bridge(config_json: &str) -> String {
    match serde_json::from_str::<Value>(config_json) {
        Ok(Value::Object(mut map)) if !map.contains_key("bridge") => {
            map.insert("bridge".into(), Value::String("none".into()));
            Value::Object(map).to_string()
        }
        _ => config_json.to_string(),
    }
}

/// Writes `config_json` (through [`no_bridge`]) as this daemon's daemon.json.
impl Daemon {
    pub fn write_config(&self, config_json: &str) {
        std::fs::write(self.config_path(), no_bridge(config_json)).expect("write daemon.json");
    }
}

/// A test netns with a runc daemon on the default bridge `moor0` and busybox imported as
/// `bb`; `None` (after saying why) only when `MOOR_TEST_SKIP` asks to skip runc tests.
pub fn bridged_runc() -> Option<(TestNetns, Daemon)> {
    if let Some(reason) = super::runc::skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let ns = TestNetns::new();
    let d = ns.daemon(r#"{"bridge": "moor0"}"#, "runc");
    d.import_busybox("bb");
    Some((ns, d))
}

/// A busybox shell command serving `page` at `/` on port 80.
pub fn httpd(page: &str) -> String {
    format!("mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 80 -h /www")
}
