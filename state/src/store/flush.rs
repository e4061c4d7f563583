//! Making committed writes durable, apart from committing them: a [`Flusher`] is a handle on
//! the store's database that a thread other than the writer's can flush with. Every write
//! commits in memory and counts itself ([`Flusher::committed`]); a flush makes durable
//! everything committed before it started and reports how far that reaches, so one flush can
//! serve every write that waited for it (group commit).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::StoreError;
use crate::witness;

/// Called before every flush of every store of this process, wherever it runs (see
/// [`before_every_flush`]).
static BEFORE_FLUSH: OnceLock<fn()> = OnceLock::new();

/// Sets the function every flush calls first (once per process; later calls are ignored):
/// the daemon's fail point for a slow disk, so that a test holding it holds every flush, on
/// the flush thread or wherever else one would run.
pub fn before_every_flush(hook: fn()) {
    let _ = BEFORE_FLUSH.set(hook);
}

/// A cheap, cloneable handle that flushes the store (see the module doc).
#[derive(Debug, Clone)]
pub struct Flusher {
    db: sled::Db,
    path: PathBuf,
    marks: Arc<Marks>,
}

#[derive(Debug)]
struct Marks {
    /// The write counter of the last committed write.
    committed: AtomicU64,
    /// The last counter copied beside the store: copies only move forward.
    witnessed: Mutex<u64>,
}

impl Flusher {
    /// A flusher for `db` at `path`, whose write counter stands at `seq`.
    pub(super) fn new(db: sled::Db, path: PathBuf, seq: u64) -> Flusher {
        Flusher {
            db,
            path,
            marks: Arc::new(Marks {
                committed: AtomicU64::new(seq),
                witnessed: Mutex::new(seq),
            }),
        }
    }

    /// Counts write `seq` as committed (the counter only moves forward).
    pub(super) fn committed_up_to(&self, seq: u64) {
        self.marks.committed.fetch_max(seq, Ordering::AcqRel);
    }

    /// The write counter of the last committed write: a flush that returns at least this
    /// has made every write committed so far durable.
    pub fn committed(&self) -> u64 {
        self.marks.committed.load(Ordering::Acquire)
    }

    /// Flushes every write committed before this call, then copies the counter beside the
    /// store; returns the counter now durable.
    pub fn flush(&self) -> Result<u64, StoreError> {
        self.flush_sled()
            .map_err(|source| StoreError::Write { source })
    }

    /// [`Flusher::flush`] with sled's own error.
    pub(crate) fn flush_sled(&self) -> Result<u64, sled::Error> {
        if let Some(hook) = BEFORE_FLUSH.get() {
            hook();
        }
        let target = self.committed();
        self.db.flush()?;
        let mut witnessed = self
            .marks
            .witnessed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if target > *witnessed {
            // Best-effort by design (see `witness`): the writes themselves are durable
            // already, and a stale copy can only hide a truncation, never report a false one.
            if witness::write(&self.path, target).is_ok() {
                *witnessed = target;
            }
        }
        Ok(target)
    }
}
