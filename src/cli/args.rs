//! The command line, parsed with clap's derive API: doc comments become `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::host::paths::Paths;

pub use crate::cli::container_opts::*;

/// moor: a container supervisor whose containers never notice the daemon going away.
#[derive(Debug, Parser)]
#[command(name = "moor", version, propagate_version = true)]
pub struct Cli {
    /// Daemon socket to connect to (unix://PATH).
    #[arg(short = 'H', long, global = true, env = "MOOR_HOST", default_value_t = default_host())]
    pub host: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Whether `-H`/`--host` was on the command line (not the environment or the default):
    /// for `moor daemon` it names the socket to listen on, as dockerd's `-H` does.
    #[arg(skip)]
    pub host_given: bool,
}

impl Cli {
    /// Parses the process's arguments, noting whether `-H` was given on the command line.
    pub fn parse_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.host_given =
            matches.value_source("host") == Some(clap::parser::ValueSource::CommandLine);
        cli
    }
}

/// `unix://` plus the default socket of the current user.
pub fn default_host() -> String {
    format!(
        "unix://{}",
        Paths::default_for_current_user().socket.display()
    )
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the moor daemon in the foreground.
    Daemon(DaemonArgs),
    /// Create and start a container.
    Run(RunArgs),
    /// Create a container without starting it.
    Create(CreateArgs),
    /// Run a command in a running container.
    Exec(crate::cli::commands::exec::ExecArgs),
    /// Attach the local stdin and output to a running container.
    Attach(crate::cli::commands::attach::AttachArgs),
    /// Start one or more stopped containers.
    Start(StartArgs),
    /// Stop one or more running containers.
    Stop(StopArgs),
    /// Send a signal to one or more running containers.
    Kill(KillArgs),
    /// Restart one or more containers.
    Restart(StopArgs),
    /// Pause all processes within one or more containers.
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(NamesArgs),
    /// Update the resources and restart policy of one or more containers.
    Update(crate::cli::commands::update::UpdateArgs),
    /// Remove one or more containers.
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(NamesArgs),
    /// List containers.
    Ps(PsArgs),
    /// Show low-level information on containers.
    Inspect(InspectArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Display a live stream of containers' resource usage.
    Stats(crate::cli::commands::stats::StatsArgs),
    /// Copy files between a container and the local filesystem (CONTAINER:PATH on one
    /// side; `-` for a tar on stdin or stdout).
    Cp(crate::cli::commands::cp::CpArgs),
    /// Export a container's filesystem as a tar archive.
    Export(crate::cli::commands::cp::ExportArgs),
    /// List the changes to files of a container's filesystem (A added, C changed, D deleted).
    Diff(crate::cli::commands::cp::DiffArgs),
    /// List a container's published ports, or the host side of one.
    Port(PortArgs),
    /// Pull an image from a registry.
    Pull(crate::cli::commands::pull::PullArgs),
    /// Push an image to a registry.
    Push(crate::cli::commands::push::PushArgs),
    /// Log in to a registry (credentials kept in config.json, as the docker CLI does).
    Login(crate::cli::commands::login::LoginArgs),
    /// Log out from a registry.
    Logout(crate::cli::commands::login::LogoutArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(crate::cli::commands::completion::CompletionArgs),
    /// Print the man page, or write every command's page into a directory.
    Man(crate::cli::commands::completion::ManArgs),
    /// Create a new image from a container's changes.
    Commit(crate::cli::commands::image_io::CommitArgs),
    /// Show the history of an image.
    History(crate::cli::commands::image_io::HistoryArgs),
    /// Show disk usage of images, containers and volumes.
    #[command(subcommand)]
    System(crate::cli::commands::image_io::SystemCommand),
    /// Manage images: import, ls, rm, inspect, save, load.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage volumes: create, ls, inspect, rm, prune.
    #[command(subcommand)]
    Volume(crate::cli::commands::volume::VolumeCommand),
    /// Manage user networks: create, ls, inspect, rm, prune.
    #[command(subcommand)]
    Network(crate::cli::commands::network::NetworkCommand),
    /// Show the moor version information.
    Version,
    /// Administer the store and orphans; works with the daemon down.
    #[command(subcommand_required = true)]
    Admin(crate::cli::commands::admin::AdminArgs),
}

/// `moor image ...`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a root filesystem tarball (plain, gzip or zstd) as an image.
    Import {
        /// The tarball, or `-` for stdin.
        #[arg(value_name = "FILE|-")]
        file: String,
        /// The image's name, REPOSITORY[:TAG].
        #[arg(value_name = "NAME[:TAG]")]
        name: Option<String>,
        /// A Dockerfile instruction for the image's config (CMD, ENTRYPOINT, ENV, LABEL, USER,
        /// WORKDIR...), as `docker import -c`; repeatable.
        #[arg(short = 'c', long = "change", value_name = "LINE")]
        changes: Vec<String>,
    },
    /// List images.
    #[command(visible_alias = "list")]
    Ls,
    /// Remove images.
    #[command(visible_alias = "remove")]
    Rm {
        /// Images (names or ids).
        #[arg(required = true, value_name = "IMAGE")]
        names: Vec<String>,
    },
    /// Give an image another name, as `docker tag`.
    Tag {
        /// The image (name or id).
        #[arg(value_name = "SOURCE_IMAGE")]
        source: String,
        /// The new name, REPOSITORY[:TAG].
        #[arg(value_name = "TARGET_IMAGE[:TAG]")]
        target: String,
    },
    /// Show images in JSON.
    Inspect {
        /// Images (names or ids).
        #[arg(required = true, value_name = "IMAGE")]
        names: Vec<String>,
    },
    /// Save images to a tar archive (docker-archive), to a file or stdout.
    Save {
        /// Write to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<String>,
        /// Images (names or ids).
        #[arg(required = true, value_name = "IMAGE")]
        names: Vec<String>,
    },
    /// Load images from a tar archive (docker-archive or OCI layout), from a file or stdin.
    Load {
        /// Read from this file instead of stdin.
        #[arg(short, long, value_name = "FILE")]
        input: Option<String>,
        /// Suppress the load output.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove the untagged images no container uses (every unused one with --all), and the
    /// layers no image lists.
    Prune {
        /// Tagged images too.
        #[arg(short, long)]
        all: bool,
    },
}

impl Command {
    /// The exit code for an error the command itself could not get past: 125 for `run` and
    /// `create` (docker's "the daemon failed" code, apart from the container's own codes),
    /// 1 otherwise.
    pub fn failure_code(&self) -> i32 {
        match self {
            Command::Run(_) | Command::Create(_) => 125,
            _ => 1,
        }
    }
}

/// The runtimes the daemon can default to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeName {
    /// A plain process, no isolation (development, tests, non-root).
    Process,
    /// runc on an OCI bundle.
    Runc,
}

/// `moor daemon` options; each overrides daemon.json, which overrides the defaults.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// State root (sled store, container directories, logs).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Run directory (shim files, exit files, socket).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// API socket path.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// daemon.json path.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Default runtime for new containers.
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeName>,
    /// Log level or filter (error, warn, info, debug, trace); RUST_LOG wins over it, and it
    /// over daemon.json.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Keep containers running while the daemon is down (daemon.json's `live-restore`; the
    /// file must then not set it, as dockerd refuses a directive given both ways).
    #[arg(long)]
    pub live_restore: bool,
    /// Check daemon.json (--config) and the options, print the verdict and exit: 0 valid, 1 not.
    #[arg(long)]
    pub validate: bool,
    /// What `moor admin upgrade` asks of a new binary: check daemon.json and the options as
    /// a start would, print this build's version, store schema and shim protocols as JSON.
    #[arg(long, conflicts_with = "validate")]
    pub check_upgrade: bool,
}

impl DaemonArgs {
    /// The daemon's options from these arguments.
    pub fn to_options(&self) -> crate::config::options::Options {
        crate::config::options::Options {
            root: self.root.clone(),
            run_dir: self.run_dir.clone(),
            socket: self.socket.clone(),
            config: self.config.clone(),
            runtime: self.runtime.map(|runtime| match runtime {
                RuntimeName::Process => "process".to_string(),
                RuntimeName::Runc => "runc".to_string(),
            }),
            live_restore: self.live_restore,
        }
    }
}

/// `moor run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// The key sequence that detaches from a terminal (Docker's spec; default ctrl-p,ctrl-q).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// The container.
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// `moor create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The container.
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// `moor start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Follow the container's output and exit with its code.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Containers (names or ids).
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// `moor stop` and `moor restart`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        value_name = "SECONDS"
    )]
    pub timeout: Option<i64>,
    /// Containers (names or ids).
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// `moor kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Containers (names or ids).
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// `moor rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container before removing it.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Containers (names or ids).
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// A command taking only container names.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Containers (names or ids).
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// `moor ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output (KEY=VALUE), e.g. name=web, status=exited, label=k=v.
    #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

/// `moor inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output with a Go template, e.g. '{{.State.Pid}}'.
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Containers (names or ids).
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

/// `moor logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs, or `all`.
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<String>,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (RFC 3339 or unix) or a relative time (e.g. 42m).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show logs before a timestamp (RFC 3339 or unix) or a relative time (e.g. 42m).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// The container (name or id).
    #[arg(value_name = "CONTAINER")]
    pub name: String,
}

/// `moor rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container's current name or id.
    #[arg(value_name = "CONTAINER")]
    pub old: String,
    /// Its new name.
    #[arg(value_name = "NEW_NAME")]
    pub new: String,
}

/// `moor port CONTAINER [PRIVATE_PORT[/PROTO]]`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container's name or id.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Only this container port (`80`, `80/udp`).
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["moor", "--host", "unix:///tmp/x.sock"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("arguments parse")
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(args).command {
            Command::Run(run) => run,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("always").unwrap().name, "always");
        assert_eq!(parse_restart("no").unwrap().maximum_retry_count, 0);
        let on_failure = parse_restart("on-failure:5").unwrap();
        assert_eq!(
            (on_failure.name.as_str(), on_failure.maximum_retry_count),
            ("on-failure", 5)
        );
        assert_eq!(parse_restart("on-failure").unwrap().maximum_retry_count, 0);
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("on-failure:x").is_err());
        assert!(parse_restart("sometimes").is_err());
    }

    #[test]
    fn trailing_command_keeps_its_hyphens() {
        let run = run_args(&["run", "--rm", "host", "sh", "-c", "echo -n x"]);
        assert!(run.opts.rm);
        assert!(!run.detach);
        assert_eq!(run.opts.image, "host");
        assert_eq!(run.opts.cmd, ["sh", "-c", "echo -n x"]);
    }

    #[test]
    fn flags_after_the_image_belong_to_the_command() {
        let run = run_args(&["run", "-d", "host", "ls", "-d", "--rm"]);
        assert!(run.detach);
        assert!(!run.opts.rm);
        assert_eq!(run.opts.cmd, ["ls", "-d", "--rm"]);
    }

    #[test]
    fn env_without_value_comes_from_the_environment() {
        let lookup = |key: &str| (key == "HOME").then(|| "/root".to_string());
        assert_eq!(resolve_env("A=b=c", lookup), "A=b=c");
        assert_eq!(resolve_env("HOME", lookup), "HOME=/root");
        assert_eq!(resolve_env("UNSET", lookup), "UNSET");
    }

    #[test]
    fn env_file_rules() {
        let lookup = |key: &str| (key == "FROM_ENV").then(|| "v".to_string());
        let text = "# comment\n\nA=1\n  B=two words\nFROM_ENV\nMISSING\n";
        assert_eq!(
            parse_env_file(text, lookup),
            ["A=1", "B=two words", "FROM_ENV=v"]
        );
    }

    #[test]
    fn create_request_from_flags() {
        let run = run_args(&[
            "run",
            "--name",
            "web",
            "-e",
            "A=1",
            "--label",
            "k=v",
            "--restart",
            "on-failure:2",
            "--log-opt",
            "max-size=1m",
            "--stop-timeout",
            "3",
            "-w",
            "/tmp",
            "host",
            "sleep",
            "9",
        ]);
        let request = run.opts.to_request().unwrap();
        assert_eq!(run.opts.name.as_deref(), Some("web"));
        assert_eq!(request.env.unwrap(), ["A=1"]);
        assert_eq!(request.labels.unwrap()["k"], "v");
        assert_eq!(request.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(request.stop_timeout, Some(3));
        let host = request.host_config.unwrap();
        let restart = host.restart_policy.unwrap();
        assert_eq!(
            (restart.name.as_str(), restart.maximum_retry_count),
            ("on-failure", 2)
        );
        let log = host.log_config.unwrap();
        assert_eq!(log.kind, "json-file");
        assert_eq!(log.config["max-size"], "1m");
        assert_eq!(request.cmd.unwrap(), ["sleep", "9"]);
    }

    #[test]
    fn rm_conflicts_with_a_restart_policy() {
        let run = run_args(&["run", "--rm", "--restart", "always", "host", "true"]);
        assert!(run.opts.to_request().is_err());
        let run = run_args(&["run", "--rm", "--restart", "no", "host", "true"]);
        assert!(
            run.opts
                .to_request()
                .unwrap()
                .host_config
                .unwrap()
                .auto_remove
        );
    }

    #[test]
    fn daemon_options() {
        let cli = parse(&["daemon", "--root", "/r", "--runtime", "process"]);
        let Command::Daemon(daemon) = cli.command else {
            panic!("not daemon");
        };
        let opts = daemon.to_options();
        assert_eq!(opts.root, Some(PathBuf::from("/r")));
        assert_eq!(opts.runtime.as_deref(), Some("process"));
        assert!(opts.socket.is_none());
    }

    #[test]
    fn every_subcommand_has_help() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no help", sub.get_name());
        }
    }
}
