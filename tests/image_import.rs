//! Issue 18, item 5: image imports. Concurrent imports of one tarball each get their own work
//! directory and all succeed; what an interrupted import leaves in `images/tmp` is swept at
//! the next start; every tar format GNU tar writes imports (FIFOs, device nodes, hard links,
//! symlinks); a decompression bomb over `image-unpack-limit` is a 400 naming the cap and
//! leaves nothing behind.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use common::*;

/// POSTs `body` as an import (`fromSrc=-`); the status and the raw answer.
fn import_bytes(socket: &Path, repo: &str, body: &[u8]) -> (u16, String) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(HTTP_DEADLINE))
        .expect("timeout");
    let head = format!(
        "POST /v1.44/images/create?fromSrc=-&repo={repo} HTTP/1.0\r\nHost: moor\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, answer)
}

fn tmp_entries(d: &Daemon) -> Vec<PathBuf> {
    match fs::read_dir(d.root().join("images/tmp")) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A small tree as a tar file made by GNU tar in `format`.
fn gnu_tar(dir: &Path, format: &str) -> PathBuf {
    let src = dir.join(format!("src-{format}"));
    fs::create_dir_all(src.join("bin")).expect("mkdir");
    fs::write(src.join("bin/tool"), b"#!/bin/sh\necho hi\n").expect("write");
    fs::hard_link(src.join("bin/tool"), src.join("bin/tool-link")).expect("hard link");
    std::os::unix::fs::symlink("tool", src.join("bin/sh")).expect("symlink");
    fs::create_dir_all(src.join("dev")).expect("mkdir dev");
    let made = |args: &[&str]| {
        succeeded(
            "mknod",
            args,
            Command::new("mknod").args(args).output().expect("mknod"),
        )
    };
    made(&[src.join("dev/fifo").to_str().expect("utf-8"), "p"]);
    made(&[src.join("dev/null").to_str().expect("utf-8"), "c", "1", "3"]);
    let tar = dir.join(format!("{format}.tar"));
    let args = [
        &format!("--format={format}"),
        "-cf",
        tar.to_str().expect("utf-8"),
        "-C",
        src.to_str().expect("utf-8"),
        ".",
    ];
    let out = Command::new("tar").args(args).output().expect("run tar");
    succeeded("tar", &args, out);
    tar
}

#[test]
fn every_gnu_tar_format_imports_with_fifos_devices_and_links() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let work = d.root().with_file_name("tars");
    for format in ["gnu", "ustar", "pax"] {
        let tar = gnu_tar(&work, format);
        let out = d.cli_ok(&["image", "import", tar.to_str().expect("utf-8"), format]);
        assert!(out.trim().starts_with("sha256:"), "{format}: {out}");
        let inspect = d.http("GET", &format!("/images/{format}/json"), None);
        assert_eq!(inspect.status, 200, "{}", inspect.body);
        let rootfs = PathBuf::from(inspect.json()["MoorRootfs"].as_str().expect("rootfs"));
        let kind = |p: &str| fs::symlink_metadata(rootfs.join(p)).expect(p).file_type();
        assert!(kind("dev/fifo").is_fifo(), "{format}");
        assert!(kind("dev/null").is_char_device(), "{format}");
        assert!(kind("bin/sh").is_symlink(), "{format}");
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &str| fs::metadata(rootfs.join(p)).expect(p).ino();
        assert_eq!(ino("bin/tool"), ino("bin/tool-link"), "{format}: hard link");
    }
    assert!(tmp_entries(&d).is_empty(), "{:?}", tmp_entries(&d));
}

#[test]
fn concurrent_imports_of_one_tar_all_succeed() {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let tar = gnu_tar(&d.root().with_file_name("tars"), "gnu");
    let host = format!("unix://{}", d.socket().display());
    let ids: Vec<String> = thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|i| {
                let (host, tar) = (&host, &tar);
                s.spawn(move || {
                    let name = format!("same:{i}");
                    let args = [
                        "--host",
                        host,
                        "image",
                        "import",
                        tar.to_str().expect("utf-8"),
                        &name,
                    ];
                    let out = Command::new(MOOR).args(args).output().expect("run moor");
                    succeeded("moor", &args, out)
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("import thread").trim().to_string())
            .collect()
    });
    assert!(ids[0].starts_with("sha256:"), "{ids:?}");
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for i in 0..3 {
        let r = d.http("GET", &format!("/images/same:{i}/json"), None);
        assert_eq!(r.status, 200, "same:{i}: {}", r.body);
    }
    assert!(tmp_entries(&d).is_empty(), "{:?}", tmp_entries(&d));
}

#[test]
fn leftovers_in_images_tmp_are_swept_at_start() {
    let mut d = Daemon::start(LIVE_RESTORE_OFF);
    d.stop_term();
    let tmp = d.root().join("images/tmp");
    fs::create_dir_all(tmp.join("unpack-0123456789ab-00000000000000aa/rootfs/usr")).expect("mkdir");
    fs::write(
        tmp.join("unpack-0123456789ab-00000000000000aa/rootfs/usr/big"),
        vec![7u8; 4096],
    )
    .expect("write");
    fs::write(tmp.join("upload-00000000000000bb"), b"half an upload").expect("write");
    d.restart();
    assert!(tmp_entries(&d).is_empty(), "{:?}", tmp_entries(&d));
    assert!(
        d.output().contains("interrupted image imports"),
        "{}",
        d.output()
    );
}

#[test]
fn a_gzip_bomb_over_the_cap_is_a_400_and_leaves_nothing() {
    let d = Daemon::start(r#"{"image-unpack-limit": "1m"}"#);
    // 8 MiB of zeros: a gzip of about 8 KiB.
    let mut builder = tar::Builder::new(Vec::new());
    let zeros = vec![0u8; 8 << 20];
    let mut h = tar::Header::new_gnu();
    h.set_size(zeros.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder
        .append_data(&mut h, "zeros", &zeros[..])
        .expect("append");
    let tar = builder.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let (status, answer) = import_bytes(&d.socket(), "bomb", &bomb);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("image-unpack-limit"), "{answer}");
    assert!(answer.contains("1048576 bytes"), "{answer}");
    assert!(tmp_entries(&d).is_empty(), "{:?}", tmp_entries(&d));
    let images = d.http("GET", "/images/json", None).json();
    assert_eq!(images, serde_json::json!([]));
    // Under the cap, the same import goes through.
    let small = tar::Builder::new(Vec::new()).into_inner().expect("tar");
    let (status, answer) = import_bytes(&d.socket(), "small", &small);
    assert_eq!(status, 200, "{answer}");
}

/// The peak resident size of a child (KiB), from `wait4`, and whether it exited 0.
#[allow(unsafe_code)]
fn peak_rss_kib(mut cmd: Command) -> (u64, bool) {
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for (the Child is forgotten, so its
    // Drop does not wait); `status` and `usage` are valid for writes.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    std::mem::forget(child);
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    (
        usage.ru_maxrss as u64,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    )
}

#[test]
fn the_cli_streams_an_import_without_holding_the_file() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(&rootfs).expect("mkdir");
    // 256 MiB of zeros (sparse on disk until tar reads it), in a tar of about that size.
    let big = fs::File::create(rootfs.join("big")).expect("create");
    big.set_len(256 << 20).expect("set_len");
    let tar = dir.path().join("big.tar");
    let made = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(made.success());
    let mut cmd = Command::new(MOOR);
    cmd.arg("--host")
        .arg(format!("unix://{}", d.socket().display()))
        .args(["image", "import"])
        .arg(&tar)
        .arg("big")
        .env_remove("MOOR_HOST")
        .stdout(std::process::Stdio::null());
    let (peak, ok) = peak_rss_kib(cmd);
    assert!(ok, "moor image import failed");
    // Held whole, the file alone would be 256 MiB; streamed, a few 1 MiB pieces are.
    assert!(peak < 64 << 10, "the CLI peaked at {peak} KiB");
    let image = d.http("GET", "/v1.44/images/big/json", None);
    assert_eq!(image.status, 200, "{}", image.body);
    let size = image.json()["Size"].as_u64().unwrap_or(0);
    assert!(size >= 256 << 20, "image size {size}");
}

#[test]
fn the_daemon_unpacks_an_import_as_it_arrives() {
    let d = Daemon::start(LIVE_RESTORE_ON);
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(&rootfs).expect("mkdir");
    fs::write(rootfs.join("first"), b"here early").expect("write");
    fs::File::create(rootfs.join("second"))
        .and_then(|f| f.set_len(8 << 20))
        .expect("second");
    let tar = dir.path().join("two.tar");
    let made = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-cf"])
        .arg(&tar)
        .args(["./first", "./second"])
        .status()
        .expect("run tar");
    assert!(made.success());
    let body = fs::read(&tar).expect("read tar");
    let mut stream = UnixStream::connect(d.socket()).expect("connect");
    stream
        .set_read_timeout(Some(HTTP_DEADLINE))
        .expect("timeout");
    let head = format!(
        "POST /v1.44/images/create?fromSrc=-&repo=two HTTP/1.0\r\nHost: moor\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    // The first entry and a part of the second: `first` is unpacked before the rest comes.
    let half = body.len() / 2;
    stream.write_all(&body[..half]).expect("send half");
    let early = wait_for(std::time::Duration::from_secs(20), || {
        tmp_entries(&d)
            .iter()
            .any(|work| work.join("rootfs/first").is_file())
    });
    assert!(
        early,
        "nothing unpacked while the upload was under way: {:?}",
        tmp_entries(&d)
    );
    stream.write_all(&body[half..]).expect("send the rest");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(tmp_entries(&d).is_empty(), "{:?}", tmp_entries(&d));
    let image = d.http("GET", "/v1.44/images/two/json", None);
    assert_eq!(image.status, 200, "{}", image.body);
}
