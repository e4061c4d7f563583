//! The reconciler: at start-up, before the API serves, every recovered record is
//! observed on the host, classified by the pure `moor_state::reconcile::classify`,
//! and the resulting event applied through the state machine and persisted.
//! Orphans are listed, never killed.

use std::collections::HashSet;
use std::path::Path;

use moor_state::reconcile::{classify, Class, Observation};
use moor_state::store::{Store, Stored};
use moor_state::{transition, ContainerRecord};
use tracing::{debug, error, info, warn};

use crate::daemon::cleanup::remove_files;
use crate::daemon::container::short;
use crate::daemon::Shared;
use crate::host::layout::Layout;

/// Counts of the classes, for the summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Resumed.
    pub resumed: usize,
    /// Exited while the daemon was down.
    pub exited: usize,
    /// Lost (exit unknown).
    pub lost: usize,
    /// Orphaned.
    pub orphaned: usize,
    /// Removals finished.
    pub removed: usize,
    /// Unchanged.
    pub unchanged: usize,
}

/// What the reconciler leaves: the records that stay, updated, and the store's generation
/// once it wrote them (the records are then the whole store, as a list would read it).
#[derive(Debug, Default)]
pub struct Recovered {
    /// The records that stay, in the store's list order.
    pub records: Vec<ContainerRecord>,
    /// The bytes each record was read from, while it is still what they hold (the next
    /// list after a write decodes only the records that changed: see
    /// [`moor_state::store::Store::list_reusing`]).
    pub stored: Vec<Stored>,
    /// The store's generation after the reconciler's last write (None: not a whole
    /// store, e.g. an image owner's empty list).
    pub generation: Option<u64>,
}

/// Reconciles every record in the store; returns the records that stay, updated.
pub fn reconcile(shared: &Shared) -> Recovered {
    let began = std::time::Instant::now();
    let ((mut records, stored), bad) = match shared.store.list_stored() {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot list the store");
            Default::default()
        }
    };
    for rec in records.iter_mut() {
        shared.settings_pool.share_in(rec);
    }
    let mut keep: HashSet<String> = HashSet::new();
    for (id, e) in bad {
        error!(container_id = %short(&id), error = %e, "record unreadable: left as it is");
        keep.insert(id);
    }
    let mut tally = Tally::default();
    let (mut kept, mut kept_stored) = (Vec::new(), Vec::new());
    let observed = observe_all(shared, &records);
    let base = shared.drift_base();
    for ((mut record, obs), mut stored) in records.into_iter().zip(observed).zip(stored) {
        let runtime = shared.runtimes.for_record(&record);
        let class = classify(&record.state, &obs);
        count(&mut tally, &class);
        // A resumed container is the common case (10,000 lines at 10,000 containers): at
        // debug; every other outcome at info.
        match class {
            Class::Resume(_) => {
                debug!(container_id = %short(&record.id), name = %record.name, class = class.name(), state = record.state.name(), "reconciled")
            }
            _ => {
                info!(container_id = %short(&record.id), name = %record.name, class = class.name(), state = record.state.name(), "reconciled")
            }
        }
        match &class {
            Class::FinishRemoval => {
                let own = (runtime.clone(), shared.run_container_dir(&record));
                if let Err(e) = remove_files(shared, &record.id, Some(&own))
                    .and_then(|()| shared.store.remove(&record.id).map_err(Into::into))
                {
                    error!(container_id = %short(&record.id), error = %e, "removal not finished");
                    kept.push(record);
                    kept_stored.push(stored);
                }
                continue;
            }
            Class::Orphan { reason, .. } => {
                warn!(container_id = %short(&record.id), reason = %reason, "orphan: left running, see `moor admin orphans`");
            }
            _ => {}
        }
        if record.settings.is_none() {
            // Written by a build that recorded no settings: it ran under those of this
            // start, as far as anyone can tell (README "Changing daemon options").
            record.settings = Some(shared.current_settings(&record.spec));
            stored.changed();
            if let Err(e) = shared.store.put(&record) {
                error!(container_id = %short(&record.id), error = %e, "cannot record the container's settings");
            }
        }
        if let Some(event) = class.event(obs.now) {
            match transition(&record.state, event) {
                // A resumed run that is already recorded needs no write.
                Ok(next) if next == record.state => {}
                Ok(next) => {
                    record = record.with_state(next);
                    stored.changed();
                    if let Err(e) = shared.store.put(&record) {
                        error!(container_id = %short(&record.id), error = %e, "cannot persist the reconciled state");
                    }
                }
                Err(e) => {
                    error!(container_id = %short(&record.id), error = %e, "reconciled event refused")
                }
            }
        }
        if record.state.is_ended() {
            // Ended while the daemon was away: runc's state and the rootfs mount go now.
            runtime.release_blocking(&record.id);
        }
        repair_network(shared, &record);
        let drift = base.drift(&record);
        if !drift.is_empty() && !record.state.is_ended() {
            let settings: Vec<&str> = drift.iter().map(|d| d.setting.as_str()).collect();
            info!(container_id = %short(&record.id), settings = %settings.join(","), "managed under the daemon settings it was started with");
        }
        kept.push(record);
        kept_stored.push(stored);
    }
    let generation = shared.store.generation();
    keep.extend(kept.iter().map(|r| r.id.clone()));
    crate::daemon::cleanup::sweep(shared, &keep);
    info!(
        resumed = tally.resumed,
        exited_while_down = tally.exited,
        lost = tally.lost,
        orphaned = tally.orphaned,
        removed = tally.removed,
        unchanged = tally.unchanged,
        elapsed_ms = began.elapsed().as_secs_f64() * 1000.0,
        "reconciler finished"
    );
    Recovered {
        records: kept,
        stored: kept_stored,
        generation: Some(generation),
    }
}

/// The fewest observations worth a thread of their own: with fewer, starting the thread
/// costs more than it saves.
const OBSERVED_PER_THREAD: usize = 256;

/// Observes every record's run (its run files, /proc, the runtime's state file: reads only,
/// no decision), on up to one thread per core: at 10,000 containers this was most of the
/// reconciler's time, on one core. In `records`' order.
fn observe_all(shared: &Shared, records: &[ContainerRecord]) -> Vec<Observation> {
    let observe = |part: &[ContainerRecord]| -> Vec<Observation> {
        part.iter()
            .map(|r| shared.runtimes.for_record(r).observe(&r.id))
            .collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(records.len() / OBSERVED_PER_THREAD).max(1);
    if threads == 1 {
        return observe(records);
    }
    let chunk = records.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                let spawned = std::thread::Builder::new()
                    .name("moor-observe".into())
                    .spawn_scoped(scope, move || observe(part));
                // No thread: that part is observed here, after the others started.
                spawned.map_err(|_| part)
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| match part {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(part) => observe(part),
            })
            .collect()
    })
}

fn count(t: &mut Tally, class: &Class) {
    match class {
        Class::Resume(_) => t.resumed += 1,
        Class::ExitedWhileDown(_) => t.exited += 1,
        Class::Lost { .. } => t.lost += 1,
        Class::Orphan { .. } => t.orphaned += 1,
        Class::FinishRemoval => t.removed += 1,
        Class::Unchanged => t.unchanged += 1,
    }
}

/// Rebuilds an empty store from the spec files under `<root>/containers/`.
/// Returns how many records were restored.
pub fn rebuild(store: &Store, layout: &Layout) -> usize {
    let dir = layout.root.join("containers");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut restored = 0;
    for entry in entries.flatten() {
        let path = entry.path().join(crate::host::layout::SPEC_FILE);
        match read_spec(&path) {
            Ok(record) => match store.create(&record) {
                Ok(()) => restored += 1,
                Err(e) => error!(path = %path.display(), error = %e, "cannot restore record"),
            },
            Err(e) => error!(path = %path.display(), error = %e, "spec file unreadable: skipped"),
        }
    }
    restored
}

/// Why a spec file could not be used for a rebuild.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    /// It could not be read.
    #[error("read: {0}")]
    Read(#[from] std::io::Error),
    /// It is not a record.
    #[error("decode: {0}")]
    Decode(#[from] serde_json::Error),
}

fn read_spec(path: &Path) -> Result<ContainerRecord, SpecFileError> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

/// A container that kept running while the daemon was away keeps its network: what is
/// missing of it (the namespace file, the veth, eth0's set-up) is put back, what is there
/// is left alone.
fn repair_network(shared: &Shared, record: &ContainerRecord) {
    let run = match &record.state {
        moor_state::State::Running(run)
        | moor_state::State::Paused(run)
        | moor_state::State::Stopping(run) => run,
        _ => return,
    };
    let endpoints: Vec<_> = moor_state::network::endpoints(record)
        .into_iter()
        .map(|(ep, _, slot)| (ep.clone(), slot))
        .collect();
    let netns = crate::network::netns::path(&shared.layout.run_dir, &record.id);
    if endpoints.is_empty() && !netns.exists() {
        return;
    }
    let id = short(&record.id);
    let run_dir = shared.layout_of(record).run_dir;
    match crate::network::repair(&run_dir, &record.id, &endpoints, run.process.pid) {
        Ok(r) if r == crate::network::Repaired::default() => {}
        Ok(r) => {
            warn!(container_id = %id, netns = r.netns, veths = r.veths, stale = r.stale, "network repaired")
        }
        Err(e) => error!(container_id = %id, error = %e, "network repair failed"),
    }
}
