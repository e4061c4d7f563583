//! Issue 16's copy endpoints with the real docker CLI and moor's: `docker cp` both ways into
//! running and stopped runc containers (`/containers/{id}/archive`), paths resolved inside
//! the container (a symlink to `/etc/../../` never reaches the host), `docker export`,
//! `docker diff` (A/C/D from the overlay's upper dir), a corrupt upload refused whole, and
//! a process-runtime container refused with the reason.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use common::runc::{self, skip_reason};
use common::*;

/// A daemon on runc with busybox imported as `bb` (plus `files`), or None when skipped.
fn daemon_with(files: &[(&str, &str)]) -> Option<Daemon> {
    if let Some(reason) = skip_reason() {
        println!("skipped: {reason}");
        return None;
    }
    let d = Daemon::start_with_runtime(LIVE_RESTORE_ON, "runc");
    let out = d.docker(&["import", "-", "bb"], Some(&runc::busybox_tar_with(files)));
    assert!(out.status.success(), "docker import: {}", describe(&out));
    Some(d)
}

/// A scratch directory of the test on the host (beside the daemon's root).
fn scratch(d: &Daemon, name: &str) -> PathBuf {
    let dir = d.root().with_file_name(name);
    std::fs::create_dir_all(&dir).expect("mkdir scratch");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `PUT /containers/{name}/archive?{query}` with `body` as it is; (status, body).
fn put_raw(d: &Daemon, name: &str, query: &str, body: &[u8]) -> (u16, String) {
    let mut stream = UnixStream::connect(d.socket()).expect("connect");
    let head = format!(
        "PUT /v1.44/containers/{name}/archive?{query} HTTP/1.0\r\nHost: moor\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read answer");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text[9..12].parse().expect("status code");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

#[test]
fn docker_cp_into_and_out_of_a_running_container() {
    let Some(d) = daemon_with(&[]) else { return };
    d.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "1000"]);
    let host = scratch(&d, "cp-running");
    std::fs::write(host.join("note.txt"), "from the host\n").expect("write");
    d.docker_ok(&["cp", s(&host.join("note.txt")), "box:/tmp/"]);
    let seen = d.docker_ok(&["exec", "box", "cat", "/tmp/note.txt"]);
    assert_eq!(seen, "from the host\n");
    // A file made inside comes out, under a new name.
    d.docker_ok(&["exec", "box", "sh", "-c", "echo made inside > /tmp/inside"]);
    d.docker_ok(&["cp", "box:/tmp/inside", s(&host.join("out.txt"))]);
    let out = std::fs::read_to_string(host.join("out.txt")).expect("copied out");
    assert_eq!(out, "made inside\n");
    // A directory both ways.
    std::fs::create_dir_all(host.join("tree/sub")).expect("mkdir");
    std::fs::write(host.join("tree/sub/leaf"), "leaf\n").expect("write");
    d.docker_ok(&["cp", s(&host.join("tree")), "box:/srv"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/srv/sub/leaf"]),
        "leaf\n"
    );
    d.docker_ok(&["exec", "box", "sh", "-c", "echo two > /srv/sub/two"]);
    d.docker_ok(&["cp", "box:/srv", s(&host.join("back"))]);
    let two = std::fs::read_to_string(host.join("back/sub/two")).expect("dir copied out");
    assert_eq!(two, "two\n");
    assert!(host.join("back/sub/leaf").is_file());
    // `DIR/.`: the directory's content, into a new directory and into an existing one.
    d.docker_ok(&["cp", "box:/srv/.", s(&host.join("dot"))]);
    assert!(host.join("dot/sub/two").is_file());
    d.docker_ok(&["cp", "box:/srv/sub/.", s(&host.join("dot"))]);
    assert!(host.join("dot/two").is_file());
    // The root: its tree, the kernel's filesystems as empty directories.
    d.docker_ok(&["cp", "box:/", s(&host.join("all"))]);
    assert!(host.join("all/bin/busybox").is_file());
    assert!(host.join("all/srv/sub/leaf").is_file());
    let proc_entries = std::fs::read_dir(host.join("all/proc"))
        .expect("proc dir")
        .count();
    assert_eq!(proc_entries, 0, "/proc is copied as an empty directory");
    // A path that is not there: Docker's words.
    let err = d.docker_fail(&["cp", "box:/nope", s(&host.join("x"))]);
    assert!(err.contains("Could not find the file /nope"), "{err}");
    d.docker_ok(&["rm", "-f", "box"]);
}

#[test]
fn cp_archive_mode_gives_the_container_user_s_ids() {
    let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/tmp:/bin/sh\n";
    let group = "root:x:0:\napp:x:1001:\n";
    let Some(d) = daemon_with(&[("etc/passwd", passwd), ("etc/group", group)]) else {
        return;
    };
    d.docker_ok(&[
        "run", "-d", "--name", "box", "-u", "app", "bb", "sleep", "1000",
    ]);
    let host = scratch(&d, "cp-owner");
    std::fs::write(host.join("plain"), "x\n").expect("write");
    std::fs::write(host.join("owned"), "x\n").expect("write");
    d.docker_ok(&["cp", s(&host.join("plain")), "box:/tmp/"]);
    d.docker_ok(&["cp", "-a", s(&host.join("owned")), "box:/tmp/"]);
    let ids = |path: &str| d.docker_ok(&["exec", "box", "busybox", "stat", "-c", "%u:%g", path]);
    assert_eq!(
        ids("/tmp/plain"),
        "0:0\n",
        "without -a the archive's owner (root here)"
    );
    assert_eq!(
        ids("/tmp/owned"),
        "1000:1001\n",
        "-a: the container user's ids"
    );
    d.docker_ok(&["rm", "-f", "box"]);
}

#[test]
fn docker_cp_reaches_a_bind_mount_of_a_running_container() {
    let Some(d) = daemon_with(&[]) else { return };
    let bound = scratch(&d, "bound");
    let volume = format!("{}:/data", s(&bound));
    d.docker_ok(&[
        "run", "-d", "--name", "box", "-v", &volume, "bb", "sleep", "1000",
    ]);
    let host = scratch(&d, "cp-bind");
    std::fs::write(host.join("in"), "through the mount\n").expect("write");
    d.docker_ok(&["cp", s(&host.join("in")), "box:/data/"]);
    let landed = std::fs::read_to_string(bound.join("in")).expect("in the bind source");
    assert_eq!(landed, "through the mount\n");
    std::fs::write(bound.join("host-made"), "made on the host\n").expect("write");
    d.docker_ok(&["cp", "box:/data/host-made", s(&host.join("out"))]);
    let out = std::fs::read_to_string(host.join("out")).expect("copied out");
    assert_eq!(out, "made on the host\n");
    d.docker_ok(&["rm", "-f", "box"]);
}

#[test]
fn docker_cp_with_a_stopped_container_mounts_only_for_the_copy() {
    let Some(d) = daemon_with(&[]) else { return };
    d.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "1000"]);
    d.docker_ok(&["exec", "box", "sh", "-c", "echo before stop > /tmp/kept"]);
    d.docker_ok(&["stop", "-t", "0", "box"]);
    let host = scratch(&d, "cp-stopped");
    d.docker_ok(&["cp", "box:/tmp/kept", s(&host.join("kept"))]);
    let kept = std::fs::read_to_string(host.join("kept")).expect("copied out");
    assert_eq!(kept, "before stop\n");
    std::fs::write(host.join("later"), "while stopped\n").expect("write");
    d.docker_ok(&["cp", s(&host.join("later")), "box:/tmp/later"]);
    let mounts = runc::mounts_under(&d.run_dir());
    assert!(
        mounts.is_empty(),
        "the overlay mounted for the copy is unmounted after it: {mounts:?}"
    );
    d.docker_ok(&["start", "box"]);
    let later = d.docker_ok(&["exec", "box", "cat", "/tmp/later"]);
    assert_eq!(later, "while stopped\n");
    // A created, never started container too (its upper dir is made by the copy).
    d.docker_ok(&["create", "--name", "fresh", "bb", "true"]);
    d.docker_ok(&["cp", s(&host.join("later")), "fresh:/etc/"]);
    d.docker_ok(&["cp", "fresh:/etc/later", s(&host.join("again"))]);
    assert_eq!(
        std::fs::read_to_string(host.join("again")).expect("again"),
        "while stopped\n"
    );
    d.docker_ok(&["rm", "-f", "box", "fresh"]);
}

#[test]
fn a_symlink_out_of_the_container_stays_inside() {
    let Some(d) = daemon_with(&[]) else { return };
    d.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "1000"]);
    let marker = format!("moor-escape-{}", std::process::id());
    // On the host, `/etc/../../` is `/`: resolved inside the container it is the
    // container's `/`.
    d.docker_ok(&[
        "exec",
        "box",
        "busybox",
        "ln",
        "-s",
        "/etc/../../",
        "/tmp/up",
    ]);
    let host = scratch(&d, "cp-escape");
    std::fs::write(host.join(&marker), "must stay inside\n").expect("write");
    d.docker_ok(&["cp", s(&host.join(&marker)), "box:/tmp/up/"]);
    assert!(
        !Path::new("/").join(&marker).exists(),
        "the copy went through the symlink to the host's /"
    );
    let inside = d.docker_ok(&["exec", "box", "cat", &format!("/{marker}")]);
    assert_eq!(inside, "must stay inside\n");
    // Reading through a link to a host path: the container's path, which is not there.
    std::fs::write(host.join("secret"), "host secret\n").expect("write");
    let link_target = format!("/../../..{}", s(&host.join("secret")));
    d.docker_ok(&[
        "exec",
        "box",
        "busybox",
        "ln",
        "-s",
        &link_target,
        "/tmp/peek",
    ]);
    let err = d.docker_fail(&["cp", "box:/tmp/peek/", s(&host.join("got"))]);
    assert!(err.contains("Could not find the file"), "{err}");
    assert!(!host.join("got").exists());
    d.docker_ok(&["rm", "-f", "box"]);
}

#[test]
fn export_and_diff() {
    let files = [("etc/motd", "hello\n"), ("etc/gone", "bye\n")];
    let Some(d) = daemon_with(&files) else { return };
    d.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "1000"]);
    let script = "echo new > /etc/new && echo more >> /etc/motd && rm /etc/gone";
    d.docker_ok(&["exec", "box", "sh", "-c", script]);
    let diff = d.docker_ok(&["diff", "box"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in ["C /etc", "A /etc/new", "C /etc/motd", "D /etc/gone"] {
        assert!(
            lines.contains(&want),
            "docker diff lacks {want:?}: {lines:?}"
        );
    }
    assert_eq!(
        d.cli_ok(&["diff", "box"]),
        diff,
        "moor diff prints docker diff's lines"
    );
    let host = scratch(&d, "export");
    let tar = host.join("box.tar");
    d.docker_ok(&["export", "-o", s(&tar), "box"]);
    let names = tar_names(&std::fs::read(&tar).expect("export written"));
    for want in ["bin/busybox", "etc/new", "etc/motd"] {
        assert!(
            names.iter().any(|n| n == want),
            "export lacks {want}: {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n == "etc/gone"), "{names:?}");
    let moor_tar = host.join("moor.tar");
    d.cli_ok(&["export", "-o", s(&moor_tar), "box"]);
    assert_eq!(
        tar_names(&std::fs::read(&moor_tar).expect("moor export")),
        names
    );
    d.docker_ok(&["rm", "-f", "box"]);
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .expect("a tar")
        .map(|e| {
            let e = e.expect("an entry");
            let name = e.path().expect("a path").display().to_string();
            name.trim_end_matches('/').to_string()
        })
        .collect()
}

#[test]
fn moor_cp_both_ways_and_through_stdin_and_stdout() {
    let Some(d) = daemon_with(&[]) else { return };
    d.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "1000"]);
    let host = scratch(&d, "moor-cp");
    std::fs::create_dir_all(host.join("dir/sub")).expect("mkdir");
    std::fs::write(host.join("dir/sub/f"), "in a dir\n").expect("write");
    std::fs::write(host.join("one"), "one file\n").expect("write");
    d.cli_ok(&["cp", s(&host.join("dir")), "box:/tmp/"]);
    d.cli_ok(&["cp", s(&host.join("one")), "box:/tmp/renamed"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/dir/sub/f"]),
        "in a dir\n"
    );
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/renamed"]),
        "one file\n"
    );
    d.cli_ok(&["cp", "box:/tmp/dir", s(&host.join("out"))]);
    let f = std::fs::read_to_string(host.join("out/sub/f")).expect("dir copied out");
    assert_eq!(f, "in a dir\n");
    // `-`: the tar itself on stdout, and a tar on stdin.
    // A destination that is a symlink to a directory: the copy goes into that directory.
    d.docker_ok(&[
        "exec",
        "box",
        "busybox",
        "ln",
        "-s",
        "/tmp/dir",
        "/tmp/dirlink",
    ]);
    d.cli_ok(&["cp", s(&host.join("one")), "box:/tmp/dirlink"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/dir/one"]),
        "one file\n"
    );
    let out = d.cli(&["cp", "box:/tmp/renamed", "-"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(tar_names(&out.stdout), ["renamed"]);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = runc::header();
    h.set_size(6);
    h.set_mode(0o600);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "piped", &b"piped\n"[..])
        .expect("append");
    let tar = b.into_inner().expect("tar");
    let out = d.cli_input(&["cp", "-", "box:/tmp"], Some(&tar));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/piped"]),
        "piped\n"
    );
    let err = d.cli_fail(&["cp", "box:/nope", s(&host.join("n"))]);
    assert!(String::from_utf8_lossy(&err.stderr).contains("Could not find the file /nope"));
    d.docker_ok(&["rm", "-f", "box"]);
}

#[test]
fn a_corrupt_tar_is_refused_whole_and_bad_parameters_are_named() {
    let Some(d) = daemon_with(&[]) else { return };
    d.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "1000"]);
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [("first", &b"first\n"[..]), ("second", &b"second\n"[..])] {
        let mut h = runc::header();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).expect("append");
    }
    let mut tar = b.into_inner().expect("tar");
    // The second header (after 512 + 512 bytes) no longer matches its checksum.
    tar[1024 + 3] ^= 0x20;
    let (status, body) = put_raw(&d, "box", "path=/tmp", &tar);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("at byte 1024") && body.contains("\\\"first\\\""),
        "the error names the offset and the entry: {body}"
    );
    let out = d.docker(
        &["exec", "box", "busybox", "test", "-e", "/tmp/first"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing of a refused tar is written"
    );
    let (status, body) = put_raw(&d, "box", "path=/tmp&bogus=1", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bogus"), "{body}");
    let (status, body) = put_raw(&d, "box", "path=/bin/busybox", &[0u8; 1024]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a directory"), "{body}");
    let (status, _) = put_raw(&d, "box", "path=/missing", &[0u8; 1024]);
    assert_eq!(status, 404);
    let answer = d.http("GET", "/v1.44/containers/box/archive", None);
    assert_eq!(answer.status, 400, "{}", answer.body);
    // A process-runtime container has no filesystem of its own: refused with the reason.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "hosted",
        "--runtime",
        "process",
        "host",
        "sleep",
        "1000",
    ]);
    let answer = d.http("GET", "/v1.44/containers/hosted/archive?path=/etc", None);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("process runtime"), "{}", answer.body);
    let answer = d.http("GET", "/v1.44/containers/hosted/changes", None);
    assert_eq!(answer.status, 400, "{}", answer.body);
    d.docker_ok(&["rm", "-f", "box", "hosted"]);
}

#[test]
fn docker_py_put_and_get_archive_export_and_diff() {
    let Some(d) = daemon_with(&[]) else { return };
    d.docker_ok(&["run", "-d", "--name", "box", "bb", "sleep", "1000"]);
    let out = d.docker_py("archive_test.py", &[], 120);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("archive ok"));
    d.docker_ok(&["rm", "-f", "box"]);
}
