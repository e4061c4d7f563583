//! Issue 11's "off the actor thread" for the store: a slow disk holds up only the requests
//! that wrote. The daemon's fail point `store-flush` (armed with a path: the flush thread
//! waits while that file exists, see `src/host/fault.rs`) stands for a disk whose fsync
//! hangs. While a removal waits for its flush, the list, inspect of other containers and
//! `/_ping` answer within 1 s, the removal's own answer waits for the flush (flushed before
//! acknowledged), and once the disk is back every write completes.

mod common;

use std::time::Duration;

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
