//! Every runc command line moor runs, built in one place: global options ([`RuncArgs`]:
//! the binary, `--root`, `--log`, `--log-format`, `--systemd-cgroup`, daemon.json's
//! `runtimeArgs`) and one method per subcommand, with typed option builders for those that
//! take options (the shape of containerd/rust-extensions `crates/runc/src/options.rs`).
//!
//! Pure and std-only: the shim (std, libc, nix, serde_json) builds its `runc run` here, and
//! the daemon's async client (`super::client`) runs what this module builds. Nothing here
//! runs a process; a [`RuncCommand`] is argv as data, turned into a `std::process::Command`
//! by its caller. [`runc_message`] reads runc's logrus-framed stderr back into text.

mod update;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

pub use update::UpdateOpts;

/// runc's `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `text`, runc's default.
    Text,
    /// `json`: one logrus record per line.
    Json,
}

impl LogFormat {
    fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The global options of every runc invocation of one runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuncArgs {
    /// The runc binary (daemon.json `runtimes` → `runc` → `path`, else found on PATH).
    pub binary: PathBuf,
    /// `--root`: runc's state directory (moor's own, under the run directory).
    pub root: PathBuf,
    /// `--log`: where runc writes its own diagnostics (runc's default: stderr).
    pub log: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--systemd-cgroup`: cgroups through systemd instead of cgroupfs.
    pub systemd_cgroup: bool,
    /// daemon.json's `runtimeArgs`: extra global options, after moor's own, as Docker does.
    pub runtime_args: Vec<String>,
}

/// One runc command line: the program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuncCommand {
    /// The runc binary.
    pub program: PathBuf,
    /// Global options, the subcommand, its options and arguments.
    pub args: Vec<OsString>,
    /// The subcommand (`run`, `pause`...), for messages.
    pub subcommand: &'static str,
}

impl RuncCommand {
    /// A `std::process::Command` with this argv (stdio left to the caller). The daemon's
    /// own runc calls go through `client::daemon_command`, which restores the open-file
    /// limit the daemon was started with; the shim's inherits it from the shim.
    pub fn to_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        cmd
    }

    /// The arguments as text (lossy), for tests and messages.
    pub fn argv(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }
}

/// Options of `runc run`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOpts {
    /// `--detach`: runc returns once the container's init runs.
    pub detach: bool,
    /// `--pid-file`: where runc writes the init's host pid.
    pub pid_file: Option<PathBuf>,
    /// `--no-pivot`: chroot instead of pivot_root (a ramdisk root).
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// `--console-socket`: where runc sends the pty master of a terminal container.
    pub console_socket: Option<PathBuf>,
}

impl RunOpts {
    /// Sets `--console-socket`.
    pub fn console_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.console_socket = Some(path.into());
        self
    }
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `--detach`.
    pub fn detach(mut self, on: bool) -> Self {
        self.detach = on;
        self
    }
    /// Sets `--pid-file`.
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }
    /// Sets `--no-pivot`.
    pub fn no_pivot(mut self, on: bool) -> Self {
        self.no_pivot = on;
        self
    }
    /// Sets `--no-new-keyring`.
    pub fn no_new_keyring(mut self, on: bool) -> Self {
        self.no_new_keyring = on;
        self
    }

    fn push(&self, args: &mut Vec<OsString>) {
        flag(args, "--detach", self.detach);
        path_opt(args, "--pid-file", self.pid_file.as_deref());
        path_opt(args, "--console-socket", self.console_socket.as_deref());
        flag(args, "--no-pivot", self.no_pivot);
        flag(args, "--no-new-keyring", self.no_new_keyring);
    }
}

/// Options of `runc create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOpts {
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--console-socket`: where runc sends the pty master of a terminal container.
    pub console_socket: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
}

impl CreateOpts {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `--pid-file`.
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }
    /// Sets `--console-socket`.
    pub fn console_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.console_socket = Some(path.into());
        self
    }
    /// Sets `--no-pivot`.
    pub fn no_pivot(mut self, on: bool) -> Self {
        self.no_pivot = on;
        self
    }
    /// Sets `--no-new-keyring`.
    pub fn no_new_keyring(mut self, on: bool) -> Self {
        self.no_new_keyring = on;
        self
    }

    fn push(&self, args: &mut Vec<OsString>) {
        path_opt(args, "--pid-file", self.pid_file.as_deref());
        path_opt(args, "--console-socket", self.console_socket.as_deref());
        flag(args, "--no-pivot", self.no_pivot);
        flag(args, "--no-new-keyring", self.no_new_keyring);
    }
}

/// Options of `runc exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOpts {
    /// `--pid-file`: where runc writes the exec'd process's host pid.
    pub pid_file: Option<PathBuf>,
    /// `--env KEY=VALUE`, added to the container's (later entries win).
    pub env: Vec<String>,
    /// `--cwd`: the working directory; None = the container's.
    pub cwd: Option<String>,
    /// `--user UID:GID`; None = the container's.
    pub user: Option<(u32, u32)>,
    /// `--additional-gids`, one per group.
    pub additional_gids: Vec<u32>,
    /// `--tty`.
    pub tty: bool,
    /// `--detach`.
    pub detach: bool,
}

impl ExecOpts {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `--pid-file`.
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }
    /// Adds `--env` entries.
    pub fn env(mut self, vars: impl IntoIterator<Item = String>) -> Self {
        self.env.extend(vars);
        self
    }
    /// Sets `--cwd` (an empty directory means the container's).
    pub fn cwd(mut self, dir: &str) -> Self {
        self.cwd = (!dir.is_empty()).then(|| dir.to_string());
        self
    }
    /// Sets `--user UID:GID` and `--additional-gids`.
    pub fn user(mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> Self {
        self.user = Some((uid, gid));
        self.additional_gids = additional_gids.to_vec();
        self
    }
    /// Sets `--tty`.
    pub fn tty(mut self, on: bool) -> Self {
        self.tty = on;
        self
    }
    /// Sets `--detach`.
    pub fn detach(mut self, on: bool) -> Self {
        self.detach = on;
        self
    }

    fn push(&self, args: &mut Vec<OsString>) {
        path_opt(args, "--pid-file", self.pid_file.as_deref());
        for e in &self.env {
            args.extend(["--env".into(), e.into()]);
        }
        if let Some(dir) = &self.cwd {
            args.extend(["--cwd".into(), dir.into()]);
        }
        if let Some((uid, gid)) = self.user {
            args.extend(["--user".into(), format!("{uid}:{gid}").into()]);
        }
        for g in &self.additional_gids {
            args.extend(["--additional-gids".into(), g.to_string().into()]);
        }
        flag(args, "--tty", self.tty);
        flag(args, "--detach", self.detach);
    }
}

/// Options of `runc kill`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KillOpts {
    /// `--all`: every process of the container, not only its init.
    pub all: bool,
}

/// Options of `runc delete`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOpts {
    /// `--force`: kill a container that still runs (SIGKILL), then delete it.
    pub force: bool,
}

fn flag(args: &mut Vec<OsString>, name: &str, on: bool) {
    if on {
        args.push(name.into());
    }
}

fn path_opt(args: &mut Vec<OsString>, name: &str, value: Option<&Path>) {
    if let Some(v) = value {
        args.extend([name.into(), v.as_os_str().to_owned()]);
    }
}

impl RuncArgs {
    /// The binary and `--root`, no other global option.
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        RuncArgs {
            binary: binary.into(),
            root: root.into(),
            log: None,
            log_format: None,
            systemd_cgroup: false,
            runtime_args: Vec::new(),
        }
    }
    /// Sets `--log`.
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }
    /// Sets `--log-format`.
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = Some(format);
        self
    }
    /// Sets `--systemd-cgroup`.
    pub fn systemd_cgroup(mut self, on: bool) -> Self {
        self.systemd_cgroup = on;
        self
    }
    /// Sets the extra global options (daemon.json `runtimeArgs`).
    pub fn runtime_args(mut self, args: Vec<String>) -> Self {
        self.runtime_args = args;
        self
    }

    /// The global options, then `subcommand`.
    fn command(&self, subcommand: &'static str) -> RuncCommand {
        let mut args: Vec<OsString> = vec!["--root".into(), self.root.clone().into()];
        path_opt(&mut args, "--log", self.log.as_deref());
        if let Some(f) = self.log_format {
            args.extend(["--log-format".into(), f.as_str().into()]);
        }
        flag(&mut args, "--systemd-cgroup", self.systemd_cgroup);
        args.extend(self.runtime_args.iter().map(OsString::from));
        args.push(subcommand.into());
        RuncCommand {
            program: self.binary.clone(),
            args,
            subcommand,
        }
    }

    /// `runc run [opts] --bundle BUNDLE ID`.
    pub fn run(&self, id: &str, bundle: &Path, opts: &RunOpts) -> RuncCommand {
        let mut c = self.command("run");
        opts.push(&mut c.args);
        c.args.extend(["--bundle".into(), bundle.into(), id.into()]);
        c
    }

    /// `runc create [opts] --bundle BUNDLE ID`.
    pub fn create(&self, id: &str, bundle: &Path, opts: &CreateOpts) -> RuncCommand {
        let mut c = self.command("create");
        opts.push(&mut c.args);
        c.args.extend(["--bundle".into(), bundle.into(), id.into()]);
        c
    }

    /// A subcommand whose only argument is the container id.
    fn on(&self, subcommand: &'static str, id: &str) -> RuncCommand {
        let mut c = self.command(subcommand);
        c.args.push(id.into());
        c
    }

    /// `runc start ID`.
    pub fn start(&self, id: &str) -> RuncCommand {
        self.on("start", id)
    }

    /// `runc state ID` (JSON on stdout).
    pub fn state(&self, id: &str) -> RuncCommand {
        self.on("state", id)
    }

    /// `runc pause ID`.
    pub fn pause(&self, id: &str) -> RuncCommand {
        self.on("pause", id)
    }

    /// `runc resume ID`.
    pub fn resume(&self, id: &str) -> RuncCommand {
        self.on("resume", id)
    }

    /// `runc ps --format json ID` (the host pids, as a JSON array).
    pub fn ps(&self, id: &str) -> RuncCommand {
        let mut c = self.command("ps");
        c.args.extend(["--format".into(), "json".into(), id.into()]);
        c
    }

    /// `runc kill [--all] ID SIGNAL`.
    pub fn kill(&self, id: &str, signal: i32, opts: KillOpts) -> RuncCommand {
        let mut c = self.command("kill");
        flag(&mut c.args, "--all", opts.all);
        c.args.extend([id.into(), signal.to_string().into()]);
        c
    }

    /// `runc delete [--force] ID`.
    pub fn delete(&self, id: &str, opts: DeleteOpts) -> RuncCommand {
        let mut c = self.command("delete");
        flag(&mut c.args, "--force", opts.force);
        c.args.push(id.into());
        c
    }

    /// `runc exec [opts] ID ARGV...`.
    pub fn exec(&self, id: &str, opts: &ExecOpts, argv: &[String]) -> RuncCommand {
        let mut c = self.command("exec");
        opts.push(&mut c.args);
        c.args.push(id.into());
        c.args.extend(argv.iter().map(|a| OsStr::new(a).to_owned()));
        c
    }
}

/// runc's stderr without its logrus framing: the `msg="..."` of each line, unescaped, or
/// the line as it is; lines joined with `; `.
pub fn runc_message(stderr: &str) -> String {
    let lines: Vec<String> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| match line.split_once("msg=\"") {
            Some((_, msg)) => {
                let msg = msg.trim_end().strip_suffix('"').unwrap_or(msg);
                msg.replace("\\\"", "\"").replace("\\\\", "\\")
            }
            None => line.trim().to_string(),
        })
        .collect();
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runc() -> RuncArgs {
        RuncArgs::new("/usr/sbin/runc", "/run/m/runc")
    }

    fn argv(c: &RuncCommand) -> String {
        c.argv().join(" ")
    }

    #[test]
    fn global_options_come_before_the_subcommand() {
        let all = runc()
            .log("/run/m/runc.log")
            .log_format(LogFormat::Json)
            .systemd_cgroup(true)
            .runtime_args(vec!["--debug".into(), "--criu=/x".into()]);
        let c = all.state("abc");
        assert_eq!(c.program, PathBuf::from("/usr/sbin/runc"));
        assert_eq!(c.subcommand, "state");
        assert_eq!(
            argv(&c),
            "--root /run/m/runc --log /run/m/runc.log --log-format json --systemd-cgroup \
             --debug --criu=/x state abc"
        );
        let text = runc().log_format(LogFormat::Text).pause("abc");
        assert_eq!(
            argv(&text),
            "--root /run/m/runc --log-format text pause abc"
        );
        let std = c.to_std();
        assert_eq!(std.get_program(), "/usr/sbin/runc");
        assert_eq!(std.get_args().count(), c.args.len());
    }

    #[test]
    fn run_and_create() {
        let bundle = Path::new("/run/m/b");
        let run = runc().run("abc", bundle, &RunOpts::new());
        assert_eq!(argv(&run), "--root /run/m/runc run --bundle /run/m/b abc");
        let opts = RunOpts::new()
            .detach(true)
            .pid_file("/run/m/pid")
            .no_pivot(true)
            .no_new_keyring(true);
        assert_eq!(
            argv(&runc().run("abc", bundle, &opts)),
            "--root /run/m/runc run --detach --pid-file /run/m/pid --no-pivot \
             --no-new-keyring --bundle /run/m/b abc"
        );
        let opts = CreateOpts::new()
            .pid_file("/p")
            .console_socket("/s")
            .no_pivot(true)
            .no_new_keyring(true);
        assert_eq!(
            argv(&runc().create("abc", bundle, &opts)),
            "--root /run/m/runc create --pid-file /p --console-socket /s --no-pivot \
             --no-new-keyring --bundle /run/m/b abc"
        );
        assert_eq!(
            argv(&runc().create("abc", bundle, &CreateOpts::new())),
            "--root /run/m/runc create --bundle /run/m/b abc"
        );
    }

    #[test]
    fn subcommands_on_one_container() {
        let r = runc();
        assert_eq!(argv(&r.start("abc")), "--root /run/m/runc start abc");
        assert_eq!(argv(&r.state("abc")), "--root /run/m/runc state abc");
        assert_eq!(argv(&r.pause("abc")), "--root /run/m/runc pause abc");
        assert_eq!(argv(&r.resume("abc")), "--root /run/m/runc resume abc");
        assert_eq!(
            argv(&r.ps("abc")),
            "--root /run/m/runc ps --format json abc"
        );
        assert_eq!(
            argv(&r.kill("abc", 9, KillOpts::default())),
            "--root /run/m/runc kill abc 9"
        );
        assert_eq!(
            argv(&r.kill("abc", 15, KillOpts { all: true })),
            "--root /run/m/runc kill --all abc 15"
        );
        assert_eq!(
            argv(&r.delete("abc", DeleteOpts::default())),
            "--root /run/m/runc delete abc"
        );
        let forced = r.delete("abc", DeleteOpts { force: true });
        assert_eq!(argv(&forced), "--root /run/m/runc delete --force abc");
        assert_eq!(forced.subcommand, "delete");
    }

    #[test]
    fn exec_options_then_the_command() {
        let cmd = vec!["sh".to_string(), "-c".into(), "echo $A".into()];
        assert_eq!(
            argv(&runc().exec("abc", &ExecOpts::new(), &cmd)),
            "--root /run/m/runc exec abc sh -c echo $A"
        );
        let opts = ExecOpts::new()
            .pid_file("/run/m/exec.pid")
            .env(["A=1".to_string(), "B=2".into()])
            .cwd("/tmp")
            .user(1000, 100, &[10, 20])
            .tty(true)
            .detach(true);
        let c = runc().exec("abc", &opts, &cmd);
        assert_eq!(
            argv(&c),
            "--root /run/m/runc exec --pid-file /run/m/exec.pid --env A=1 --env B=2 --cwd /tmp \
             --user 1000:100 --additional-gids 10 --additional-gids 20 --tty --detach abc \
             sh -c echo $A"
        );
        // The command's words stay separate arguments: nothing is split or quoted again.
        assert_eq!(c.args.last().map(|a| a.to_str()), Some(Some("echo $A")));
        assert_eq!(ExecOpts::new().cwd("").cwd, None);
    }
}
