//! daemon.json `registry-mirrors` (Docker's rule): a pull of a Docker Hub image tries each
//! mirror in order, then Docker Hub. Docker Hub is out of reach here, so the daemon runs with
//! `MOOR_TEST_HUB_ENDPOINT` naming another local registry in its place. Each registry sits
//! behind a counting loopback proxy ([`common::proxy`]), so the test sees which one served
//! the manifest; the mirror list is changed by a reload (SIGHUP) between the cases.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::proxy::Proxy;
use common::registry::{skip_reason as registry_skip, two_layer_image, Registry};
use common::{wait_for, Daemon};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// The manifest path of the Docker Hub image the test pulls.
const MANIFEST: &str = "/v2/library/busybox-test/manifests/1 ";

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// How many manifest GETs of the test image `proxy` saw.
fn manifest_gets(proxy: &Proxy) -> usize {
    proxy
        .requests()
        .iter()
        .filter(|l| l.starts_with("GET ") && l.contains(MANIFEST))
        .count()
}

/// Writes `mirrors` as daemon.json's list, reloads, waits until `/info` shows it.
fn set_mirrors(d: &Daemon, mirrors: &[String]) {
    let config = json!({ "registry-mirrors": mirrors });
    std::fs::write(d.config_path(), config.to_string()).expect("daemon.json");
    d.send(Signal::SIGHUP);
    let want: Vec<String> = mirrors.iter().map(|m| format!("{m}/")).collect();
    let shown = wait_for(Duration::from_secs(10), || {
        let info = d.http("GET", "/info", None).json();
        info["RegistryConfig"]["Mirrors"] == json!(want)
    });
    assert!(shown, "the reload did not apply: {}", d.output());
}

/// Removes the pulled image (and its layers), so the next pull downloads again.
fn forget(d: &Daemon) {
    d.cli_ok(&["image", "rm", "busybox-test:1"]);
}

#[test]
fn hub_pulls_go_through_the_mirrors_in_order_then_the_hub() {
    if let Some(reason) = registry_skip() {
        eprintln!("skipped: {reason}");
        return;
    }
    let (mirror, hub, empty) = (Registry::start(), Registry::start(), Registry::start());
    let (mirror_proxy, hub_proxy, empty_proxy) = (
        Proxy::start(mirror.port),
        Proxy::start(hub.port),
        Proxy::start(empty.port),
    );
    let hub_url = format!("http://{}", hub_proxy.host());
    let d = Daemon::start_with_env("{}", &[("MOOR_TEST_HUB_ENDPOINT", &hub_url)]);
    let (layout, built) = two_layer_image(&d.root().with_file_name("oci"), "1");
    let digest = mirror.push(&layout, "1", "library/busybox-test", &[]);
    hub.push(&layout, "1", "library/busybox-test", &[]);
    let url = |p: &Proxy| format!("http://{}", p.host());
    let dead = format!("http://127.0.0.1:{}", dead_port());

    // No mirror: Docker Hub (here the stand-in) serves it.
    let out = d.cli_ok(&["pull", "busybox-test:1"]);
    assert!(
        out.contains("Downloaded newer image for busybox-test:1"),
        "{out}"
    );
    assert_eq!(manifest_gets(&hub_proxy), 1);
    forget(&d);

    // One live mirror: it serves manifest and layers, the hub sees nothing.
    set_mirrors(&d, &[url(&mirror_proxy)]);
    let info = d.http("GET", "/info", None).json();
    assert_eq!(
        info["RegistryConfig"]["IndexConfigs"]["docker.io"]["Mirrors"],
        json!([format!("{}/", url(&mirror_proxy))]),
        "{info}"
    );
    let shown = d.docker_ok(&["info"]);
    assert!(
        shown.contains("Registry Mirrors:") && shown.contains(&format!("{}/", url(&mirror_proxy))),
        "{shown}"
    );
    let out = d.cli_ok(&["pull", "busybox-test:1"]);
    assert!(out.contains("Pulling from library/busybox-test"), "{out}");
    assert_eq!(manifest_gets(&mirror_proxy), 1);
    assert_eq!(mirror_proxy.blob_gets(&built.layer_digests[1]), 1);
    assert_eq!(manifest_gets(&hub_proxy), 1, "the hub is not asked");
    let inspect = d.http("GET", "/images/busybox-test:1/json", None).json();
    assert_eq!(
        inspect["RepoDigests"],
        json!([format!("busybox-test@{digest}")]),
        "recorded under the hub's name, not the mirror's"
    );
    assert_eq!(inspect["RepoTags"], json!(["busybox-test:1"]));
    // A name of another registry never goes to a mirror.
    let direct = format!("{}/library/busybox-test:1", mirror.host());
    d.cli_ok(&["pull", &direct]);
    assert_eq!(manifest_gets(&mirror_proxy), 1, "not through the mirror");
    d.cli_ok(&["image", "rm", &direct]);
    forget(&d);

    // A dead first mirror, then a live one: the live one serves it.
    set_mirrors(&d, &[dead.clone(), url(&mirror_proxy)]);
    let out = d.cli_ok(&["pull", "busybox-test:1"]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(manifest_gets(&mirror_proxy), 2);
    assert_eq!(manifest_gets(&hub_proxy), 1, "the hub is not asked");
    forget(&d);

    // Every mirror fails (one dead, one without the image): back to the hub.
    set_mirrors(&d, &[dead.clone(), url(&empty_proxy)]);
    let out = d.cli_ok(&["pull", "busybox-test:1"]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(
        manifest_gets(&empty_proxy),
        1,
        "the second mirror was asked"
    );
    assert_eq!(manifest_gets(&hub_proxy), 2, "then the hub served it");
    assert_eq!(manifest_gets(&mirror_proxy), 2);
    let listed: Value = d.http("GET", "/images/json", None).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    // An image no endpoint has: the hub's answer is the error.
    let out = d.cli_fail(&["pull", "busybox-test:2"]);
    let text = common::describe(&out);
    assert!(text.contains("not found"), "{text}");
}

#[test]
fn malformed_mirrors_refuse_the_file_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("daemon.json");
    for bad in [
        "mirror.example",
        "ftp://m.example",
        "https://m.example/path",
    ] {
        let config = json!({ "registry-mirrors": [bad] });
        std::fs::write(&path, config.to_string()).expect("daemon.json");
        let out = std::process::Command::new(common::MOOR)
            .args(["daemon", "--validate", "--runtime", "process", "--config"])
            .arg(&path)
            .output()
            .expect("moor daemon --validate");
        let text = common::describe(&out);
        assert!(!out.status.success(), "{bad}: {text}");
        assert!(
            text.contains("registry-mirrors") && text.contains(bad),
            "{text}"
        );
    }
}
