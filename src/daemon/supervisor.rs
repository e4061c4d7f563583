//! The Supervisor actor: owns ids, names and volumes, creates containers and finds them.

pub mod hosts;
pub mod network;
pub mod volumes;

pub use volumes::volume_dir;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use futures_util::future::join_all;
use moor_state::store::{StoreError, Stored};
use moor_state::{ContainerRecord, ContainerSpec, State};
use rand::Rng;
use tracing::info;

use crate::daemon::container::ContainerActor;
use crate::daemon::error::ContainerError;
use crate::daemon::messages::*;
use crate::daemon::reconciler::Recovered;
use crate::daemon::Shared;

/// Owns the registry of container actors.
pub struct Supervisor {
    /// Store, layout and settings (the image handlers in `daemon::image` use it too).
    pub(super) shared: Arc<Shared>,
    /// Live actors by full id.
    containers: HashMap<String, Addr<ContainerActor>>,
    /// Records to start actors for once the supervisor runs (from the reconciler).
    recovered: Vec<ContainerRecord>,
    /// The last list of records and the store generation read before it: lists answer
    /// from it while no write has committed since (decoding 1,000 records costs
    /// milliseconds of this actor's thread, which every container actor shares); and the
    /// bytes they were read from, so that the next list decodes only what changed.
    listed: Option<(u64, Arc<Vec<ContainerRecord>>, Vec<Stored>)>,
    /// The specs of the containers created since the last list, as their actors hold them:
    /// the next list shares them (see [`Supervisor::share_parts`]). A removal drops its
    /// own, so a daemon that is never asked for a list holds none of the removed.
    created: HashMap<String, Arc<ContainerSpec>>,
    /// When the heap's freed pages go back to the kernel after lists were rebuilt.
    trim: TrimAfterLists,
}

/// A list rebuilt over many records frees the last one's copies, and its listing's, inside
/// the heap, where glibc's own trimming of the heap's top does not reach: 10,000 records
/// left ~13 MB of RSS freed but kept after one write and one list (BENCHMARKS.md, "Daemon
/// memory at 10,000"). Once lists have been rebuilt, the freed pages are returned a few
/// seconds later (once for a burst of them: a trim walks the whole heap).
struct TrimAfterLists {
    /// Lists of at least this many records count.
    at: usize,
    /// How long after the first such rebuild the trim runs.
    delay: Duration,
    /// A trim is scheduled.
    pending: bool,
}

impl Default for TrimAfterLists {
    fn default() -> Self {
        TrimAfterLists {
            at: 1_000,
            delay: Duration::from_secs(5),
            pending: false,
        }
    }
}

impl Supervisor {
    /// The same, with its trims after rebuilt lists at `at` records and `delay` (tests).
    #[cfg(test)]
    pub fn with_trim_after_lists(mut self, at: usize, delay: Duration) -> Self {
        self.trim.at = at;
        self.trim.delay = delay;
        self
    }

    /// A supervisor that starts one actor per recovered record. When they are the whole
    /// store, they are its first list too: a restart's first `GET /containers/json` does
    /// not decode every record again (~100 ms at 10,000 containers).
    pub fn new(shared: Arc<Shared>, recovered: Recovered) -> Self {
        let listed = recovered
            .generation
            .map(|at| (at, Arc::new(recovered.records.clone()), recovered.stored));
        Supervisor {
            shared,
            containers: HashMap::new(),
            recovered: recovered.records,
            listed,
            created: HashMap::new(),
            trim: TrimAfterLists::default(),
        }
    }

    fn spawn(&mut self, record: ContainerRecord, ctx: &mut Context<Self>) {
        let id = record.id.clone();
        let actor = ContainerActor::new(record, self.shared.clone(), ctx.address().recipient());
        self.containers.insert(id, actor.start());
    }

    /// A generated name nobody holds (Docker retries too; a long tail gets a number).
    fn free_generated_name(&self) -> Result<String, ContainerError> {
        for attempt in 0..64 {
            let mut name = generated_name();
            if attempt >= 8 {
                name.push_str(&rand::thread_rng().gen_range(0..1_000_000).to_string());
            }
            if self.shared.store.id_by_name(&name)?.is_none() {
                return Ok(name);
            }
        }
        Ok(format!("moor_{}", &new_id()[..16]))
    }

    fn resolve(&self, key: &str) -> Result<(String, Addr<ContainerActor>), ContainerError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        if let Some(addr) = self.containers.get(key) {
            return Ok((key.to_string(), addr.clone()));
        }
        if let Some(id) = self.shared.store.id_by_name(key)? {
            if let Some(addr) = self.containers.get(&id) {
                return Ok((id, addr.clone()));
            }
        }
        let mut matches = self
            .containers
            .iter()
            .filter(|(id, _)| !key.is_empty() && id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some((id, addr)), None) => Ok((id.clone(), addr.clone())),
            (Some(_), Some(_)) => Err(ContainerError::Ambiguous(key.into())),
            (None, _) => Err(ContainerError::NotFound(key.into())),
        }
    }
}

/// Checks a container name as Docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && name.len() >= 2 {
        Ok(())
    } else {
        Err(ContainerError::InvalidName(name.into()))
    }
}

/// Maps the store's name conflict to Docker's message.
pub fn name_conflict(e: StoreError) -> ContainerError {
    match e {
        StoreError::NameInUse { name, id } => ContainerError::NameInUse { name, id },
        other => ContainerError::Store(other),
    }
}

/// The answer of a Supervisor write: its output once the write of counter `seq` (if any)
/// is durable. The write committed on this thread; the store's flush thread flushes it
/// (`daemon::durable`), so what a caller does after the answer (a bridge made or deleted)
/// follows a durable record.
pub(super) fn once_durable<T: 'static>(
    shared: &Shared,
    written: Result<(T, Option<u64>), ContainerError>,
) -> ResponseFuture<Result<T, ContainerError>> {
    let flushed = match &written {
        Ok((_, Some(seq))) => Some(shared.durable.flushed(*seq)),
        _ => None,
    };
    Box::pin(async move {
        let (out, _) = written?;
        if let Some(flushed) = flushed {
            flushed.await?;
        }
        Ok(out)
    })
}

/// A background fsync of a spec file.
pub type SpecSync = tokio::task::JoinHandle<Result<(), crate::host::atomic::ExitFileError>>;

/// Starts making the spec file of `id` durable, off the create's answer.
pub fn sync_spec_in_background(shared: &Shared, id: &str) -> SpecSync {
    let dir = shared.layout.container_dir(id);
    tokio::task::spawn_blocking(move || {
        crate::host::fault::delay("spec-fsync");
        crate::host::atomic::sync_file(&dir, crate::host::layout::SPEC_FILE)
    })
}

/// Writes the container's spec file (its record at create) atomically and durably, on the
/// blocking pool (its fsyncs never hold the actors' thread). Nothing starts before the
/// future is polled: its actor awaits it in its own order, so one write of a container's
/// file runs at a time.
pub fn write_spec_file(
    shared: &Arc<Shared>,
    rec: &ContainerRecord,
) -> impl std::future::Future<Output = Result<(), ContainerError>> + 'static {
    let (shared, rec) = (shared.clone(), rec.clone());
    async move {
        let path = shared.layout.spec_file(&rec.id);
        let written = tokio::task::spawn_blocking(move || spec_file(&shared, &rec, true)).await;
        written.unwrap_or_else(|_| {
            Err(ContainerError::Io {
                what: "write",
                path,
                source: std::io::Error::other("the thread writing it ended"),
            })
        })
    }
}

/// Writes the spec file atomically; with `durable` false it is on disk only once
/// [`sync_spec_in_background`] has run (the create: its first start waits for that).
fn spec_file(shared: &Shared, rec: &ContainerRecord, durable: bool) -> Result<(), ContainerError> {
    let dir = shared.layout.container_dir(&rec.id);
    let io = |what, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| ContainerError::Io { what, path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let mut at_create = rec.clone();
    at_create.state = State::Created;
    let name = crate::host::layout::SPEC_FILE;
    match durable {
        true => {
            crate::host::fault::delay("spec-fsync");
            crate::host::atomic::write_json(&dir, name, &at_create)
        }
        false => crate::host::atomic::write_json_unsynced(&dir, name, &at_create),
    }
    .map_err(ContainerError::SpecFile)
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quiet", "sharp", "tender", "vivid", "wise", "zen",
];
const NOUNS: &[&str] = &[
    "anchor", "buoy", "cove", "dock", "harbor", "jetty", "keel", "lagoon", "mast", "pier", "quay",
    "reef", "sail", "tide", "wharf",
];

fn generated_name() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{}_{}{}",
        ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())],
        NOUNS[rng.gen_range(0..NOUNS.len())],
        rng.gen_range(0..100)
    )
}

fn new_id() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for record in std::mem::take(&mut self.recovered) {
            self.spawn(record, ctx);
        }
    }
}

impl Handler<CreateContainer> for Supervisor {
    type Result = ResponseFuture<Result<String, ContainerError>>;

    /// The record is committed and its actor started here; the answer waits for the
    /// record's flush (off this thread: see `daemon::durable`).
    fn handle(&mut self, msg: CreateContainer, ctx: &mut Context<Self>) -> Self::Result {
        let created = self.create(msg, ctx);
        let shared = self.shared.clone();
        Box::pin(async move {
            let (id, seq) = created?;
            shared.durable.flushed(seq).await?;
            crate::daemon::fault::point("create-persisted");
            Ok(id)
        })
    }
}

impl Supervisor {
    /// A create up to its committed record: the new id and the store's counter of that write.
    fn create(
        &mut self,
        msg: CreateContainer,
        ctx: &mut Context<Self>,
    ) -> Result<(String, u64), ContainerError> {
        // In this step, before the record: a removal of the image is ordered against it.
        crate::daemon::image::check_create(&self.shared, &msg.spec)?;
        let name = match msg.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(&n).to_string();
                validate_name(&n)?;
                if let Some(holder) = self.shared.store.id_by_name(&n)? {
                    return Err(ContainerError::NameInUse {
                        name: n,
                        id: holder,
                    });
                }
                n
            }
            None => self.free_generated_name()?,
        };
        let mut spec = msg.spec;
        self.attach_volumes(&mut spec)?;
        self.attach_network(&mut spec)?;
        let id = new_id();
        let mut record = ContainerRecord::new(id.clone(), name, spec, Utc::now());
        record.settings = Some(self.shared.current_settings(&record.spec));
        // Durable before the first start, not before this answer: see ContainerActor::start.
        spec_file(&self.shared, &record, false)?;
        // The log exists from create on, so `logs -f` can open it before the start.
        let log = self.shared.layout.log_path(&id);
        let created = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            0o640,
        )
        .open(&log);
        if let Err(source) = created {
            let _ = std::fs::remove_dir_all(self.shared.layout.container_dir(&id));
            return Err(ContainerError::Io {
                what: "create",
                path: log,
                source,
            });
        }
        self.created.insert(id.clone(), record.spec.clone());
        let seq = match self.shared.store.create_unflushed(&record) {
            Ok(seq) => seq,
            Err(e) => {
                let _ = std::fs::remove_dir_all(self.shared.layout.container_dir(&id));
                return Err(name_conflict(e));
            }
        };
        self.shared.durable.request();
        info!(container_id = %&id[..12], name = %record.name, "created");
        crate::daemon::container::emit(&self.shared, &record, "create", &[]);
        let sync = sync_spec_in_background(&self.shared, &id);
        let actor = ContainerActor::new(record, self.shared.clone(), ctx.address().recipient())
            .with_spec_sync(sync);
        self.containers.insert(id.clone(), actor.start());
        Ok((id, seq))
    }
}

impl Handler<ResolveContainer> for Supervisor {
    type Result = Result<(String, Addr<ContainerActor>), ContainerError>;

    fn handle(&mut self, msg: ResolveContainer, _: &mut Context<Self>) -> Self::Result {
        self.resolve(&msg.0)
    }
}

impl Supervisor {
    /// Every record, from the last list while the store has not changed since.
    pub(super) fn list(&mut self) -> Result<Arc<Vec<ContainerRecord>>, ContainerError> {
        // Read before the list: a write committing meanwhile moves it on, so the next
        // call lists again rather than reuse a list that may have missed that write.
        let generation = self.shared.store.generation();
        let (mut records, stored) = match &self.listed {
            Some((at, records, _)) if *at == generation => return Ok(records.clone()),
            Some((_, records, stored)) => self.shared.store.list_reusing(records, stored)?,
            None => self.shared.store.list_stored()?.0,
        };
        self.share_parts(&mut records);
        let records = Arc::new(records);
        self.listed = Some((generation, records.clone(), stored));
        Ok(records)
    }

    /// Points each freshly decoded record's spec at the one the container's actor holds
    /// (the last list's, which a restart's list shares with the actors, or a create's
    /// since), where the two are equal: a spec is 1,168 bytes inline and a list holds every
    /// record, so at 10,000 containers a list of its own would be ~15 MB more. Their
    /// settings go to the pool's copies ([`crate::daemon::settings::SettingsPool`]).
    fn share_parts(&mut self, records: &mut [ContainerRecord]) {
        let mut held: Option<HashMap<&str, &Arc<ContainerSpec>>> = None;
        for rec in records.iter_mut() {
            // A record reused from the last list shares its spec with that list already:
            // only a freshly decoded one holds the sole reference.
            if Arc::strong_count(&rec.spec) > 1 {
                continue;
            }
            self.shared.settings_pool.share_in(rec);
            let held = held.get_or_insert_with(|| {
                let last = self.listed.iter().flat_map(|(_, last, _)| last.iter());
                last.map(|r| (r.id.as_str(), &r.spec))
                    .chain(self.created.iter().map(|(id, spec)| (id.as_str(), spec)))
                    .collect()
            });
            if let Some(spec) = held.get(rec.id.as_str()) {
                if **spec == rec.spec {
                    rec.spec = Arc::clone(spec);
                }
            }
        }
        self.created.clear();
    }
}

impl Handler<ListContainers> for Supervisor {
    type Result = Result<Arc<Vec<ContainerRecord>>, ContainerError>;

    fn handle(&mut self, _: ListContainers, ctx: &mut Context<Self>) -> Self::Result {
        let before = self.listed.as_ref().map(|(_, records, _)| records.clone());
        let records = self.list()?;
        // The last list's size counts too: removing every container frees its list.
        let freed = match &before {
            Some(b) if Arc::ptr_eq(b, &records) => None,
            Some(b) => Some(b.len().max(records.len())),
            None => Some(records.len()),
        };
        drop(before);
        if freed.is_some_and(|n| n >= self.trim.at) && !self.trim.pending {
            self.trim.pending = true;
            ctx.run_later(self.trim.delay, |act, _| {
                act.trim.pending = false;
                drop(tokio::task::spawn_blocking(
                    crate::daemon::memory::release_freed,
                ));
            });
        }
        Ok(records)
    }
}

impl Handler<RenameContainer> for Supervisor {
    type Result = ResponseFuture<Result<(), ContainerError>>;

    fn handle(&mut self, msg: RenameContainer, _: &mut Context<Self>) -> Self::Result {
        let resolved = self.resolve(&msg.target);
        Box::pin(async move {
            let (_, addr) = resolved?;
            addr.send(msg).await?
        })
    }
}

impl Handler<ContainerRemoved> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ContainerRemoved, _: &mut Context<Self>) {
        self.containers.remove(&msg.id);
        self.created.remove(&msg.id);
        self.remove_anonymous(msg.volumes);
    }
}

/// How many created containers' specs the Supervisor holds for its next list (tests).
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "usize")]
pub struct HeldSpecs;

#[cfg(test)]
impl Handler<HeldSpecs> for Supervisor {
    type Result = usize;

    fn handle(&mut self, _: HeldSpecs, _: &mut Context<Self>) -> usize {
        self.created.len()
    }
}

impl Handler<Summarize> for Supervisor {
    type Result = Summary;

    fn handle(&mut self, _: Summarize, _: &mut Context<Self>) -> Summary {
        summarize(&self.list().unwrap_or_default())
    }
}

/// Counts records by state.
pub fn summarize(records: &[ContainerRecord]) -> Summary {
    let mut s = Summary::default();
    for r in records {
        match r.state {
            State::Running(_) | State::Stopping(_) | State::Starting => s.running += 1,
            State::Paused(_) => s.paused += 1,
            State::Orphaned { .. } => s.orphaned += 1,
            State::Created | State::Exited { .. } | State::Restarting { .. } | State::Removing => {
                s.stopped += 1
            }
        }
    }
    s
}

impl Handler<KillEverything> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: KillEverything, _: &mut Context<Self>) -> Self::Result {
        let kills: Vec<_> = self
            .containers
            .values()
            .map(|addr| {
                addr.send(KillContainer {
                    signal: libc::SIGKILL,
                })
            })
            .collect();
        Box::pin(async move {
            // Containers that do not run answer "not running": nothing to do for them.
            join_all(kills).await;
        })
    }
}

impl Handler<ShutDown> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: ShutDown, _: &mut Context<Self>) -> Self::Result {
        if msg.live_restore && !msg.host_shutdown {
            info!(
                containers = self.containers.len(),
                "live-restore: containers keep running"
            );
            return Box::pin(async {});
        }
        // The host going down stops each container with its own timeout, in parallel.
        let (timeout, by) = match msg.host_shutdown {
            true => (None, StopBy::HostShutdown),
            false => (msg.timeout_secs, StopBy::DaemonShutdown),
        };
        let actors: Vec<_> = self.containers.values().cloned().collect();
        let stops: Vec<_> = actors
            .iter()
            .map(|addr| {
                addr.send(StopContainer {
                    timeout_secs: timeout,
                    by,
                })
            })
            .collect();
        info!(
            containers = stops.len(),
            host_shutdown = msg.host_shutdown,
            "stopping every container"
        );
        Box::pin(async move {
            join_all(stops).await;
            // A stop answers at the exit; the release after it (runc delete, the network's
            // veth and NAT) waits for the exit's flush and runs before the actor's next
            // message: one more message to each is answered once that is done.
            join_all(actors.iter().map(|addr| addr.send(InspectContainer))).await;
        })
    }
}
