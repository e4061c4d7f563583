//! Group commit for the store, off the actors' thread. An actor commits a write in memory
//! (sled, a few microseconds) on its own thread: a container's transition or rename, or the
//! Supervisor's record of a create, an image, a volume or a network. The flush that makes
//! it durable (an fsync, milliseconds on a good disk and seconds on a bad one) runs on the
//! `moor-flush` thread, one flush for every write that waited for it. The actor waits for
//! its write's flush without blocking the thread every actor shares
//! ([`Durability::flushed`]), before the step the write announces (a shim spawned, a signal
//! sent, files removed, a bridge made) or its answer; the API waits for it before answering
//! ([`Durability::barrier`]). So "every transition is flushed to disk before the daemon
//! acknowledges it" still holds, and a slow disk holds up only the operations that wrote,
//! never the others.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};

use moor_state::store::Flusher;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{error, warn};

/// A flush that failed, as every write it covered sees it.
#[derive(Debug, Clone, Error)]
#[error("flushing the store failed: {0}")]
pub struct FlushError(Arc<str>);

/// How far the flushes have gone.
#[derive(Debug, Clone, Default)]
struct Flushed {
    /// Every write up to this counter is durable.
    seq: u64,
    /// The last flush failed: the writes up to this counter that it covered (above `seq`)
    /// get its error.
    failed: Option<(u64, FlushError)>,
}

#[derive(Default)]
struct Requests {
    /// A flush is wanted (set by a waiter, taken by the thread).
    pending: bool,
    /// The handle is gone: the thread ends.
    closed: bool,
}

struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
}

/// The flushing thread and the way to wait for it (see the module doc).
pub struct Durability {
    flusher: Flusher,
    shared: Arc<Shared>,
    flushed: watch::Receiver<Flushed>,
}

impl Durability {
    /// Starts the `moor-flush` thread for the store `flusher` flushes.
    pub fn start(flusher: Flusher) -> Durability {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
        });
        let (tx, flushed) = watch::channel(Flushed {
            seq: flusher.committed(),
            failed: None,
        });
        let (thread_flusher, thread_shared) = (flusher.clone(), shared.clone());
        let spawned = std::thread::Builder::new()
            .name("moor-flush".into())
            .spawn(move || run(&thread_flusher, &thread_shared, &tx));
        if let Err(e) = spawned {
            // Without the thread every wait would hang: fail loudly instead.
            panic!("cannot start the store's flush thread: {e}");
        }
        Durability {
            flusher,
            shared,
            flushed,
        }
    }

    /// Resolves once write `seq` (a counter from a `*_unflushed` store write) is durable,
    /// or with the error of the flush that should have made it so.
    pub fn flushed(&self, seq: u64) -> impl Future<Output = Result<(), FlushError>> + 'static {
        let mut rx = self.flushed.clone();
        let done = move |f: &Flushed| {
            f.seq >= seq || f.failed.as_ref().is_some_and(|(upto, _)| *upto >= seq)
        };
        if !done(&rx.borrow()) {
            self.request();
        }
        async move {
            let outcome = match rx.wait_for(|f| done(f)).await {
                Ok(f) if f.seq >= seq => Ok(()),
                Ok(f) => Err(f.failed.clone().map(|(_, e)| e).unwrap_or_else(gone)),
                Err(_) => Err(gone()),
            };
            outcome
        }
    }

    /// Asks for a flush of everything committed so far, without waiting for it.
    pub fn request(&self) {
        let mut requests = self
            .shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        requests.pending = true;
        self.shared.wake.notify_one();
    }

    /// Resolves once every write committed so far is durable (what the API awaits before
    /// it answers a request that may have written).
    pub fn barrier(&self) -> impl Future<Output = Result<(), FlushError>> + 'static {
        self.flushed(self.flusher.committed())
    }

    /// Flushes on the caller's thread (at the daemon's end, after the actors).
    pub fn flush_now(&self) {
        if let Err(e) = self.flusher.flush() {
            error!(error = %crate::host::chain(&e), "the last flush of the store failed");
        }
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        let mut requests = self
            .shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        requests.closed = true;
        self.shared.wake.notify_one();
    }
}

fn gone() -> FlushError {
    FlushError("the flush thread has stopped".into())
}

/// The thread: waits for a request, flushes everything committed, tells the waiters.
fn run(flusher: &Flusher, shared: &Shared, tx: &watch::Sender<Flushed>) {
    loop {
        {
            let mut requests = shared.requests.lock().unwrap_or_else(|p| p.into_inner());
            while !requests.pending && !requests.closed {
                requests = shared
                    .wake
                    .wait(requests)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if requests.closed {
                return;
            }
            requests.pending = false;
        }
        let target = flusher.committed();
        match flusher.flush() {
            Ok(seq) => tx.send_modify(|f| {
                f.seq = f.seq.max(seq);
                f.failed = None;
            }),
            Err(e) => {
                let message = crate::host::chain(&e);
                warn!(error = %message, "flushing the store failed");
                tx.send_modify(|f| f.failed = Some((target, FlushError(message.into()))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use moor_state::store::Store;
    use moor_state::{ContainerRecord, ContainerSpec};

    use super::*;

    fn record(id: &str) -> ContainerRecord {
        let spec = ContainerSpec {
            image: "host".into(),
            cmd: vec!["true".into()],
            ..Default::default()
        };
        ContainerRecord::new(id.into(), format!("c-{id}"), spec, Utc::now())
    }

    #[tokio::test]
    async fn a_write_is_durable_once_its_flush_resolves_and_one_flush_serves_many() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let durable = Durability::start(store.flusher());
        // Nothing committed since the start: nothing to wait for.
        tokio::time::timeout(Duration::from_secs(5), durable.barrier())
            .await
            .expect("an idle barrier resolves")
            .unwrap();
        let seqs: Vec<u64> = (0..20)
            .map(|i| {
                store
                    .create_unflushed(&record(&format!("{i:064}")))
                    .unwrap()
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let waits: Vec<_> = seqs.iter().map(|&s| durable.flushed(s)).collect();
        for wait in waits {
            tokio::time::timeout(Duration::from_secs(5), wait)
                .await
                .expect("flushed in time")
                .unwrap();
        }
        assert_eq!(durable.flushed.borrow().seq, seqs[19]);
        drop(durable);
        drop(store);
        // Reopened once the flush thread has let go of the database: every write is there
        // (and the witness counter agrees with sled, or the open would refuse).
        let mut reopened = Store::open(&dir.path().join("store"));
        for _ in 0..100 {
            if reopened.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            reopened = Store::open(&dir.path().join("store"));
        }
        let store = reopened.unwrap();
        assert_eq!(store.list().unwrap().len(), 20);
    }
}
