//! Issue 11's "off the actor thread" for the store: a slow disk holds up only the requests
//! that wrote. The daemon's fail point `store-flush` (armed with a path: the flush thread
//! waits while that file exists, see `src/host/fault.rs`) stands for a disk whose fsync
//! hangs. While a removal waits for its flush, the list, inspect of other containers and
//! `/_ping` answer within 1 s, the removal's own answer waits for the flush (flushed before
//! acknowledged), and once the disk is back every write completes. The same holds for the
//! writes of the Supervisor (a rename, an image tag, a volume's create, a network's create)
//! and for the spec
//! file's rewrite (fail point `spec-fsync`): each waits alone, and survives a kill -9 once
//! answered.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::netns::TestNetns;
use common::{wait_for, Daemon, HttpResponse, LIVE_RESTORE_ON};

/// How long another request may take while the disk is slow.
const DEADLINE: Duration = Duration::from_secs(1);

/// The `State` of container `name` in the list (`removing` while its removal is pending).
fn listed_state(list: &HttpResponse, name: &str) -> Option<String> {
    let all = list.json();
    all.as_array()?
        .iter()
        .find(|c| c["Names"][0] == format!("/{name}"))
        .and_then(|c| c["State"].as_str().map(String::from))
}

#[test]
fn a_slow_disk_holds_up_only_the_requests_that_wrote() {
    let slow = tempfile::tempdir().expect("tempdir");
    let switch = slow.path().join("slow");
    // This test binary has one test: the variable reaches only this daemon.
    std::env::set_var(
        "FAILPOINTS",
        format!("store-flush=return({})", switch.display()),
    );
    let d = Daemon::start(LIVE_RESTORE_ON);
    std::env::remove_var("FAILPOINTS");
    d.run_detached(&["--name", "other", "host", "sleep", "1000"]);
    d.cli_ok(&["create", "--name", "gone", "host", "true"]);

    std::fs::write(&switch, b"").expect("make the disk slow");
    let mut rm = d.cli_in_background(&["rm", "gone"]);
    // Its `removing` is committed (the list shows it) while its flush waits on the disk.
    let removing = wait_for(Duration::from_secs(10), || {
        let list = d.within_deadline("GET", "/v1.44/containers/json?all=1", DEADLINE);
        listed_state(&list, "gone").as_deref() == Some("removing")
    });
    assert!(removing, "the removal was never seen pending");
    let other = d.within_deadline("GET", "/v1.44/containers/other/json", DEADLINE);
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.json()["State"]["Status"], "running");
    let ping = d.within_deadline("GET", "/_ping", DEADLINE);
    assert_eq!(ping.status, 200, "{}", ping.body);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        rm.try_wait().expect("try_wait").is_none(),
        "the removal was answered before its flush"
    );

    std::fs::remove_file(&switch).expect("the disk is back");
    let out = rm.wait_with_output().expect("wait for moor rm");
    assert!(
        out.status.success(),
        "rm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = d.http("GET", "/v1.44/containers/json?all=1", None);
    assert_eq!(listed_state(&list, "gone"), None, "{}", list.body);
    d.cli_ok(&["stop", "-t", "1", "other"]);
    assert_eq!(d.inspect_field("other", "{{.State.Status}}"), "exited");
}

/// While `switch` exists, `cli` (a write started in the background) is not answered, and
/// the list, inspect of the running container `other` and `/_ping` answer within 1 s; once
/// `switch` is gone, `cli` succeeds.
fn waits_alone(d: &Daemon, switch: &Path, cli: &[&str]) {
    eprintln!(
        "held: {}, in the background: moor {cli:?}",
        switch.display()
    );
    std::fs::write(switch, b"").expect("make the disk slow");
    let mut write = d.cli_in_background(cli);
    std::thread::sleep(Duration::from_millis(300));
    let list = d.within_deadline("GET", "/v1.44/containers/json?all=1", DEADLINE);
    assert_eq!(list.status, 200, "{cli:?}: {}", list.body);
    let other = d.within_deadline("GET", "/v1.44/containers/other/json", DEADLINE);
    assert_eq!(other.status, 200, "{cli:?}: {}", other.body);
    assert_eq!(other.json()["State"]["Status"], "running");
    let ping = d.within_deadline("GET", "/_ping", DEADLINE);
    assert_eq!(ping.status, 200, "{cli:?}: {}", ping.body);
    assert!(
        write.try_wait().expect("try_wait").is_none(),
        "{cli:?} was answered before its write was durable"
    );
    std::fs::remove_file(switch).expect("the disk is back");
    answered(write, cli);
}

fn answered(write: Child, cli: &[&str]) {
    let out = write.wait_with_output().expect("wait for moor");
    assert!(
        out.status.success(),
        "{cli:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn supervisor_writes_and_spec_files_wait_alone_for_a_slow_disk_and_survive_a_kill9() {
    let slow = tempfile::tempdir().expect("tempdir");
    let (store, spec) = (slow.path().join("store"), slow.path().join("spec"));
    let points = format!(
        "store-flush=return({});spec-fsync=return({})",
        store.display(),
        spec.display()
    );
    let mut d = Daemon::start_with_env(LIVE_RESTORE_ON, &[("FAILPOINTS", &points)]);
    d.run_detached(&["--name", "other", "host", "sleep", "1000"]);
    d.cli_ok(&["create", "--name", "first", "host", "true"]);
    d.import_busybox("one:1");

    // The store's flush held: the Supervisor's writes.
    waits_alone(&d, &store, &["rename", "first", "second"]);
    waits_alone(&d, &store, &["image", "tag", "one:1", "two:1"]);
    waits_alone(&d, &store, &["volume", "create", "kept"]);
    // The spec file's fsync held: its rewrite by a rename and an update.
    waits_alone(&d, &spec, &["rename", "second", "third"]);
    waits_alone(&d, &spec, &["update", "--restart", "always", "third"]);

    d.kill9();
    d.restart();
    assert_eq!(d.inspect_field("third", "{{.Name}}"), "/third");
    assert_eq!(
        d.inspect_field("third", "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    let spec_file = d
        .container_dir(&d.inspect_field("third", "{{.Id}}"))
        .join("config.v2.json");
    let written = std::fs::read_to_string(&spec_file).expect("the spec file");
    assert!(written.contains("\"third\""), "{written}");
    let tagged = d.http("GET", "/images/two:1/json", None);
    assert_eq!(tagged.status, 200, "{}", tagged.body);
    let kept = d.http("GET", "/volumes/kept", None);
    assert_eq!(kept.status, 200, "{}", kept.body);
    d.cli_ok(&["stop", "-t", "1", "other"]);
}

#[test]
fn a_network_create_waits_alone_for_a_slow_disk_and_survives_a_kill9() {
    let slow = tempfile::tempdir().expect("tempdir");
    let store = slow.path().join("store");
    let points = format!("store-flush=return({})", store.display());
    let ns = TestNetns::new();
    let config = r#"{"live-restore": true, "bridge": "moor0"}"#;
    let mut d = ns.daemon_with_env(config, "process", &[("FAILPOINTS", &points)]);
    d.run_detached(&[
        "--name",
        "other",
        "--network",
        "none",
        "host",
        "sleep",
        "1000",
    ]);

    waits_alone(
        &d,
        &store,
        &["network", "create", "--subnet", "10.71.0.0/24", "front"],
    );
    let id = d.http("GET", "/networks/front", None).json()["Id"]
        .as_str()
        .expect("the network's id")
        .to_string();
    let bridge = format!("moor-{}", &id[..10]);
    assert!(ns.links().contains(&bridge), "{:?}", ns.links());

    d.kill9();
    d.restart();
    let front = d.http("GET", "/networks/front", None);
    assert_eq!(front.status, 200, "{}", front.body);
    assert_eq!(front.json()["Id"], id.as_str());
    d.cli_ok(&["stop", "-t", "1", "other"]);
    d.cli_ok(&["network", "rm", "front"]);
}
