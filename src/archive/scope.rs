//! Container paths resolved inside the container's root as the container would resolve
//! them: every symlink on the way is followed with the root as `/` (an absolute target
//! starts again at the root, `..` stops at it), so no path ever leaves the root — moby's
//! `FollowSymlinkInScope`. A link to `/etc/../../x` names the container's `/x`, never the
//! host's.
//!
//! The resolution reads the links as they are now; a container that swaps a directory for a
//! symlink between the resolution and the copy could race it, as with moby's.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed on one path before giving up (Linux's own limit is 40 per lookup).
const MAX_LINKS: u32 = 255;

/// The container path `path` (absolute or not: it is taken from the root) resolved under
/// `root`, every component followed: a relative, clean path (empty for the root itself).
pub fn resolve(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut done = PathBuf::new();
    let mut todo: Vec<PathBuf> = components_reversed(path);
    let mut links = 0u32;
    while let Some(part) = todo.pop() {
        if part.as_os_str() == ".." {
            // Never above the root: popping an empty path leaves it empty.
            done.pop();
            continue;
        }
        let candidate = done.join(&part);
        match std::fs::symlink_metadata(root.join(&candidate)) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links in {}",
                        path.display()
                    )));
                }
                let target = std::fs::read_link(root.join(&candidate))?;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                todo.extend(components_reversed(&target));
            }
            // A missing or plain component is kept as it is.
            _ => done = candidate,
        }
    }
    Ok(done)
}

/// A path's normal components and `..`s, last first (a stack to pop), `.` and `/` dropped:
/// [`resolve`] applies each `..` to what it has resolved so far.
fn components_reversed(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(PathBuf::from(p)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    out.reverse();
    out
}

/// A container path as moby's `ResolvePath` takes it apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The path on the host: its directory resolved in scope, its last element kept as
    /// given (so a symlink there is the link itself, unless the path ends in `/` or `/.`).
    pub host: PathBuf,
    /// The container path asked for, absolute and clean (a trailing `/` or `/.` kept).
    pub abs: String,
    /// The name of its last element (`.` for a path ending in `/.`, `/` for the root).
    pub name: String,
}

/// Resolves the container path `path` under `root`: its directory in scope, its last
/// element as given (moby's `ResolvePath`).
pub fn resolve_path(root: &Path, path: &str) -> io::Result<Resolved> {
    let abs = clean_abs(path);
    let (dir, base) = match abs.rfind('/') {
        Some(i) => (&abs[..=i], &abs[i + 1..]),
        None => ("/", abs.as_str()),
    };
    let dir_rel = resolve(root, Path::new(dir))?;
    let host = match base {
        // A trailing `/`: the directory itself, its last link followed.
        "" => root.join(&dir_rel),
        base => root.join(&dir_rel).join(base),
    };
    let name = match Path::new(abs.trim_end_matches('/')).file_name() {
        _ if base == "." => ".".to_string(),
        Some(n) => n.to_string_lossy().into_owned(),
        None => "/".to_string(),
    };
    Ok(Resolved { host, abs, name })
}

/// `/` + `path` cleaned (`.`, `..` and repeated slashes resolved lexically), keeping a
/// trailing `/` or `/.` the client gave (Docker's `PreserveTrailingDotOrSeparator`).
pub fn clean_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if out != "/" {
        if path.ends_with("/.") {
            out.push_str("/.");
        } else if path.ends_with('/') {
            out.push('/');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_are_cleaned_as_docker_does() {
        assert_eq!(clean_abs("etc/passwd"), "/etc/passwd");
        assert_eq!(clean_abs("/a/../../b//c/"), "/b/c/");
        assert_eq!(clean_abs("/a/b/."), "/a/b/.");
        assert_eq!(clean_abs(".."), "/");
        assert_eq!(clean_abs("/"), "/");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::create_dir_all(root.join("data")).expect("mkdir");
        symlink("/etc/../../../data", root.join("escape")).expect("link");
        symlink("../../../../", root.join("etc/up")).expect("link");
        symlink("loop", root.join("loop")).expect("link");
        assert_eq!(
            resolve(&root, Path::new("/escape/x")).unwrap(),
            Path::new("data/x")
        );
        assert_eq!(
            resolve(&root, Path::new("/etc/up/etc")).unwrap(),
            Path::new("etc")
        );
        assert_eq!(resolve(&root, Path::new("/")).unwrap(), Path::new(""));
        assert!(resolve(&root, Path::new("/loop")).is_err());
        // The last element stays a link unless the path ends with a slash.
        let r = resolve_path(&root, "/escape").unwrap();
        assert_eq!(r.host, root.join("escape"));
        assert_eq!(r.name, "escape");
        let r = resolve_path(&root, "/escape/").unwrap();
        assert_eq!(r.host, root.join("data"));
        let r = resolve_path(&root, "/etc/up/etc/.").unwrap();
        assert_eq!((r.host, r.name.as_str()), (root.join("etc/."), "."));
        assert_eq!(resolve_path(&root, "/").unwrap().name, "/");
    }
}
