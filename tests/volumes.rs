//! Bind mounts, tmpfs mounts and volumes on runc, for real (root, runc and busybox; see
//! `common::runc::skip_reason`): what the container sees, `:ro`, inspect's `Mounts`, Docker's
//! errors, and a bind that outlives a daemon `kill -9` (it is part of the runc bundle).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::runc::{busybox_tar_with, skip_reason};
use common::{Daemon, LIVE_RESTORE_ON};
use serde_json::{json, Value};

/// A daemon on runc with busybox imported as `bb`, or None (reason printed).
fn daemon(config: &str) -> Option<Daemon> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let d = Daemon::start_with_runtime(config, "runc");
    d.import_busybox("bb");
    Some(d)
}

/// A fresh directory on the host beside the daemon's root.
fn host_dir(d: &Daemon, name: &str) -> PathBuf {
    let dir = d.root().with_file_name(name);
    std::fs::create_dir_all(&dir).expect("create host dir");
    dir
}

fn text(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `POST /containers/create` with `body`: (status, parsed answer).
fn create(d: &Daemon, name: &str, body: Value) -> (u16, Value) {
    let r = d.http(
        "POST",
        &format!("/containers/create?name={name}"),
        Some(&body.to_string()),
    );
    let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

#[test]
fn a_bind_is_visible_writable_and_read_only_with_ro() {
    let Some(d) = daemon("{}") else { return };
    let dir = host_dir(&d, "bind-rw");
    std::fs::write(dir.join("in"), "from host\n").expect("write");
    let bind = format!("{}:/data", text(&dir));
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "bb",
        "sh",
        "-c",
        "cat /data/in; echo inside > /data/out",
    ]);
    assert_eq!(out, "from host\n");
    let written = std::fs::read_to_string(dir.join("out")).expect("written inside");
    assert_eq!(written, "inside\n");
    let ro = format!("{}:/data:ro", text(&dir));
    let out = d.docker(
        &[
            "run",
            "--rm",
            "-v",
            &ro,
            "bb",
            "sh",
            "-c",
            "cat /data/in && echo > /data/x",
        ],
        None,
    );
    assert!(!out.status.success(), "a write to a :ro bind fails");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from host\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{}",
        common::describe(&out)
    );
    assert!(!dir.join("x").exists());
}

#[test]
fn a_missing_host_path_is_created_for_v_and_refused_for_mount() {
    let Some(d) = daemon("{}") else { return };
    let missing = d.root().with_file_name("made-by-v").join("deep");
    let bind = format!("{}:/m", text(&missing));
    d.docker_ok(&["run", "--rm", "-v", &bind, "bb", "sh", "-c", "echo > /m/f"]);
    assert!(missing.join("f").is_file(), "-v created the directory");
    let gone = d.root().with_file_name("never-made");
    let body = json!({"Image": "bb", "Cmd": ["true"], "HostConfig": {"Mounts": [
        {"Type": "bind", "Source": text(&gone), "Target": "/x"}]}});
    let (status, answer) = create(&d, "m1", body);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            text(&gone)
        )
    );
    assert!(!gone.exists());
    let err = d.docker_fail(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/x", text(&gone)),
        "bb",
        "true",
    ]);
    assert!(err.contains("bind source path does not exist"), "{err}");
}

#[test]
fn tmpfs_is_a_tmpfs_inside_with_its_size_and_mode() {
    let Some(d) = daemon("{}") else { return };
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/scratch:size=2m,mode=1770",
        "--mount",
        "type=tmpfs,dst=/other,tmpfs-size=1048576",
        "bb",
        "sh",
        "-c",
        "grep -E ' /(scratch|other) ' /proc/mounts; stat -c %a /scratch",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let scratch = lines.iter().find(|l| l.contains(" /scratch ")).expect(&out);
    assert!(scratch.starts_with("tmpfs /scratch tmpfs "), "{out}");
    assert!(
        scratch.contains("size=2048k") && scratch.contains("noexec"),
        "{out}"
    );
    let other = lines.iter().find(|l| l.contains(" /other ")).expect(&out);
    assert!(other.contains("size=1024k"), "{out}");
    assert_eq!(lines[2], "1770");
}

#[test]
fn inspect_shows_mounts_with_dockers_fields() {
    let Some(d) = daemon("{}") else { return };
    let dir = host_dir(&d, "inspected");
    let body = json!({"Image": "bb", "Cmd": ["true"], "HostConfig": {
        "Binds": [format!("{}:/a:ro,z", text(&dir))],
        "Mounts": [{"Type": "bind", "Source": text(&dir), "Target": "/b",
                    "BindOptions": {"Propagation": "rslave"}},
                   {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 65536}}],
        "Tmpfs": {"/run/x": "size=1m"}}});
    let (status, answer) = create(&d, "insp", body);
    assert_eq!(status, 201, "{answer}");
    let warnings = answer["Warnings"].to_string();
    assert!(warnings.contains("z and Z"), "{answer}");
    let v = d.inspect_json("insp");
    let src = text(&dir);
    assert_eq!(
        v["Mounts"],
        json!([
            {"Type": "bind", "Source": src, "Destination": "/a", "Mode": "ro,z", "RW": false,
             "Propagation": "rprivate"},
            {"Type": "bind", "Source": src, "Destination": "/b", "Mode": "", "RW": true,
             "Propagation": "rslave"},
            {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": true,
             "Propagation": ""},
        ])
    );
    let hc = &v["HostConfig"];
    assert_eq!(hc["Binds"], json!([format!("{src}:/a:ro,z")]));
    assert_eq!(hc["Tmpfs"], json!({"/run/x": "size=1m"}));
    assert_eq!(hc["Mounts"][1]["TmpfsOptions"]["SizeBytes"], 65536);
    assert_eq!(hc["Mounts"][0]["BindOptions"]["Propagation"], "rslave");
}

#[test]
fn the_process_runtime_refuses_binds_by_name() {
    let Some(d) = daemon("{}") else { return };
    let body = json!({"Image": "host", "Cmd": ["true"], "HostConfig": {"Binds": ["/tmp:/x"]}});
    let (status, answer) = create(&d, "p1", body);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "HostConfig.Binds is not supported by the process runtime (use runc)"
    );
    let body = json!({"Image": "host", "Cmd": ["true"], "HostConfig": {"Tmpfs": {"/x": ""}}});
    let (status, answer) = create(&d, "p2", body);
    assert_eq!(
        (status, answer["message"].as_str()),
        (
            400,
            Some("HostConfig.Tmpfs is not supported by the process runtime (use runc)")
        )
    );
}

#[test]
fn a_bind_survives_a_daemon_kill_9() {
    let Some(mut d) = daemon(LIVE_RESTORE_ON) else {
        return;
    };
    let dir = host_dir(&d, "survivor");
    let bind = format!("{}:/data", text(&dir));
    d.docker_ok(&[
        "run", "-d", "--name", "keeper", "-v", &bind, "bb", "sleep", "1000",
    ]);
    let pid = d.inspect_field("keeper", "{{.State.Pid}}");
    d.kill9();
    std::fs::write(dir.join("while-down"), "1\n").expect("write");
    d.restart();
    assert_eq!(
        d.inspect_field("keeper", "{{.State.Pid}}"),
        pid,
        "the same process"
    );
    std::fs::write(dir.join("after"), "2\n").expect("write");
    let out = d.docker_ok(&["exec", "keeper", "cat", "/data/while-down", "/data/after"]);
    assert_eq!(out, "1\n2\n");
    let v = d.inspect_json("keeper");
    assert_eq!(v["Mounts"][0]["Source"], text(&dir));
    d.docker_ok(&["rm", "-f", "keeper"]);
    assert!(common::wait_for(Duration::from_secs(10), || dir
        .join("after")
        .is_file()));
}

/// The data directory of volume `name` on the host, from `docker volume inspect`.
fn mountpoint(d: &Daemon, name: &str) -> PathBuf {
    let out = d.docker_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", name]);
    // moor's own `volume inspect` prints the same object in a JSON array.
    let own: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["volume", "inspect", name])).expect("a JSON array");
    assert_eq!(own[0]["Mountpoint"].as_str(), Some(out.trim()), "{own}");
    PathBuf::from(out.trim())
}

#[test]
fn a_named_volume_keeps_its_data_across_containers_and_a_restart() {
    let Some(mut d) = daemon(LIVE_RESTORE_ON) else {
        return;
    };
    d.docker_ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "store:/v",
        "bb",
        "sh",
        "-c",
        "echo kept > /v/f",
    ]);
    let dir = mountpoint(&d, "store");
    assert!(dir.ends_with("volumes/store/_data"), "{}", dir.display());
    assert_eq!(
        std::fs::read_to_string(dir.join("f")).expect("on the host"),
        "kept\n"
    );
    let v = d.inspect_json("writer");
    assert_eq!(v["Mounts"][0]["Type"], "volume");
    assert_eq!(v["Mounts"][0]["Name"], "store");
    assert_eq!(v["Mounts"][0]["Driver"], "local");
    assert_eq!(v["Mounts"][0]["Source"], text(&dir));
    // In use, even by a stopped container: Docker's 409.
    let err = d.docker_fail(&["volume", "rm", "store"]);
    assert!(err.contains("volume is in use"), "{err}");
    let r = d.http("DELETE", "/volumes/store", None);
    assert_eq!(r.status, 409, "{}", r.body);
    d.docker_ok(&["rm", "-v", "writer"]);
    d.kill9();
    d.restart();
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=store,dst=/w",
        "bb",
        "cat",
        "/w/f",
    ]);
    assert_eq!(out, "kept\n");
    let listed = d.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(listed.trim(), "store");
    assert_eq!(d.cli_ok(&["volume", "ls", "-q"]).trim(), "store");
    d.docker_ok(&["volume", "rm", "store"]);
    assert!(common::wait_for(Duration::from_secs(10), || !dir.exists()));
    let r = d.http("GET", "/volumes/store", None);
    assert_eq!(r.status, 404, "{}", r.body);
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_new_volumes_get_the_images_content() {
    let Some(d) = daemon("{}") else { return };
    let tar = d.root().with_file_name("etc.tar");
    std::fs::write(&tar, busybox_tar_with(&[("etc/motd", "hello\n")])).expect("write tar");
    d.cli_ok(&["image", "import", text(&tar), "bbetc"]);
    // A new, empty volume at /etc gets the image's /etc (Docker's copy-up).
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "conf:/etc",
        "bbetc",
        "cat",
        "/etc/motd",
    ]);
    assert_eq!(out, "hello\n");
    assert!(mountpoint(&d, "conf").join("motd").is_file());
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "bare:/etc:nocopy",
        "bbetc",
        "ls",
        "/etc",
    ]);
    assert_eq!(out, "", "nocopy");
    // `-v /DST`: an anonymous volume, kept by rm, removed by rm -v.
    d.docker_ok(&["create", "--name", "anon1", "-v", "/scratch", "bb", "true"]);
    d.docker_ok(&["create", "--name", "anon2", "-v", "/scratch", "bb", "true"]);
    let name = |c: &str| {
        d.inspect_json(c)["Mounts"][0]["Name"]
            .as_str()
            .expect("a name")
            .to_string()
    };
    let (a1, a2) = (name("anon1"), name("anon2"));
    assert_eq!(a1.len(), 64, "{a1}");
    assert_eq!(
        d.inspect_json("anon1")["Config"]["Volumes"],
        json!({"/scratch": {}})
    );
    d.docker_ok(&["rm", "-v", "anon1"]);
    d.docker_ok(&["rm", "anon2"]);
    let left = d.docker_ok(&["volume", "ls", "-q"]);
    assert!(!left.contains(&a1) && left.contains(&a2), "{left}");
    // prune: unused anonymous volumes only, then every unused one with --all.
    let out = d.docker_ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&a2), "{out}");
    let left = d.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(left.lines().collect::<Vec<_>>(), vec!["bare", "conf"]);
    d.docker_ok(&["volume", "create", "--label", "k=v", "made"]);
    let label = d.docker_ok(&["volume", "inspect", "-f", "{{.Labels.k}}", "made"]);
    assert_eq!(label.trim(), "v");
    d.docker_ok(&["volume", "prune", "-f", "--all"]);
    assert_eq!(d.docker_ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn run_rm_takes_its_anonymous_volumes_and_keeps_named_ones() {
    let Some(d) = daemon("{}") else { return };
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        "-v",
        "kept:/k",
        "bb",
        "sh",
        "-c",
        "grep -c -e ' /scratch ' -e ' /k ' /proc/mounts",
    ]);
    assert_eq!(out.trim(), "2", "both volumes were mounted");
    let left = || d.docker_ok(&["volume", "ls", "-q"]);
    // The volumes go right after the container: wait for the removal to be done.
    common::wait_for(Duration::from_secs(10), || left().trim() == "kept");
    assert_eq!(left().lines().collect::<Vec<_>>(), vec!["kept"]);
    // A plain `rm` (no -v) still keeps a container's anonymous volume.
    d.docker_ok(&["run", "--name", "plain", "-v", "/scratch", "bb", "true"]);
    d.docker_ok(&["rm", "plain"]);
    assert_eq!(left().lines().count(), 2, "{}", left());
}

#[test]
fn volumes_from_shares_binds_and_volumes_with_their_modes() {
    let Some(d) = daemon("{}") else { return };
    let bind = host_dir(&d, "shared-bind");
    let bind_spec = format!("{}:/b", bind.display());
    let script = "echo one > /anon/f; echo two > /n/g; echo three > /b/h";
    d.docker_ok(&[
        "run", "--name", "src", "-v", "/anon", "-v", "named:/n", "-v", &bind_spec, "--tmpfs", "/t",
        "bb", "sh", "-c", script,
    ]);
    let read =
        "cat /anon/f /n/g /b/h; echo x > /anon/new && echo wrote; grep -q ' /t ' /proc/mounts || echo no-t";
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        "bb",
        "sh",
        "-c",
        read,
    ]);
    assert_eq!(
        out, "one\ntwo\nthree\nwrote\nno-t\n",
        "the tmpfs is src's own"
    );
    // `:ro`: every mount read-only; the consumer's own mount on a path wins.
    let ro = "cat /anon/f /n/g; echo x > /n/g || echo refused; ls /b";
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "-v",
        "/b",
        "bb",
        "sh",
        "-c",
        ro,
    ]);
    assert_eq!(out, "one\ntwo\nrefused\n", "{out}");
    // The consumer's `--rm` took nothing of src's: its anonymous volume is still there.
    let anon = d.inspect_json("src")["Mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .and_then(|m| m["Name"].as_str())
        .expect("anonymous volume")
        .to_string();
    assert!(d.docker_ok(&["volume", "ls", "-q"]).contains(&anon));
    let bad = |from: &str| {
        let body = json!({"Image": "bb", "Cmd": ["true"], "HostConfig": {"VolumesFrom": [from]}});
        create(&d, "", body)
    };
    let (status, body) = bad("src:zz");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("invalid mode: zz"),
        "{body}"
    );
    let (status, body) = bad("nope");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["message"], "No such container: nope");
}
