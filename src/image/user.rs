//! `-u NAME[:GROUP]` resolved as Docker does, from the image's own /etc/passwd and
//! /etc/group (read inside the image's root filesystem, symlinks resolved within it: never
//! the host's files). Numbers are taken as they are; a name must be found.

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// How many symlinks a lookup follows before giving up (Linux's limit).
const MAX_LINKS: u32 = 40;

/// Why a user could not be resolved.
#[derive(Debug, Error)]
pub enum UserError {
    /// No passwd entry has this name.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// No group entry has this name.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    /// A GroupAdd entry names no group of the image.
    #[error("HostConfig.GroupAdd: unable to find group {0}: no matching entries in group file")]
    NoGroupToAdd(String),
    /// A file of the image could not be read.
    #[error("read {path} in the image")]
    Read {
        /// The path inside the image.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The ids a container's process runs with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecUser {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary groups: the image's groups that list the user as a member.
    pub additional_gids: Vec<u32>,
}

/// Resolves `user` (`""`, `NAME`, `UID`, `NAME:GROUP`, `UID:GID`...) inside `rootfs`.
pub fn resolve(rootfs: &Path, user: &str) -> Result<ExecUser, UserError> {
    resolve_layers(&[rootfs.to_path_buf()], user)
}

/// [`resolve`] in an image made of `lowers` (overlay lower dirs, top first): each file is
/// read from the topmost layer that has it; a whiteout there (a 0/0 character device)
/// means it was deleted.
pub fn resolve_layers(lowers: &[std::path::PathBuf], user: &str) -> Result<ExecUser, UserError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let passwd = read_in_layers(lowers, "/etc/passwd")?;
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .find(|f| f[0] == user_part || f[2] == user_part);
    let (name, uid, mut gid) = match (entry, user_part.parse::<u32>()) {
        (Some(f), _) => (f[0].to_string(), number(f[2]), number(f[3])),
        (None, Ok(uid)) => (String::new(), uid, 0),
        (None, Err(_)) => return Err(UserError::NoUser(user_part.to_string())),
    };
    let groups = read_in_layers(lowers, "/etc/group")?;
    let groups: Vec<Vec<&str>> = groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let mut additional_gids = Vec::new();
    match group_part.filter(|g| !g.is_empty()) {
        Some(g) => {
            gid = match (groups.iter().find(|f| f[0] == g), g.parse::<u32>()) {
                (_, Ok(n)) => n,
                (Some(f), Err(_)) => number(f[2]),
                (None, Err(_)) => return Err(UserError::NoGroup(g.to_string())),
            };
        }
        None if !name.is_empty() => {
            additional_gids = groups
                .iter()
                .filter(|f| f.get(3).is_some_and(|m| m.split(',').any(|m| m == name)))
                .map(|f| number(f[2]))
                .filter(|g| *g != gid)
                .collect();
        }
        None => {}
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
    })
}

/// Docker's GroupAdd: each entry a group of the image by name, or a number taken as it is.
pub fn group_ids(lowers: &[std::path::PathBuf], names: &[String]) -> Result<Vec<u32>, UserError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let groups = read_in_layers(lowers, "/etc/group")?;
    names
        .iter()
        .map(|name| match name.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => groups
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == name)
                .map(|f| number(f[2]))
                .ok_or_else(|| UserError::NoGroupToAdd(name.clone())),
        })
        .collect()
}

fn number(field: &str) -> u32 {
    field.trim().parse().unwrap_or(0)
}

/// Reads `path` from the topmost of `lowers` that has it (empty when none has it or a
/// whiteout hides it).
fn read_in_layers(lowers: &[std::path::PathBuf], path: &str) -> Result<String, UserError> {
    use std::os::unix::fs::FileTypeExt;
    let rel = path.trim_start_matches('/');
    for root in lowers {
        match std::fs::symlink_metadata(root.join(rel)) {
            Ok(m) if m.file_type().is_char_device() => return Ok(String::new()),
            Ok(_) => return read_in_root(root, path),
            Err(_) => continue,
        }
    }
    Ok(String::new())
}

/// Reads `path` as seen from inside `root`: absolute symlinks and `..` stay within it. A
/// missing file reads as empty (an image without /etc/passwd knows numbers only).
fn read_in_root(root: &Path, path: &str) -> Result<String, UserError> {
    let err = |source| UserError::Read {
        path: path.to_string(),
        source,
    };
    match resolve_in_root(root, Path::new(path)).and_then(std::fs::read_to_string) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(err(e)),
    }
}

fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

/// The host path of `path` inside `root`, following symlinks as if `root` were `/`.
fn resolve_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut pending = Vec::new();
    push_components(&mut pending, path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&full)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                push_components(&mut pending, &target);
            }
            Ok(_) => resolved = candidate,
            Err(e) => return Err(e),
        }
    }
    Ok(root.join(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).expect("etc");
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:100::/home/bob:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            etc.join("group"),
            "root:x:0:\nusers:x:100:\nwheel:x:10:bob,alice\nstaff:x:50:\n",
        )
        .expect("group");
        dir
    }

    #[test]
    fn names_and_numbers_resolve_like_docker() {
        let img = image();
        let r = |u: &str| resolve(img.path(), u);
        assert_eq!(r("").expect("root"), ExecUser::default());
        let bob = r("bob").expect("bob");
        assert_eq!(
            (bob.uid, bob.gid, bob.additional_gids),
            (1000, 100, vec![10])
        );
        assert_eq!(r("bob:staff").expect("group").gid, 50);
        assert_eq!(r("1000").expect("uid").gid, 100);
        assert_eq!(
            r("4242:7").expect("numbers"),
            ExecUser {
                uid: 4242,
                gid: 7,
                ..Default::default()
            }
        );
        let e = r("nobody").expect_err("missing");
        assert_eq!(
            e.to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert!(matches!(r("bob:nogroup"), Err(UserError::NoGroup(_))));
    }

    #[test]
    fn symlinks_never_leave_the_image() {
        let img = image();
        let etc = img.path().join("etc");
        std::fs::remove_file(etc.join("passwd")).expect("rm");
        // An absolute link means the image's /etc/shadow-like file, not the host's.
        std::os::unix::fs::symlink("/../../../etc/real-passwd", etc.join("passwd")).expect("ln");
        std::fs::write(etc.join("real-passwd"), "eve:x:7:7::/:/bin/sh\n").expect("write");
        assert_eq!(resolve(img.path(), "eve").expect("eve").uid, 7);
        // The host has root in /etc/passwd; the image's link target does not.
        assert!(matches!(
            resolve(img.path(), "root"),
            Err(UserError::NoUser(_))
        ));
    }
}
