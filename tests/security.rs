//! Issue 18, item 3: files open to every local user. After a create and a start, the state
//! root, run directory, store, config.v2.json, log and socket have moor's modes (README
//! "Security"); a root left 0755 by an older build is fixed at start; a user other than root
//! can neither read a container's spec or log nor run a (setuid root) binary of an image
//! from its host path.
//!
//! The test's own temp directory is opened to 0755 first, so that only moor's modes stand
//! between the unprivileged user and the files.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// `setpriv` as nobody (uid and gid 65534, no supplementary groups).
fn as_nobody(argv: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(argv)
        .output()
        .expect("run setpriv")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// A daemon whose test directory any user may traverse (see the module header).
fn open_daemon() -> Daemon {
    let d = Daemon::start(LIVE_RESTORE_OFF);
    let top = d.root().parent().expect("test dir").to_path_buf();
    fs::set_permissions(&top, fs::Permissions::from_mode(0o755)).expect("chmod test dir");
    d
}

/// A tar with busybox-static as a setuid-root `bin/busybox`.
fn setuid_busybox_tar() -> Vec<u8> {
    let data = fs::read("/bin/busybox").expect("read /bin/busybox (busybox-static)");
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_uid(0);
    dir.set_gid(0);
    dir.set_mtime(1);
    dir.set_size(0);
    b.append_data(&mut dir, "bin", std::io::empty())
        .expect("tar dir");
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o4755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, "bin/busybox", &data[..])
        .expect("tar busybox");
    b.into_inner().expect("tar")
}

#[test]
fn files_have_private_modes_after_create_and_start() {
    let d = open_daemon();
    let id = d.run_detached(&[
        "--name",
        "sec",
        "-e",
        "TOKEN=hunter2",
        "host",
        "sh",
        "-c",
        "echo secret; sleep 60",
    ]);
    let log = d.container_dir(&id).join(format!("{id}-json.log"));
    assert!(
        wait_for(READY_DEADLINE, || fs::metadata(&log)
            .is_ok_and(|m| m.len() > 0)),
        "the log gets the container's line"
    );
    let spec = d.container_dir(&id).join("config.v2.json");
    assert!(fs::read_to_string(&spec).expect("spec").contains("hunter2"));
    for (path, want) in [
        (d.root(), 0o700),
        (d.root().join("containers"), 0o700),
        (d.root().join("moor.db"), 0o700),
        (d.run_dir(), 0o700),
        (d.run_dir().join("containers"), 0o700),
        (spec.clone(), 0o600),
        (log.clone(), 0o640),
        (d.socket(), 0o660),
    ] {
        assert_eq!(mode(&path), want, "{}: {:o}", path.display(), mode(&path));
    }
    let group = nix::unistd::Group::from_name("moor").expect("group database");
    let want_gid = group.map_or(0, |g| g.gid.as_raw());
    assert_eq!(fs::metadata(d.socket()).expect("socket").gid(), want_gid);
    for path in [&spec, &log] {
        let out = as_nobody(&["cat", path.to_str().expect("utf-8")]);
        assert!(!out.status.success(), "nobody read {}", path.display());
        assert!(!String::from_utf8_lossy(&out.stdout).contains("secret"));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
    }
    d.cli_ok(&["rm", "-f", "sec"]);
}

#[test]
fn nobody_cannot_run_a_setuid_binary_of_an_image() {
    let d = open_daemon();
    let tar = d.root().with_file_name("suid.tar");
    fs::write(&tar, setuid_busybox_tar()).expect("write tar");
    d.cli_ok(&["image", "import", tar.to_str().expect("utf-8"), "suid"]);
    let inspect = d.http("GET", "/images/suid/json", None);
    assert_eq!(inspect.status, 200, "{}", inspect.body);
    let rootfs = PathBuf::from(inspect.json()["MoorRootfs"].as_str().expect("rootfs"));
    let busybox = rootfs.join("bin/busybox");
    assert!(busybox.is_file(), "{}", busybox.display());
    // Through a shell: setpriv resolves its own command with root's capabilities still in
    // hand, so the path must be opened by a process that already runs as nobody.
    let script = format!("{} id -u", busybox.display());
    let out = as_nobody(&["/bin/sh", "-c", &script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.trim().is_empty(),
        "nobody ran the image's setuid binary: status {}, stdout {stdout:?}",
        out.status
    );
}

#[test]
fn an_old_0755_root_is_made_private_at_start() {
    let mut d = open_daemon();
    d.stop_term();
    for dir in [d.root(), d.root().join("containers"), d.run_dir()] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    }
    d.restart();
    assert_eq!(mode(&d.root()), 0o700);
    assert_eq!(mode(&d.root().join("containers")), 0o700);
    assert_eq!(mode(&d.run_dir()), 0o700);
    let output = d.output();
    let last_start = output
        .rsplit("moor daemon start #")
        .next()
        .expect("a start");
    // One warning per fixed directory, naming it.
    for dir in [d.root(), d.root().join("containers"), d.run_dir()] {
        let named = format!("path={} ", dir.display());
        let warned = last_start
            .lines()
            .filter(|l| l.contains("directory mode fixed") && l.contains(&named))
            .count();
        assert_eq!(warned, 1, "{}: {last_start}", dir.display());
    }
}
