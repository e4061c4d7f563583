//! Removal's clean-up runs off the path the user waits on: `rm` answers once the record and
//! the name are gone, the files follow in the background, and leftovers of removed
//! containers (a daemon killed before the clean-up finished) go at the next start.

mod common;

use std::time::Duration;

use common::{wait_for, Daemon, LIVE_RESTORE_ON};

#[test]
fn removal_frees_the_name_and_the_files_follow() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let id = d.run_detached(&["--name", "gone", "host", "true"]);
    assert_eq!(d.wait_code("gone"), "0");
    d.cli_ok(&["rm", "gone"]);
    // The name is free at once.
    let again = d.run_detached(&["--name", "gone", "host", "true"]);
    assert_ne!(again, id);
    assert!(wait_for(Duration::from_secs(10), || {
        !d.container_run_dir(&id).exists() && !d.container_dir(&id).exists()
    }));
    assert!(d.container_dir(&again).exists());
}

#[test]
fn leftovers_without_a_record_are_cleaned_at_start() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let kept = d.run_detached(&["--name", "kept", "host", "sleep", "1000"]);
    d.kill9();
    // What a removal leaves when the daemon dies before its clean-up ran: directories with
    // no record and no spec file.
    let leftover = "f".repeat(64);
    let run = d.container_run_dir(&leftover);
    std::fs::create_dir_all(run.join("bundle")).expect("leftover run dir");
    std::fs::write(run.join("shim.log"), "x").expect("leftover file");
    let state = d.container_dir(&leftover);
    std::fs::create_dir_all(&state).expect("leftover state dir");
    std::fs::write(state.join(format!("{leftover}-json.log")), "").expect("leftover log");
    // A directory that still has a spec file is not a finished removal: kept.
    let spec_only = "e".repeat(64);
    std::fs::create_dir_all(d.container_dir(&spec_only)).expect("spec dir");
    std::fs::write(d.container_dir(&spec_only).join("config.v2.json"), "{}").expect("spec");
    d.restart();
    assert!(!run.exists(), "leftover run dir removed");
    assert!(!state.exists(), "leftover state dir removed");
    assert!(d.container_dir(&spec_only).exists());
    assert!(d.container_run_dir(&kept).join("started.json").is_file());
    assert_eq!(d.inspect_field("kept", "{{.State.Status}}"), "running");
    d.cli_ok(&["rm", "-f", "kept"]);
}
