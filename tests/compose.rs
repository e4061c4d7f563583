//! docker-compose against moor (issue 17, part 5): Debian's `docker-compose` (1.29, Python,
//! docker-py) brings up a two-service project, a `busybox httpd` web service with a published
//! port and a client that fetches `http://web/` by service name, on the project's own user
//! network: `up -d`, `ps`, `logs`, then a `kill -9` of the daemon (the port and the name keep
//! answering) and a restart, then `down`, which leaves no container and no network. The
//! daemon runs in a network namespace the test made.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::netns::{host_network, TestNetns};
use common::runc::skip_reason;
use common::{run_client, wait_for, Daemon};

const PROJECT: &str = r#"version: "3.8"
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo hello-compose > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports:
      - "8088:80"
  client:
    image: busybox:latest
    command: ["sh", "-c", "while :; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc web 80; sleep 1; done"]
    depends_on:
      - web
"#;

/// `docker-compose -p demo ARGS` in `dir` against `d`.
fn compose(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(dir)
        .args(["-p", "demo"])
        .args(args)
        .env("DOCKER_HOST", d.docker_host())
        .env_remove("DOCKER_CONTEXT")
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1");
    run_client(cmd, "docker-compose", args, None)
}

fn compose_ok(d: &Daemon, dir: &Path, args: &[&str]) -> String {
    let out = compose(d, dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "docker-compose {args:?} failed:\n{text}"
    );
    text
}

/// The page on 127.0.0.1:8088 inside the daemon's namespace.
fn published(ns: &TestNetns) -> bool {
    wait_for(Duration::from_secs(15), || {
        ns.http_get("127.0.0.1", 8088)
            .is_some_and(|page| page.contains("hello-compose"))
    })
}

/// Lines of the client's log that carry the page (fetched from `web` by name).
fn fetched(d: &Daemon, dir: &Path) -> usize {
    compose_ok(d, dir, &["logs", "--no-color", "client"])
        .lines()
        .filter(|l| l.contains("hello-compose"))
        .count()
}

#[test]
fn a_two_service_project_comes_up_survives_a_daemon_kill_and_goes_down() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    assert!(
        Command::new("docker-compose")
            .arg("version")
            .output()
            .is_ok(),
        "docker-compose is missing: run .ci/setup (apt-get install docker-compose)"
    );
    let links = host_network();
    let ns = TestNetns::new();
    let mut d = ns.daemon(r#"{"live-restore": true, "bridge": "moor0"}"#, "runc");
    d.import_busybox("busybox:latest");
    let dir = d.root().with_file_name("project");
    std::fs::create_dir_all(&dir).expect("project dir");
    std::fs::write(dir.join("docker-compose.yml"), PROJECT).expect("compose file");

    compose_ok(&d, &dir, &["up", "-d"]);
    let ps = compose_ok(&d, &dir, &["ps"]);
    let rows: Vec<&str> = ps.lines().filter(|l| l.starts_with("demo_")).collect();
    assert_eq!(rows.len(), 2, "each container once:\n{ps}");
    assert!(rows.iter().all(|r| r.contains(" Up ")), "{ps}");
    assert!(ps.contains("0.0.0.0:8088->80/tcp"), "{ps}");
    assert!(published(&ns), "the web service's published port");
    assert!(
        wait_for(Duration::from_secs(20), || fetched(&d, &dir) > 0),
        "the client never fetched http://web/"
    );

    // The daemon dies: the port and the name keep answering; the logs go on.
    d.kill9();
    assert!(published(&ns), "the port while the daemon is down");
    std::thread::sleep(Duration::from_secs(2));
    d.restart();
    let before = fetched(&d, &dir);
    assert!(
        wait_for(Duration::from_secs(20), || fetched(&d, &dir) > before),
        "the client stopped fetching by name"
    );
    assert!(published(&ns));
    let ps = compose_ok(&d, &dir, &["ps"]);
    assert_eq!(
        ps.lines().filter(|l| l.starts_with("demo_")).count(),
        2,
        "{ps}"
    );

    compose_ok(&d, &dir, &["down"]);
    assert!(
        d.cli_ok(&["ps", "-aq"]).trim().is_empty(),
        "containers left"
    );
    let nets = d.cli_ok(&["network", "ls"]);
    assert!(!nets.contains("demo_default"), "{nets}");
    d.stop_term();
    drop(d);
    drop(ns);
    assert_eq!(
        host_network(),
        links,
        "the host's links, addresses or routes changed"
    );
}
