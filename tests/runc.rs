//! The runc runtime for real (root only; skipped with a printed reason otherwise): imported
//! busybox image, isolation, the seed experiment across a daemon SIGKILL, an exit while the
//! daemon is down, limits and OOMKilled, a malicious tar, and nothing left after `rm`.

mod common;

use std::time::{Duration, Instant};

use common::runc::{busybox_tar, header as common_header, mounts_under, skip_reason};
use common::{kill_if_same, proc_start_time, process_is, wait_for, Daemon, LIVE_RESTORE_ON};
use nix::sys::signal::Signal;

/// A daemon on runc with the busybox image imported as `bb`, or None (reason printed).
fn daemon(config: &str) -> Option<Daemon> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let d = Daemon::start_with_runtime(config, "runc");
    let tar = d.root().with_file_name("bb.tar");
    std::fs::write(&tar, busybox_tar()).expect("write busybox tar");
    let out = d.cli_ok(&["image", "import", tar.to_str().expect("utf-8"), "bb"]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    Some(d)
}

/// What of this daemon's runtime state is left: overlay mounts and runc state.
fn leftovers(d: &Daemon) -> (Vec<String>, Vec<std::ffi::OsString>) {
    let base = d.root().parent().expect("test dir").to_path_buf();
    let runc_root = d.run_dir().join("runc");
    let left: Vec<_> = std::fs::read_dir(&runc_root)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    (mounts_under(&base), left)
}

/// No overlay mount, runc state or bundle of this daemon is left once the background
/// clean-up of removals is done.
fn assert_clean(d: &Daemon) {
    wait_for(Duration::from_secs(10), || {
        let (mounts, state) = leftovers(d);
        mounts.is_empty() && state.is_empty()
    });
    let (mounts, state) = leftovers(d);
    assert_eq!(mounts, Vec::<String>::new(), "mounts left");
    assert!(state.is_empty(), "runc state left: {state:?}");
}

#[test]
fn run_rm_is_isolated_in_the_image() {
    let Some(d) = daemon("{}") else { return };
    let t = Instant::now();
    let out = d.cli_ok(&["run", "--rm", "bb", "sh", "-c", "echo $$; hostname; ls /"]);
    eprintln!("run --rm took {:?}", t.elapsed());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    assert_eq!(lines[1].len(), 12, "hostname is the short id: {out}");
    assert!(lines.contains(&"bin") && !lines.contains(&"home"), "{out}");
    let missing = d.cli(&["create", "bb", "no-such-program"]);
    let missing = String::from_utf8_lossy(&missing.stdout).trim().to_string();
    d.cli_fail(&["start", &missing]);
    assert_eq!(d.inspect_field(&missing, "{{.State.ExitCode}}"), "127");
    let error = d.inspect_field(&missing, "{{.State.Error}}");
    assert!(error.contains("\"no-such-program\""), "{error}");
    let run = d.cli(&["run", "--rm", "bb", "nonexistent-cmd"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(127), "{stderr}");
    assert!(stderr.contains("nonexistent-cmd"), "{stderr}");
    let denied = d.cli(&["run", "--rm", "bb", "/etc"]);
    assert_eq!(denied.status.code(), Some(126));
    assert_clean(&d);
    d.cli_ok(&["rm", &missing]);
    let no_cmd = d.cli_fail(&["run", "--rm", "bb"]);
    assert!(String::from_utf8_lossy(&no_cmd.stderr).contains("No command specified"));
    let images = d.cli_ok(&["image", "ls"]);
    assert!(
        images.contains("bb") && images.contains("latest"),
        "{images}"
    );
    let id = d.run_detached(&["bb", "true"]);
    assert_eq!(d.wait_code(&id), "0");
    let rm = d.cli_fail(&["image", "rm", "bb"]);
    assert!(String::from_utf8_lossy(&rm.stderr).contains("being used"));
    d.cli_ok(&["rm", &id]);
    d.cli_ok(&["image", "rm", "bb"]);
    assert_clean(&d);
}

#[test]
fn seed_experiment_survives_a_daemon_sigkill() {
    let Some(mut d) = daemon(LIVE_RESTORE_ON) else {
        return;
    };
    let script = "i=0; while true; do echo $i $(cat /proc/uptime); i=$((i+1)); sleep 0.1; done";
    let id = d.run_detached(&["bb", "sh", "-c", script]);
    let pid = d.inspect_field(&id, "{{.State.Pid}}");
    let started = d.inspect_field(&id, "{{.State.StartedAt}}");
    d.kill9();
    std::thread::sleep(Duration::from_millis(300));
    d.restart();
    assert_eq!(d.inspect_field(&id, "{{.State.Pid}}"), pid);
    assert_eq!(d.inspect_field(&id, "{{.State.StartedAt}}"), started);
    assert_eq!(d.inspect_field(&id, "{{.State.Status}}"), "running");
    // /proc/uptime: seconds since boot with centiseconds. Enough lines to span the kill.
    let stamps_of = |logs: &str| -> Vec<f64> {
        logs.lines()
            .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(10), || stamps_of(
            &d.cli_ok(&["logs", &id])
        )
        .len()
            > 10),
        "the counter stopped"
    );
    let logs = d.cli_ok(&["logs", &id]);
    let stamps = stamps_of(&logs);
    let gap = stamps
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0f64, f64::max);
    assert!(gap < 1.0, "the container paused {gap} s");
    d.cli_ok(&["rm", "-f", &id]);
    assert_clean(&d);
}

#[test]
fn init_killed_while_the_daemon_is_down() {
    let Some(mut d) = daemon(LIVE_RESTORE_ON) else {
        return;
    };
    let id = d.run_detached(&["bb", "sleep", "1000"]);
    let pid: i32 = d.inspect_field(&id, "{{.State.Pid}}").parse().expect("pid");
    let start = proc_start_time(pid).expect("start time");
    d.stop_term();
    assert!(kill_if_same(pid, start, Signal::SIGKILL));
    let exit = d.container_run_dir(&id).join("exit.json");
    assert!(wait_for(Duration::from_secs(10), || exit.exists()));
    d.restart();
    assert_eq!(d.inspect_field(&id, "{{.State.ExitCode}}"), "137");
    assert_eq!(d.inspect_field(&id, "{{.State.Status}}"), "exited");
    assert_clean(&d);
    d.cli_ok(&["rm", &id]);
    assert_clean(&d);
}

#[test]
fn limits_memory_oom_and_pids() {
    let Some(d) = daemon("{}") else { return };
    let hog = "a=$(head -c 67108864 /dev/zero | tr '\\0' x); echo survived";
    let id = d.run_detached(&["-m", "16m", "bb", "sh", "-c", hog]);
    assert_eq!(d.wait_code(&id), "137");
    assert_eq!(d.inspect_field(&id, "{{.State.OOMKilled}}"), "true");
    let forks = "for i in $(seq 1 12); do sleep 5 & done; wait; echo done";
    let out = d.cli(&["run", "--rm", "--pids-limit", "10", "bb", "sh", "-c", forks]);
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("can't fork") || text.contains("Resource"),
        "{text}"
    );
    d.cli_ok(&["rm", &id]);
    assert_clean(&d);
}

#[test]
fn malicious_tars_are_refused_by_entry() {
    let Some(d) = daemon("{}") else { return };
    let dir = d.root().with_file_name("evil");
    let bad = |name: &str, build: &dyn Fn(&mut tar::Builder<Vec<u8>>)| {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let path = dir.with_file_name(name);
        std::fs::write(&path, b.into_inner().expect("tar")).expect("write");
        d.cli_fail(&["image", "import", path.to_str().expect("utf-8"), "evil"])
    };
    let out = bad("dotdot.tar", &|b| {
        let mut h = common_header();
        h.set_size(1);
        h.as_old_mut().name[..10].copy_from_slice(b"../../evil");
        h.set_cksum();
        b.append(&h, &b"x"[..]).expect("append");
    });
    assert!(String::from_utf8_lossy(&out.stderr).contains("../../evil"));
    let target = dir.to_str().expect("utf-8").to_string();
    let out = bad("link.tar", &|b| {
        let mut h = common_header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "escape", &target).expect("link");
        let mut h = common_header();
        h.set_size(1);
        b.append_data(&mut h, "escape/evil", &b"x"[..])
            .expect("file");
    });
    assert!(String::from_utf8_lossy(&out.stderr).contains("escape/evil"));
    assert!(!dir.exists() && !d.root().with_file_name("evil").join("evil").exists());
    let images = d.root().join("images");
    let ids: Vec<_> = std::fs::read_dir(&images)
        .expect("images dir")
        .flatten()
        .filter(|e| e.file_name() != "tmp")
        .collect();
    assert_eq!(ids.len(), 1, "only the busybox image is unpacked");
}

#[test]
fn twenty_removed_containers_leave_nothing() {
    let Some(d) = daemon("{}") else { return };
    let ids: Vec<String> = (0..20)
        .map(|_| d.run_detached(&["bb", "sleep", "1000"]))
        .collect();
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    d.cli_ok(&args);
    assert_clean(&d);
    for id in &ids {
        let gone = || !d.container_run_dir(id).exists() && !d.container_dir(id).exists();
        assert!(wait_for(Duration::from_secs(10), gone));
        assert!(!std::path::Path::new("/sys/fs/cgroup/memory/moor")
            .join(id)
            .exists());
        assert!(!std::path::Path::new("/sys/fs/cgroup/pids/moor")
            .join(id)
            .exists());
    }
}

/// The pid and start time `started.json` records for `key` (`shim` or `process`).
fn ident(d: &Daemon, id: &str, key: &str) -> (i32, u64) {
    let s = d.started_json(id);
    let pid = s[key]["pid"].as_i64().expect("pid") as i32;
    (pid, s[key]["start_time"].as_u64().expect("start time"))
}

/// `moor admin inspect --format json` with the daemon down: (name, next start, report).
fn predictions(d: &Daemon) -> Vec<(String, String, serde_json::Value)> {
    let out = d.admin(&["inspect", "--format", "json"]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let mut found: Vec<_> = reports
        .into_iter()
        .map(|r| {
            let name = r["name"].as_str().expect("name").to_string();
            (
                name,
                r["next_start"].as_str().expect("class").to_string(),
                r,
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn reconciler_weighs_runc_state() {
    let Some(mut d) = daemon(LIVE_RESTORE_ON) else {
        return;
    };
    let names = ["a-resume", "b-exited", "c-lost", "d-orphan"];
    let ids: Vec<String> = names
        .iter()
        .map(|n| d.run_detached(&["--name", n, "bb", "sleep", "1000"]))
        .collect();
    let runc_root = d.run_dir().join("runc");
    let runc_state = |id: &str| runc_root.join(id);
    let gone = |(pid, st): (i32, u64)| wait_for(Duration::from_secs(10), || !process_is(pid, st));
    let a_pid = d.inspect_field(&ids[0], "{{.State.Pid}}");
    d.stop_term();
    // b: its init is killed and runc's state deleted; the shim's exit file decides.
    let b = ident(&d, &ids[1], "process");
    assert!(kill_if_same(b.0, b.1, Signal::SIGKILL));
    let exit = d.container_run_dir(&ids[1]).join("exit.json");
    assert!(wait_for(Duration::from_secs(10), || exit.exists()));
    std::fs::remove_dir_all(runc_state(&ids[1])).expect("delete runc state");
    // c: shim, then init killed, runc's state deleted: nothing tells the end.
    let (c_shim, c) = (ident(&d, &ids[2], "shim"), ident(&d, &ids[2], "process"));
    assert!(kill_if_same(c_shim.0, c_shim.1, Signal::SIGKILL) && gone(c_shim));
    assert!(kill_if_same(c.0, c.1, Signal::SIGKILL) && gone(c));
    std::fs::remove_dir_all(runc_state(&ids[2])).expect("delete runc state");
    // d: runc's state deleted under a live init: runc cannot manage it any more.
    let orphan = ident(&d, &ids[3], "process");
    d.track(orphan.0, orphan.1);
    std::fs::remove_dir_all(runc_state(&ids[3])).expect("delete runc state");

    let found = predictions(&d);
    let classes: Vec<(&str, &str)> = found
        .iter()
        .map(|(n, c, _)| (n.as_str(), c.as_str()))
        .collect();
    let expected = ["resume", "exited-while-down", "lost", "orphan"];
    assert_eq!(classes, names.into_iter().zip(expected).collect::<Vec<_>>());
    assert_eq!(found[0].2["runtime_state"], "running");
    assert_eq!(found[2].2["runtime_state"], "missing");
    let reason = found[3].2["reason"].as_str().expect("reason");
    assert!(reason.contains("missing"), "{reason}");

    d.restart();
    assert_eq!(d.inspect_field(&ids[0], "{{.State.Status}}"), "running");
    assert_eq!(d.inspect_field(&ids[0], "{{.State.Pid}}"), a_pid);
    assert_eq!(d.inspect_field(&ids[1], "{{.State.ExitCode}}"), "137");
    assert_eq!(d.inspect_field(&ids[2], "{{.State.Status}}"), "exited");
    let error = d.inspect_field(&ids[2], "{{.State.Error}}");
    assert!(error.contains("runtime state: missing"), "{error}");
    assert!(process_is(orphan.0, orphan.1), "an orphan is never killed");
    d.cli_ok(&["stop", "-t", "1", &ids[0]]);
    assert_eq!(d.inspect_field(&ids[0], "{{.State.Status}}"), "exited");
    d.cli_ok(&["rm", &ids[0], &ids[1], &ids[2]]);
    // runc's state of b and c was gone, so `runc delete` could not remove their cgroups:
    // the daemon's release does (the removal's clean-up runs after the answer).
    let clean = || ids[..3].iter().all(|id| cgroups_of(id).is_empty());
    assert!(
        wait_for(Duration::from_secs(10), clean),
        "cgroups left: {:?}",
        ids[..3].iter().map(|id| cgroups_of(id)).collect::<Vec<_>>()
    );
    assert!(kill_if_same(orphan.0, orphan.1, Signal::SIGKILL) && gone(orphan));
    remove_cgroups(&ids[3]);
}

/// The container's cgroup directories that exist (every v1 hierarchy and the unified one).
fn cgroups_of(id: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .chain([std::path::PathBuf::from("/sys/fs/cgroup")])
        .map(|h| h.join("moor").join(id))
        .filter(|d| d.is_dir())
        .collect()
}

/// Removes a container's cgroups that runc can no longer delete (its state is gone).
fn remove_cgroups(id: &str) {
    for dir in cgroups_of(id) {
        let _ = std::fs::remove_dir(&dir);
    }
}

#[test]
fn user_names_come_from_the_image() {
    let Some(d) = daemon("{}") else { return };
    let tar = d.root().with_file_name("users.tar");
    let passwd = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:100::/tmp:/bin/sh\n";
    let group = "root:x:0:\nusers:x:100:\nwheel:x:10:bob\nstaff:x:50:\n";
    let image = common::runc::busybox_tar_with(&[("etc/passwd", passwd), ("etc/group", group)]);
    std::fs::write(&tar, image).expect("write tar");
    d.cli_ok(&["image", "import", tar.to_str().expect("utf-8"), "users"]);
    let bob = d.cli_ok(&["run", "--rm", "-u", "bob", "users", "id"]);
    assert!(
        bob.contains("uid=1000(bob)")
            && bob.contains("gid=100(users)")
            && bob.contains("10(wheel)"),
        "{bob}"
    );
    let staff = d.cli_ok(&["run", "--rm", "-u", "bob:staff", "users", "id"]);
    assert!(staff.contains("gid=50(staff)"), "{staff}");
    let numeric = d.cli_ok(&["run", "--rm", "-u", "4242:7", "users", "id"]);
    assert!(
        numeric.contains("uid=4242") && numeric.contains("gid=7"),
        "{numeric}"
    );
    // The host has root and daemon users; the image decides: bb has no /etc/passwd at all.
    for (image, user) in [("users", "nobody"), ("bb", "daemon")] {
        let out = d.cli_fail(&["run", "--rm", "-u", user, image, "id"]);
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("unable to find user {user}: no matching entries in passwd file");
        assert!(err.contains(&want), "{err}");
        assert_eq!(out.status.code(), Some(125));
    }
    let response = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"users","Cmd":["id"],"User":"bob:nogroup"}"#),
    );
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.message().contains("unable to find group nogroup"));
    assert_clean(&d);
}

#[test]
fn a_graceful_stop_finishes_the_clean_up_of_removals() {
    let Some(mut d) = daemon(LIVE_RESTORE_ON) else {
        return;
    };
    // `rm` answers before `runc delete`, the unmount and the directories are done (in the
    // background): a stop right after waits for them instead of leaving them to the next
    // start. 20,000 files in the container's upper dir make that clean-up take a while.
    let script = "i=0; while [ $i -lt 20000 ]; do : > /f$i; i=$((i+1)); done";
    let id = d.run_detached(&["--rm", "--name", "many", "bb", "sh", "-c", script]);
    assert!(
        wait_for(Duration::from_secs(60), || !d
            .cli(&["inspect", "many"])
            .status
            .success()),
        "the container was not removed"
    );
    d.stop_term();
    let (mounts, state) = leftovers(&d);
    assert_eq!(mounts, Vec::<String>::new(), "mounts left after the stop");
    assert!(
        state.is_empty(),
        "runc state left after the stop: {state:?}"
    );
    let run = d.container_run_dir(&id);
    assert!(!run.exists(), "{} left after the stop", run.display());
}
