//! The daemon: the Supervisor actor, one Container actor per container, the reconciler.
//!
//! Start-up order: take the root's lock, open the store (moving a broken one aside and
//! rebuilding it), reconcile, then serve the API. Shutdown: with live-restore the
//! daemon just exits; without, every container is stopped and its exit recorded first.

pub mod cleanup;
pub mod container;
pub mod durable;
pub mod error;
pub mod events;
pub mod exec;
pub mod fault;
pub mod image;
// Two unsafe blocks: mallopt and, in its test, malloc_info.
#[allow(unsafe_code)]
pub mod memory;
pub mod messages;
pub mod notify;
pub mod reconciler;
pub mod reload;
pub mod settings;
pub mod supervisor;
// One unsafe block: the listening socket inherited across the upgrade's exec.
#[cfg(test)]
mod tests;
#[allow(unsafe_code)]
pub mod upgrade;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use moor_state::store::{Store, StoreError};
use moor_state::ContainerSpec;
use nix::fcntl::Flock;
use thiserror::Error;
use tracing::{error, info, warn};

use crate::config::log_opts::{LogOptError, LogOpts};
use crate::config::options::{config_path, resolve, Options, OptionsError};
use crate::host::layout::{self, Layout};
use messages::{ShutDown, Summarize};
use supervisor::Supervisor;

/// Why the daemon could not run.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// daemon.json is invalid or the paths cannot be resolved.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// A directory or file of the daemon could not be prepared.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another daemon holds the root.
    #[error("another moor daemon (pid {pid}) is using {root}; stop it first")]
    Locked {
        /// Its pid, as written in the lock file.
        pid: String,
        /// The root.
        root: PathBuf,
    },
    /// The default runtime asked for cannot be had.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::interface::DefaultRuntimeError),
    /// daemon.json's `bridge` or `bip` is malformed (checked when it was loaded too).
    #[error("daemon.json: {0}")]
    Bridge(String),
    /// The default bridge network cannot be made or checked.
    #[error("the default bridge network")]
    Network(#[from] crate::network::NetworkError),
    /// The store cannot be opened or rebuilt.
    #[error("open the store")]
    Store(#[from] StoreError),
    /// The re-execution of an upgrade failed after its check passed.
    #[error("upgrade")]
    Upgrade(#[source] upgrade::UpgradeError),
}

/// What every actor shares: the store, the layout and the settings.
pub struct Shared {
    /// The sled store (the index of containers).
    pub store: Store,
    /// The store's flushes, off the actors' thread (group commit).
    pub durable: durable::Durability,
    /// Where things are.
    pub layout: Layout,
    /// daemon.json as loaded at start, with its reloadable part swapped on SIGHUP.
    pub config: reload::ConfigCell,
    /// The runtime of each kind (runc's refuses to run when the daemon has no runc), and
    /// the kind of containers that do not name one.
    pub runtimes: crate::runtime::Runtimes,
    /// Docker events for `GET /events`.
    pub events: events::EventBus,
    /// `docker exec` instances (in memory only, as Docker's).
    pub execs: exec::ExecRegistry,
    /// What this daemon was started as (for `moor admin upgrade`).
    pub invocation: upgrade::Invocation,
    /// From the upgrade route to the serve loop.
    pub upgrade: upgrade::Trigger,
    /// The default bridge network (None: daemon.json's `bridge` is `"none"`).
    pub network: Option<moor_state::network::NetworkRecord>,
    /// One copy of each distinct settings the records hold ([`settings::SettingsPool`]).
    pub settings_pool: settings::SettingsPool,
}

impl Shared {
    /// The log options in force for a container: its own over the daemon's `log-opts`, key
    /// by key, checked ([`LogOpts::parse`]). A record an older build accepted with options now
    /// refused gets the defaults (no rotation), with a warning.
    pub fn log_opts(&self, spec: &ContainerSpec) -> LogOpts {
        self.check_log_opts(spec).unwrap_or_else(|e| {
            warn!(error = %e, "log options refused: the log is not rotated");
            LogOpts::default()
        })
    }

    /// The container's own log options over the daemon's, checked: what a create refuses.
    pub fn check_log_opts(&self, spec: &ContainerSpec) -> Result<LogOpts, LogOptError> {
        let mut merged = self.config.get().log_opts.clone();
        merged.extend(spec.log_opts.clone());
        LogOpts::parse(&merged)
    }

    /// The container's `max-size` log option in bytes (its own, else the daemon's).
    pub fn log_max_size(&self, spec: &ContainerSpec) -> Option<u64> {
        self.log_opts(spec).max_size
    }

    /// The container's `max-file` log option (its own, else the daemon's; default 1).
    pub fn log_max_file(&self, spec: &ContainerSpec) -> u32 {
        self.log_opts(spec).max_file
    }
}

#[cfg(test)]
impl Shared {
    /// A daemon's shared state on a temporary directory `dir` (store, root and run
    /// directory under it), every container kind served by `runtime`: for in-process tests
    /// of the actors and the API.
    pub fn for_tests(dir: &std::path::Path, runtime: Arc<dyn crate::runtime::Runtime>) -> Shared {
        let layout = Layout {
            root: dir.join("root"),
            run_dir: dir.join("run"),
            socket: dir.join("run").join("moor.sock"),
            shim_bin: dir.join("no-shim"),
        };
        prepare_dirs(&layout).expect("prepare the test layout");
        let store = Store::open(&layout.store()).expect("open the test store");
        let kind = Default::default();
        Shared {
            durable: durable::Durability::start(store.flusher()),
            store,
            config: reload::ConfigCell::new(
                crate::config::DaemonConfig::default(),
                dir.join("daemon.json"),
            ),
            runtimes: crate::runtime::Runtimes::new(runtime.clone(), runtime, kind),
            layout,
            events: events::EventBus::default(),
            execs: exec::ExecRegistry::default(),
            invocation: upgrade::Invocation::current(),
            upgrade: upgrade::Trigger::default(),
            network: None,
            settings_pool: settings::SettingsPool::default(),
        }
    }
}

fn io_err(
    what: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = path.to_path_buf();
    move |source| DaemonError::Io { what, path, source }
}

/// Takes the root's lock file so a second daemon fails at once, and writes our pid in it.
fn lock_root(layout: &Layout) -> Result<Flock<File>, DaemonError> {
    let path = layout.lock_file();
    match layout.try_lock().map_err(io_err("lock", &path))? {
        layout::RootLock::Taken(mut lock) => {
            lock.set_len(0).map_err(io_err("write", &path))?;
            write!(lock, "{}", std::process::id()).map_err(io_err("write", &path))?;
            Ok(lock)
        }
        layout::RootLock::HeldBy(pid) => Err(DaemonError::Locked {
            pid,
            root: layout.root.clone(),
        }),
    }
}

fn open_store(layout: &Layout) -> Result<Store, DaemonError> {
    let (store, moved) = Store::open_or_move_aside(&layout.store())?;
    if let Some(aside) = &moved {
        error!(moved_to = %aside.display(), "the store could not be opened: moved aside, rebuilding from spec files");
        let n = reconciler::rebuild(&store, layout);
        warn!(restored = n, "store rebuilt from spec files");
    }
    crate::image::meta::on_open(&store, &layout.root, moved.is_some());
    supervisor::volumes::on_open(&store, &layout.root, moved.is_some());
    Ok(store)
}

fn prepare_dirs(layout: &Layout) -> Result<(), DaemonError> {
    let fixed = layout.prepare().map_err(layout_err)?;
    if fixed > 0 {
        warn!(
            fixed,
            "directories more open than moor keeps them were made private"
        );
    }
    Ok(())
}

fn layout_err(e: layout::LayoutError) -> DaemonError {
    let layout::LayoutError::Io { what, path, source } = e;
    DaemonError::Io { what, path, source }
}

/// Binds the API socket, replacing a stale one, mode 0660 and group `moor` when it exists.
fn bind_socket(layout: &Layout) -> Result<std::os::unix::net::UnixListener, DaemonError> {
    let path = layout.socket.as_path();
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_err("remove stale socket", path)(e))
        }
        _ => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(io_err("bind", path))?;
    layout.secure_socket().map_err(layout_err)?;
    Ok(listener)
}

/// Runs the daemon until SIGTERM/SIGINT, or until `moor admin upgrade` replaces it.
pub fn run(opts: Options) -> Result<(), DaemonError> {
    // First, before any other thread reads the environment: a socket handed over by the
    // image this process was before an upgrade.
    let inherited = upgrade::take_inherited();
    // Before the daemon's first thread (see `memory`).
    let capped = memory::limit_arenas();
    let invocation = upgrade::Invocation::current();
    raise_open_file_limit();
    let (layout, config) = resolve(&opts)?;
    crate::logging::apply_config(&config);
    let asked = opts
        .runtime
        .clone()
        .or_else(|| config.default_runtime.clone());
    let is_root = nix::unistd::geteuid().is_root();
    let (default_runtime, runc) = crate::runtime::interface::choose_default(
        asked.as_deref(),
        &config,
        &layout.run_dir,
        is_root,
    )?;
    prepare_dirs(&layout)?;
    let _lock = lock_root(&layout)?;
    let store = open_store(&layout)?;
    let network = match config.bridge_settings().map_err(DaemonError::Bridge)? {
        Some(settings) if is_root => Some(crate::network::default_network(&store, &settings)?),
        Some(_) => {
            info!("not root: no bridge network (containers default to the host's network or none)");
            None
        }
        None => None,
    };
    if is_root {
        crate::network::user::ensure_all(
            &store
                .networks()?
                .list()
                .map_err(crate::network::NetworkError::from)?,
        );
    }
    let runtimes = crate::runtime::interface::daemon_runtimes(&layout, runc, default_runtime);
    let shared = Arc::new(Shared {
        durable: durable::Durability::start(store.flusher()),
        store,
        layout,
        config: reload::ConfigCell::new(config, config_path(&opts))
            .with_live_restore_flag(opts.live_restore),
        runtimes,
        events: events::EventBus::default(),
        execs: exec::ExecRegistry::default(),
        invocation,
        upgrade: upgrade::Trigger::default(),
        network,
        settings_pool: settings::SettingsPool::default(),
    });
    info!(root = %shared.layout.root.display(), run_dir = %shared.layout.run_dir.display(), live_restore = shared.config.get().live_restore, malloc_arena_max = ?capped.then_some(memory::ARENAS), "starting");
    let recovered = reconciler::reconcile(&shared);
    restore_nat(&shared, &recovered.records);
    let _failpoints = fault::setup();
    // A test's slow disk holds every flush of the store, wherever it runs.
    #[cfg(feature = "failpoints")]
    moor_state::store::before_every_flush(|| crate::host::fault::delay("store-flush"));
    let signals = signal_channel()?;
    let system = System::new();
    let result = system.block_on(serve(shared.clone(), recovered, signals, inherited));
    // What the actors committed last (an exit seen during the shutdown) is durable too.
    shared.durable.flush_now();
    if let Ok(Some((binary, listener))) = &result {
        info!(binary = %binary.display(), "re-executing for the upgrade");
        let args = &shared.invocation.args;
        let e = upgrade::exec(binary, args, std::os::fd::AsRawFd::as_raw_fd(listener));
        error!(error = %crate::api::error::chain(&e), "the upgrade's exec failed: stopping");
        return Err(DaemonError::Upgrade(e));
    }
    let _ = std::fs::remove_file(&shared.layout.socket);
    let left = cleanup::wait_pending(CLEANUP_WAIT);
    if left > 0 {
        warn!(
            left,
            "clean-ups of removed containers still running: finished at the next start"
        );
    }
    info!("stopped");
    result.map(|_| ())
}

/// A descriptor per watched container: the soft open-file limit goes up to the hard one
/// (the processes the daemon starts get the one it was started with: `host::limits`).
fn raise_open_file_limit() {
    match crate::host::limits::raise_nofile() {
        Ok(r) if r.after > r.before => {
            info!(before = r.before, after = r.after, "open-file limit raised")
        }
        Ok(r) => info!(limit = r.after, "open-file limit already at the hard limit"),
        Err(e) => warn!(error = %e, "open-file limit not raised"),
    }
}

/// moor's NAT table as the store says it should be: the masquerade of the bridge networks,
/// the isolation of every bridge (internal ones included) from the others and the published
/// ports of every running container, in one transaction (what a daemon that was away finds
/// missing is put back; established connections keep going). Without a bridge nothing is
/// touched. A failure is logged: the containers run on, and a start that publishes ports
/// fails with the reason.
fn restore_nat(shared: &Shared, recovered: &[moor_state::ContainerRecord]) {
    let listed = shared.store.networks().map_err(|e| e.to_string());
    let user = listed.and_then(|tree| tree.list().map_err(|e| e.to_string()));
    let user = user.unwrap_or_else(|e| {
        warn!(error = %e, "the user networks cannot be read: their NAT is not restored");
        Vec::new()
    });
    let bridges: Vec<_> = shared
        .network
        .iter()
        .chain(user.iter().filter(|n| n.is_user()))
        .map(crate::network::nat::BridgeNat::of)
        .collect();
    if bridges.is_empty() {
        return;
    }
    let published: Vec<_> = recovered
        .iter()
        .filter(|r| r.state.run().is_some() && !r.published.is_empty())
        .filter_map(|r| {
            let ep = r.spec.endpoint.as_ref()?;
            Some(crate::network::nat::Published {
                id: r.id.clone(),
                ip: ep.ip,
                ports: r.published.clone(),
            })
        })
        .collect();
    match crate::network::nat::replace_all(&bridges, &published) {
        Ok(()) => info!(
            bridges = bridges.len(),
            containers = published.len(),
            "nat table restored"
        ),
        Err(e) => {
            error!(error = %crate::api::error::chain(&e), "nat table not restored: no masquerade, no published port, no isolation between networks")
        }
    }
}

/// How long a stopping daemon waits for the clean-ups of removed containers.
const CLEANUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// SIGTERM, SIGINT and SIGHUP, delivered on a channel by a signal-hook thread.
fn signal_channel() -> Result<tokio::sync::mpsc::UnboundedReceiver<i32>, DaemonError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(io_err("install signal handlers", std::path::Path::new("-")))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        })
        .map_err(io_err("spawn signal thread", std::path::Path::new("-")))?;
    Ok(rx)
}

/// The binary to re-execute and the listening socket to hand it, after an upgrade request.
type HandOver = (PathBuf, std::os::fd::OwnedFd);

/// Serves until a stop signal (containers stopped or left running as live-restore says) or
/// an upgrade (containers untouched: the new image resumes them).
async fn serve(
    shared: Arc<Shared>,
    recovered: reconciler::Recovered,
    mut signals: tokio::sync::mpsc::UnboundedReceiver<i32>,
    inherited: Option<std::os::fd::OwnedFd>,
) -> Result<Option<HandOver>, DaemonError> {
    let supervisor = Supervisor::new(shared.clone(), recovered).start();
    supervisor::hosts::watch_hosts(shared.clone());
    let socket = &shared.layout.socket;
    let listener = match inherited.and_then(|fd| upgrade::listener_at(fd, socket)) {
        Some(listener) => {
            info!(socket = %socket.display(), "serving the socket handed over by the upgrade");
            listener
        }
        None => bind_socket(&shared.layout)?,
    };
    // Kept for a hand-over: actix closes its own descriptor when it stops.
    let kept = std::os::fd::OwnedFd::from(
        listener
            .try_clone()
            .map_err(io_err("duplicate the listener", socket))?,
    );
    let mut upgrades = shared
        .upgrade
        .take()
        .expect("the upgrade channel is taken once");
    let server = crate::api::server::serve(listener, supervisor.clone(), shared.clone())
        .map_err(io_err("serve", &shared.layout.socket))?;
    let handle = server.handle();
    let server_task = actix_rt::spawn(server);
    let summary = supervisor.send(Summarize).await.unwrap_or_default();
    info!(socket = %shared.layout.socket.display(), running = summary.running, stopped = summary.stopped, orphaned = summary.orphaned, "API serving");
    notify::ready(&notify::current_status(&shared, &supervisor).await);
    // Off the actors' thread: a few milliseconds at 10,000 containers.
    drop(tokio::task::spawn_blocking(memory::release_freed));
    notify::spawn_keeper(shared.clone(), supervisor.clone());
    loop {
        let signal = tokio::select! {
            sig = signals.recv() => sig,
            Some(binary) = upgrades.recv() => {
                info!(binary = %binary.display(), "upgrading: the API stops for the hand-over");
                notify::reloading();
                handle.stop(true).await;
                let _ = server_task.await;
                return Ok(Some((binary, kept)));
            }
        };
        match signal {
            Some(libc::SIGHUP) => reload::on_sighup(&shared, &supervisor).await,
            Some(sig) => {
                info!(signal = sig, "shutting down");
                break;
            }
            None => break,
        }
    }
    let config = shared.config.get();
    let host_shutdown = tokio::task::spawn_blocking(crate::host::systemd::system_stopping)
        .await
        .unwrap_or(false);
    notify::stopping(match (host_shutdown, config.live_restore) {
        (true, _) => "the host is shutting down: stopping every container",
        (false, true) => "stopping; live-restore on: containers keep running",
        (false, false) => "stopping every container",
    });
    if host_shutdown {
        info!("the host is shutting down: every container is stopped, and started at the next boot as its restart policy asks");
    }
    // No new connection from here; open ones (an events stream) see the stops, then close.
    handle.pause().await;
    let shutdown = supervisor.send(ShutDown {
        live_restore: config.live_restore,
        host_shutdown,
        timeout_secs: config.shutdown_timeout,
    });
    let keep = config.live_restore && !host_shutdown;
    await_shutdown(shutdown, &mut signals, &supervisor, keep).await;
    handle.stop(false).await;
    let _ = server_task.await;
    Ok(None)
}

/// How long after the first interrupt a second one skips the stop timeouts.
const SECOND_INTERRUPT_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for the containers to stop; a second SIGINT/SIGTERM within
/// [`SECOND_INTERRUPT_WINDOW`] (live-restore off) sends SIGKILL instead of waiting.
async fn await_shutdown(
    shutdown: impl std::future::Future,
    signals: &mut tokio::sync::mpsc::UnboundedReceiver<i32>,
    supervisor: &Addr<Supervisor>,
    live_restore: bool,
) {
    let first = std::time::Instant::now();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            sig = signals.recv() => match sig {
                Some(libc::SIGINT | libc::SIGTERM)
                    if !live_restore && first.elapsed() < SECOND_INTERRUPT_WINDOW =>
                {
                    warn!("second interrupt: skipping the stop timeout, sending SIGKILL to every container");
                    let _ = supervisor.send(messages::KillEverything).await;
                }
                Some(sig) => info!(signal = sig, "already shutting down"),
                None => {
                    (&mut shutdown).await;
                    return;
                }
            },
        }
    }
}
