//! One download per layer at a time: the daemon's in-flight table. A pull takes the flight
//! of each layer it has to fetch before it downloads it; a concurrent pull of another image
//! sharing that layer waits on the same flight, then finds the layer unpacked (or, when the
//! first pull failed, fetches it itself). Flights are keyed by the layer's directory, so
//! daemons on other roots in one process (tests) never wait on each other.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Layer directory -> its flight, while a pull holds or waits on it.
type Table = HashMap<PathBuf, Arc<AsyncMutex<()>>>;

/// Every flight of this process.
static FLIGHTS: LazyLock<Mutex<Table>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn table() -> std::sync::MutexGuard<'static, Table> {
    FLIGHTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The flight of one layer, held: other pulls of the layer wait until it is dropped.
#[derive(Debug)]
pub struct Flight {
    /// The layer's directory (the table's key).
    key: PathBuf,
    /// The held lock; taken out at drop, before the entry is looked at.
    guard: Option<OwnedMutexGuard<()>>,
}

/// How a flight was taken.
#[derive(Debug)]
pub enum Boarding {
    /// Nobody held it.
    Free(Flight),
    /// Another pull held it: this one waited for it to end.
    Waited(Flight),
}

impl Flight {
    /// Takes the flight of the layer at `key`; `on_wait` is called once, before waiting,
    /// when another pull holds it.
    pub async fn take(key: PathBuf, on_wait: impl FnOnce()) -> Boarding {
        let lock = table().entry(key.clone()).or_default().clone();
        match lock.clone().try_lock_owned() {
            Ok(guard) => Boarding::Free(Flight {
                key,
                guard: Some(guard),
            }),
            Err(_) => {
                on_wait();
                let guard = lock.lock_owned().await;
                Boarding::Waited(Flight {
                    key,
                    guard: Some(guard),
                })
            }
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut flights = table();
        self.guard.take();
        // The last one out removes the entry (a waiter holds a clone of it).
        if flights
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            flights.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_waits_for_the_first() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let key = PathBuf::from("/nonexistent/flight-test/layer");
            let first = Flight::take(key.clone(), || panic!("nobody holds it")).await;
            assert!(matches!(first, Boarding::Free(_)));
            let waited = std::cell::Cell::new(false);
            let second = Flight::take(key.clone(), || waited.set(true));
            tokio::pin!(second);
            let early = tokio::time::timeout(std::time::Duration::from_millis(50), &mut second);
            assert!(
                early.await.is_err(),
                "the second waits while the first flies"
            );
            drop(first);
            assert!(matches!(second.await, Boarding::Waited(_)));
            assert!(waited.get());
            assert!(
                !table().contains_key(&key),
                "the last one out removes the entry"
            );
        });
    }
}
