//! Default paths: /etc/moor, /var/lib/moor, /run/moor as root, XDG directories otherwise.
//!
//! The daemon uses these when neither the command line nor daemon.json names a path, and the
//! CLI uses [`Paths::socket`] as its default `--host`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where moor keeps its configuration, state and runtime files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// daemon.json: read at start-up and on SIGHUP.
    pub config: PathBuf,
    /// State root (sled store, container directories, logs): survives reboots.
    pub root: PathBuf,
    /// Run directory (shim files, exit files, socket): gone at reboot, as the processes are.
    pub run_dir: PathBuf,
    /// The API socket the daemon listens on and the CLI connects to.
    pub socket: PathBuf,
}

impl Paths {
    /// The defaults for the user this process runs as (effective uid, environment, home).
    pub fn default_for_current_user() -> Paths {
        let euid = nix::unistd::geteuid().as_raw();
        let home = current_home(euid);
        Paths::for_user(euid, |key| std::env::var_os(key), &home)
    }

    /// The defaults for `euid`, with `env` looking up environment variables and `home` the
    /// user's home directory. Pure, for tests.
    pub fn for_user<F>(euid: u32, env: F, home: &Path) -> Paths
    where
        F: Fn(&str) -> Option<OsString>,
    {
        if euid == 0 {
            let run_dir = PathBuf::from("/run/moor");
            return Paths {
                config: PathBuf::from("/etc/moor/daemon.json"),
                root: PathBuf::from("/var/lib/moor"),
                socket: run_dir.join("moor.sock"),
                run_dir,
            };
        }
        let config_home = xdg_dir(&env, "XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
        let data_home =
            xdg_dir(&env, "XDG_DATA_HOME").unwrap_or_else(|| home.join(".local").join("share"));
        let run_dir = xdg_dir(&env, "XDG_RUNTIME_DIR")
            .map(|dir| dir.join("moor"))
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/moor-{euid}")));
        Paths {
            config: config_home.join("moor").join("daemon.json"),
            root: data_home.join("moor"),
            socket: run_dir.join("moor.sock"),
            run_dir,
        }
    }
}

/// An XDG base directory from the environment: only absolute, non-empty values count (the XDG
/// specification says relative ones are to be ignored).
fn xdg_dir<F>(env: &F, key: &str) -> Option<PathBuf>
where
    F: Fn(&str) -> Option<OsString>,
{
    env(key)
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
}

/// The home directory: `$HOME`, else the password database, else a per-user directory in /tmp.
fn current_home(euid: u32) -> PathBuf {
    if let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        return PathBuf::from(home);
    }
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(euid)) {
        Ok(Some(user)) => user.dir,
        _ => PathBuf::from(format!("/tmp/moor-{euid}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn root_uses_system_directories() {
        let paths = Paths::for_user(
            0,
            env_of(&[("XDG_RUNTIME_DIR", "/run/user/0")]),
            Path::new("/root"),
        );
        assert_eq!(paths.config, Path::new("/etc/moor/daemon.json"));
        assert_eq!(paths.root, Path::new("/var/lib/moor"));
        assert_eq!(paths.run_dir, Path::new("/run/moor"));
        assert_eq!(paths.socket, Path::new("/run/moor/moor.sock"));
    }

    #[test]
    fn user_with_xdg_variables() {
        let env = env_of(&[
            ("XDG_CONFIG_HOME", "/cfg"),
            ("XDG_DATA_HOME", "/data"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]);
        let paths = Paths::for_user(1000, env, Path::new("/home/u"));
        assert_eq!(paths.config, Path::new("/cfg/moor/daemon.json"));
        assert_eq!(paths.root, Path::new("/data/moor"));
        assert_eq!(paths.run_dir, Path::new("/run/user/1000/moor"));
        assert_eq!(paths.socket, Path::new("/run/user/1000/moor/moor.sock"));
    }

    #[test]
    fn user_without_xdg_variables_falls_back() {
        let paths = Paths::for_user(1000, env_of(&[]), Path::new("/home/u"));
        assert_eq!(paths.config, Path::new("/home/u/.config/moor/daemon.json"));
        assert_eq!(paths.root, Path::new("/home/u/.local/share/moor"));
        assert_eq!(paths.run_dir, Path::new("/tmp/moor-1000"));
        assert_eq!(paths.socket, Path::new("/tmp/moor-1000/moor.sock"));
    }

    #[test]
    fn relative_or_empty_xdg_values_are_ignored() {
        let env = env_of(&[("XDG_CONFIG_HOME", "relative"), ("XDG_RUNTIME_DIR", "")]);
        let paths = Paths::for_user(1000, env, Path::new("/home/u"));
        assert_eq!(paths.config, Path::new("/home/u/.config/moor/daemon.json"));
        assert_eq!(paths.run_dir, Path::new("/tmp/moor-1000"));
    }
}
