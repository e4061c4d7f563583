//! runc test helpers: a busybox rootfs tarball built in Rust from /bin/busybox, the root
//! check, and the clean-up that leaves no overlay mount or runc state behind.

use std::path::Path;
use std::process::Command;

/// The applets the test image links to busybox.
const APPLETS: &[&str] = &[
    "sh", "echo", "ls", "hostname", "sleep", "cat", "seq", "head", "tr", "date", "true", "kill",
    "id", "ip", "mkdir", "httpd",
];

/// A GNU header owned by root with an mtime (tar leaves uid, gid and mtime empty).
pub fn header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_mode(0o644);
    h
}

/// Root, runc and busybox are needed: None when all are here. A missing one fails the test
/// (it panics) unless `MOOR_TEST_SKIP` names `runc` (or `root`), when the reason to print is
/// returned.
pub fn skip_reason() -> Option<String> {
    if let Some(reason) = super::prereq::need_root("a runc test") {
        return Some(reason);
    }
    for bin in ["/bin/busybox", "/usr/sbin/runc"] {
        if !Path::new(bin).exists() && which(bin).is_none() {
            return super::prereq::missing(
                "runc",
                format!("{bin} is missing: run .ci/setup (apt-get install busybox-static runc)"),
            );
        }
    }
    None
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    let name = Path::new(bin).file_name()?;
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A busybox rootfs as a tar: bin/busybox, applet symlinks, empty system directories.
pub fn busybox_tar() -> Vec<u8> {
    busybox_tar_with(&[])
}

/// [`busybox_tar`] plus `files` (path, content), e.g. `etc/passwd`.
pub fn busybox_tar_with(files: &[(&str, &str)]) -> Vec<u8> {
    let busybox = which("/bin/busybox").unwrap_or_else(|| "/bin/busybox".into());
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if dir == "tmp" { 0o1777 } else { 0o755 });
        h.set_size(0);
        b.append_data(&mut h, dir, std::io::empty())
            .expect("tar dir");
    }
    let data = std::fs::read(&busybox).expect("read busybox");
    let mut h = header();
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, "bin/busybox", &data[..])
        .expect("tar busybox");
    for applet in APPLETS {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("tar link");
    }
    for (path, content) in files {
        let mut h = header();
        h.set_size(content.len() as u64);
        b.append_data(&mut h, path, content.as_bytes())
            .expect("tar file");
    }
    b.into_inner().expect("finish tar")
}

/// Overlay mount points under `dir`, from /proc/mounts.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let prefix = dir.to_string_lossy().to_string();
    text.lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&prefix))
        .map(String::from)
        .collect()
}

/// Deletes every runc container in `<run_dir>/runc` and unmounts everything under `dir`.
pub fn clean_up(run_dir: &Path, dir: &Path) {
    let root = run_dir.join("runc");
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force"])
            .arg(entry.file_name())
            .output();
    }
    for m in mounts_under(dir) {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}
