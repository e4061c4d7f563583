//! A store that cannot be opened is moved aside and rebuilt from each container's
//! config.v2.json plus the run directory: running containers are resumed, exited ones keep
//! the code from their exit file, and both keep their names; imported images come back with
//! their names and config from the metadata file in each image directory.

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Overwrites the middle half of every regular file under `dir` with garbage, keeping sizes.
fn garble(dir: &Path) -> usize {
    let mut garbled = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                pending.push(path);
                continue;
            }
            if !meta.is_file() || meta.len() == 0 {
                continue;
            }
            let len = meta.len();
            let (start, count) = (len / 4, (len / 2).max(1));
            let garbage: Vec<u8> = (0..count)
                .map(|_| {
                    // xorshift64: never all zeros, never the same byte twice in a row for long.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open to garble");
            file.write_all_at(&garbage, start).expect("garble");
            file.sync_all().expect("sync");
            assert_eq!(fs::metadata(&path).expect("metadata").len(), len);
            garbled += 1;
        }
    }
    garbled
}

#[test]
fn corrupt_store_is_moved_aside_and_rebuilt() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let keep_id = d.run_detached(&["--name", "keep", "host", "sleep", "1000"]);
    let five_id = d.run_detached(&["--name", "five", "host", "sh", "-c", "exit 5"]);
    assert_eq!(d.wait_code("five"), "5");
    let pid: i32 = d
        .inspect_field("keep", "{{.State.Pid}}")
        .parse()
        .expect("Pid");
    let start_time = proc_start_time(pid).expect("the container's process runs");
    let started_at = d.inspect_field("keep", "{{.State.StartedAt}}");
    for id in [&keep_id, &five_id] {
        let spec = d.container_dir(id).join("config.v2.json");
        assert!(spec.is_file(), "{} missing", spec.display());
    }
    d.kill9();

    let store = d.root().join("moor.db");
    assert!(
        garble(&store) > 0,
        "nothing to garble under {}",
        store.display()
    );
    d.restart();

    let aside: Vec<String> = fs::read_dir(d.root())
        .expect("read root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("moor.db.corrupt-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "want one moor.db.corrupt-* in the root, got {aside:?}"
    );
    assert!(store.exists(), "a new store must be built");

    let check = |d: &Daemon| {
        assert_eq!(d.inspect_field("keep", "{{.Id}}"), keep_id);
        assert_eq!(d.inspect_field("keep", "{{.State.Status}}"), "running");
        assert_eq!(d.inspect_field("keep", "{{.State.Pid}}"), pid.to_string());
        assert_eq!(d.inspect_field("keep", "{{.State.StartedAt}}"), started_at);
        assert!(
            process_is(pid, start_time),
            "the running container was disturbed"
        );
        assert_eq!(d.inspect_field("five", "{{.Id}}"), five_id);
        assert_eq!(d.inspect_field("five", "{{.State.Status}}"), "exited");
        assert_eq!(d.inspect_field("five", "{{.State.ExitCode}}"), "5");
        let listed = d.cli_ok(&["ps", "-a"]);
        assert!(
            listed.contains("keep") && listed.contains("five"),
            "{listed}"
        );
    };
    check(&d);
    // The rebuilt store is a real store: it survives the next restart.
    d.stop_term();
    d.restart();
    check(&d);
}

#[test]
fn rebuilt_store_keeps_imported_images() {
    if let Some(reason) = common::runc::skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let tar = d.root().with_file_name("bb.tar");
    fs::write(&tar, common::runc::busybox_tar()).expect("write busybox tar");
    let image_id = d.cli_ok(&["image", "import", tar.to_str().expect("utf-8"), "bb:1"]);
    let id = d.run_detached(&["--name", "from-bb", "bb:1", "sleep", "1000"]);
    let pid = d.inspect_field("from-bb", "{{.State.Pid}}");
    let started_at = d.inspect_field("from-bb", "{{.State.StartedAt}}");
    let image = |d: &Daemon| d.http("GET", "/images/bb:1/json", None).json();
    let created = image(&d)["Created"].clone();
    // An image imported with changes keeps its config through the rebuild.
    let tar = tar.to_str().expect("utf-8");
    let cmd = r#"CMD ["/bin/sh","-c","echo $A"]"#;
    d.cli_ok(&["image", "import", "-c", "ENV A=1", "-c", cmd, tar, "cfg"]);
    let config = |d: &Daemon| d.http("GET", "/images/cfg/json", None).json()["Config"].clone();
    let before = config(&d);
    assert_eq!(before["Env"], serde_json::json!(["A=1"]));
    d.kill9();
    assert!(garble(&d.root().join("moor.db")) > 0);
    d.restart();

    let images = d.cli_ok(&["image", "ls"]);
    assert!(
        images.contains("bb") && images.contains(" 1 ") && images.contains(&image_id.trim()[7..19]),
        "{images}"
    );
    assert_eq!(image(&d)["Id"], image_id.trim());
    assert_eq!(image(&d)["Created"], created);
    assert_eq!(config(&d), before);
    assert_eq!(d.cli_ok(&["run", "--rm", "cfg"]).trim(), "1");
    assert_eq!(d.inspect_field("from-bb", "{{.Id}}"), id);
    assert_eq!(d.inspect_field("from-bb", "{{.State.Status}}"), "running");
    assert_eq!(d.inspect_field("from-bb", "{{.State.Pid}}"), pid);
    assert_eq!(
        d.inspect_field("from-bb", "{{.State.StartedAt}}"),
        started_at
    );
    // The image is in use again: its removal is refused.
    d.cli_fail(&["image", "rm", "bb:1"]);
    d.cli_ok(&["rm", "-f", "from-bb"]);
    d.cli_ok(&["image", "rm", "bb:1"]);
}

#[test]
fn a_spec_file_lost_before_the_first_start_is_written_again() {
    // The create answers before its spec file is fsynced; the first start waits for that
    // fsync, and a start writes the file again from the record if the fsync failed or the
    // file is gone (here).
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let id = d.cli_ok(&["create", "--name", "late", "host", "sleep", "1000"]);
    let id = id.trim().to_string();
    let spec = d.container_dir(&id).join("config.v2.json");
    assert!(spec.is_file(), "{} missing after create", spec.display());
    fs::remove_file(&spec).expect("remove the spec file");
    d.cli_ok(&["start", "late"]);
    assert_eq!(d.inspect_field("late", "{{.State.Status}}"), "running");
    let text = fs::read_to_string(&spec).expect("the start wrote the spec file again");
    assert!(text.contains(&id), "{text}");
    // And it is what a rebuilt store finds the running container by.
    let pid = d.inspect_field("late", "{{.State.Pid}}");
    d.kill9();
    assert!(garble(&d.root().join("moor.db")) > 0);
    d.restart();
    assert_eq!(d.inspect_field("late", "{{.State.Status}}"), "running");
    assert_eq!(d.inspect_field("late", "{{.State.Pid}}"), pid);
}

#[test]
fn a_rebuilt_store_gets_its_volumes_back_with_their_data() {
    let mut d = Daemon::start(LIVE_RESTORE_ON);
    let made = d.http("POST", "/volumes/create", Some(r#"{"Name":"keepme"}"#));
    assert_eq!(made.status, 201, "{}", made.body);
    let data = d.root().join("volumes/keepme/_data");
    fs::write(data.join("file"), "kept").expect("write into the volume");
    d.kill9();
    assert!(garble(&d.root().join("moor.db")) > 0);
    d.restart();
    // The volumes tree was lost with the store: the volume comes back from its directory,
    // with its data, instead of being taken for the remains of a removal.
    let listed = d.http("GET", "/volumes/keepme", None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        fs::read_to_string(data.join("file")).expect("data kept"),
        "kept"
    );
    d.kill9();
    d.restart();
    assert_eq!(d.http("GET", "/volumes/keepme", None).status, 200);
}
