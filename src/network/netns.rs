//! A container's network namespace as a file: made by `unshare` on a thread of its own and
//! bind-mounted onto `<run dir>/netns/<id>`, so it outlives every process of the daemon (the
//! container joins it through the bundle's namespace `path`). Unmounting and removing the
//! file lets the kernel free it once the container has ended, and its veth with it.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::NetworkError;

/// The directory of the namespace files under the run directory.
pub fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("netns")
}

/// The namespace file of container `id`.
pub fn path(run_dir: &Path, id: &str) -> PathBuf {
    dir(run_dir).join(id)
}

/// Whether `path` is a mounted namespace file (a plain leftover file is not).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mount_point| unescape(mount_point) == wanted)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.to_path_buf();
    move |source| NetworkError::Io { what, path, source }
}

fn sys(what: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> NetworkError {
    let path = path.to_path_buf();
    move |e| NetworkError::Io {
        what,
        path,
        source: e.into(),
    }
}

/// Makes `path` a namespace file: a new network namespace when `from` is None, else the
/// one `from` (a `/proc/PID/ns/net`) names. An already mounted file is left as it is.
pub fn create(path: &Path, from: Option<&Path>) -> Result<(), NetworkError> {
    if is_mounted(path) {
        return Ok(());
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    File::create(path).map_err(io("create", path))?;
    let (target, source) = (path.to_path_buf(), from.map(Path::to_path_buf));
    // unshare changes the calling thread's namespace: a thread of its own, which ends
    // after the bind mount has pinned the namespace.
    let made = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> Result<(), NetworkError> {
            let source = match source {
                Some(s) => s,
                None => {
                    unshare(CloneFlags::CLONE_NEWNET).map_err(sys("unshare", &target))?;
                    PathBuf::from("/proc/thread-self/ns/net")
                }
            };
            mount(
                Some(&source),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys("bind-mount the network namespace on", &target))
        })
        .map_err(io("spawn a thread for", path))?
        .join()
        .map_err(|_| NetworkError::Thread)?;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Unmounts and removes a namespace file; a missing one is no error.
pub fn remove(path: &Path) -> Result<(), NetworkError> {
    if is_mounted(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(sys("unmount", path))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Runs `step` on a thread that has entered the namespace of `path` (None: the daemon's
/// own), so netlink sockets it opens speak to that namespace.
pub fn run_in<T: Send + 'static>(
    path: Option<&Path>,
    step: impl FnOnce() -> Result<T, NetworkError> + Send + 'static,
) -> Result<T, NetworkError> {
    let file = match path {
        Some(p) => Some((File::open(p).map_err(io("open", p))?, p.to_path_buf())),
        None => None,
    };
    std::thread::Builder::new()
        .name("netlink".into())
        .spawn(move || {
            if let Some((file, path)) = &file {
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys("enter", path))?;
            }
            step()
        })
        .map_err(io("spawn a thread for", Path::new("netlink")))?
        .join()
        .map_err(|_| NetworkError::Thread)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_are_unescaped() {
        assert_eq!(unescape("/run/a\\040b"), "/run/a b");
        assert_eq!(
            path(Path::new("/run/moor"), "ab").to_str(),
            Some("/run/moor/netns/ab")
        );
    }
}
